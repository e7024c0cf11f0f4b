"""The int8 comparison on a tiny model: every setting quantized, evaluated
and timed against the float32 files."""
import os

import pytest
from mmengine.config import Config

from mmconvmlp.analysis.int8_benchmark import int8_benchmark, int8_table
from mmconvmlp.checkpoint import save_file

pytest.importorskip('onnxruntime')
pytest.importorskip('openvino')
pytest.importorskip('nncf')

RETINANET = 'detection/retinanet_convmlp_s_builtin.py'


@pytest.mark.slow
def test_settings_are_evaluated_and_timed(tmp_path, builtin_workspace,
                                          config_path, spread_model):
    cfg = Config.fromfile(config_path(RETINANET))
    ckpt = str(tmp_path / 'model.pth')
    save_file({'state_dict': spread_model(cfg).state_dict(),
               'meta': {'dataset_meta': dict(
                   cfg.test_dataloader.dataset.metainfo)}}, ckpt)
    cwd = os.getcwd()
    os.chdir(builtin_workspace)  # the config's data_root is relative
    try:
        rows = int8_benchmark(config_path(RETINANET), ckpt,
                              str(tmp_path / 'work'), shape=(64, 64),
                              settings=['onnxruntime minmax S8S8', 'nncf'],
                              keep_fp32=['retina_cls'], num=4, repeats=1)
    finally:
        os.chdir(cwd)
    names = [r['name'] for r in rows]
    assert names == ['fp32 onnxruntime', 'fp32 openvino',
                     'onnxruntime minmax S8S8', 'nncf',
                     'nncf + fp32 retina_cls']
    assert [r['runtime'] for r in rows] == ['onnxruntime', 'openvino',
                                            'onnxruntime', 'openvino',
                                            'openvino']
    assert rows[0]['drop'] == 0 and rows[0]['speedup'] == 1
    assert rows[1]['drop'] == 0  # the float32 files agree
    for row in rows:
        assert 'coco/bbox_mAP' in row['metrics'] and row['latency_ms'] > 0
    assert 'S8S8' in rows[2]['settings']
    assert rows[4]['nodes_kept_fp32'] == 5
    table = int8_table(rows)
    assert table.count('\n') == len(rows) + 1 and 'vs ORT fp32' in table
    with pytest.raises(ValueError, match="int8 settings \\['fp8'\\]"):
        int8_benchmark(config_path(RETINANET), ckpt, str(tmp_path / 'w2'),
                       settings=['fp8'])
