"""The Winograd F(4x4, 3x3) convolution against F.conv2d."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmconvmlp.analysis.measure import max_rel_error
from mmconvmlp.ops import (FusedWinogradConv2d, WinogradConv2d,
                           takes_winograd, winograd_available,
                           winograd_status)
from mmconvmlp.ops.winograd import transform_weight

needs_op = pytest.mark.skipif(not winograd_available(),
                              reason='compiled Winograd op not built')


@pytest.mark.skipif(platform.machine().lower() not in ('x86_64', 'amd64'),
                    reason='the op is built on x86-64 only')
def test_op_is_built_on_x86():
    from mmconvmlp.ops import winograd
    assert winograd._winograd is not None, winograd_status()


def test_op_unused_on_a_cpu_without_its_instructions():
    """A CPU without AVX2/FMA (simulated: PyTorch told to use no vector
    extensions) never runs the op; its modules compute F.conv2d."""
    code = textwrap.dedent("""
        import torch
        import torch.nn.functional as F
        from mmconvmlp.ops import (WinogradConv2d, takes_winograd,
                                   winograd_available, winograd_status)
        conv = WinogradConv2d(16, 16)
        x = torch.randn(1, 16, 64, 64)
        print(winograd_available(), takes_winograd(x))
        print(torch.equal(conv(x), F.conv2d(x, conv.weight, conv.bias,
                                            padding=1)))
        print(winograd_status())
    """)
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, ATEN_CPU_CAPABILITY='default'))
    lines = out.stdout.splitlines()
    assert lines[:2] == ['False False', 'True']
    assert 'lacks the AVX2/FMA instructions' in lines[2] or (
        'not built' in lines[2])


@needs_op
@pytest.mark.parametrize('in_channels,out_channels,height,width,batch', [
    (32, 64, 37, 50, 1),    # sizes not multiples of the 4x4 tile
    (20, 36, 33, 41, 2),    # channels not multiples of the 16 lanes
    (128, 128, 64, 96, 1),
    (3, 8, 40, 40, 1),
])
@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('relu', [True, False])
def test_matches_conv2d(in_channels, out_channels, height, width, batch, bias,
                        relu):
    torch.manual_seed(0)
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)
    if bias:
        nn.init.normal_(conv.bias)
    x = torch.randn(batch, in_channels, height, width)
    winograd = FusedWinogradConv2d(conv, relu=relu)
    with torch.no_grad():
        expected = conv(x)
        if relu:
            expected = expected.relu()
        out = winograd(x)
    assert out.shape == expected.shape
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert max_rel_error(out, expected) < 1e-4
    if relu:
        assert (out >= 0).all()


@needs_op
def test_takes_the_compiled_path():
    """The module's output is the op's, not F.conv2d's (they round
    differently), and the op alone matches the convolution."""
    from mmconvmlp.ops import _winograd
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 24, 3, padding=1)
    x = torch.randn(1, 16, 40, 44)
    with torch.no_grad():
        expected = conv(x)
        out = FusedWinogradConv2d(conv)(x)
        op = _winograd.conv3x3(x.permute(0, 2, 3, 1).contiguous(),
                               transform_weight(conv.weight),
                               conv.bias.detach(), False).permute(0, 3, 1, 2)
    assert torch.equal(out, op)
    assert not torch.equal(out, expected)
    assert max_rel_error(out, expected) < 1e-4


def test_falls_back_to_conv2d():
    """Gradients, bf16 autocast and tiny maps run F.conv2d with the
    original weights: bit-identical to the conv."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1)
    winograd = FusedWinogradConv2d(conv)
    x = torch.randn(1, 8, 40, 40, requires_grad=True)
    torch.testing.assert_close(winograd(x), conv(x), rtol=0, atol=0)
    small = torch.randn(1, 8, 8, 8)  # 4 tiles < min_tiles
    with torch.no_grad():
        torch.testing.assert_close(winograd(small), conv(small), rtol=0,
                                   atol=0)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = winograd(x)
    assert out.dtype == torch.bfloat16


def test_transform_weight_reproduces_kernel_products():
    """G g G^T evaluated at the interpolation points: U[0, 0] = g[0, 0] / 16
    (point 0 and its 1/4 scaling on both axes)."""
    torch.manual_seed(0)
    weight = torch.randn(5, 4, 3, 3)
    u = transform_weight(weight)
    assert u.shape == (36, 4, 5) and u.dtype == torch.float32
    torch.testing.assert_close(u[0], weight[:, :, 0, 0].t() / 16)
    torch.testing.assert_close(u[35], weight[:, :, 2, 2].t())


@pytest.mark.parametrize('conv', [
    nn.Conv2d(8, 8, 3, stride=2, padding=1),
    nn.Conv2d(8, 8, 3, padding=1, groups=8),
    nn.Conv2d(8, 8, 3, padding=2, dilation=2),
    nn.Conv2d(8, 8, 1),
    nn.Conv2d(8, 8, 3, padding=1, padding_mode='reflect'),
])
def test_refuses_other_convolutions(conv):
    assert not FusedWinogradConv2d.supports(conv)
    with pytest.raises(ValueError, match='3x3 conv with stride 1'):
        FusedWinogradConv2d(conv)


@needs_op
@pytest.mark.parametrize('in_channels,out_channels,height,width,batch,bias', [
    (16, 24, 37, 41, 2, True),
    (128, 128, 33, 41, 2, False),
    (5, 7, 33, 30, 1, True),
])
@pytest.mark.parametrize('channels_last', [False, True])
def test_trainable_conv_gradients(in_channels, out_channels, height, width,
                                  batch, bias, channels_last):
    """WinogradConv2d's output and its gradients for input, weight and bias
    against a float64 convolution."""
    torch.manual_seed(0)
    conv = WinogradConv2d(in_channels, out_channels, bias=bias)
    x = torch.randn(batch, in_channels, height, width)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert takes_winograd(x)
    x.requires_grad_()
    out = conv(x)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    x64 = x.detach().double().requires_grad_()
    params64 = [p.detach().double().requires_grad_()
                for p in conv.parameters()]
    ref = F.conv2d(x64, params64[0], params64[1] if bias else None,
                   padding=1)
    (ref * grad.double()).sum().backward()
    assert max_rel_error(out.double(), ref) < 1e-4
    assert max_rel_error(x.grad.double(), x64.grad) < 1e-4
    for param, param64 in zip(conv.parameters(), params64):
        assert max_rel_error(param.grad.double(), param64.grad) < 1e-4


def test_trainable_conv_is_a_conv2d():
    """Same parameters and state-dict keys as nn.Conv2d; a plain conv where
    the op does not apply (here: autocast)."""
    conv = WinogradConv2d(4, 6, bias=False)
    assert isinstance(conv, nn.Conv2d)
    assert list(conv.state_dict()) == ['weight']
    x = torch.randn(1, 4, 40, 40)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not takes_winograd(x)
        assert conv(x).dtype == torch.bfloat16


@needs_op
@pytest.mark.parametrize('channels,hidden,out,height,width,bias', [
    (64, 128, 64, 37, 50, True),
    (20, 36, 12, 33, 41, False),
])
def test_projection_is_fused_after_the_relu(channels, hidden, out, height,
                                            width, bias):
    """relu(conv1x1(relu(conv3x3(x)))) in one op, as in the conv stage."""
    torch.manual_seed(0)
    conv = nn.Conv2d(channels, hidden, 3, padding=1)
    projection = nn.Conv2d(hidden, out, 1, bias=bias)
    fused = FusedWinogradConv2d(conv, relu=True, projection=projection)
    x = torch.randn(2, channels, height, width)
    with torch.no_grad():
        expected = projection(conv(x).relu()).relu()
        result = fused(x)
    fallback = fused(x.clone().requires_grad_())  # autograd: F.conv2d
    assert result.shape == expected.shape == (2, out, height, width)
    assert max_rel_error(result, expected) < 1e-4
    assert max_rel_error(fallback, expected) < 1e-6


def test_projection_needs_relu_and_a_1x1_conv():
    conv = nn.Conv2d(8, 16, 3, padding=1)
    with pytest.raises(ValueError, match='cannot fuse'):
        FusedWinogradConv2d(conv, projection=nn.Conv2d(16, 8, 1))
    with pytest.raises(ValueError, match='cannot fuse'):
        FusedWinogradConv2d(conv, relu=True,
                             projection=nn.Conv2d(16, 8, 3, padding=1))


@needs_op
def test_op_names_wrong_weights():
    from mmconvmlp.ops import _winograd
    x = torch.randn(1, 12, 12, 16)  # (N, H, W, C)
    with pytest.raises(RuntimeError, match='transformed weights for 16'):
        _winograd.conv3x3(x, torch.zeros(36, 8, 4), None, False)


@needs_op
@pytest.mark.parametrize('height,width,batch', [(40, 48, 1), (37, 51, 2),
                                                (30, 33, 1)])
@pytest.mark.parametrize('threads', [1, 2, 3])
def test_max_pool_is_fused_after_the_relu(height, width, batch, threads):
    """max_pool(relu(conv3x3(x))), as at the tokenizer's end, computed strip
    by strip; with several threads each thread's first strip takes the row
    above from a direct convolution."""
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 40, 3, padding=1)
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    assert FusedWinogradConv2d.supports_max_pool(pool)
    fused = FusedWinogradConv2d(conv, relu=True, max_pool=True)
    x = torch.randn(batch, 24, height, width)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            expected = pool(conv(x).relu())
            result = fused(x)
    finally:
        torch.set_num_threads(previous)
    assert result.shape == expected.shape
    assert max_rel_error(result, expected) < 1e-4


def test_max_pool_fusion_needs_relu_and_the_tokenizer_pool():
    conv = nn.Conv2d(8, 16, 3, padding=1)
    with pytest.raises(ValueError, match='max pool needs relu'):
        FusedWinogradConv2d(conv, max_pool=True)
    assert not FusedWinogradConv2d.supports_max_pool(nn.MaxPool2d(2))
    assert not FusedWinogradConv2d.supports_max_pool(
        nn.MaxPool2d(3, 2, 1, ceil_mode=True))


@needs_op
def test_trainable_conv_follows_weight_updates():
    """In eval mode the transformed weights are cached, and an in-place
    update of the weights (as an optimizer's) is seen at the next call."""
    torch.manual_seed(0)
    conv = WinogradConv2d(8, 8).eval()
    x = torch.randn(1, 8, 40, 40)
    with torch.no_grad():
        first = conv(x)
        assert torch.equal(conv(x), first)
        conv.weight.mul_(2)
        conv.bias.mul_(2)
        assert max_rel_error(conv(x), 2 * first) < 1e-5
