"""Compiled operators (optional; each falls back to plain PyTorch)."""
from .winograd import WinogradConv2d, winograd_available

__all__ = ['WinogradConv2d', 'winograd_available']
