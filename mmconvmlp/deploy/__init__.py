"""Deployment: a faster PyTorch model, ONNX export, runtime models.

* :func:`optimize_for_inference`: a faster copy of a PyTorch model, no
  export step (:mod:`.optimize`);
* :func:`export_onnx`: a detector or segmentor to ONNX, up to its raw head
  outputs, with its preprocessing and post-processing settings in the
  metadata as plain, checked data (:mod:`.onnx_export`, :mod:`.metadata`);
* :func:`build_runtime_model`: an exported file in ONNX Runtime or
  OpenVINO, returning mmdet / mmseg data samples (:mod:`.runtime`);
* :mod:`.quantize` (int8) and :mod:`.tune` (the fastest path that keeps
  the accuracy, on this machine), imported where used.

onnx, onnxruntime and openvino are imported only when used
(``pip install 'mmconvmlp[deploy]'``).
"""
from .metadata import read_metadata
from .onnx_export import export_onnx
from .optimize import optimize_for_inference, use_winograd
from .runtime import (RuntimeDetector, RuntimeSegmentor, build_backend,
                      build_runtime_model, use_runtime_model)

__all__ = ['optimize_for_inference', 'use_winograd', 'export_onnx',
           'read_metadata', 'build_backend', 'build_runtime_model',
           'RuntimeDetector', 'RuntimeSegmentor', 'use_runtime_model']
