"""The one place where the OneDL fork's differences are handled."""
from mmengine.config import utils

from mmconvmlp.engine import stack


def test_config_lookup_points_at_the_installed_distribution(monkeypatch):
    """On the fork, mmseg:: names resolve through onedl-mmsegmentation; on
    upstream nothing changes."""
    monkeypatch.setattr(utils, 'MODULE2PACKAGE',
                        dict(mmseg='mmsegmentation', mmdet='mmdet'))
    installed = {'onedl-mmsegmentation', 'mmdet'}
    monkeypatch.setattr(stack, '_installed', lambda d: d in installed)
    assert stack.fix_config_lookup() == {'mmseg': 'onedl-mmsegmentation'}
    assert utils.MODULE2PACKAGE['mmseg'] == 'onedl-mmsegmentation'
    assert utils.MODULE2PACKAGE['mmdet'] == 'mmdet'
    assert stack.fix_config_lookup() == {}  # once is enough
    installed.add('mmsegmentation')  # upstream: nothing to change
    utils.MODULE2PACKAGE['mmseg'] = 'mmsegmentation'
    assert stack.fix_config_lookup() == {}


def test_the_stack_in_use_is_named():
    assert stack.stack() == ('onedl' if stack._installed('onedl-mmengine')
                             else 'upstream')


def test_our_seg_configs_read_on_this_stack():
    from mmconvmlp.model_zoo import read_config
    cfg = read_config('semantic_fpn_convmlp_s')
    assert cfg.model.backbone.type == 'mmconvmlp.ConvMLP'
    assert cfg.model.decode_head.type == 'FPNHead'
