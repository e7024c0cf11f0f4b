"""ConvMLP in the model bases users already have: mmseg's and mmdet's own,
with only the backbone swapped and the neck's (or head's) channels set."""
import contextlib
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm

from mmconvmlp.registry import build_model

CHANNELS = [64, 128, 256, 512]  # ConvMLP-S, default out_indices
HEIGHT, WIDTH = 96, 160
#: what every mmseg config adds to its model base: the crop size
SEG_CROP = f'data_preprocessor=dict(size=({HEIGHT}, {WIDTH}))'
SWAP = "backbone=dict(_delete_=True, type='mmconvmlp.ConvMLP', arch='s')"
CASES = {
    'mmseg fpn_r50': ('mmseg::_base_/models/fpn_r50.py', 'mmseg',
                      f'neck=dict(in_channels={CHANNELS}), {SEG_CROP}'),
    'mmseg upernet_r50': (
        'mmseg::_base_/models/upernet_r50.py', 'mmseg',
        f'decode_head=dict(in_channels={CHANNELS}), '
        f'auxiliary_head=dict(in_channels={CHANNELS[2]}), {SEG_CROP}'),
    'mmdet retinanet': ('mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet',
                        f'neck=dict(in_channels={CHANNELS})'),
    'mmdet faster-rcnn': ('mmdet::_base_/models/faster-rcnn_r50_fpn.py',
                          'mmdet', f'neck=dict(in_channels={CHANNELS})'),
    'mmdet mask-rcnn': ('mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet',
                        f'neck=dict(in_channels={CHANNELS})'),
    'mmdet fcos': ('mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
                   'mmdet', f'neck=dict(in_channels={CHANNELS})'),
}


def _user_config(tmp_path, base, scope, rest):
    path = tmp_path / 'user_config.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = {base!r}
        custom_imports = dict(imports=['mmconvmlp'],
                              allow_failed_imports=False)
        default_scope = {scope!r}
        model = dict({SWAP}, {rest})
    '''))
    return Config.fromfile(str(path))


def _seg_inputs(height, width, num_classes):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(2):
        inputs.append(torch.randint(0, 256, (3, height, width),
                                    dtype=torch.uint8, generator=gen))
        sample = SegDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            pad_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, height, width), generator=gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('case', list(CASES))
def test_loss_step_and_predict(tmp_path, case):
    base, scope, rest = CASES[case]
    with pytest.warns(DeprecationWarning) if scope == 'mmseg' else (
            contextlib.nullcontext()):
        cfg = _user_config(tmp_path, base, scope, rest)
        model = revert_sync_batchnorm(build_model(cfg))
    assert type(model.backbone).__name__ == 'ConvMLP'
    height, width = HEIGHT, WIDTH
    if scope == 'mmseg':
        # mmseg's EncoderDecoder hands model.pretrained (its ResNet's
        # checkpoint) to the backbone, as to every backbone
        assert model.backbone.init_cfg['type'] == 'Pretrained'
        data = _seg_inputs(height, width, model.decode_head.num_classes)
    else:
        from mmdet.testing import demo_mm_inputs
        data = demo_mm_inputs(2, [(3, height, width)] * 2, num_items=[3, 2],
                              num_classes=3,
                              with_mask='mask' in case)
    torch.manual_seed(0)
    model.train()
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.backbone.tokenizer.block[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(data, False),
                        mode='predict')
    assert len(results) == 2
    if scope == 'mmseg':
        assert results[0].pred_sem_seg.data.shape == (1, height, width)
    else:
        assert results[0].pred_instances.bboxes.shape[1] == 4

