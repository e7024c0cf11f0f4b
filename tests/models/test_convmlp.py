"""The ConvMLP backbone: arch, shapes, outputs, freezing, checkpointing."""
import itertools

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmconvmlp import ConvMLP
from mmconvmlp.analysis.measure import max_rel_error

# (arch, channels of maps 0..4), from the official arch table.
ARCH_CHANNELS = {
    's': [64, 128, 256, 512, 512],
    'm': [64, 128, 256, 512, 512],
    'l': [96, 192, 384, 768, 768],
}
STRIDES = [4, 8, 16, 32, 32]


def _out_size(size, stride):
    """Spatial size after the strided 3x3 convs / pool with padding 1."""
    for _ in range(stride.bit_length() - 1):
        size = (size - 1) // 2 + 1
    return size


@pytest.mark.parametrize('arch', ['s', 'm', 'l'])
@pytest.mark.parametrize('size', [(64, 64), (112, 137), (97, 33)])
def test_default_maps_match_official_shapes(arch, size):
    model = ConvMLP(arch=arch).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert model.out_indices == (0, 1, 2, 4)
    assert len(outs) == 4
    for out, idx in zip(outs, model.out_indices):
        h, w = (_out_size(s, STRIDES[idx]) for s in size)
        assert out.shape == (1, ARCH_CHANNELS[arch][idx], h, w)
        assert out.is_contiguous()
    assert model.out_channels == [ARCH_CHANNELS[arch][i] for i in (0, 1, 2, 4)]


def test_large_odd_input():
    model = ConvMLP(arch='s').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 511, 511))
    assert [o.shape[-1] for o in outs] == [128, 64, 32, 16]


@pytest.mark.parametrize('arch', ['s', 'm', 'l'])
def test_matches_reference_number_for_number(model_pair, arch):
    """By default the backbone is bit-identical to the official code."""
    model, ref = model_pair(arch)
    x = torch.randn(2, 3, 96, 75)
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize('arch', ['s', 'l'])
def test_winograd_matches_reference(model_pair, arch):
    """The opt-in Winograd backbone equals the reference up to float
    rounding, at a size where its tokenizer and conv stage take the
    Winograd path."""
    from mmconvmlp.ops import takes_winograd
    model, ref = model_pair(arch, winograd=True)
    x = torch.randn(2, 3, 161, 197)
    assert takes_winograd(torch.empty(2, 64, 41, 50))  # the conv stage's map
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    for a, b in zip(ours, theirs):
        assert a.is_contiguous()
        assert max_rel_error(a, b) < 1e-4


def _gradients(net, part, x, weights):
    """Parameter gradients of a fixed random projection of ``part(net)(x)``."""
    net.zero_grad()
    outs = part(net)(x)
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    return {name: p.grad for name, p in net.named_parameters()
            if p.grad is not None}


@pytest.mark.parametrize('bn_train', [False, True])
def test_winograd_gradients_match_reference(model_pair, bn_train):
    """Gradients of the Winograd backbone against the reference's.

    With BN on running statistics they agree to float rounding. The
    tokenizer's conv units are compared without the max pool after them:
    at a near-tie, rounding may let the pool pick the other pixel, which
    legitimately moves one term of a gradient (past the pool the values
    differ by rounding only). With batch statistics, BN divides by each
    channel's spread over this tiny batch, which magnifies the conv's
    rounding (about 1e-5 relative to its inputs' scale) into gradient
    differences of up to about 1%, as in TF32 GPU training; the gradients
    are then compared as vectors.
    """
    model, ref = model_pair('s', drop_path_rate=0., winograd=True)
    for block in ref.modules():  # the reference's stochastic depth is fixed
        if hasattr(block, 'rate'):
            block.rate = 0.
    model.train(bn_train), ref.train(bn_train)
    x = torch.randn(2, 3, 129, 161)
    parts = {  # parameter-name prefix: maps whose gradients to compare
        'tokenizer': lambda net: lambda img: (net.tokenizer.block[:9](img), ),
        ('conv', 'stages'): lambda net: lambda img: net(img)[1:]}
    for prefix, part in parts.items():
        with torch.no_grad():
            weights = [torch.randn_like(o) for o in part(ref)(x)]
        ours = _gradients(model, part, x, weights)
        theirs = _gradients(ref, part, x, weights)
        for name, grad in ours.items():
            if not name.startswith(prefix):
                continue
            if bn_train:
                gap = ((grad - theirs[name]).norm() / theirs[name].norm())
                assert gap.item() < 3e-2, name
            else:
                assert max_rel_error(grad, theirs[name]) < 1e-4, name


def test_every_subset_of_out_indices(model_pair):
    model, _ = model_pair('s')
    x = torch.randn(1, 3, 64, 48)
    model.out_indices = tuple(range(5))
    with torch.no_grad():
        full = model(x)
    for r in range(1, 6):
        for subset in itertools.combinations(range(5), r):
            sub = ConvMLP(arch='s', out_indices=subset)
            sub.load_state_dict(model.state_dict())
            with torch.no_grad():
                outs = sub.eval()(x)
            assert len(outs) == len(subset)
            for out, idx in zip(outs, subset):
                torch.testing.assert_close(out, full[idx], rtol=0, atol=0)


def test_negative_out_index():
    assert ConvMLP(arch='s', out_indices=(-1, )).out_indices == (4, )


@pytest.mark.parametrize('name', ['small', 'Medium', 'large'])
def test_full_arch_names(name):
    assert ConvMLP(arch=name).arch_settings == ConvMLP(arch=name[0]).arch_settings


def test_custom_arch_dict():
    arch = dict(blocks=[1, 1], dims=[32, 48], mlp_ratios=[1, 2], channels=16,
                n_conv_blocks=1)
    model = ConvMLP(arch=arch).eval()
    assert model.map_channels == [16, 32, 48, 48]
    assert model.out_indices == (0, 1, 3)  # last map at strides 4, 8, 16
    outs = model(torch.randn(1, 3, 40, 40))
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 10, 10), (32, 5, 5),
                                                 (48, 3, 3)]


@pytest.mark.parametrize('arch, match', [
    ('xl', "unknown ConvMLP arch 'xl'"),
    (dict(blocks=[1, 1], dims=[8, 8], mlp_ratios=[1], channels=8,
          n_conv_blocks=1), 'lengths'),
    (dict(blocks=[1, 1], dims=[8, 8], mlp_ratios=[1, 1]), 'missing'),
    (dict(blocks=[1, 1], dims=[8, 8], mlp_ratios=[1, 1], channels=8,
          n_conv_blocks=1, depth=3), 'unknown'),
])
def test_bad_arch(arch, match):
    with pytest.raises((KeyError, ValueError), match=match):
        ConvMLP(arch=arch)


@pytest.mark.parametrize('out_indices', [(5, ), (0, 0), (), (-6, )])
def test_bad_out_indices(out_indices):
    with pytest.raises(ValueError, match=r'out_indices must be .* \[0, 4\]'):
        ConvMLP(arch='s', out_indices=out_indices)


def test_bad_frozen_stages():
    with pytest.raises(ValueError, match='frozen_stages must be in'):
        ConvMLP(arch='s', frozen_stages=5)


@pytest.mark.parametrize('shape', [(3, 32, 32), (1, 1, 32, 32),
                                   (1, 4, 32, 32), (1, 3, 0, 32)])
def test_bad_input_names_shapes(shape):
    model = ConvMLP(arch='s')
    with pytest.raises(ValueError) as err:
        model(torch.zeros(shape))
    assert str(tuple(shape)) in str(err.value)
    assert '(N, 3, H, W)' in str(err.value)


def test_in_channels():
    model = ConvMLP(arch='s', in_channels=1).eval()
    assert model(torch.randn(1, 1, 32, 32))[0].shape == (1, 64, 8, 8)


@pytest.mark.parametrize('frozen', [-1, 0, 1, 2, 4])
def test_frozen_stages(frozen):
    model = ConvMLP(arch='s', frozen_stages=frozen)
    model.train()
    units = [model.tokenizer, model.conv_stages, *model.stages]
    for i, unit in enumerate(units):
        is_frozen = i <= frozen
        assert all(p.requires_grad != is_frozen for p in unit.parameters())
        assert all(m.training != is_frozen for m in unit.modules())


def test_frozen_stages_get_no_gradient():
    model = ConvMLP(arch='s', frozen_stages=1).train()
    sum(o.sum() for o in model(torch.randn(2, 3, 32, 32))).backward()
    assert all(p.grad is None for p in model.conv_stages.parameters())
    assert all(p.grad is not None for p in model.stages[0].parameters())


def test_norm_eval():
    model = ConvMLP(arch='s', norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert model.stages[0].blocks[0].training
    before = bns[0].running_mean.clone()
    model(torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(bns[0].running_mean, before)


def test_norm_cfg_syncbn_builds_and_keeps_keys():
    bn = ConvMLP(arch='s')
    sync = ConvMLP(arch='s', norm_cfg=dict(type='SyncBN'))
    assert isinstance(sync.tokenizer.block[1], torch.nn.SyncBatchNorm)
    assert list(sync.state_dict()) == list(bn.state_dict())


def test_drop_path_schedule_is_official():
    model = ConvMLP(arch='m')
    for stage in model.stages:
        rates = [getattr(b.drop_path, 'drop_prob', 0.) for b in stage.blocks]
        expected = torch.linspace(0, 0.1, len(stage.blocks)).tolist()
        assert rates == pytest.approx(expected)
    no_drop = ConvMLP(arch='m', drop_path_rate=0.)
    assert all(isinstance(b.drop_path, torch.nn.Identity)
               for s in no_drop.stages for b in s.blocks)


def test_with_cp_same_forward_and_gradients():
    torch.manual_seed(0)
    plain = ConvMLP(arch='s', drop_path_rate=0.)
    plain.init_weights()
    cp = ConvMLP(arch='s', drop_path_rate=0., with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    results = []
    for model in (plain.train(), cp.train()):
        model.zero_grad()
        outs = model(x.clone().requires_grad_())
        sum((o * o).mean() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()}))
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)


def test_pretrained_string_becomes_init_cfg():
    """As mmdet's and mmseg's backbones: deprecated, but accepted."""
    with pytest.warns(DeprecationWarning, match='pretrained is deprecated'):
        model = ConvMLP(arch='s', pretrained='convmlp_s_imagenet')
    assert model.init_cfg == dict(type='Pretrained',
                                  checkpoint='convmlp_s_imagenet')
    assert ConvMLP(arch='s', pretrained=None).init_cfg is None


def test_pretrained_and_init_cfg_together_is_an_error():
    with pytest.raises(ValueError, match='either init_cfg or pretrained'):
        ConvMLP(pretrained='a.pth',
                init_cfg=dict(type='Pretrained', checkpoint='b.pth'))
    with pytest.raises(TypeError, match='pretrained must be'):
        ConvMLP(pretrained=3)


def test_pretrained_loads_like_init_cfg(tmp_path):
    torch.manual_seed(1)
    source = ConvMLP(arch='s')
    path = str(tmp_path / 'backbone.pth')
    torch.save(source.state_dict(), path)
    with pytest.warns(DeprecationWarning):
        model = ConvMLP(arch='s', pretrained=path)
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
