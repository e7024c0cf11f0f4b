"""Make mmengine read and write local checkpoints safely (opt-in).

Reading: mmengine 0.10.7 reads local checkpoints with a bare ``torch.load``;
on torch >= 2.6 that is weights-only and refuses mmengine's own
``HistoryBuffer`` and numpy scalars, so ``--resume`` fails. Replacing
mmengine's local loader with :func:`mmconvmlp.checkpoint.load_file` keeps
weights-only loading and allow-lists exactly what mmengine's checkpoints
hold. Resume, ``load_from`` and ``tools/test.py`` all read through it, with
clear errors for corrupt or code-carrying files.

Writing: mmengine writes a checkpoint straight into its final name, so a run
killed midway leaves a truncated ``epoch_N.pth`` behind. The local file
backend here writes through a temporary file and a rename; the
``last_checkpoint`` pointer, written after the checkpoint, so never names a
half-written file. Files keep the mode a plain write gives them (umask).

Nothing here happens on import: :func:`install_checkpoint_io` switches it
on for the process, and :class:`~mmconvmlp.engine.ExactResumeHook` (one
config line, see its docstring) or mmconvmlp's tools call it.
"""
import os.path as osp

from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import CheckpointLoader

from ..checkpoint import atomic_write, load_file


def load_local_checkpoint(filename, map_location=None):
    """mmengine's local-file loader, made safe and explicit in its errors."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    return load_file(filename, map_location=map_location)


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
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    MMLogger.get_current_instance().info(
        'mmconvmlp: mmengine now reads local checkpoints with the safe '
        'weights-only loader of mmconvmlp.checkpoint and writes local files '
        'atomically (mmconvmlp.engine.install_checkpoint_io)')
    return True
