"""ConvMLP backbones for MMDetection 3.x and MMSegmentation 1.x.

Importing the package registers ``ConvMLP`` in the ``mmconvmlp`` scope and in
the model registries of mmdet and mmseg, whichever are installed, and
changes nothing else. What the stock stack lacks (safe resume on
torch >= 2.6, atomic checkpoint writes, exact resume, CPU multi-process
training) is switched on explicitly: see :mod:`mmconvmlp.engine`.
"""
from .models import ConvMLP
from .registry import register_into_downstream
from .version import __version__

register_into_downstream(ConvMLP)

__all__ = ['ConvMLP', '__version__']
