"""export_onnx.py, then test.py and demo.py with --backend, end to end.

For each architecture one checkpoint (random weights whose outputs spread)
is exported with dynamic shapes and tested on the built-in data with
PyTorch and the runtimes: the same metrics and the same predictions.
"""
import pickle
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mmconvmlp.checkpoint import save_file
from quick_runs import NO_WORKERS

pytest.importorskip('onnxruntime')

CASES = {
    'retinanet': ('detection/retinanet_convmlp_s_builtin.py',
                  ['onnxruntime', 'openvino']),
    'mask_rcnn': ('detection/mask_rcnn_convmlp_s_builtin.py',
                  ['onnxruntime']),
    'semantic_fpn': ('segmentation/semantic_fpn_convmlp_s_builtin.py',
                     ['onnxruntime']),
}
METRIC = re.compile(r'(coco/\w+_mAP|mIoU|aAcc): (-?[0-9.]+)')


def _metrics(log):
    return {name: float(value) for name, value in METRIC.findall(log)}


def _checkpoint(cfg_file, spread_model, path):
    cfg = Config.fromfile(cfg_file)
    model = spread_model(cfg)
    save_file({'state_dict': model.state_dict(),
               'meta': {'dataset_meta': dict(
                   cfg.test_dataloader.dataset.metainfo)}}, str(path))


@pytest.mark.slow
@pytest.mark.parametrize('name', list(CASES))
def test_exported_model_tests_like_pytorch(
        name, run_tool, builtin_workspace, config_path, spread_model,
        assert_same_detections, tmp_path):
    rel, backends = CASES[name]
    cfg, ws = config_path(rel), builtin_workspace
    ckpt, onnx_file = tmp_path / 'model.pth', tmp_path / 'model.onnx'
    _checkpoint(cfg, spread_model, ckpt)
    out = run_tool('deployment/export_onnx.py', cfg, ckpt, onnx_file,
                   '--dynamic', cwd=ws)
    assert 'input [-1, 3, -1, -1]' in out.stdout
    segmentation = name == 'semantic_fpn'
    results = {}
    for backend in ['pytorch', *backends]:
        model = ckpt if backend == 'pytorch' else onnx_file
        dump = tmp_path / (backend if segmentation else f'{backend}.pkl')
        out = run_tool('test.py', cfg, model, '--backend', backend,
                       '--work-dir', tmp_path / f'work_{backend}', '--out',
                       dump, '--cfg-options', *NO_WORKERS, cwd=ws)
        results[backend] = _metrics(out.stdout + out.stderr), dump
    metrics, dump = results.pop('pytorch')
    assert metrics, 'test.py printed no metric'
    for backend, (runtime_metrics, runtime_dump) in results.items():
        assert runtime_metrics.keys() == metrics.keys()
        for key, value in metrics.items():  # within 0.1 points
            scale = 1 if segmentation else 100
            assert abs(runtime_metrics[key] - value) * scale <= 0.1, key
        if segmentation:
            pngs = sorted(dump.glob('*.png'))
            assert len(pngs) == 4
            for png in pngs:
                ref = np.asarray(Image.open(png))
                pred = np.asarray(Image.open(runtime_dump / png.name))
                assert (pred == ref).mean() >= 0.999
        else:
            with open(dump, 'rb') as f:
                refs = pickle.load(f)
            with open(runtime_dump, 'rb') as f:
                preds = pickle.load(f)
            assert len(preds) == len(refs) == 4
            for pred, ref in zip(preds, refs):
                assert pred['img_id'] == ref['img_id']
                assert_same_detections(pred['pred_instances'],
                                       ref['pred_instances'])

    # demo.py draws with the runtime
    image = ws / 'data/builtin/images/validation/0000.jpg'
    run_tool('demo.py', image, cfg, onnx_file, '--backend', backends[0],
             '--out', tmp_path / 'demo.png', cwd=ws)
    assert Image.open(tmp_path / 'demo.png').size == Image.open(image).size


def test_runtime_backend_needs_an_onnx_file(run_tool, builtin_workspace,
                                            config_path, tmp_path):
    ckpt = tmp_path / 'model.pth'
    torch.save({}, ckpt)
    out = run_tool('test.py', config_path(CASES['retinanet'][0]), ckpt,
                   '--backend', 'onnxruntime', cwd=builtin_workspace,
                   check=False)
    assert out.returncode != 0
    assert 'runs an exported .onnx file' in out.stderr


def test_crafted_onnx_runs_no_code_in_test_and_demo(run_tool,
                                                    builtin_workspace,
                                                    config_path, tmp_path):
    """The earlier format stored the config as Python text, which loading
    executed, even when the user passed a config of their own."""
    import onnx
    from onnx import TensorProto, helper
    marker = tmp_path / 'pwned'
    graph = helper.make_graph(
        [helper.make_node('Identity', ['inputs'], ['seg_logits'])], 'g',
        [helper.make_tensor_value_info('inputs', TensorProto.FLOAT,
                                       [1, 3, 8, 8])],
        [helper.make_tensor_value_info('seg_logits', TensorProto.FLOAT,
                                       [1, 3, 8, 8])])
    proto = helper.make_model(graph)
    for key, value in {
            'config': f"open({str(marker)!r}, 'w').close()\n"
                      "default_scope = 'mmseg'",
            'task': '"segmentation"', 'default_scope': '"mmseg"',
            'output_groups': '[["seg_logits", 0]]', 'classes': '[]',
            'palette': '[]', 'input_shape': '[1, 3, 8, 8]'}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f'mmconvmlp.{key}', value
    crafted = tmp_path / 'crafted.onnx'
    onnx.save(proto, str(crafted))
    cfg = config_path(CASES['semantic_fpn'][0])
    image = builtin_workspace / 'data/builtin/images/validation/0000.jpg'
    for script, args in (
            ('test.py', [cfg, crafted, '--backend', 'onnxruntime',
                         '--work-dir', tmp_path / 'w']),
            ('demo.py', [image, cfg, crafted, '--backend', 'onnxruntime',
                         '--out', tmp_path / 'demo.png'])):
        out = run_tool(script, *args, cwd=builtin_workspace, check=False)
        assert out.returncode != 0
        assert 'export it again' in out.stderr, out.stderr[-2000:]
    assert not marker.exists()
    assert not (tmp_path / 'demo.png').exists()


@pytest.mark.slow
def test_tune_writes_a_winner_that_test_py_runs(run_tool, builtin_workspace,
                                                config_path, spread_model,
                                                tmp_path):
    cfg = config_path(CASES['retinanet'][0])
    ckpt, out = tmp_path / 'model.pth', tmp_path / 'tuned'
    _checkpoint(cfg, spread_model, ckpt)
    log = run_tool('deployment/tune.py', cfg, ckpt, '--out-dir', out,
                   '--shape', '64', '64', '--precision', 'fp32',
                   '--paths', 'onnxruntime', '--repeats', '1',
                   cwd=builtin_workspace).stdout
    assert 'Fastest kept path: **onnxruntime**' in log
    assert (out / 'report.json').is_file() and (out / 'winner.onnx').is_file()
    result = run_tool('test.py', cfg, out / 'winner.onnx', '--backend',
                      'onnxruntime', '--work-dir', tmp_path / 'w',
                      '--cfg-options', *NO_WORKERS, cwd=builtin_workspace)
    assert 'coco/bbox_mAP' in result.stdout + result.stderr


@pytest.mark.slow
def test_a_pytorch_winner_runs_with_test_py_optimize(
        run_tool, builtin_workspace, config_path, spread_model, tmp_path):
    """tune's probed PyTorch path: the transforms it chose go into
    winner.json, and the winner's command tests them."""
    import json
    import shlex
    cfg = config_path(CASES['retinanet'][0])
    ckpt, out = tmp_path / 'model.pth', tmp_path / 'tuned'
    _checkpoint(cfg, spread_model, ckpt)
    run_tool('deployment/tune.py', cfg, ckpt, '--out-dir', out, '--shape',
             '64', '64', '--precision', 'fp32', '--paths', 'optimize, probed',
             '--repeats', '1', cwd=builtin_workspace)
    report = json.loads((out / 'report.json').read_text())
    row = next(r for r in report['paths'] if r['path'] == 'optimize, probed')
    assert set(row['probe_ms']) == {'winograd', 'channels_last', 'fused_mlp'}
    win = report['winner']
    assert win['path'] == 'optimize, probed'
    assert 'optimize, probed: applied' in (out / 'report.md').read_text()
    settings = json.loads((out / 'winner.json').read_text())
    assert settings['optimize_for_inference'] == row['settings']
    command = shlex.split(win['command'])
    assert command[:2] == ['python', 'tools/test.py']
    assert command[-2:] == ['--optimize', str(out / 'winner.json')]
    result = run_tool('test.py', *command[2:], '--work-dir', tmp_path / 'w',
                      '--cfg-options', *NO_WORKERS, cwd=builtin_workspace)
    log = result.stdout + result.stderr
    assert 'testing optimize_for_inference(model' in log
    assert 'coco/bbox_mAP' in log
