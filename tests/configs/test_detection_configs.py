"""The detection configs: they build, predict, compute losses, match the paper."""
import os.path as osp

import pytest
import torch
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

from mmconvmlp.registry import build_model

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs',
                      'detection')

# Paper's parameter counts (M), 80 COCO classes.
PAPER_PARAMS = {
    'retinanet_convmlp_s': 18.7, 'retinanet_convmlp_m': 27.1,
    'retinanet_convmlp_l': 52.9, 'mask_rcnn_convmlp_s': 28.7,
    'mask_rcnn_convmlp_m': 37.1, 'mask_rcnn_convmlp_l': 62.2,
}


def build_detector(name, **backbone):
    """Build a config's model; the pretrained weights are not loaded."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    cfg.model.backbone.update(backbone)
    return cfg, build_model(cfg)


@pytest.mark.parametrize('name', sorted(PAPER_PARAMS))
def test_param_count_matches_paper(name):
    _, model = build_detector(name)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    # Within the paper's rounding: Mask R-CNN-M has 37.048M, printed 37.1
    # (37.05 rounded up); the five others round to the paper's figure.
    assert abs(params - PAPER_PARAMS[name]) < 0.055


@pytest.mark.parametrize('name', sorted(PAPER_PARAMS))
def test_paper_settings(name):
    cfg, _ = build_detector(name)
    arch = name[-1]
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint=f'convmlp_{arch}_imagenet')
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4,
                                               weight_decay=1e-4)
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.custom_imports.imports == ['mmconvmlp']


@pytest.mark.parametrize('name', sorted(PAPER_PARAMS) + [
    'retinanet_convmlp_s_builtin', 'mask_rcnn_convmlp_s_builtin'])
def test_predicts_on_odd_sized_image(name):
    _, model = build_detector(name)
    model.eval()
    packed = demo_mm_inputs(1, image_shapes=(3, 333, 517), num_items=[2],
                            with_mask=name.startswith('mask'))
    with torch.no_grad():
        results = model.test_step(packed)
    assert len(results) == 1
    pred = results[0].pred_instances
    assert pred.bboxes.shape[1] == 4
    assert len(pred.bboxes) == len(pred.scores) == len(pred.labels)
    if name.startswith('mask'):
        assert pred.masks.shape[1:] == (333, 517)


@pytest.mark.parametrize('name', ['retinanet_convmlp_s', 'mask_rcnn_convmlp_s'])
def test_loss_step(name):
    _, model = build_detector(name)
    model.train()
    packed = demo_mm_inputs(2, image_shapes=(3, 160, 224), num_items=[3, 2],
                            num_classes=80, with_mask=name.startswith('mask'))
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total) and total > 0
    total.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
