"""Inference-time optimisation of ConvMLP models.

:func:`optimize_for_inference` takes a ConvMLP backbone, or a detector or
segmentor that contains one, and returns a copy that computes the same
outputs faster:

* every BatchNorm that follows a convolution is folded into it (the
  tokenizer and conv stage, and any BN in necks and heads);
* the affine part of the LayerNorms before the channel MLPs is folded into
  the MLPs' first linear layer; the MLPs' biases and GELU are applied by
  the GEMMs themselves (:class:`OneDNNLinear`);
* every 3x3 stride-1 convolution (tokenizer, conv stage, FPN, heads) runs
  as a Winograd F(4x4, 3x3) convolution on the CPU
  (:class:`mmconvmlp.ops.FusedWinogradConv2d`: 4x fewer multiply-adds,
  weights transformed once), the backbone's with the ReLU that follows
  fused in; on other devices it runs as a plain conv;
* convolutions run in the channels-last memory format: the conv stage then
  hands the Conv-MLP stages a tensor whose NHWC view needs no copy, the
  depthwise convolutions read and write channel-last data directly, and the
  backbone returns its maps channels-last (same values, no copies);
* optionally (``bf16=True``) backbone, neck and heads run under bfloat16
  autocast, with outputs returned in float32; its error against float32 is
  measured by ``tools/analysis_tools/benchmark_backbone.py``;
* optionally (``compile=True``) their forwards go through ``torch.compile``.
"""
import copy
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import fuse_conv_bn

from .models import ConvMLP
from .models.blocks import ConvMLPBlock
from .ops import FusedWinogradConv2d, WinogradConv2d, eager_cpu_float32

#: oneDNN's fused linear + pointwise op (what inductor uses on the CPU);
#: ``None`` where PyTorch was built without it.
_LINEAR_POINTWISE = getattr(getattr(torch.ops.mkldnn, '_linear_pointwise',
                                    None), 'default', None)

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


class OneDNNLinear(nn.Module):
    """``activation(linear(x))`` in one oneDNN call on the CPU in float32: the
    bias and the GELU are applied as the GEMM writes its output, instead of
    in extra passes over it (what inductor does on the CPU); plain PyTorch
    elsewhere.

    Args:
        linear (nn.Linear): The layer whose weights to use.
        activation (str): ``'gelu'`` (exact, erf-based) or ``'none'``.
    """

    def __init__(self, linear, activation='none'):
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias
        self.activation = activation

    def forward(self, x):
        """(..., in) -> (..., out)."""
        if _LINEAR_POINTWISE is None or not eager_cpu_float32(x):
            out = F.linear(x, self.weight, self.bias)
            return F.gelu(out) if self.activation == 'gelu' else out
        out = _LINEAR_POINTWISE(x.reshape(-1, x.shape[-1]), self.weight,
                                self.bias, self.activation, [], 'none')
        return out.view(*x.shape[:-1], out.shape[-1])

    def extra_repr(self):
        return (f'{self.weight.shape[1]}, {self.weight.shape[0]}, '
                f'activation={self.activation}')


def _fuse_block_mlps(block):
    for mlp in (block.channel_mlp1, block.channel_mlp2):
        if type(mlp.act) is nn.GELU and mlp.act.approximate == 'none':
            mlp.fc1, mlp.act = OneDNNLinear(mlp.fc1, 'gelu'), nn.Identity()
            mlp.fc2 = OneDNNLinear(mlp.fc2)


def use_winograd(model):
    """Replace, in place, every convolution of ``model`` that
    :class:`~mmconvmlp.ops.FusedWinogradConv2d` supports (call
    :func:`fuse_conv_relu` first to fuse the backbone's ReLUs into them;
    mmcv ``ConvModule``s keep their own activation: their forward can be
    asked to skip it). Returns ``model``."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if FusedWinogradConv2d.supports(child):
                setattr(module, name, FusedWinogradConv2d(child))
    return model


def fuse_conv_relu(model):
    """In every ``nn.Sequential`` of ``model`` (the tokenizer's and conv
    stage's units, BN already folded away), turn each conv that
    :class:`~mmconvmlp.ops.FusedWinogradConv2d` supports and the ReLU that
    follows it into one Winograd conv with the ReLU fused, and with it a
    1x1 conv + ReLU (the conv stage's blocks) or a 3x3 stride-2 max pool
    (the tokenizer's end) that comes next. Returns ``model``."""
    for seq in list(model.modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        layers = list(seq)

        def after(i):  # index of the next layer that is not an Identity
            i += 1
            while i < len(layers) and isinstance(layers[i], nn.Identity):
                i += 1
            return i

        def relu_at(i):
            return i < len(layers) and type(layers[i]) is nn.ReLU

        for i, conv in enumerate(layers):
            if not (FusedWinogradConv2d.supports(conv) and relu_at(after(i))):
                continue
            fused = [after(i)]
            nxt = after(fused[0])
            projection, max_pool = None, False
            if nxt < len(layers) and FusedWinogradConv2d.supports_max_pool(
                    layers[nxt]):
                max_pool = True
                fused.append(nxt)
            elif (nxt < len(layers) and relu_at(after(nxt))
                  and FusedWinogradConv2d.supports_projection(
                      conv, layers[nxt])):
                projection = layers[nxt]
                fused += [nxt, after(nxt)]
            seq[i] = FusedWinogradConv2d(conv, relu=True,
                                         projection=projection,
                                         max_pool=max_pool)
            for j in fused:
                seq[j] = layers[j] = nn.Identity()
    return model


def use_direct_convs(model):
    """Replace, in place, the backbone's :class:`~mmconvmlp.ops.WinogradConv2d`
    convolutions with plain ``nn.Conv2d`` ones. Returns ``model``."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, WinogradConv2d):
                conv = nn.Conv2d(child.in_channels, child.out_channels, 3,
                                 padding=1, bias=child.bias is not None)
                conv.load_state_dict(child.state_dict())
                setattr(module, name, conv.to(child.weight.device))
    return model


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
                           channels_last=True, winograd=True):
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
        winograd (bool): compute 3x3 stride-1 convolutions with Winograd
            F(4x4, 3x3) on the CPU (see :func:`use_winograd`); ``False``
            computes them all directly (:func:`use_direct_convs`).

    Returns:
        nn.Module: the optimised copy, in eval mode. In float32 its outputs
        match the original's to float rounding (relative error ~1e-6 without
        Winograd, ~1e-5 with it).
    """
    backbones = [m for m in model.modules() if isinstance(m, ConvMLP)]
    if not backbones:
        raise TypeError(f'{type(model).__name__} contains no ConvMLP backbone')
    model = fuse_conv_bn(copy.deepcopy(model).eval())
    for block in model.modules():
        if isinstance(block, ConvMLPBlock):
            _fold_block_norms(block)
            _fuse_block_mlps(block)
    if winograd:
        use_winograd(fuse_conv_relu(model))
    else:
        use_direct_convs(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        for backbone in model.modules():
            if isinstance(backbone, ConvMLP):
                backbone.register_forward_pre_hook(_to_channels_last)
                backbone.out_memory_format = torch.channels_last
    device_type = next(model.parameters()).device.type
    for part in _heavy_parts(model):
        if bf16:
            part.forward = _autocast_outputs(part.forward, device_type)
        if compile:
            part.forward = torch.compile(part.forward, dynamic=False)
    return model
