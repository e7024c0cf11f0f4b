"""``OneDNNLinear``: a linear layer with its bias and GELU applied inside
oneDNN's GEMM on the CPU (float32), plain PyTorch elsewhere."""
import torch
import torch.nn.functional as F
from torch import nn

from .winograd import eager_cpu_float32

#: oneDNN's fused linear + pointwise op (what inductor uses on the CPU);
#: ``None`` where PyTorch was built without it.
_LINEAR_POINTWISE = getattr(getattr(torch.ops.mkldnn, '_linear_pointwise',
                                    None), 'default', None)


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
