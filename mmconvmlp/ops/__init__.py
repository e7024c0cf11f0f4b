"""Compiled operators (optional; each falls back to plain PyTorch)."""
from .winograd import (PackedWinogradConv2d, WinogradConv2d, takes_winograd,
                       winograd_available)

__all__ = ['PackedWinogradConv2d', 'WinogradConv2d', 'takes_winograd',
           'winograd_available']
