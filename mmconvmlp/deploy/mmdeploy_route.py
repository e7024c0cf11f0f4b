"""mmdeploy 1.3.1 with ConvMLP models: what it needs on today's torch.

mmdeploy exports RetinaNet-ConvMLP (NMS in the graph) and Semantic
FPN-ConvMLP to ONNX Runtime once three things are fixed, all here and all
switched on only by :func:`export_with_mmdeploy`:

* since torch 2.9 ``torch.onnx.export`` uses the dynamo exporter by default,
  which bypasses mmdeploy's rewriters (and needs onnxscript): the export
  runs with ``dynamo=False`` (:func:`legacy_onnx_exporter`);
* mmengine's checkpoint loader fails on torch >= 2.6 (weights-only
  ``torch.load``): :func:`mmconvmlp.engine.install_checkpoint_io`;
* mmseg's ``Upsample`` freezes the traced size (a dynamic file gives wrong
  label maps at other sizes): a rewriter makes it scale dynamically.

Two-stage detectors (Mask R-CNN) do not export: mmdeploy's RoIAlign
symbolic imports ``torch.onnx.symbolic_opset9._cast_Long``, which torch no
longer has. Use :func:`mmconvmlp.deploy.export_onnx` for them.
"""
import contextlib
import functools

import torch
import torch.nn.functional as F

_REWRITERS_REGISTERED = False


@contextlib.contextmanager
def legacy_onnx_exporter():
    """Within the block, ``torch.onnx.export`` defaults to the TorchScript
    exporter (``dynamo=False``), whose symbolic functions mmdeploy
    rewrites."""
    export = torch.onnx.export
    torch.onnx.export = functools.partial(export, dynamo=False)
    try:
        yield
    finally:
        torch.onnx.export = export


def register_rewriters():
    """Register mmconvmlp's rewriters with mmdeploy (once)."""
    global _REWRITERS_REGISTERED
    if _REWRITERS_REGISTERED:
        return
    from mmdeploy.core import FUNCTION_REWRITER

    @FUNCTION_REWRITER.register_rewriter(
        func_name='mmseg.models.utils.wrappers.Upsample.forward')
    def upsample__forward(self, x):
        """Scale by the factor itself, not by sizes computed in Python."""
        if self.size or not self.scale_factor:
            return FUNCTION_REWRITER.get_context().origin_func(self, x)
        return F.interpolate(x, scale_factor=self.scale_factor,
                             mode=self.mode, align_corners=self.align_corners)

    _REWRITERS_REGISTERED = True


def export_with_mmdeploy(deploy_cfg, model_cfg, checkpoint, image, work_dir,
                         save_file='end2end.onnx', device='cpu'):
    """Run mmdeploy's ``torch2onnx`` with the fixes above. Returns the path
    of the ONNX file. Switches on :func:`install_checkpoint_io` (it logs
    that it does) for the rest of the process."""
    import os.path as osp

    from mmdeploy.apis import torch2onnx

    from ..engine import install_checkpoint_io
    install_checkpoint_io()
    register_rewriters()
    with legacy_onnx_exporter():
        torch2onnx(image, work_dir, save_file, deploy_cfg, model_cfg,
                   checkpoint, device=device)
    return osp.join(work_dir, save_file)
