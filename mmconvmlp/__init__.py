"""ConvMLP backbones for MMDetection 3.x and MMSegmentation 1.x.

Importing the package registers ``ConvMLP`` in the ``mmconvmlp`` scope and in
the model registries of mmdet and mmseg, whichever are installed, and makes
mmengine read local checkpoints with the safe loader of
:mod:`mmconvmlp.checkpoint` (which lets ``--resume`` work on torch >= 2.6)
and write files atomically (see :mod:`mmconvmlp.engine.checkpoint_io`), and
lets ``type='SyncBN'`` synchronise CPU processes too
(:class:`mmconvmlp.engine.SyncBatchNorm`).
"""
from .deploy import optimize_for_inference
from .engine import install_checkpoint_io, register_sync_bn
from .models import ConvMLP
from .registry import register_into_downstream
from .version import __version__

register_into_downstream(ConvMLP)
install_checkpoint_io()
register_sync_bn()

__all__ = ['ConvMLP', 'optimize_for_inference', '__version__']
