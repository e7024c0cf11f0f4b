"""ExactResumeHook: safe, exact resume for stock tools, by one config line."""
import os
import subprocess
import sys
import textwrap

import pytest

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

    # without the hook, stock mmengine cannot resume on torch >= 2.6
    stock = _train(_user_config(tmp_path / 'b.py', base, 2, False), work,
                   True, builtin_workspace)
    assert stock.returncode != 0
    assert 'Weights only load failed' in stock.stderr

    second = _train(_user_config(tmp_path / 'c.py', base, 2, True), work,
                    True, builtin_workspace)
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'resumed epoch: 1' in second.stdout
    assert (work / 'epoch_2.pth').exists()
