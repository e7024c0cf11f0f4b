"""Multi-process training on the CPU, and a run killed and resumed."""
import os
import pickle
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from mmconvmlp.checkpoint import load_file
from quick_runs import KEEP_ALL_BOXES, NO_WORKERS

RETINANET = 'detection/retinanet_convmlp_s_builtin.py'
QUIET = [*NO_WORKERS, *KEEP_ALL_BOXES, 'default_hooks.logger.interval=1']


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist(script, *args, cwd, repo_root):
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()),
               PYTHONPATH=str(repo_root), OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', str(repo_root / 'tools' / script),
                           *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_two_process_training_on_cpu(run_tool, repo_root, builtin_workspace,
                                     config_path, tmp_path):
    """2 processes over gloo, SyncBN in the backbone; the checkpoint then
    loads in one process and predicts as the 2-process test does."""
    cfg, ws = config_path(RETINANET), builtin_workspace
    log = _dist('dist_train.sh', cfg, 2, '--work-dir', tmp_path / 'work',
                '--cfg-options', *QUIET, 'train_cfg.max_epochs=1',
                'train_cfg.val_interval=1',
                'model.backbone.norm_cfg.type=SyncBN', cwd=ws,
                repo_root=repo_root)
    assert 'Distributed launcher: pytorch' in log
    assert "backend': 'gloo'" in log or 'gloo' in log
    assert 'coco/bbox_mAP:' in log
    ckpt = tmp_path / 'work/epoch_1.pth'
    # 8 images, 2 processes x batch 2: 2 iterations an epoch
    assert load_file(str(ckpt))['meta']['iter'] == 2

    _dist('dist_test.sh', cfg, ckpt, 2, '--work-dir', tmp_path / 'test2',
          '--out', tmp_path / 'two.pkl', '--cfg-options', *QUIET, cwd=ws,
          repo_root=repo_root)
    run_tool('test.py', cfg, ckpt, '--work-dir', tmp_path / 'test1', '--out',
             tmp_path / 'one.pkl', '--cfg-options', *QUIET, cwd=ws)
    with open(tmp_path / 'one.pkl', 'rb') as f:
        one = pickle.load(f)
    with open(tmp_path / 'two.pkl', 'rb') as f:
        two = pickle.load(f)
    assert len(one) == len(two) == 4
    for a, b in zip(sorted(one, key=lambda r: r['img_id']),
                    sorted(two, key=lambda r: r['img_id'])):
        pa, pb = a['pred_instances'], b['pred_instances']
        torch.testing.assert_close(pa['scores'], pb['scores'])
        # near-equal scores of a barely trained head may swap places:
        # match each box with the closest box of its label
        for box, label in zip(pb['bboxes'], pb['labels']):
            same = pa['bboxes'][pa['labels'] == label]
            assert (same - box).abs().max(dim=1).values.min() < 1e-3


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(run_tool, repo_root,
                                                builtin_workspace,
                                                config_path, tmp_path):
    cfg, ws = config_path(RETINANET), builtin_workspace
    opts = [*QUIET, 'train_cfg.max_epochs=3', 'train_cfg.val_interval=10',
            'randomness.seed=0', 'randomness.deterministic=True']
    run_tool('train.py', cfg, '--work-dir', tmp_path / 'straight',
             '--cfg-options', *opts, cwd=ws)

    work = tmp_path / 'killed'
    log_path = tmp_path / 'killed.log'
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS='2')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [sys.executable, str(repo_root / 'tools/train.py'), cfg,
             '--work-dir', str(work), '--cfg-options', *opts], cwd=ws,
            env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 600
        while 'Epoch(train) [2][2/4]' not in log_path.read_text():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)  # in the middle of epoch 2
        proc.wait()
    assert (work / 'epoch_1.pth').is_file()
    assert not (work / 'epoch_2.pth').exists()
    assert not [p for p in work.iterdir() if p.name.startswith('.tmp-')]

    out = run_tool('train.py', cfg, '--work-dir', work, '--resume',
                   '--cfg-options', *opts, cwd=ws)
    assert 'resumed epoch: 1' in out.stdout + out.stderr
    straight = load_file(str(tmp_path / 'straight/epoch_3.pth'))
    resumed = load_file(str(work / 'epoch_3.pth'))
    assert straight['state_dict'].keys() == resumed['state_dict'].keys()
    for key, value in straight['state_dict'].items():
        assert torch.equal(resumed['state_dict'][key], value), key
    # what we write is plain data: stock weights-only torch.load opens it
    for name in ('epoch_2.pth', 'epoch_3.pth'):  # max_keep_ckpts=2
        assert torch.serialization.get_unsafe_globals_in_checkpoint(
            work / name) == [], name


@pytest.mark.parametrize('damage', ['truncate', 'garbage'])
def test_corrupt_checkpoint_is_one_clear_error(run_tool, builtin_workspace,
                                               config_path, tmp_path, damage):
    bad = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'w': torch.zeros(100)}}, bad)
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data) // 2] if damage == 'truncate' else
                    b'\x80\x04garbage' * 50)
    for script, args in (('test.py', [bad]), ('train.py', ['--resume', bad])):
        out = run_tool(script, config_path(RETINANET), *args, '--work-dir',
                       tmp_path / 'w', cwd=builtin_workspace, check=False)
        assert out.returncode != 0
        assert f'cannot read checkpoint {bad}' in out.stderr
        assert 'UnpicklingError' not in out.stderr.replace(
            'cannot read checkpoint', '')


class _RunsCode:

    def __reduce__(self):
        return (os.system, (f'touch {os.environ["PWNED_MARKER"]}', ))


def test_code_in_checkpoint_refused_by_every_tool(run_tool, builtin_workspace,
                                                  config_path, tmp_path,
                                                  monkeypatch):
    marker = tmp_path / 'pwned'
    monkeypatch.setenv('PWNED_MARKER', str(marker))
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': {}, 'x': _RunsCode()}, evil)
    cfg = config_path(RETINANET)
    for script, args in (('test.py', [cfg, evil]),
                         ('train.py', [cfg, '--resume', evil]),
                         ('model_converters/convert_official.py',
                          [evil, tmp_path / 'out.pth'])):
        out = run_tool(script, *args, cwd=builtin_workspace, check=False)
        assert out.returncode != 0
        assert 'refused to load' in out.stderr, out.stderr[-2000:]
    assert not marker.exists()
