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


@pytest.fixture(scope='module')
def seg_onnx(tmp_path_factory, config_path, spread_model, builtin_workspace):
    """A Semantic FPN-S exported with dynamic shapes, and the built-in
    training images."""
    cfg = Config.fromfile(config_path(
        'segmentation/semantic_fpn_convmlp_s_builtin.py'))
    path = str(tmp_path_factory.mktemp('seg') / 'model.onnx')
    export_onnx(spread_model(cfg), cfg, path, shape=(128, 128), dynamic=True,
                classes=['a', 'b', 'c', 'd'])
    return path, str(builtin_workspace / 'data/builtin/images/training')


def test_layer_names_and_parts():
    from mmconvmlp.deploy.quantize import layer_group, layer_name
    name = layer_name('/model/backbone/stages.0/blocks.1/channel_mlp1/fc1/'
                      'MatMul')
    assert name == 'backbone/stages.0/blocks.1/channel_mlp1/fc1'
    assert layer_group(name) == 'backbone/stages.0'
    # a head shared by the pyramid levels is one layer
    assert layer_name('/model/retina_cls_3/Conv') == 'retina_cls'
    assert layer_group('cls_convs.1/conv') == 'cls_convs.1'
    assert layer_group('neck/fpn_convs.2/conv') == 'neck/fpn_convs.2'


def _fp32_weight_convs(path):
    """Names of the Conv / MatMul nodes whose weights are not dequantized
    int8 (they run in float32)."""
    import onnx
    graph = onnx.load(path).graph
    dequantized = {o for n in graph.node if n.op_type == 'DequantizeLinear'
                   for o in n.output}
    return {n.name for n in graph.node if n.op_type in ('Conv', 'MatMul')
            and n.input[1] not in dequantized}


def test_parts_kept_fp32_stay_float(seg_onnx, tmp_path):
    fp32, images = seg_onnx
    out = str(tmp_path / 'int8.onnx')
    info = quantize_onnx(fp32, out, images, num=2, activations='int8',
                         keep_fp32=['backbone/tokenizer', 'conv_seg'])
    kept = _fp32_weight_convs(out)
    assert kept == {'/model/backbone/tokenizer/block/block.0/Conv',
                    '/model/backbone/tokenizer/block/block.3/Conv',
                    '/model/backbone/tokenizer/block/block.6/Conv',
                    '/model/conv_seg/Conv'}
    assert info['nodes_kept_fp32'] == 4 and info['activations'] == 'int8'
    assert 'S8S8' in info['method_text'] and 'conv_seg' in info['method_text']
    assert info['method'] == 'percentile'  # the default: docs/deployment.md
    assert read_metadata(out)['quantization'] == info
    import onnx
    zero_points = [i for i in onnx.load(out).graph.initializer
                   if i.name.endswith('zero_point')]
    types = {i.data_type for i in zero_points}
    assert onnx.TensorProto.INT8 in types  # S8S8: no uint8 activations
    assert onnx.TensorProto.UINT8 not in types
    with pytest.raises(ValueError, match="'neck/nothing' matches no "
                       'quantized layer.*backbone/tokenizer'):
        quantize_onnx(fp32, out, images, num=2, keep_fp32=['neck/nothing'])


@pytest.mark.parametrize('bad, message', [
    (dict(route='tensorrt'), 'route'), (dict(activations='int4'),
                                        'activations'),
    (dict(method='mse'), 'method'),
    (dict(route='nncf', method='entropy'), 'own range estimators'),
    (dict(route='nncf', method='minmax'), 'own range estimators')])
def test_bad_settings_are_refused(seg_onnx, tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        quantize_onnx(seg_onnx[0], str(tmp_path / 'x.onnx'), seg_onnx[1],
                      num=1, **bad)
    assert not (tmp_path / 'x.onnx').exists()


def test_nncf_file_runs_in_both_runtimes(seg_onnx, tmp_path):
    pytest.importorskip('nncf')
    pytest.importorskip('openvino')
    fp32, images = seg_onnx
    out = str(tmp_path / 'nncf.onnx')
    info = quantize_onnx(fp32, out, images, num=2, route='nncf',
                         keep_fp32=['conv_seg'])
    assert info['route'] == 'nncf' and info['nodes_kept_fp32'] == 1
    assert '/model/conv_seg/Conv' in _fp32_weight_convs(out)
    x = torch.randn(1, 3, 96, 128)  # another shape than calibration's

    def logits(model):
        out = model(x, mode='tensor')
        return out[0] if isinstance(out, (list, tuple)) else out

    with torch.no_grad():
        ref = logits(build_runtime_model(fp32))
        for backend in ('onnxruntime', 'openvino'):
            out_ = logits(build_runtime_model(out, backend))
            assert out_.shape == ref.shape == (1, 4, 24, 32)
            assert 1e-6 < max_rel_error(out_, ref) < 0.5


def test_sensitivity_names_the_parts_that_matter(seg_onnx):
    from mmconvmlp.deploy.quantize import layer_sensitivity
    fp32, images = seg_onnx
    rows = layer_sensitivity(fp32, images, num=4, num_eval=2,
                             parts=['backbone/tokenizer', 'conv_seg'])
    assert rows[0]['part'] is None and rows[0]['gain'] == 0
    assert {r['part'] for r in rows[1:]} == {'backbone/tokenizer',
                                             'conv_seg'}
    assert [r['layers'] for r in rows[1:]] in ([3, 1], [1, 3])
    for row in rows:  # quantized: finite SQNR, and not garbage
        assert 5 < row['sqnr']['seg_logits'] < 80
        assert row['sqnr']['worst'] == row['sqnr']['seg_logits']
    assert rows[1]['gain'] >= rows[2]['gain']
    with pytest.raises(ValueError, match='no part'):
        layer_sensitivity(fp32, images, num=4, num_eval=2, parts=['head'])
    with pytest.raises(ValueError, match='needs more than the 8'):
        layer_sensitivity(fp32, images, num=8, num_eval=2)
