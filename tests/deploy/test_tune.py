"""The tune command at a tiny size: it compares the paths, refuses those
beyond the tolerance, writes the report and a runnable winner."""
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
                             'onnxruntime int8'])
    finally:
        os.chdir(cwd)
    return report, root / 'out', ckpt


@pytest.mark.slow
def test_paths_are_compared_refused_and_reported(tuned):
    report, out, _ = tuned
    rows = {r['path']: r for r in report['paths']}
    assert list(rows) == ['eager', 'optimize', 'onnxruntime',
                          'onnxruntime int8']
    for name in ('optimize', 'onnxruntime'):  # ~1e-6 from eager
        assert rows[name]['status'] == 'refused'
        assert 'over the tolerance 1e-12' in rows[name]['reason']
        assert 0 < rows[name]['error'] < 1e-4
    assert rows['eager']['status'] == 'kept' and rows['eager']['error'] == 0
    assert rows['onnxruntime int8']['status'] == 'kept'  # not fp32: metric
    for row in rows.values():
        assert row['latency_ms'] > 0 and 'coco/bbox_mAP' in row['metrics']
    assert report['winner']['path'] in ('eager', 'onnxruntime int8')
    saved = json.loads((out / 'report.json').read_text())
    assert saved['winner'] == report['winner']
    assert saved['machine']['capability']
    text = (out / 'report.md').read_text()
    assert 'Fastest kept path' in text and 'over the tolerance' in text
