"""Winograd F(4x4, 3x3) convolution: 4x fewer multiply-adds on the CPU.

Two modules stand in for a 3x3, stride-1, padding-1 convolution:

* :class:`WinogradConv2d`, an ``nn.Conv2d`` (same parameters and state-dict
  keys) whose forward and backward run the Winograd op; the backbone uses it
  for its 3x3 convolutions, in training and inference;
* :class:`FusedWinogradConv2d`, built by ``optimize_for_inference`` from any
  such conv: weights transformed once, a following ReLU fused in, and after
  it a 1x1 conv + ReLU or a 3x3 stride-2 max pool.

Both run the compiled op ``mmconvmlp.ops._winograd`` (built by ``setup.py``
on x86-64) on the CPU in float32 and fall back to ``F.conv2d`` with the
original weights anywhere else (GPU, autocast, other dtypes, maps too small
to pay, ``torch.compile`` or ``torch.jit`` tracing, no compiled op). The
op's results differ from a direct convolution's by float rounding only
(relative error about 1e-5; the tests bound it).
"""
import importlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair

try:
    _winograd = importlib.import_module('mmconvmlp.ops._winograd')
except ImportError as err:  # not built (non-x86 machine, no compiler, ...)
    _winograd, _IMPORT_ERROR = None, err

#: CPU capabilities (``torch.backends.cpu.get_cpu_capability()``) that have
#: the instructions the op is compiled with (AVX2 and FMA: PyTorch reports
#: AVX2 only when both are present).
SUPPORTED_CPU_CAPABILITIES = ('AVX2', 'AVX512')
_USABLE = (_winograd is not None and torch.backends.cpu.get_cpu_capability()
           in SUPPORTED_CPU_CAPABILITIES)

# F(4x4, 3x3) with interpolation points 0, +-1, +-2 and infinity (Lavin and
# Gray, 2016): output = A^T [(G g G^T) * (B^T d B)] A.
_G = torch.tensor([[1 / 4, 0, 0],
                   [-1 / 6, -1 / 6, -1 / 6],
                   [-1 / 6, 1 / 6, -1 / 6],
                   [1 / 24, 1 / 12, 1 / 6],
                   [1 / 24, -1 / 12, 1 / 6],
                   [0, 0, 1]], dtype=torch.float64)

#: Below this many 4x4 output tiles the weights are not reused enough for
#: the transforms to pay; ``F.conv2d`` runs instead.
MIN_TILES = 64


def winograd_status():
    """One line saying whether the compiled Winograd op can run here, and
    if not, why."""
    if _winograd is None:
        return (f'not built ({_IMPORT_ERROR}); reinstall with '
                '`pip install --no-build-isolation .` and a C++ compiler '
                'to build it')
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in SUPPORTED_CPU_CAPABILITIES:
        return (f'built, but not used: this CPU ({capability}) lacks the '
                'AVX2/FMA instructions it was compiled for')
    return f'built and usable (CPU: {capability})'


def winograd_available():
    """Whether the compiled Winograd op is installed and this CPU has the
    instructions it was compiled for; elsewhere its modules run
    ``F.conv2d``."""
    return _USABLE


def transform_weight(weight):
    """``G g G^T`` of each (out, in) kernel of a (K, C, 3, 3) weight, computed
    in float64: returns a contiguous float32 (36, C, K) tensor on the
    weight's device."""
    out_channels, in_channels = weight.shape[:2]
    u = torch.einsum('ap,kcpq,bq->abck', _G, weight.detach().double().cpu(),
                     _G)
    return u.reshape(36, in_channels, out_channels).float().contiguous().to(
        weight.device)


def weight_grad_from_transformed(grad_u):
    """The (K, C, 3, 3) weight gradient from the (36, C, K) gradient of the
    transformed weights (the adjoint of :func:`transform_weight`)."""
    in_channels, out_channels = grad_u.shape[1:]
    grad = torch.einsum('ap,abck,bq->kcpq', _G,
                        grad_u.double().view(6, 6, in_channels, out_channels),
                        _G)
    return grad.float()


def _nhwc(x):
    """The (N, H, W, C) contiguous view (free for channels-last tensors)."""
    return x.permute(0, 2, 3, 1).contiguous()


def eager_cpu_float32(x):
    """Whether ``x`` is a float32 CPU tensor met in plain eager execution
    (no autocast, no ``torch.compile`` or ``torch.jit`` tracing, as
    mmengine's FLOP counter does): where the hand-fused CPU ops apply."""
    return (x.device.type == 'cpu' and x.dtype == torch.float32
            and not torch.is_autocast_enabled('cpu')
            and not torch.compiler.is_compiling()
            and not torch.jit.is_tracing())


def takes_winograd(x):
    """Whether a 3x3 convolution of ``x`` runs the compiled op."""
    if not _USABLE or x.dim() != 4:
        return False
    tiles = x.shape[0] * -(-x.shape[2] // 4) * -(-x.shape[3] // 4)
    return tiles >= MIN_TILES and eager_cpu_float32(x)


class _WinogradConv3x3(torch.autograd.Function):
    """3x3 stride-1 padding-1 convolution; backward by the same transforms:
    the input gradient is the Winograd convolution of the output gradient
    with the flipped, transposed kernels, the weight gradient is
    accumulated tile by tile in the transformed domain."""

    @staticmethod
    def forward(ctx, x, weight, bias, transformed):
        x_nhwc = _nhwc(x)
        out = _winograd.conv3x3(x_nhwc, transformed,
                                None if bias is None else bias.contiguous(),
                                False)
        ctx.save_for_backward(x_nhwc, weight)
        ctx.has_bias = bias is not None
        return out.permute(0, 3, 1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x_nhwc, weight = ctx.saved_tensors
        grad_nhwc = _nhwc(grad_out)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            flipped = weight.flip(2, 3).transpose(0, 1)
            grad_x = _winograd.conv3x3(grad_nhwc, transform_weight(flipped),
                                       None, False).permute(0, 3, 1, 2)
        if ctx.needs_input_grad[1]:
            grad_weight = weight_grad_from_transformed(
                _winograd.conv3x3_weight_grad(x_nhwc, grad_nhwc))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_nhwc.sum(dim=(0, 1, 2))
        return grad_x, grad_weight, grad_bias, None


def _check_supported(conv):
    if not FusedWinogradConv2d.supports(conv):
        raise ValueError(f'a Winograd convolution needs a 3x3 conv with '
                         f'stride 1, padding 1, dilation 1, groups 1 and '
                         f'zero padding; got {conv}')


class WinogradConv2d(nn.Conv2d):
    """``nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)``
    computed with Winograd F(4x4, 3x3), forward and backward, where the
    compiled op applies (see :func:`takes_winograd`)."""

    def __init__(self, in_channels, out_channels, bias=True):
        super().__init__(in_channels, out_channels, 3, padding=1, bias=bias)
        self._transformed = self._transformed_for = None

    def transformed_weight(self):
        """The transformed weights: recomputed at every call in training
        mode; in eval mode kept until the weights change (a new tensor or an
        in-place update)."""
        key = (self.weight.data_ptr(), self.weight._version)
        if self.training or self._transformed_for != key:
            self._transformed = transform_weight(self.weight)
            self._transformed_for = key
        return self._transformed

    def forward(self, x):
        """NCHW -> NCHW (channels-last memory on the Winograd path)."""
        if takes_winograd(x):
            return _WinogradConv3x3.apply(x, self.weight, self.bias,
                                          self.transformed_weight())
        return super().forward(x)


def _frozen(tensor):
    return None if tensor is None else nn.Parameter(tensor.detach().clone(),
                                                    requires_grad=False)


class FusedWinogradConv2d(nn.Module):
    """An inference-only Winograd convolution made from an existing one.

    The weights are transformed once, at construction. Optionally a
    ReLU and, after it, either a 1x1 convolution with its own ReLU (the
    conv stage's 3x3 -> ReLU -> 1x1 -> ReLU) or a 3x3 stride-2 max pool (the
    tokenizer's end) are applied to the output while it is still in cache,
    instead of in passes over the whole map.

    Args:
        conv (nn.Conv2d): The convolution to replace (see :meth:`supports`).
        relu (bool): Apply a ReLU to the output (fused into the op).
        projection (nn.Conv2d | None): A 1x1 convolution (see
            :meth:`supports_projection`) to apply after the ReLU, followed
            by a ReLU of its own. Needs ``relu``.
        max_pool (bool): Apply ``MaxPool2d(3, stride=2, padding=1)`` after
            the ReLU. Needs ``relu``; not with ``projection``.
    """

    def __init__(self, conv, relu=False, projection=None, max_pool=False):
        super().__init__()
        _check_supported(conv)
        if projection is not None and not (
                relu and self.supports_projection(conv, projection)):
            raise ValueError(f'cannot fuse {projection} after {conv} '
                             f'(relu={relu})')
        if max_pool and not (relu and projection is None):
            raise ValueError('a fused max pool needs relu=True and no '
                             'projection')
        self.relu, self.max_pool = relu, max_pool
        self.weight, self.bias = _frozen(conv.weight), _frozen(conv.bias)
        self.proj_weight = self.proj_bias = None
        proj_matrix = None
        if projection is not None:
            self.proj_weight = _frozen(projection.weight)
            self.proj_bias = _frozen(projection.bias)
            proj_matrix = self.proj_weight.detach().flatten(1).t().contiguous()
        # what the op reads: (36, C, K) and the projection as (K, P)
        self.register_buffer('transformed', transform_weight(conv.weight),
                             persistent=False)
        self.register_buffer('proj_matrix', proj_matrix, persistent=False)
        # (9, C, K): the plain weights the pooled op needs for one row
        direct = (self.weight.detach().permute(2, 3, 1, 0).reshape(
            9, conv.in_channels, conv.out_channels).contiguous()
            if max_pool else None)
        self.register_buffer('direct_weight', direct, persistent=False)

    @staticmethod
    def supports(conv):
        """Whether ``conv`` is a convolution a Winograd one can replace."""
        return (type(conv) in (nn.Conv2d, WinogradConv2d)
                and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
                and conv.padding == (1, 1) and conv.dilation == (1, 1)
                and conv.groups == 1 and conv.padding_mode == 'zeros')

    @staticmethod
    def supports_max_pool(pool):
        """Whether ``pool`` is the max pool that can be fused."""
        return (type(pool) is nn.MaxPool2d
                and _pair(pool.kernel_size) == (3, 3)
                and _pair(pool.stride) == (2, 2)
                and _pair(pool.padding) == (1, 1)
                and _pair(pool.dilation) == (1, 1) and not pool.ceil_mode
                and not pool.return_indices)

    @staticmethod
    def supports_projection(conv, projection):
        """Whether ``projection`` is a 1x1 conv that can follow ``conv``."""
        return (type(projection) is nn.Conv2d
                and projection.kernel_size == (1, 1)
                and projection.stride == (1, 1)
                and projection.padding == (0, 0) and projection.groups == 1
                and projection.in_channels == conv.out_channels)

    def forward(self, x):
        """NCHW -> NCHW (channels-last memory on the Winograd path).

        Under autocast it runs ``F.conv2d`` (in bfloat16): oneDNN's bfloat16
        convolutions are as fast as the float32 Winograd op, and a Winograd
        product in bfloat16 would lose too much precision.
        """
        if (not takes_winograd(x)
                or (torch.is_grad_enabled() and x.requires_grad)):
            out = F.conv2d(x, self.weight, self.bias, padding=1)
            out = out.relu_() if self.relu else out
            if self.proj_weight is not None:
                out = F.conv2d(out, self.proj_weight, self.proj_bias).relu_()
            if self.max_pool:
                out = F.max_pool2d(out, 3, stride=2, padding=1)
            return out
        if self.max_pool:
            out = _winograd.conv3x3_relu_maxpool(
                _nhwc(x), self.transformed, self.direct_weight, self.bias)
        else:
            out = _winograd.conv3x3(_nhwc(x), self.transformed, self.bias,
                                    self.relu, self.proj_matrix,
                                    self.proj_bias)
        return out.permute(0, 3, 1, 2)

    def extra_repr(self):
        projection = ('' if self.proj_weight is None else
                      f', then 1x1 to {self.proj_weight.shape[0]} + ReLU')
        projection += ', then 3x3/2 max pool' if self.max_pool else ''
        return (f'{self.weight.shape[1]}, {self.weight.shape[0]}, '
                f'relu={self.relu}{projection}')
