"""The tune command at a tiny size: it compares the paths, refuses those
beyond the tolerance, writes the report and a runnable winner."""
import importlib.util
import json

import pytest
from mmengine.config import Config

from mmconvmlp.checkpoint import save_file
from mmconvmlp.deploy.tune import tune

pytest.importorskip('onnxruntime')

RETINANET = 'detection/retinanet_convmlp_s_builtin.py'


@pytest.fixture(scope='module')
def tuned(tmp_path_factory, builtin_workspace, config_path, spread_model):
    """tune() of a RetinaNet-S with spread random weights on the tiny
    built-in data, with a tolerance no float32 path but eager meets."""
    import os
    root = tmp_path_factory.mktemp('tune')
    cfg = Config.fromfile(config_path(RETINANET))
    ckpt = str(root / 'model.pth')
    save_file({'state_dict': spread_model(cfg).state_dict(),
               'meta': {'dataset_meta': dict(
                   cfg.test_dataloader.dataset.metainfo)}}, ckpt)
    cwd = os.getcwd()
    os.chdir(builtin_workspace)  # the config's data_root is relative
    try:
        report = tune(config_path(RETINANET), ckpt, str(root / 'out'),
                      shape=(64, 64), precisions=('fp32', 'int8'),
                      max_drop=100, tolerance=1e-12, repeats=1,
                      paths=['eager', 'optimize', 'onnxruntime',
                             'onnxruntime int8', 'openvino int8'],
                      int8=dict(keep_fp32=['retina_cls']))
    finally:
        os.chdir(cwd)
    return report, root / 'out', ckpt


@pytest.mark.slow
def test_paths_are_compared_refused_and_reported(tuned):
    report, out, _ = tuned
    rows = {r['path']: r for r in report['paths']}
    int8 = ['onnxruntime int8'] + (
        ['openvino int8'] if importlib.util.find_spec('nncf') else [])
    assert list(rows) == ['eager', 'optimize', 'onnxruntime'] + int8
    for name in ('optimize', 'onnxruntime'):  # ~1e-6 from eager
        assert rows[name]['status'] == 'refused'
        assert 'over the tolerance 1e-12' in rows[name]['reason']
        assert 0 < rows[name]['error'] < 1e-4
    assert rows['eager']['status'] == 'kept' and rows['eager']['error'] == 0
    for name in int8:  # not fp32: the metric decides
        assert rows[name]['status'] == 'kept'
    assert report['int8'] == dict(keep_fp32=['retina_cls'])
    for row in rows.values():
        assert row['latency_ms'] > 0 and 'coco/bbox_mAP' in row['metrics']
    assert report['winner']['path'] in ['eager'] + int8
    saved = json.loads((out / 'report.json').read_text())
    assert saved['winner'] == report['winner']
    assert saved['machine']['capability']
    text = (out / 'report.md').read_text()
    assert 'Fastest kept path' in text and 'over the tolerance' in text


def test_int8_paths_kept_the_parts_asked_in_fp32(tuned):
    _, out, _ = tuned
    from mmconvmlp.deploy.metadata import read_metadata
    for name in ('model_int8.onnx', 'model_nncf_int8.onnx'):
        if (out / 'work' / name).is_file():
            info = read_metadata(str(out / 'work' / name))['quantization']
            assert info['keep_fp32'] == ['retina_cls']
            assert info['nodes_kept_fp32'] == 5  # one per pyramid level


def test_an_openvino_bf16_winner_runs_with_its_precision(tmp_path):
    from mmconvmlp.deploy.tune import write_winner
    onnx_file = tmp_path / 'work' / 'model.onnx'
    onnx_file.parent.mkdir()
    onnx_file.write_bytes(b'exported')
    win = write_winner(dict(path='openvino bf16', runtime='openvino',
                            precision='bf16'), 'cfg.py', 'ckpt.pth',
                       str(onnx_file), str(tmp_path),
                       {'test_dataloader.dataset.pipeline.1.scale':
                        (160, 160)})
    assert win['command'] == (
        f'python tools/test.py cfg.py {tmp_path}/winner.onnx --backend '
        "openvino --precision bf16 --cfg-options "
        "'test_dataloader.dataset.pipeline.1.scale=(160, 160)'")
    assert (tmp_path / 'winner.onnx').read_bytes() == b'exported'
