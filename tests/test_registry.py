"""Building the backbone through the mmdet, mmseg and mmconvmlp scopes."""
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

from mmconvmlp import ConvMLP


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
@pytest.mark.parametrize('type_name', ['ConvMLP', 'mmconvmlp.ConvMLP'])
def test_builds_in_downstream_scopes(scope, type_name):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type=type_name, arch='m'))
    assert isinstance(model, ConvMLP)
    assert model.arch_settings['blocks'] == [3, 6, 3]


def test_builds_from_mmconvmlp_registry():
    from mmconvmlp.registry import MODELS
    assert isinstance(MODELS.build(dict(type='ConvMLP')), ConvMLP)


def test_user_config_needs_only_custom_imports(tmp_path):
    """A fresh interpreter, a user's config, one custom_imports line."""
    cfg = tmp_path / 'my_cfg.py'
    cfg.write_text(textwrap.dedent("""
        custom_imports = dict(imports=['mmconvmlp'], allow_failed_imports=False)
        default_scope = 'mmdet'
        model = dict(type='ConvMLP', arch='l', out_indices=(1, 2, 4))
    """))
    code = textwrap.dedent(f"""
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmengine.utils import import_modules_from_strings
        cfg = Config.fromfile({str(cfg)!r})
        import_modules_from_strings(**cfg.custom_imports)
        init_default_scope(cfg.default_scope)
        from mmdet.registry import MODELS
        model = MODELS.build(cfg.model)
        print(type(model).__module__, model.out_channels)
    """)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert 'mmconvmlp.models.convmlp [192, 384, 768]' in out


@pytest.mark.parametrize('missing,config', [
    ('mmdet', 'segmentation/semantic_fpn_convmlp_s.py'),
    ('mmseg', 'detection/retinanet_convmlp_s.py')])
def test_works_with_only_one_downstream_package(missing, config,
                                                config_path):
    """mmconvmlp[det] or [seg] alone: it imports, registers where it can and
    builds and runs that task's model."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules[{missing!r}] = None  # as if not installed
        import torch
        import mmconvmlp
        from mmconvmlp.analysis.complexity import build_untrained
        from mmconvmlp.model_zoo import read_config
        from mmconvmlp.registry import register_into_downstream
        print(register_into_downstream(mmconvmlp.ConvMLP))
        model = build_untrained(read_config({config_path(config)!r}))
        with torch.no_grad():
            outs = model._forward(torch.randn(1, 3, 64, 64))
        print(type(model).__name__, len(outs))
    """)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    present = {'mmdet', 'mmseg'} - {missing}
    lines = [line for line in out.stdout.strip().splitlines()
             if ' - mmengine - ' not in line]  # log lines
    assert lines[0] == str(sorted(present))
    assert lines[1] in ('EncoderDecoder 1', 'RetinaNet 2')


def test_config_with_scope_prefix_in_mmseg():
    cfg = Config(dict(model=dict(type='mmconvmlp.ConvMLP', arch='s')))
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    assert isinstance(MODELS.build(cfg.model), ConvMLP)
