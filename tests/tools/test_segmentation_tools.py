"""train.py, --resume and test.py on segmentation; the benchmark tool."""
import subprocess
import sys

import pytest

from mmconvmlp.checkpoint import load_file
from quick_runs import NO_WORKERS

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
    assert 'mIoU:' in out.stdout + out.stderr
    assert len(list((tmp_path / 'pred').glob('*.png'))) == 4

    # the benchmark reports mIoU through the normal test loop
    bench = run_tool('analysis_tools/benchmark_seg.py', '--models',
                     'ConvMLP-S', '--sizes', '64x64', '--repeats', '1',
                     '--out-dir', tmp_path / 'bench', '--eval-config', cfg,
                     '--eval-checkpoint', work / 'iter_6.pth', cwd=ws)
    assert f'mIoU of {work / "iter_6.pth"}:' in bench.stdout


@pytest.mark.slow
def test_benchmark_tool_covers_every_model(repo_root, tmp_path):
    cmd = [sys.executable, str(repo_root / 'tools/analysis_tools/benchmark_seg.py'),
           '--out-dir', str(tmp_path), '--sizes', '64x96', '--repeats', '1']
    out = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True,
                         check=True, timeout=900).stdout
    table = (tmp_path / 'benchmark_seg.md').read_text()
    for model in ('ConvMLP-S', 'ConvMLP-M', 'ConvMLP-L', 'ResNet-50 (mmseg)'):
        rows = [r for r in table.splitlines() if r.startswith(f'| {model} |')]
        assert len(rows) == 2  # backbone and whole model
        for row in rows:
            cells = [c.strip() for c in row.strip('|').split('|')]
            latency, fps, flops, params = (float(cells[i]) for i in
                                           (3, 4, 6, 7))
            assert latency > 0 and fps > 0 and flops > 0 and params > 0
    assert 'paper mIoU (not measured)' in table
    assert (tmp_path / 'benchmark_seg.png').stat().st_size > 0
    assert 'ConvMLP-S' in out


@pytest.mark.slow
def test_backbone_benchmark_tool_prints_every_path(repo_root):
    cmd = [sys.executable,
           str(repo_root / 'tools/analysis_tools/benchmark_backbone.py'),
           '--archs', 's', '--sizes', '64x96', '--repeats', '1',
           '--train-size', '64x64', '--end-to-end', '--e2e-size', '96x128']
    out = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True,
                         check=True, timeout=900).stdout
    for path in ('straightforward (reference)', 'default module',
                 'optimized fp32, direct convs', 'optimized fp32',
                 'optimized bf16', 'mmdet ResNet-50',
                 'fwd+bwd, default module',
                 'peak memory, live tensors, with with_cp (MiB)',
                 'peak memory, process (RSS growth), with with_cp (MiB)',
                 'RetinaNet-ConvMLP-S', 'Semantic FPN-ConvMLP-S'):
        assert f'| {path} |' in out or f'| s | 64x96 | {path} |' in out
    for path in ('optimized fp32, direct convs', 'optimized fp32'):
        row = next(r for r in out.splitlines() if f'| {path} |' in r)
        assert float(row.strip('|').split('|')[-1]) < 1e-4  # error vs eager
