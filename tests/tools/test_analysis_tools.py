"""The analysis tools end to end: benchmark_seg, get_flops, vis_featmaps."""
import csv
import json

import pytest
from PIL import Image

from mmconvmlp.model_zoo import list_configs, load_model_index

TWO_SOURCES = ['semantic_fpn_convmlp_s',
               'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py']


@pytest.mark.slow
def test_benchmark_seg_two_sources_and_a_bad_one(run_tool, tmp_path):
    out = tmp_path / 'bench'
    proc = run_tool('analysis_tools/benchmark_seg.py', *TWO_SOURCES,
                    'no_such_config', '--sizes', '64x96', '--repeats', '2',
                    '--warmup', '1', '--rounds', '2', '--out-dir', out,
                    cwd=tmp_path)
    assert "skipped no_such_config: unknown config 'no_such_config'" in (
        proc.stdout)
    assert proc.stdout.count('[benchmark_seg] round') == 4  # 2 models x 2
    markdown = (out / 'benchmark_seg.md').read_text()
    assert 'semantic_fpn_convmlp_s' in markdown
    assert 'fpn_r50_4xb4-160k_ade20k-512x512' in markdown
    rows = list(csv.DictReader(open(out / 'benchmark_seg.csv')))
    measured = [r for r in rows if r['mode'] == 'forward']
    assert len(measured) == 2
    for row in measured:
        assert float(row['latency_ms']) > 0 and int(row['samples']) == 4
        assert float(row['whole_gflops']) > float(row['backbone_gflops']) > 0
    reported = {r['model']: r['reported_miou'] for r in measured}
    assert reported == {'semantic_fpn_convmlp_s': '35.8',
                        'fpn_r50_4xb4-160k_ade20k-512x512': '37.49'}
    data = json.loads((out / 'benchmark_seg.json').read_text())
    assert data['environment']['threads'] >= 1
    assert 'CPU' in data['environment']['hardware']
    assert any('no_such_config' in r.get('error', '') for r in data['rows'])
    for name in ('benchmark_seg_pareto.png', 'benchmark_seg_cost.png'):
        width, height = Image.open(out / name).size
        assert width > 400 and height > 300


@pytest.mark.slow
def test_benchmark_seg_pipeline_and_miou(run_tool, tmp_path,
                                         builtin_workspace):
    """--dataset times the real test pipeline and, with a checkpoint,
    evaluates; a checkpoint that does not fit is one clear line."""
    import torch

    import mmconvmlp  # noqa: F401
    from mmconvmlp.analysis.complexity import build_untrained, load_config
    from mmconvmlp.model_zoo import config_path
    cfg = config_path('semantic_fpn_convmlp_s_builtin')
    ckpt = tmp_path / 'seg.pth'
    torch.save({'state_dict': build_untrained(load_config(cfg)).state_dict()},
               ckpt)
    wrong = tmp_path / 'wrong.pth'
    torch.save({'state_dict': {'backbone.x': torch.zeros(1)}}, wrong)
    proc = run_tool('analysis_tools/benchmark_seg.py', f'{cfg}:{ckpt}',
                    f'{cfg}:{wrong}', '--dataset', '--sizes', '64x64',
                    '--repeats', '2', '--warmup', '1', '--rounds', '1',
                    '--out-dir', tmp_path / 'out', cwd=builtin_workspace)
    assert 'does not fit' in proc.stdout
    rows = list(csv.DictReader(open(tmp_path / 'out' / 'benchmark_seg.csv')))
    modes = {r['mode'] for r in rows if r.get('latency_ms')}
    assert modes == {'forward', 'pipeline'}
    assert all(0 <= float(r['miou']) <= 100 for r in rows
               if r.get('latency_ms'))


@pytest.mark.slow
def test_get_flops_every_config(run_tool, tmp_path):
    proc = run_tool('analysis_tools/get_flops.py', '--all', '--shape', '128',
                    '160', cwd=tmp_path)
    table = [line for line in proc.stdout.splitlines()
             if line.startswith('| ') and 'config' not in line]
    shipped = [n for n in list_configs() if not n.endswith('_builtin')]
    assert len(table) == len(shipped) == 9
    for line in table:
        cells = [c.strip() for c in line.strip('|').split('|')]
        whole, backbone, neck, heads = (float(cells[i]) for i in (2, 4, 6, 8))
        assert whole == pytest.approx(backbone + neck + heads, abs=0.02)
        assert backbone > 0 and neck > 0 and heads > 0
    params = {line.split('|')[1].strip(): float(line.split('|')[4])
              for line in table}
    assert params['retinanet_convmlp_s'] == pytest.approx(18.74, abs=0.01)
    # the model index states what the counter measures
    for model in load_model_index():
        assert params[model['Name']] == pytest.approx(float(
            model['Metadata']['Parameters'].rstrip('M')), abs=0.005)
    one = run_tool('analysis_tools/get_flops.py', 'mask_rcnn_convmlp_s',
                   '--shape', '96', cwd=tmp_path).stdout
    assert 'input shape: 96x96' in one and 'backbone' in one


@pytest.mark.slow
def test_vis_featmaps_compare(run_tool, tmp_path, builtin_workspace):
    image = next((builtin_workspace / 'data' / 'builtin' / 'images' /
                  'validation').glob('*.jpg'))
    out = tmp_path / 'maps.png'
    proc = run_tool(
        'analysis_tools/vis_featmaps.py', image, 'retinanet_convmlp_s',
        '--out', out, '--short-side', '96', '--compare',
        'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', cwd=tmp_path)
    assert '2 row(s) of 4 panels' in proc.stdout
    width, height = Image.open(out).size
    assert (width, height) == (4 * 96, 2 * (96 + 22))
    neck = tmp_path / 'neck.png'
    run_tool('analysis_tools/vis_featmaps.py', image,
             'semantic_fpn_convmlp_s', '--out', neck, '--neck',
             '--short-side', '64', '--topk', '4', cwd=tmp_path)
    assert Image.open(neck).size == (4 * 64, 64 + 22)
