"""Where the OneDL fork of OpenMMLab differs from upstream, in one place.

OneDL (onedl-mmengine, onedl-mmcv, onedl-mmdetection, onedl-mmsegmentation)
keeps the import names under other distribution names. Two differences
matter to mmconvmlp:

* **``pkg::`` config names.** mmengine resolves ``mmseg::x.py`` through the
  distribution ``mmsegmentation``; on the fork that distribution is
  ``onedl-mmsegmentation``, so onedl-mmengine 0.10.12 says "mmsegmentation
  is not installed" for every config that inherits an ``mmseg::`` base (ours
  do). :func:`fix_config_lookup` points mmengine's table at the fork's
  distributions for the packages that exist only under the fork's name;
  mmconvmlp's tools call it (through
  :func:`mmconvmlp.model_zoo.read_config`) before reading a config.
* **Checkpoint loading.** onedl-mmengine retries any checkpoint its
  weights-only load refuses with ``weights_only=False``;
  :func:`~mmconvmlp.engine.install_checkpoint_io` replaces its loaders on
  both stacks (see there).
"""
from importlib.metadata import PackageNotFoundError, version

#: Upstream distribution -> the fork's.
FORK_DISTRIBUTIONS = {
    'mmengine': 'onedl-mmengine', 'mmcv': 'onedl-mmcv',
    'mmdet': 'onedl-mmdetection', 'mmsegmentation': 'onedl-mmsegmentation',
    'mmpretrain': 'onedl-mmpretrain',
}


def _installed(distribution):
    try:
        version(distribution)
        return True
    except PackageNotFoundError:
        return False


def stack():
    """``'onedl'`` where mmengine is onedl-mmengine, else ``'upstream'``."""
    return 'onedl' if _installed('onedl-mmengine') else 'upstream'


def fix_config_lookup():
    """Let mmengine find ``pkg::`` configs of packages installed under the
    fork's distribution names (see the module docstring). Logs what it
    changes; returns ``{module: distribution}`` changed (empty on upstream,
    or when already done)."""
    from mmengine.config import utils
    from mmengine.logging import MMLogger
    changed = {}
    for module, package in utils.MODULE2PACKAGE.items():
        fork = FORK_DISTRIBUTIONS.get(package)
        if fork and not _installed(package) and _installed(fork):
            utils.MODULE2PACKAGE[module] = changed[module] = fork
    if changed:
        MMLogger.get_current_instance().info(
            'mmconvmlp: mmengine now finds the configs of '
            + ', '.join(f'{m}:: in {d}' for m, d in changed.items())
            + ' (mmconvmlp.engine.stack.fix_config_lookup)')
    return changed
