"""Inference-time optimisation of ConvMLP models.

:func:`optimize_for_inference` takes a ConvMLP backbone, or a detector or
segmentor that contains one, and returns a copy that computes the same
outputs faster. It orchestrates; the backbone's blocks own their transforms
(:meth:`mmconvmlp.ConvMLP.switch_to_deploy`):

* every BatchNorm that follows a convolution is folded into it (the
  tokenizer and conv stage, and any BN in necks and heads);
* the affine part of the LayerNorms before the channel MLPs is folded into
  the MLPs' first linear layer; the MLPs' biases and GELU are applied by
  the GEMMs themselves (``fused_mlp``,
  :class:`mmconvmlp.ops.OneDNNLinear`);
* every 3x3 stride-1 convolution (tokenizer, conv stage, FPN, heads) runs
  as a Winograd F(4x4, 3x3) convolution on the CPU
  (:class:`mmconvmlp.ops.FusedWinogradConv2d`: 4x fewer multiply-adds,
  weights transformed once), the backbone's with the ReLU that follows
  fused in; on other devices, or on CPUs the op does not support, it runs
  as a plain conv;
* convolutions run in the channels-last memory format: the conv stage then
  hands the Conv-MLP stages a tensor whose NHWC view needs no copy, the
  depthwise convolutions read and write channel-last data directly, and the
  backbone returns its maps channels-last (same values, no copies);
* optionally (``bf16=True``) backbone, neck and heads run under bfloat16
  autocast, with outputs returned in float32; its error against float32 is
  measured by ``tools/analysis_tools/benchmark_backbone.py``;
* optionally (``compile=True``) their forwards go through ``torch.compile``.

Which of the transforms pay depends on the machine: with ``probe=(H, W)``
each is timed here, with and without, and applied only where it pays
(:mod:`mmconvmlp.deploy.probe`).
"""
import copy
import functools
import warnings

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn

from ..models import ConvMLP
from ..ops import FusedWinogradConv2d
from .cpu import native_bf16

#: Submodules of detectors / segmentors besides the backbone whose forward
#: is the heavy part.
_HEADS = ('neck', 'bbox_head', 'rpn_head', 'roi_head', 'decode_head',
          'auxiliary_head')


def use_winograd(model):
    """Replace, in place, every convolution of ``model`` that
    :class:`~mmconvmlp.ops.FusedWinogradConv2d` supports (mmcv
    ``ConvModule``s keep their own activation). Returns ``model``."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if FusedWinogradConv2d.supports(child):
                setattr(module, name, FusedWinogradConv2d(child))
    return model


class ContiguousInput(nn.Module):
    """Hand ``module`` a contiguous (NCHW) feature map: mmcv's ``RoIAlign``
    kernels read their input as NCHW whatever its memory format, so a
    channels-last map gives wrong RoI features. Other attributes (such as
    ``output_size``, which mmdet's RoI extractors read) are the module's."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules['module'], name)

    def forward(self, input, *args, **kwargs):
        return self.module(input.contiguous(), *args, **kwargs)


def guard_layout_sensitive_ops(model):
    """Wrap, in place, every op of ``model`` that reads its input as NCHW
    regardless of its memory format (mmcv's ``RoIAlign`` / ``RoIPool``) in
    :class:`ContiguousInput`. Returns the number wrapped."""
    try:
        from mmcv.ops import RoIAlign, RoIPool
    except ImportError:
        return 0
    wrapped = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, (RoIAlign, RoIPool)):
                setattr(module, name, ContiguousInput(child))
                wrapped += 1
    return wrapped


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


def optimize_for_inference(model, bf16=False, compile=False,
                           channels_last=True, winograd=True, fused_mlp=True,
                           probe=None):
    """Return an inference-only, faster copy of ``model``.

    The copy's ConvMLP backbones apply their own transforms
    (:meth:`~mmconvmlp.ConvMLP.switch_to_deploy`); in the neck and heads
    every BN that follows a conv is folded into it and, with ``winograd``,
    every 3x3 stride-1 conv runs as a Winograd conv on the CPU.

    Args:
        model (nn.Module): a :class:`~mmconvmlp.ConvMLP`, or a detector /
            segmentor containing one.
        bf16 (bool): run backbone, neck and heads under bfloat16 autocast
            (outputs in float32). Faster on CPUs with AVX-512 BF16 / AMX and
            on GPUs, several times slower on CPUs without them (a warning
            says so); not bit-exact.
        compile (bool): ``torch.compile`` the forwards of backbone, neck and
            heads (the first call of each input shape compiles).
        channels_last (bool): use the channels-last memory format.
        winograd (bool): compute 3x3 stride-1 convolutions with Winograd
            F(4x4, 3x3) on the CPU where the compiled op runs; ``False``
            computes them all directly.
        fused_mlp (bool): apply the channel MLPs' bias and GELU inside
            oneDNN's GEMMs (:class:`~mmconvmlp.ops.OneDNNLinear`).
        probe (tuple[int, int], optional): an input size H, W: each of the
            transforms above that is on is timed on this machine, with it
            and without, on a random image of that size, and left out where
            that is faster (:func:`~mmconvmlp.deploy.probe.probe_transforms`;
            a few seconds to a minute, by model and size). ``None``: apply
            every transform asked for.

    Returns:
        nn.Module: the optimised copy, in eval mode. In float32 its outputs
        match the original's to float rounding (relative error ~1e-6 without
        Winograd, ~1e-5 with it). Its ``inference_transforms`` attribute
        holds the transforms applied and, after a probe, ``probe_ms``: the
        milliseconds of each probed transform on and off.
    """
    if not any(isinstance(m, ConvMLP) for m in model.modules()):
        raise TypeError(f'{type(model).__name__} contains no ConvMLP backbone')
    transforms = dict(winograd=winograd, channels_last=channels_last,
                      fused_mlp=fused_mlp)
    timings = None
    if probe is None:
        model = _apply_transforms(model, bf16, **transforms)
    else:
        from .probe import probe_transforms
        model, transforms, timings = probe_transforms(
            model, probe, functools.partial(_apply_transforms, model, bf16),
            transforms)
    if compile:
        for part in _parts(model):
            part.forward = torch.compile(part.forward, dynamic=False)
    model.inference_transforms = dict(transforms, bf16=bf16, compile=compile)
    if timings is not None:
        model.inference_transforms['probe_ms'] = timings
    return model


def _submodules(model, names):
    """The submodules of ``model`` among ``names`` that it has."""
    return [getattr(model, name) for name in names
            if isinstance(getattr(model, name, None), nn.Module)]


def _parts(model):
    """Backbone, neck and heads: the parts whose forwards are wrapped."""
    if isinstance(model, ConvMLP):
        return [model]
    return _submodules(model, ('backbone', *_HEADS))


def _apply_transforms(model, bf16, winograd, channels_last, fused_mlp):
    """A copy of ``model`` with the transforms applied (no compile)."""
    model = copy.deepcopy(model).eval()
    backbones = [m for m in model.modules() if isinstance(m, ConvMLP)]
    for backbone in backbones:
        backbone.switch_to_deploy(winograd=winograd,
                                  channels_last=channels_last,
                                  fused_mlp=fused_mlp)
    for head in _submodules(model, _HEADS):
        fuse_conv_bn(head)
        if winograd:
            use_winograd(head)
        if channels_last:
            head.to(memory_format=torch.channels_last)
            guard_layout_sensitive_ops(head)
    device_type = next(model.parameters()).device.type
    if bf16:
        if device_type == 'cpu' and not native_bf16():
            warnings.warn(
                'optimize_for_inference(bf16=True): this CPU has no native '
                'bfloat16 arithmetic (AVX-512 BF16 / AMX), so oneDNN '
                'emulates it and the model runs several times slower than '
                'in float32 (docs/benchmarks.md); use bf16=False here')
        for part in _parts(model):
            part.forward = _autocast_outputs(part.forward, device_type)
    return model
