"""Make mmengine read and write local checkpoints safely (opt-in).

Reading: mmengine 0.10.7 reads local checkpoints with a bare ``torch.load``;
on torch >= 2.6 that is weights-only and refuses mmengine's own
``HistoryBuffer`` and numpy scalars, so ``--resume`` fails. The OneDL fork
(onedl-mmengine 0.10.12) allow-lists them, but retries any file it refuses
with ``weights_only=False``, which runs the code in it. Replacing mmengine's
local and http(s) loaders with :func:`mmconvmlp.checkpoint.load_file` keeps
weights-only loading, with no retry, on both stacks, and allow-lists exactly
what mmengine's checkpoints hold. Resume, ``load_from`` and
``tools/test.py`` all read through it, with clear errors for corrupt or
code-carrying files.

Writing: mmengine writes a checkpoint straight into its final name, so a run
killed midway leaves a truncated ``epoch_N.pth`` behind. The local file
backend here writes through a temporary file and a rename; the
``last_checkpoint`` pointer, written after the checkpoint, so never names a
half-written file. Files keep the mode a plain write gives them (umask).

Plain data: mmengine puts its message hub (``HistoryBuffer`` objects, numpy
values) into every checkpoint, which stock weights-only ``torch.load``
refuses. :func:`message_hub_to_plain` writes it as tensors and numbers,
:func:`message_hub_from_plain` restores mmengine's objects on resume, so
mmdet's ``init_detector`` and mmseg's ``init_model`` open the checkpoints
with nothing of ours and resume stays exact.

Nothing here happens on import: :func:`install_checkpoint_io` switches it
on for the process, and :class:`~mmconvmlp.engine.ExactResumeHook` (one
config line, see its docstring) or mmconvmlp's tools call it.
"""
import os.path as osp

import torch
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer, MMLogger
from mmengine.runner.checkpoint import CheckpointLoader

from ..checkpoint import atomic_write, load_file, plain_data, resolve

#: Marks a message hub written by :func:`message_hub_to_plain`.
PLAIN_HUB_FORMAT = 'mmconvmlp.plain/1'


def load_local_checkpoint(filename, map_location=None):
    """mmengine's local-file loader, made safe and explicit in its errors.

    ``meta['config']`` (Python text that mmengine 0.10's ``Runner.resume``
    would execute: mmcv 1.x checkpoints carry one) is dropped.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    checkpoint = load_file(filename, map_location=map_location)
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if isinstance(meta, dict) and 'config' in meta:
        del meta['config']
        MMLogger.get_current_instance().info(
            f'mmconvmlp: ignored meta["config"] of {filename} (a config is '
            'code; only the one you run is used)')
    return checkpoint


def load_remote_checkpoint(filename, map_location=None):
    """mmengine's http(s) loader, made safe: the file is downloaded once
    into torch's hub cache (a clear error offline) and read like a local
    one. (The OneDL fork's own loaders retry a refused file with
    ``weights_only=False``, which would run the code in it.)"""
    return load_local_checkpoint(resolve(filename), map_location)


def message_hub_to_plain(state):
    """A message hub's ``state_dict()`` as plain data: each ``HistoryBuffer``
    becomes ``dict(log_history=tensor, count_history=tensor, max_length=int)``,
    numpy values become tensors and numbers."""
    scalars = {}
    for key, buffer in state.get('log_scalars', {}).items():
        if isinstance(buffer, HistoryBuffer):
            log, count = buffer.data
            buffer = dict(log_history=plain_data(log),
                          count_history=plain_data(count),
                          max_length=int(buffer.max_length))
        scalars[key] = plain_data(buffer, f'message_hub.log_scalars.{key}')
    plain = plain_data({k: v for k, v in state.items() if k != 'log_scalars'},
                       'message_hub')
    return dict(plain, log_scalars=scalars, format=PLAIN_HUB_FORMAT)


def message_hub_from_plain(state):
    """Undo :func:`message_hub_to_plain` (other states pass unchanged)."""
    if not isinstance(state, dict) or state.get('format') != PLAIN_HUB_FORMAT:
        return state

    def array(value):
        return value.numpy() if isinstance(value, torch.Tensor) else value

    scalars = {key: HistoryBuffer(array(value['log_history']),
                                  array(value['count_history']),
                                  value['max_length'])
               for key, value in state['log_scalars'].items()}
    return dict({k: v for k, v in state.items() if k != 'format'},
                log_scalars=scalars)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, with atomic writes."""

    def put(self, obj, filepath):
        """Write bytes to ``filepath`` atomically."""
        atomic_write(obj, str(filepath))

    def put_text(self, obj, filepath, encoding='utf-8'):
        """Write text to ``filepath`` atomically."""
        atomic_write(obj.encode(encoding), str(filepath))


def install_checkpoint_io():
    """Route mmengine's local checkpoint reads and file writes, for the rest
    of the process, through the safe loader and the atomic backend above.

    Returns True if this call switched them on, False if they already were.
    """
    if CheckpointLoader._schemes.get('') is load_local_checkpoint:
        return False
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint,
                                     force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'),
                                     loader=load_remote_checkpoint,
                                     force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    MMLogger.get_current_instance().info(
        'mmconvmlp: mmengine now reads local checkpoints with the safe '
        'weights-only loader of mmconvmlp.checkpoint and writes local files '
        'atomically (mmconvmlp.engine.install_checkpoint_io)')
    return True
