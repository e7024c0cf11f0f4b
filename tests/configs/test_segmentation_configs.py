"""The segmentation configs: they build, infer at odd sizes, match the paper."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample

from mmconvmlp.registry import build_model

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs',
                      'segmentation')
# Paper's parameter counts (M), 150 ADE20K classes.
PAPER_PARAMS = {'semantic_fpn_convmlp_s': 12.8, 'semantic_fpn_convmlp_m': 21.1,
                'semantic_fpn_convmlp_l': 46.3}


def build_segmentor(name, **test_cfg):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    cfg.model.test_cfg.update(test_cfg)
    return cfg, build_model(cfg)


@pytest.mark.parametrize('name', sorted(PAPER_PARAMS))
def test_param_count_matches_paper(name):
    _, model = build_segmentor(name)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(params, 1) == PAPER_PARAMS[name]


@pytest.mark.parametrize('name', sorted(PAPER_PARAMS))
def test_paper_settings(name):
    cfg, _ = build_segmentor(name)
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint=f'convmlp_{name[-1]}_imagenet')
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4,
                                               weight_decay=1e-4)
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.param_scheduler[0].type == 'PolyLR'
    assert cfg.param_scheduler[0].power == 0.9
    assert cfg.crop_size == (512, 512)
    assert cfg.train_dataloader.batch_size * 8 == 32
    assert cfg.auto_scale_lr.base_batch_size == 32


@pytest.mark.parametrize('name', sorted(PAPER_PARAMS) + [
    'semantic_fpn_convmlp_s_builtin'])
@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_inference_at_odd_size(name, mode):
    extra = dict(crop_size=(256, 256), stride=(171, 171)) if mode == 'slide' \
        else {}
    cfg, model = build_segmentor(name, mode=mode, **extra)
    model.eval()
    image = torch.randint(0, 256, (3, 333, 517), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(
        img_shape=(333, 517), ori_shape=(333, 517), pad_shape=(333, 517),
        scale_factor=(1., 1.)))
    with torch.no_grad():
        results = model.test_step(dict(inputs=[image], data_samples=[sample]))
    pred = results[0].pred_sem_seg.data
    assert pred.shape == (1, 333, 517)
    assert int(pred.max()) < cfg.model.decode_head.num_classes
