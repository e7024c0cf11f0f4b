"""Exported models in ONNX Runtime and OpenVINO against PyTorch.

One dynamic file per model (RetinaNet, Mask R-CNN, Semantic FPN; ConvMLP-S,
random weights with non-trivial BN statistics), run at two odd sizes:
raw outputs within 1e-4 relative, the same detections, >= 99.9% of mask and
label pixels equal.
"""
import copy
import shutil

import pytest
import torch
from mmengine.config import Config

from mmconvmlp.analysis.measure import max_rel_error
from mmconvmlp.deploy import build_runtime_model, export_onnx, read_metadata
from mmconvmlp.deploy.onnx_export import FlatOutputs

pytest.importorskip('onnxruntime')

CONFIGS = {
    'retinanet': 'detection/retinanet_convmlp_s_builtin.py',
    'mask_rcnn': 'detection/mask_rcnn_convmlp_s_builtin.py',
    'semantic_fpn': 'segmentation/semantic_fpn_convmlp_s_builtin.py',
}
SIZES = [(161, 227), (222, 135)]
BACKENDS = ['onnxruntime',
            pytest.param('openvino', marks=pytest.mark.skipif(
                __import__('importlib').util.find_spec('openvino') is None,
                reason='openvino not installed'))]


@pytest.fixture(scope='module')
def exported(tmp_path_factory, config_path, spread_model):
    """name -> (config, PyTorch model, dynamic ONNX file)"""
    cache, root = {}, tmp_path_factory.mktemp('onnx')

    def get(name):
        if name not in cache:
            cfg = Config.fromfile(config_path(CONFIGS[name]))
            model = spread_model(cfg)
            out = str(root / f'{name}.onnx')
            export_onnx(model, cfg, out, shape=(160, 192), dynamic=True,
                        classes=['disc', 'square', 'triangle'])
            cache[name] = cfg, model, out
        return cache[name]

    return get


def _samples(name, shape, batch=1):
    """Data samples with the metadata the test pipeline would give an image
    of ``shape`` resized by 1.25."""
    h, w = shape
    meta = dict(img_shape=(h, w), ori_shape=(round(h / 1.25),
                                             round(w / 1.25)),
                pad_shape=(h, w), scale_factor=(1.25, 1.25),
                padding_size=[0, 0, 0, 0], batch_input_shape=(h, w))
    if name == 'semantic_fpn':
        from mmseg.structures import SegDataSample
        return [SegDataSample(metainfo=meta) for _ in range(batch)]
    from mmdet.structures import DetDataSample
    return [DetDataSample(metainfo=meta) for _ in range(batch)]


def _flat(groups):
    return [t for g in groups for t in (g if isinstance(g, list) else [g])]


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', list(CONFIGS))
def test_raw_outputs_match_pytorch(exported, name, backend):
    cfg, model, onnx_file = exported(name)
    runtime = build_runtime_model(onnx_file, backend)
    flat = FlatOutputs(model)
    torch.manual_seed(1)
    for shape in SIZES:
        x = torch.randn(1, 3, *shape)
        with torch.no_grad():
            refs, outs = flat(x), _flat(runtime(x, mode='tensor'))
        assert [o.shape for o in outs] == [r.shape for r in refs]
        for out, ref in zip(outs, refs):
            assert max_rel_error([out], [ref]) < 1e-4
    if name == 'retinanet':  # a batch of two, too
        x = torch.randn(2, 3, *SIZES[0])
        with torch.no_grad():
            assert max_rel_error(_flat(runtime(x, mode='tensor')),
                                 flat(x)) < 1e-4


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', list(CONFIGS))
def test_same_predictions(exported, name, backend, assert_same_detections):
    cfg, model, onnx_file = exported(name)
    runtime = build_runtime_model(onnx_file, backend)
    torch.manual_seed(1)
    for shape in SIZES:
        x = torch.randn(1, 3, *shape)
        with torch.no_grad():
            refs = model.predict(x, _samples(name, shape))
            preds = runtime.predict(x, _samples(name, shape))
        for pred, ref in zip(preds, refs):
            assert type(pred) is type(ref)
            if name == 'semantic_fpn':
                ref_map = ref.pred_sem_seg.data
                assert pred.pred_sem_seg.data.shape == ref_map.shape
                assert ref_map.unique().numel() > 1
                equal = (pred.pred_sem_seg.data == ref_map).float().mean()
                assert equal >= 0.999
            else:
                assert_same_detections(pred.pred_instances,
                                        ref.pred_instances)


def test_metadata_describes_the_model(exported):
    cfg, _, onnx_file = exported('retinanet')
    meta = read_metadata(onnx_file)
    assert meta['task'] == 'detection'
    assert meta['classes'] == ['disc', 'square', 'triangle']
    pre = meta['preprocessing']
    assert pre['mean'] == list(cfg.model.data_preprocessor.mean)
    assert pre['std'] == list(cfg.model.data_preprocessor.std)
    assert pre['bgr_to_rgb'] is True
    assert pre['pad_size_divisor'] == 32
    assert meta['output_groups'] == [['cls_scores', 5], ['bbox_preds', 5]]
    assert meta['input_shape'] == [-1, 3, -1, -1]
    assert meta['format'] == 2 and 'config' not in meta
    # the post-processing settings as plain data, without backbone and neck
    assert meta['model']['bbox_head']['type'] == 'RetinaHead'
    assert meta['model']['test_cfg'] == cfg.model.test_cfg.to_dict()
    assert not {'backbone', 'neck', 'init_cfg'} & set(meta['model'])
    assert meta['test_pipeline'][0]['type'] == 'LoadImageFromFile'


def test_mask_rcnn_roi_head_runs_in_pytorch_from_its_file(exported, tmp_path):
    _, _, onnx_file = exported('mask_rcnn')
    meta = read_metadata(onnx_file)
    assert meta['roi_head_file'] == 'mask_rcnn.roi_head.pth'
    moved = tmp_path / 'alone.onnx'
    shutil.copy(onnx_file, moved)  # without its RoI-head weights
    with pytest.raises(FileNotFoundError, match='mask_rcnn.roi_head.pth'):
        build_runtime_model(str(moved))


def test_segmentor_is_exported_with_a_dynamic_upsample(exported, monkeypatch,
                                                       tmp_path):
    """mmseg's Upsample freezes the traced size; the export replaces it."""
    from mmconvmlp.deploy import onnx_export
    cfg, model, onnx_file = exported('semantic_fpn')
    x = torch.randn(1, 3, *SIZES[0])
    with torch.no_grad():
        ref = model(x, mode='tensor')
        good = build_runtime_model(onnx_file)(x, mode='tensor')[0]
    assert max_rel_error([good], [ref]) < 1e-4
    monkeypatch.setattr(onnx_export, 'make_dynamic_safe', lambda m: 0)
    frozen = str(tmp_path / 'frozen.onnx')
    export_onnx(model, cfg, frozen, shape=(160, 192), dynamic=True)
    try:
        with torch.no_grad():
            bad = build_runtime_model(frozen)(x, mode='tensor')[0]
    except Exception:  # the runtime refuses the frozen shapes outright
        return
    assert bad.shape != ref.shape or max_rel_error([bad], [ref]) > 1e-3


def test_a_fixed_size_file_names_its_shape(exported, tmp_path):
    cfg, model, _ = exported('retinanet')
    fixed = str(tmp_path / 'fixed.onnx')
    export_onnx(model, cfg, fixed, shape=(128, 160))
    runtime = build_runtime_model(fixed)
    assert len(runtime(torch.randn(1, 3, 128, 160), mode='tensor')) == 2
    with pytest.raises(ValueError, match=r'shape \[1, 3, 128, 160\]'):
        runtime(torch.randn(1, 3, 160, 160), mode='tensor')


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.onnx'):
        build_runtime_model(str(tmp_path / 'missing.onnx'))
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    foreign = str(tmp_path / 'foreign.onnx')
    onnx.save(helper.make_model(graph), foreign)
    with pytest.raises(ValueError, match='not exported by mmconvmlp'):
        build_runtime_model(foreign)
    with pytest.raises(ValueError, match="backend 'tensorrt'"):
        from mmconvmlp.deploy import build_backend
        build_backend(foreign, 'tensorrt')


def test_a_users_config_builds_the_post_processing_if_it_fits(exported):
    cfg, _, onnx_file = exported('retinanet')
    runtime = build_runtime_model(onnx_file, model_cfg=cfg.model,
                                  classes=['disc', 'square', 'triangle'])
    assert runtime.torch_model.bbox_head.test_cfg == cfg.model.test_cfg
    # only the heads are built: backbone and neck run in the graph
    assert sum(p.numel() for p in runtime.torch_model.parameters()) == sum(
        p.numel() for p in runtime.torch_model.bbox_head.parameters())
    other_mean = copy.deepcopy(cfg.model)
    other_mean.data_preprocessor.mean = [0, 0, 0]
    with pytest.raises(ValueError, match='data_preprocessor mean='):
        build_runtime_model(onnx_file, model_cfg=other_mean)
    other_head = copy.deepcopy(cfg.model)
    other_head.bbox_head.num_classes = 80
    with pytest.raises(ValueError, match="predicts 3 classes .* heads 80"):
        build_runtime_model(onnx_file, model_cfg=other_head)
    with pytest.raises(ValueError, match='exported for the classes'):
        build_runtime_model(onnx_file, model_cfg=cfg.model,
                            classes=['cat', 'dog', 'cow'])
    with pytest.raises(ValueError, match='holds a detection model'):
        from mmconvmlp.deploy import RuntimeSegmentor
        RuntimeSegmentor(onnx_file)


def test_roi_head_weights_are_data(exported, tmp_path, monkeypatch):
    """The RoI head's file is read weights-only: one that carries code is
    refused; stock torch.load opens ours."""
    import os
    _, _, onnx_file = exported('mask_rcnn')
    roi_file = onnx_file.replace('.onnx', '.roi_head.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        roi_file) == []
    marker = tmp_path / 'pwned'

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    moved = tmp_path / 'mask_rcnn.onnx'
    shutil.copy(onnx_file, moved)
    torch.save({'state_dict': {}, 'x': RunsCode()},
               tmp_path / 'mask_rcnn.roi_head.pth')
    from mmconvmlp.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match='refused to load'):
        build_runtime_model(str(moved))
    torch.save({'state_dict': {'foo': torch.zeros(1)}},
               tmp_path / 'mask_rcnn.roi_head.pth')
    with pytest.raises(CheckpointError, match='does not fit the RoI head'):
        build_runtime_model(str(moved))
    assert not marker.exists()


def test_openvino_runs_in_the_precision_asked(exported):
    pytest.importorskip('openvino')
    from mmconvmlp.deploy import build_backend
    from mmconvmlp.deploy.cpu import native_bf16
    _, _, path = exported('semantic_fpn')
    with pytest.raises(ValueError, match="'bf16' with backend "
                       "'onnxruntime'.*bf16 with openvino"):
        build_backend(path, 'onnxruntime', precision='bf16')
    with pytest.raises(ValueError, match="precision 'fp16'"):
        build_backend(path, 'openvino', precision='fp16')
    fp32 = build_backend(path, 'openvino')

    def hint(backend):
        return backend.compiled.get_property(
            'INFERENCE_PRECISION_HINT').get_type_name()

    assert hint(fp32) == 'f32'
    model = build_runtime_model(path, 'openvino', precision='bf16')
    # OpenVINO computes bf16 where the CPU has it, and falls back elsewhere
    if native_bf16():
        assert hint(model.backend) == 'bf16'
    x = torch.randn(1, 3, 160, 192)
    with torch.no_grad():
        ref = build_runtime_model(path, 'openvino')(x, mode='tensor')
        out = model(x, mode='tensor')
    error = max_rel_error(_flat(out), _flat(ref))
    assert error < (0.1 if native_bf16() else 1e-4)


def test_test_py_config_carries_the_precision(exported):
    from mmconvmlp.deploy.runtime import use_runtime_model
    cfg, _, path = exported('semantic_fpn')
    cfg = copy.deepcopy(cfg)
    use_runtime_model(cfg, path, 'openvino', 'bf16')
    assert cfg.model.precision == 'bf16' and cfg.model.backend == 'openvino'
