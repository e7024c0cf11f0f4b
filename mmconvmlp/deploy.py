"""Inference-time optimisation of ConvMLP models.

:func:`optimize_for_inference` takes a ConvMLP backbone, or a detector or
segmentor that contains one, and returns a copy that computes the same
outputs faster:

* every BatchNorm that follows a convolution is folded into it (the
  tokenizer and conv stage, and any BN in necks and heads);
* the affine part of the LayerNorms before the channel MLPs is folded into
  the MLPs' first linear layer;
* convolutions run in the channels-last memory format: the conv stage then
  hands the Conv-MLP stages a tensor whose NHWC view needs no copy, and the
  depthwise convolutions read and write channel-last data directly;
* optionally (``bf16=True``) backbone, neck and heads run under bfloat16
  autocast, with outputs returned in float32; its error against float32 is
  measured by ``tools/analysis_tools/benchmark_backbone.py``;
* optionally (``compile=True``) their forwards go through ``torch.compile``.
"""
import copy
import functools

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn

from .models import ConvMLP
from .models.blocks import ConvMLPBlock

#: Submodules of detectors / segmentors whose forward is the heavy part.
_HEAVY_PARTS = ('backbone', 'neck', 'bbox_head', 'rpn_head', 'roi_head',
                'decode_head', 'auxiliary_head')


def fold_layer_norm(norm, linear):
    """Fold ``norm``'s affine transform into ``linear`` (which follows it).

    Returns the affine-free LayerNorm to use in place of ``norm``;
    ``linear`` is changed in place so that
    ``linear(new_norm(x)) == old_linear(norm(x))``.
    """
    if not norm.elementwise_affine:
        return norm
    with torch.no_grad():
        bias = linear.weight @ norm.bias
        linear.weight.mul_(norm.weight[None, :])
        if linear.bias is None:
            linear.bias = nn.Parameter(bias)
        else:
            linear.bias.add_(bias)
    return nn.LayerNorm(norm.normalized_shape, eps=norm.eps,
                        elementwise_affine=False)


def _fold_block_norms(block):
    block.norm1 = fold_layer_norm(block.norm1, block.channel_mlp1.fc1)
    block.norm2 = fold_layer_norm(block.norm2, block.channel_mlp2.fc1)


def _to_channels_last(module, args):
    """Forward pre-hook: hand the backbone a channels-last image batch."""
    return (args[0].contiguous(memory_format=torch.channels_last),
            *args[1:])


def _autocast_outputs(forward, device_type):
    """Wrap ``forward`` to run under bf16 autocast and return float32."""

    @functools.wraps(forward)
    def wrapped(*args, **kwargs):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = forward(*args, **kwargs)
        return _to_float(out)

    return wrapped


def _to_float(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float(o) for o in out)
    return out


def _heavy_parts(model):
    """The modules whose forward to cast / compile: the model itself when it
    is a bare backbone, else its backbone, neck and heads."""
    if isinstance(model, ConvMLP):
        return [model]
    return [getattr(model, name) for name in _HEAVY_PARTS
            if isinstance(getattr(model, name, None), nn.Module)]


def optimize_for_inference(model, bf16=False, compile=False,
                           channels_last=True):
    """Return an inference-only, faster copy of ``model``.

    Args:
        model (nn.Module): a :class:`~mmconvmlp.ConvMLP`, or a detector /
            segmentor containing one.
        bf16 (bool): run backbone, neck and heads under bfloat16 autocast
            (outputs in float32). Faster on CPUs with AVX-512 BF16 / AMX and
            on GPUs; not bit-exact.
        compile (bool): ``torch.compile`` the forwards of backbone, neck and
            heads (the first call of each input shape compiles).
        channels_last (bool): use the channels-last memory format.

    Returns:
        nn.Module: the optimised copy, in eval mode. In float32 its outputs
        match the original's to float rounding (relative error ~1e-6).
    """
    backbones = [m for m in model.modules() if isinstance(m, ConvMLP)]
    if not backbones:
        raise TypeError(f'{type(model).__name__} contains no ConvMLP backbone')
    model = fuse_conv_bn(copy.deepcopy(model).eval())
    for block in model.modules():
        if isinstance(block, ConvMLPBlock):
            _fold_block_norms(block)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        for backbone in model.modules():
            if isinstance(backbone, ConvMLP):
                backbone.register_forward_pre_hook(_to_channels_last)
    device_type = next(model.parameters()).device.type
    for part in _heavy_parts(model):
        if bf16:
            part.forward = _autocast_outputs(part.forward, device_type)
        if compile:
            part.forward = torch.compile(part.forward, dynamic=False)
    return model
