"""The one helper that gives unloaded models non-trivial weights."""
import torch

from mmconvmlp import ConvMLP
from mmconvmlp.analysis.weights import spread_weights


def test_norm_statistics_spread_and_repeat():
    a, b = ConvMLP(arch='s'), ConvMLP(arch='s')
    b.load_state_dict(a.state_dict())
    spread_weights(a, seed=3)
    spread_weights(b, seed=3)
    bns = [m for m in a.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.running_var.std() > 0 and m.running_mean.abs().sum()
                       > 0 and (m.weight != 1).any() for m in bns)
    for (name, x), (_, y) in zip(a.state_dict().items(),
                                 b.state_dict().items()):
        assert torch.equal(x, y), name  # same seed, same weights


def test_heads_are_redrawn_only_when_asked():
    head = torch.nn.Module()
    head.bbox_head = torch.nn.Conv2d(4, 4, 3)
    head.neck = torch.nn.Conv2d(4, 4, 3)
    before = {k: v.clone() for k, v in head.state_dict().items()}
    spread_weights(head)
    assert all(torch.equal(v, head.state_dict()[k])
               for k, v in before.items())
    spread_weights(head, heads_std=0.05)
    assert not torch.equal(before['bbox_head.weight'], head.bbox_head.weight)
    assert torch.equal(before['neck.weight'], head.neck.weight)
    assert 0.02 < float(head.bbox_head.weight.std()) < 0.08
