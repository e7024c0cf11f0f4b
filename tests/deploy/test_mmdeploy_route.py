"""mmdeploy 1.3.1 exports RetinaNet and Semantic FPN (with our fixes), and
its ONNX Runtime models predict what PyTorch predicts at two odd sizes."""
import pytest
import torch
from mmengine.config import Config

from mmconvmlp.checkpoint import save_file

pytest.importorskip('mmdeploy')
pytest.importorskip('onnxruntime')

DEPLOY = {
    'retinanet': ('detection/retinanet_convmlp_s_builtin.py',
                  'deploy/detection_onnxruntime_dynamic.py'),
    'semantic_fpn': ('segmentation/semantic_fpn_convmlp_s_builtin.py',
                     'deploy/segmentation_onnxruntime_dynamic.py'),
}
SIZES = [(161, 227), (222, 135)]


def _samples(segmentation, shape):
    h, w = shape
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                scale_factor=(1.0, 1.0), padding_size=[0, 0, 0, 0],
                batch_input_shape=(h, w))
    if segmentation:
        from mmseg.structures import SegDataSample
        return [SegDataSample(metainfo=meta)]
    from mmdet.structures import DetDataSample
    return [DetDataSample(metainfo=meta)]


@pytest.mark.slow
@pytest.mark.parametrize('name', list(DEPLOY))
def test_mmdeploy_export_predicts_like_pytorch(
        name, config_path, spread_model, assert_same_detections,
        builtin_workspace, tmp_path, restore_mmengine_io):
    from mmdeploy.apis.utils import build_task_processor

    from mmconvmlp.deploy.mmdeploy_route import export_with_mmdeploy
    model_file, deploy_file = (config_path(p) for p in DEPLOY[name])
    cfg, deploy_cfg = Config.fromfile(model_file), Config.fromfile(
        deploy_file)
    model = spread_model(cfg)
    if name == 'retinanet':
        # unsaturated, distinct scores, and boxes near their anchors (mmdet
        # drops the degenerate boxes huge deltas give, mmdeploy keeps them)
        with torch.no_grad():
            model.bbox_head.retina_cls.weight.normal_(0, 0.002)
            model.bbox_head.retina_cls.bias.fill_(-1.0)
            model.bbox_head.retina_reg.weight.normal_(0, 0.0005)
    ckpt = str(tmp_path / 'model.pth')
    save_file({'state_dict': model.state_dict()}, ckpt)
    image = str(builtin_workspace / 'data/builtin/images/validation/0000.jpg')
    onnx_file = export_with_mmdeploy(deploy_cfg, cfg, ckpt, image,
                                     str(tmp_path / 'work'))
    processor = build_task_processor(cfg, deploy_cfg, 'cpu')
    runtime = processor.build_backend_model([onnx_file])
    segmentation = name == 'semantic_fpn'
    torch.manual_seed(1)
    for shape in SIZES:  # neither is the traced size
        x = torch.randn(1, 3, *shape)
        with torch.no_grad():
            ref = model.predict(x, _samples(segmentation, shape))[0]
            pred = runtime(x, _samples(segmentation, shape),
                           mode='predict')[0]
        if segmentation:
            ref_map = ref.pred_sem_seg.data
            assert ref_map.unique().numel() > 1
            equal = (pred.pred_sem_seg.data.reshape(ref_map.shape)
                     == ref_map).float().mean()
            assert equal >= 0.999
        else:  # mmdeploy applies its own top-k rules: the ten best agree
            best = ref.pred_instances[:10]
            assert best.scores.min() > 0.05
            twins = pred.pred_instances[:len(best)]
            assert_same_detections(twins, best)


def test_export_restores_the_default_exporter():
    from mmconvmlp.deploy.mmdeploy_route import legacy_onnx_exporter
    export = torch.onnx.export
    with legacy_onnx_exporter():
        assert torch.onnx.export is not export
        assert torch.onnx.export.keywords == {'dynamo': False}
    assert torch.onnx.export is export
