"""ExactResumeHook: safe, exact resume for stock tools, by one config line."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

#: What mmdet's and mmseg's tools/train.py do: read the config, build
#: mmengine's own Runner, train.
STOCK_TRAIN = textwrap.dedent('''
    import os, sys
    from mmengine.config import Config
    from mmengine.runner import Runner
    os.umask(0o022)
    cfg = Config.fromfile(sys.argv[1])
    cfg.work_dir = sys.argv[2]
    cfg.resume = sys.argv[3] == 'resume'
    Runner.from_cfg(cfg).train()
''')


def _user_config(path, base, max_epochs, with_hook):
    """A user's config: our builtin RetinaNet, tiny and quick."""
    hook = ("custom_hooks = [dict(type='mmconvmlp.ExactResumeHook')]\n"
            if with_hook else '')
    path.write_text(f'_base_ = {base!r}\n' + hook + textwrap.dedent(f'''
        train_cfg = dict(max_epochs={max_epochs}, val_interval=100)
        train_dataloader = dict(num_workers=0, persistent_workers=False)
        val_dataloader = dict(num_workers=0, persistent_workers=False)
        test_dataloader = val_dataloader
        default_hooks = dict(logger=dict(interval=1))
    '''))
    return str(path)


def _train(cfg, work_dir, resume, cwd):
    return subprocess.run(
        [sys.executable, '-c', STOCK_TRAIN, cfg, str(work_dir),
         'resume' if resume else 'new'], cwd=cwd, capture_output=True,
        text=True, env=dict(os.environ, OMP_NUM_THREADS='2'), timeout=900)


@pytest.mark.slow
def test_stock_runner_resumes_with_the_hook(tmp_path, builtin_workspace,
                                            config_path):
    base = config_path('detection/retinanet_convmlp_s_builtin.py')
    work = tmp_path / 'work'
    first = _train(_user_config(tmp_path / 'a.py', base, 1, True), work,
                   False, builtin_workspace)
    assert first.returncode == 0, first.stderr[-3000:]
    assert 'mmconvmlp: mmengine now reads local checkpoints' in first.stdout
    # a plain write's mode under umask 022, not 0600
    assert oct((work / 'epoch_1.pth').stat().st_mode & 0o777) == '0o644'
    assert oct((work / 'last_checkpoint').stat().st_mode & 0o777) == '0o644'

    # what the hook wrote is plain data: even stock mmengine, whose bare
    # torch.load is weights-only on torch >= 2.6, resumes from it
    shutil.copytree(work, tmp_path / 'stock')
    stock = _train(_user_config(tmp_path / 'b.py', base, 2, False),
                   tmp_path / 'stock', True, builtin_workspace)
    assert stock.returncode == 0, stock.stderr[-3000:]
    assert 'resumed epoch: 1' in stock.stdout

    second = _train(_user_config(tmp_path / 'c.py', base, 2, True), work,
                    True, builtin_workspace)
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'resumed epoch: 1' in second.stdout
    assert (work / 'epoch_2.pth').exists()


class _Runner:
    _resume = True


def test_checkpoints_are_plain_data_and_restore_exactly(tmp_path,
                                                        restore_mmengine_io):
    """What the hook writes opens with stock weights-only torch.load; on
    resume the message hub's HistoryBuffers and the random streams come
    back as they were."""
    import random

    from mmengine.logging import HistoryBuffer, MessageHub

    from mmconvmlp.engine import ExactResumeHook
    hub = MessageHub.get_instance('test_plain_hub')
    for value in (1.5, 2.5, np.float32(3.5)):
        hub.update_scalar('train/loss', value)
    hub.update_info('iter', np.int64(7))
    hook = ExactResumeHook()
    checkpoint = dict(meta=dict(seed=np.int64(1), dataset_meta=dict(
        classes=('a', 'b'))), state_dict={'w': torch.ones(1)},
        message_hub=hub.state_dict())
    np.random.seed(5)
    torch.manual_seed(5)
    random.seed(5)
    hook.before_save_checkpoint(_Runner(), checkpoint)
    expected = (np.random.rand(3), torch.rand(3), random.random())
    path = tmp_path / 'epoch_1.pth'
    torch.save(checkpoint, path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    loaded = torch.load(path)  # stock, weights-only
    assert loaded['meta']['dataset_meta']['classes'] == ('a', 'b')

    hook.after_load_checkpoint(_Runner(), loaded)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    original = hub.log_scalars['train/loss']
    for mine, theirs in zip(buffer.data, original.data):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
    assert loaded['message_hub']['runtime_info']['iter'] == 7
    fresh = MessageHub.get_instance('test_plain_hub_resumed')
    fresh.load_state_dict(loaded['message_hub'])
    assert fresh.get_scalar('train/loss').mean() == original.mean()

    np.random.seed(0)
    torch.manual_seed(0)
    random.seed(0)
    hook.before_train(_Runner())
    again = (np.random.rand(3), torch.rand(3), random.random())
    assert np.array_equal(again[0], expected[0])
    assert torch.equal(again[1], expected[1]) and again[2] == expected[2]
