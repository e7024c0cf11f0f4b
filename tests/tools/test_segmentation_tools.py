"""train.py, --resume and test.py on segmentation; the benchmark tools."""
import csv
import re
import subprocess
import sys

import pytest

from mmconvmlp.checkpoint import load_file
from quick_runs import NO_WORKERS
from stock_apis import SEGMENTATION, check_stock_output, run_stock

SEM_FPN = 'segmentation/semantic_fpn_convmlp_s_builtin.py'
FAST = [*NO_WORKERS, 'train_dataloader.batch_size=2',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1']


@pytest.mark.slow
def test_train_resume_test(run_tool, builtin_workspace, config_path, tmp_path):
    ws, cfg = builtin_workspace, config_path(SEM_FPN)
    work = tmp_path / 'work'
    run_tool('train.py', cfg, '--work-dir', work, '--cfg-options', *FAST,
             'train_cfg.max_iters=4', 'train_cfg.val_interval=4', cwd=ws)
    assert (work / 'iter_4.pth').is_file()
    out = run_tool('train.py', cfg, '--work-dir', work, '--resume',
                   '--cfg-options', *FAST, 'train_cfg.max_iters=6',
                   'train_cfg.val_interval=6', cwd=ws)
    log = out.stdout + out.stderr
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [6/6]' in log and 'Iter(train) [2/6]' not in log
    assert load_file(str(work / 'iter_6.pth'))['meta']['iter'] == 6
    out = run_tool('test.py', cfg, work / 'iter_6.pth', '--work-dir',
                   tmp_path / 'test', '--out', tmp_path / 'pred',
                   '--cfg-options', *NO_WORKERS, cwd=ws)
    log = out.stdout + out.stderr
    assert 'mIoU:' in log
    assert len(list((tmp_path / 'pred').glob('*.png'))) == 4
    miou = float(re.search(r'mIoU: ([0-9.]+)', log).group(1))

    # mmseg's own APIs open the checkpoint (stock weights-only torch.load)
    image = ws / 'data/builtin/images/validation/0000.jpg'
    out = run_stock(SEGMENTATION, cfg, work / 'iter_6.pth', image, cwd=ws)
    check_stock_output(out)
    assert "classes ('background', 'disc', 'square', 'triangle')" in out

    # the benchmark reports the same mIoU through the normal test loop
    run_tool('analysis_tools/benchmark_seg.py', f'{cfg}:{work / "iter_6.pth"}',
             '--dataset', '--sizes', '64x64', '--repeats', '1', '--warmup',
             '0', '--rounds', '1', '--backends', 'pytorch', 'onnxruntime',
             '--out-dir', tmp_path / 'bench', cwd=ws)
    rows = list(csv.DictReader(open(tmp_path / 'bench' / 'benchmark_seg.csv')))
    assert [(r['model'].endswith('[onnxruntime]'), r['mode'])
            for r in rows] == [(False, 'forward'), (False, 'pipeline'),
                               (True, 'forward'), (True, 'pipeline')]
    # the exported file's mIoU equals the checkpoint's (within 0.1 points)
    assert all(float(r['miou']) == pytest.approx(miou, abs=0.1) for r in rows)


@pytest.mark.slow
def test_benchmark_default_comparison(repo_root, tmp_path):
    """Without configs: ConvMLP-S/M/L and mmseg's Semantic FPN peers."""
    cmd = [sys.executable,
           str(repo_root / 'tools/analysis_tools/benchmark_seg.py'),
           '--out-dir', str(tmp_path), '--sizes', '64x96', '--repeats', '1',
           '--warmup', '0', '--rounds', '1']
    subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                   check=True, timeout=900)
    rows = list(csv.DictReader(open(tmp_path / 'benchmark_seg.csv')))
    reported = {r['model']: float(r['reported_miou']) for r in rows}
    assert reported == {
        'semantic_fpn_convmlp_s': 35.8, 'semantic_fpn_convmlp_m': 38.6,
        'semantic_fpn_convmlp_l': 40.0,
        'fpn_r50_4xb4-160k_ade20k-512x512': 37.49,
        'fpn_r101_4xb4-160k_ade20k-512x512': 39.35,
        'twins_pcpvt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512': 43.26,
        'twins_svt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512': 44.47}
    for row in rows:
        for key in ('latency_ms', 'fps', 'whole_gflops', 'backbone_gflops',
                    'heads_gflops', 'whole_mparams'):
            assert float(row[key]) > 0, (row['model'], key)


@pytest.mark.slow
def test_backbone_benchmark_tool_prints_every_path(repo_root):
    cmd = [sys.executable,
           str(repo_root / 'tools/analysis_tools/benchmark_backbone.py'),
           '--archs', 's', '--sizes', '64x96', '--repeats', '1',
           '--train-size', '64x64', '--end-to-end', '--e2e-size', '96x128']
    out = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True,
                         check=True, timeout=900).stdout
    for path in ('straightforward (reference)', 'default module',
                 'winograd=True module', 'optimized fp32, direct convs',
                 'optimized fp32', 'optimized fp32, probed',
                 'optimized bf16', 'mmdet ResNet-50',
                 'fwd+bwd, default module (direct convs)',
                 'fwd+bwd, winograd=True module',
                 'peak memory, live tensors, with with_cp (MiB)',
                 'peak memory, process (RSS growth), with with_cp (MiB)',
                 'ONNX Runtime', 'OpenVINO'):
        assert f'| {path} |' in out or f'| s | 64x96 | {path} |' in out
    for model in ('RetinaNet-ConvMLP-S', 'Mask R-CNN-ConvMLP-S',
                  'Semantic FPN-ConvMLP-S'):
        for path in ('PyTorch eager', 'optimize_for_inference fp32',
                     'optimize_for_inference bf16', 'onnxruntime',
                     'openvino'):
            assert f'| {model} | 96x128 | {path} |' in out
    for path in ('optimize_for_inference fp32', 'onnxruntime', 'openvino'):
        for row in (r for r in out.splitlines() if f'| {path} |' in r):
            assert ('100.0000% of pixels equal' in row
                    or '100/100 boxes matched' in row), row
    fastest = out.split('## Fastest path per arch and size')[1]
    assert '| s | 64x96 |' in fastest
    for path in ('optimized fp32, direct convs', 'optimized fp32',
                 'optimized fp32, probed', 'ONNX Runtime', 'OpenVINO'):
        row = next(r for r in out.splitlines() if f'| {path} |' in r)
        assert float(row.strip('|').split('|')[-1]) < 1e-4  # error vs eager
