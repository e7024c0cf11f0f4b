"""Compiled operators (optional; each falls back to plain PyTorch)."""
from .onednn_linear import OneDNNLinear
from .winograd import (FusedWinogradConv2d, WinogradConv2d,
                       eager_cpu_float32, takes_winograd, winograd_available,
                       winograd_status)

__all__ = ['FusedWinogradConv2d', 'OneDNNLinear', 'WinogradConv2d',
           'eager_cpu_float32', 'takes_winograd', 'winograd_available',
           'winograd_status']
