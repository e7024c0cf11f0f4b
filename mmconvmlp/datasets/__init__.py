"""Datasets that ship with mmconvmlp."""
from .builtin import CLASSES, SEG_CLASSES, make_builtin_dataset

__all__ = ['CLASSES', 'SEG_CLASSES', 'make_builtin_dataset']
