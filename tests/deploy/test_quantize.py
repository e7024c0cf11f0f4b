"""The opt-in int8 route: calibrated on named images, metadata kept,
runs in the runtime models, stays close to float32."""
import pytest
import torch
from mmengine.config import Config

from mmconvmlp.analysis.measure import max_rel_error
from mmconvmlp.deploy import build_runtime_model, export_onnx, read_metadata
from mmconvmlp.deploy.quantize import calibration_images, quantize_onnx

pytest.importorskip('onnxruntime')


@pytest.mark.parametrize('config', [
    'detection/mask_rcnn_convmlp_s_builtin.py',
    'segmentation/semantic_fpn_convmlp_s_builtin.py'])
def test_int8_file_runs_and_stays_close(config, config_path, spread_model,
                                        builtin_workspace, tmp_path):
    cfg = Config.fromfile(config_path(config))
    model = spread_model(cfg)
    fp32 = str(tmp_path / 'fp32' / 'model.onnx')
    (tmp_path / 'fp32').mkdir()
    export_onnx(model, cfg, fp32, shape=(128, 128), dynamic=True,
                classes=['a', 'b', 'c'])
    images = builtin_workspace / 'data/builtin/images/training'
    int8 = str(tmp_path / 'int8.onnx')  # another directory than fp32's
    info = quantize_onnx(fp32, int8, str(images), num=4)
    assert info['images'] == 4
    meta = read_metadata(int8)
    assert meta['quantization'] == info
    assert meta['classes'] == ['a', 'b', 'c']
    assert meta['model'] == read_metadata(fp32)['model']
    # a validation image, preprocessed as calibration preprocesses
    from mmconvmlp.deploy.quantize import _Calibration
    val = builtin_workspace / 'data/builtin/images/validation/0000.jpg'
    x = torch.from_numpy(_Calibration([str(val)], meta, 'inputs',
                                      [-1, 3, -1, -1]).get_next()['inputs'])
    with torch.no_grad():
        ref = build_runtime_model(fp32)(x, mode='tensor')
        out = build_runtime_model(int8)(x, mode='tensor')
    # the first group: the neck's maps (Mask R-CNN) or the logits
    refs = ref[0] if isinstance(ref[0], list) else [ref[0]]
    outs = out[0] if isinstance(out[0], list) else [out[0]]
    assert [o.shape for o in outs] == [r.shape for r in refs]
    error = max_rel_error(outs, refs)
    print(f'int8 max rel. error {error:.3f}')
    # quantized, and not garbage (random weights quantize worse than
    # trained ones: the README has the mAP / mIoU change of trained models)
    assert 1e-6 < error < 0.5
    import onnx
    ops = {node.op_type for node in onnx.load(int8).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops


def test_calibration_images_are_named_or_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match='make_builtin.py'):
        calibration_images(str(tmp_path / 'missing'))
    with pytest.raises(FileNotFoundError, match='no .* files'):
        calibration_images(str(tmp_path))
    from PIL import Image
    (tmp_path / 'notes.txt').write_text('not an image')
    for name in ('b.jpg', 'a.png'):
        Image.new('RGB', (8, 8)).save(tmp_path / name)
    assert [p[-5:] for p in calibration_images(str(tmp_path), num=1)] == [
        'a.png']
