"""The configs, tools and model index that ship with mmconvmlp.

An installed wheel carries them under ``mmconvmlp/.mim/`` (where ``mim``
looks); a source checkout has them at the repository's root::

    python -m mmconvmlp.model_zoo list             # config names
    python -m mmconvmlp.model_zoo models           # model index: params, results
    python -m mmconvmlp.model_zoo path retinanet_convmlp_s   # a config's file
    python -m mmconvmlp.model_zoo path tools/train.py        # a shipped tool

A config's file is what a user's own config inherits
(``_base_ = '<that path>'``), and what the shipped tools take.
"""
import difflib
import os
import os.path as osp
import sys

PACKAGE_DIR = osp.dirname(osp.abspath(__file__))


def mim_root():
    """The folder holding ``configs/``, ``tools/`` and ``model-index.yml``:
    the package's ``.mim`` when installed, else the source checkout."""
    mim = osp.join(PACKAGE_DIR, '.mim')
    if osp.isfile(osp.join(mim, 'model-index.yml')):
        return mim
    checkout = osp.dirname(PACKAGE_DIR)
    if osp.isfile(osp.join(checkout, 'model-index.yml')):
        return checkout
    raise FileNotFoundError(
        f'no configs found: neither {mim} nor {checkout} holds '
        'model-index.yml (was mmconvmlp installed from a wheel without them?)')


#: Folders of ``configs/`` that hold no model configs (mmdeploy's deploy
#: configs).
NOT_MODELS = ('deploy', )


def list_configs():
    """Names of the shipped model configs, e.g.
    ``'detection/retinanet_convmlp_s'`` (not the deploy configs of
    ``configs/deploy/``)."""
    root = osp.join(mim_root(), 'configs')
    names = []
    for folder, _, files in os.walk(root):
        if osp.relpath(folder, root).split(os.sep)[0] in NOT_MODELS:
            continue
        names += [osp.relpath(osp.join(folder, f), root)[:-3]
                  for f in files if f.endswith('.py')]
    return sorted(names)


def config_path(name):
    """The file of a shipped config, by name: ``'retinanet_convmlp_s'``,
    ``'detection/retinanet_convmlp_s'`` or either with ``.py``.

    Raises:
        FileNotFoundError: no such config; names the closest ones.
    """
    name = name[:-3] if name.endswith('.py') else name
    configs = list_configs()
    matches = [c for c in configs if c == name or osp.basename(c) == name]
    if len(matches) != 1:
        close = difflib.get_close_matches(name, configs + [
            osp.basename(c) for c in configs], n=3, cutoff=0.5)
        hint = f'; closest: {", ".join(close)}' if close else ''
        raise FileNotFoundError(
            f'no shipped config named {name!r}{hint} (see `python -m '
            'mmconvmlp.model_zoo list`)')
    return osp.join(mim_root(), 'configs', matches[0] + '.py')


def find_config(config):
    """The file of a config given as a path, as ``'mmseg::x.py'`` /
    ``'mmdet::x.py'`` (what that package ships under ``.mim/configs``) or
    as the name of one of ours (see :func:`config_path`).

    Raises:
        FileNotFoundError: naming the config, and close names for ours.
    """
    if '::' in config:
        import importlib
        package, rel = config.split('::', 1)
        root = osp.dirname(importlib.import_module(package).__file__)
        path = osp.join(root, '.mim', 'configs', rel)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{config}: {path} does not exist')
        return path
    if osp.isfile(config):
        return config
    return config_path(config)


def get_config(name):
    """The shipped config ``name`` (see :func:`config_path`) as an mmengine
    ``Config``."""
    return read_config(config_path(name))


def read_config(config):
    """An mmengine ``Config`` from a path, an ``mmdet::`` / ``mmseg::`` name
    or one of our configs' names (:func:`find_config`), with the ``pkg::``
    lookup fixed on the OneDL fork
    (:func:`mmconvmlp.engine.stack.fix_config_lookup`). A config is code:
    read only configs you trust."""
    from mmengine.config import Config

    from .engine.stack import fix_config_lookup
    fix_config_lookup()
    return Config.fromfile(find_config(config))


def load_model_index():
    """Every model of ``model-index.yml`` and its metafiles: a list of
    dicts with ``Name``, ``Config``, ``Metadata``, ``Results``,
    ``Weights``."""
    import yaml
    root = mim_root()
    with open(osp.join(root, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    models = []
    for metafile in index['Import']:
        with open(osp.join(root, metafile)) as f:
            models += yaml.safe_load(f)['Models']
    return models


def main(argv=None):
    """``python -m mmconvmlp.model_zoo list|models|path NAME``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['list']:
        print('\n'.join(list_configs()))
    elif argv[:1] == ['models']:
        for model in load_model_index():
            results = ', '.join(f'{k} {v}' for r in model['Results']
                                for k, v in r['Metrics'].items())
            print(f'{model["Name"]}: {model["Config"]}; params '
                  f'{model["Metadata"]["Parameters"]}, FLOPs '
                  f'{model["Metadata"]["FLOPs"]}; {results}')
    elif argv[:1] == ['path'] and len(argv) == 2:
        shipped = osp.join(mim_root(), argv[1])  # tools/train.py, ...
        print(shipped if osp.isfile(shipped) else config_path(argv[1]))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
