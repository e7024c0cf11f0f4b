"""Route mmengine's local checkpoint reads through :mod:`mmconvmlp.checkpoint`.

mmengine 0.10.7 reads local checkpoints with a bare ``torch.load``; on torch
>= 2.6 that is weights-only and refuses mmengine's own ``HistoryBuffer`` and
numpy scalars, so ``--resume`` fails. Replacing mmengine's local loader with
:func:`mmconvmlp.checkpoint.load_file` keeps weights-only loading and
allow-lists exactly what mmengine's checkpoints hold. Resume, ``load_from``
and ``tools/test.py`` all read through it, with clear errors for corrupt or
code-carrying files.
"""
import os.path as osp

from mmengine.runner.checkpoint import CheckpointLoader

from ..checkpoint import load_file


def load_local_checkpoint(filename, map_location=None):
    """mmengine's local-file loader, made safe and explicit in its errors."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    return load_file(filename, map_location=map_location)


def install_checkpoint_loader():
    """Make :func:`load_local_checkpoint` mmengine's loader for local files."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint,
                                     force=True)
