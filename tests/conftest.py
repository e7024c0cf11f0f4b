"""Shared fixtures: small, deterministic models, inputs and data."""
from pathlib import Path

import pytest
import torch

import mmconvmlp  # noqa: F401  (registers the backbone)
from mmconvmlp import ConvMLP
from mmconvmlp.datasets import make_builtin_dataset
from mmconvmlp.reference import ReferenceConvMLP

REPO = Path(__file__).resolve().parents[1]


def _perturb_norm_stats(model, seed=0):
    """Give every BatchNorm non-trivial running stats and affine params, so
    that eval-mode comparisons exercise them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


@pytest.fixture(scope='session')
def perturb_norm_stats():
    """The function that randomises a model's BatchNorm stats in place."""
    return _perturb_norm_stats


@pytest.fixture
def model_pair():
    """Build (ConvMLP, ReferenceConvMLP) of one arch with identical weights."""

    def build(arch='s', **kwargs):
        torch.manual_seed(0)
        model = ConvMLP(arch=arch, **kwargs)
        model.init_weights()
        _perturb_norm_stats(model)
        ref = ReferenceConvMLP(arch)
        ref.load_state_dict(model.state_dict())
        return model.eval(), ref.eval()

    return build


@pytest.fixture(scope='session')
def builtin_workspace(tmp_path_factory):
    """A directory whose data/builtin holds a tiny built-in dataset, so the
    *_builtin configs (data_root='data/builtin/') run from it unchanged."""
    root = tmp_path_factory.mktemp('workspace')
    make_builtin_dataset(str(root / 'data' / 'builtin'), num_train=8,
                         num_val=4, size=128)
    return root


@pytest.fixture(scope='session')
def config_path():
    """Absolute path of a config under configs/."""
    return lambda rel: str(REPO / 'configs' / rel)
