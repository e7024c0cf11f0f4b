"""Winograd F(4x4, 3x3) convolution: 4x fewer multiply-adds on the CPU.

:class:`WinogradConv2d` stands in for a 3x3, stride-1, padding-1 ``nn.Conv2d``
(with an optional ReLU fused in). On the CPU in float32 it runs the compiled
op ``mmconvmlp.ops._winograd`` (built by ``setup.py`` on x86-64); anywhere
else (GPU, other dtypes, autocast, no compiled op) it runs ``F.conv2d`` with
the original weights, so a model that uses it behaves the same on every
device. Its outputs differ from a direct convolution by float rounding only
(relative error about 1e-5; the tests bound it).
"""
import torch
import torch.nn.functional as F
from torch import nn

try:
    from . import _winograd
except ImportError:  # not built (non-x86 machine or no compiler)
    _winograd = None

# F(4x4, 3x3) with interpolation points 0, +-1, +-2 and infinity (Lavin and
# Gray, 2016): output = A^T [(G g G^T) * (B^T d B)] A.
_G = torch.tensor([[1 / 4, 0, 0],
                   [-1 / 6, -1 / 6, -1 / 6],
                   [-1 / 6, 1 / 6, -1 / 6],
                   [1 / 24, 1 / 12, 1 / 6],
                   [1 / 24, -1 / 12, 1 / 6],
                   [0, 0, 1]], dtype=torch.float64)


def winograd_available():
    """Whether the compiled Winograd op is installed."""
    return _winograd is not None


def transform_weight(weight):
    """``G g G^T`` of each (out, in) kernel of a (K, C, 3, 3) weight, computed
    in float64: returns a contiguous float32 (36, C, K) tensor."""
    out_channels, in_channels = weight.shape[:2]
    u = torch.einsum('ap,kcpq,bq->abck', _G, weight.detach().double().cpu(),
                     _G)
    return u.reshape(36, in_channels, out_channels).float().contiguous()


class WinogradConv2d(nn.Module):
    """A 3x3 stride-1 padding-1 convolution computed with Winograd F(4x4, 3x3).

    Built from an existing conv (see :meth:`supports`); inference only: the
    transformed weights are computed once, at construction.

    Args:
        conv (nn.Conv2d): The convolution to replace.
        relu (bool): Apply a ReLU to the output (fused into the op).
    """

    #: Below this many 4x4 output tiles the weights are not reused enough
    #: for the transform to pay; ``F.conv2d`` runs instead.
    min_tiles = 64

    def __init__(self, conv, relu=False):
        super().__init__()
        if not self.supports(conv):
            raise ValueError(f'WinogradConv2d needs a 3x3 conv with stride 1, '
                             f'padding 1, dilation 1, groups 1, zero padding; '
                             f'got {conv}')
        self.relu = relu
        self.weight = nn.Parameter(conv.weight.detach().clone(),
                                   requires_grad=False)
        self.bias = (None if conv.bias is None else nn.Parameter(
            conv.bias.detach().clone(), requires_grad=False))
        packed = (_winograd.pack_weight(transform_weight(conv.weight))
                  if winograd_available() else torch.empty(0))
        self.register_buffer('packed', packed, persistent=False)

    @staticmethod
    def supports(conv):
        """Whether ``conv`` is a convolution this module can replace."""
        return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3)
                and conv.stride == (1, 1) and conv.padding == (1, 1)
                and conv.dilation == (1, 1) and conv.groups == 1
                and conv.padding_mode == 'zeros')

    def _use_winograd(self, x):
        tiles = x.shape[0] * -(-x.shape[-2] // 4) * -(-x.shape[-1] // 4)
        return (self.packed.numel() > 0 and x.device.type == 'cpu'
                and x.dtype == torch.float32 and x.dim() == 4
                and tiles >= self.min_tiles
                and not torch.is_autocast_enabled('cpu')
                and not (torch.is_grad_enabled() and x.requires_grad))

    def forward(self, x):
        """NCHW -> NCHW (channels-last memory on the Winograd path).

        Under autocast it runs ``F.conv2d`` (in bfloat16): oneDNN's bfloat16
        convolutions are as fast as the float32 Winograd op, and a Winograd
        product in bfloat16 would lose too much precision.
        """
        if not self._use_winograd(x):
            out = F.conv2d(x, self.weight, self.bias, padding=1)
            return out.relu_() if self.relu else out
        bias = None if self.bias is None else self.bias.contiguous()
        out = _winograd.conv3x3(x.permute(0, 2, 3, 1).contiguous(),
                                self.packed, self.weight.shape[0], bias,
                                self.relu)
        return out.permute(0, 3, 1, 2)

    def extra_repr(self):
        return (f'{self.weight.shape[1]}, {self.weight.shape[0]}, '
                f'relu={self.relu}, compiled={self.packed.numel() > 0}')
