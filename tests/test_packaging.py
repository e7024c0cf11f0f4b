"""The built wheel, installed into a fresh virtualenv and used from outside
the repository, as a user would: list and load configs, inherit one, train
and test with the shipped tools."""
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, transcript, **kwargs):
    """Run ``cmd`` (no PYTHONPATH: nothing from the checkout leaks in),
    append it and its output to ``transcript``, return its stdout."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['OMP_NUM_THREADS'] = '2'
    proc = subprocess.run(list(map(str, cmd)), cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=900, **kwargs)
    transcript.append(f'$ {" ".join(map(str, cmd))}\n{proc.stdout[-1500:]}')
    assert proc.returncode == 0, f'{cmd}:\n{proc.stdout[-2000:]}\n' \
                                 f'{proc.stderr[-4000:]}'
    return proc.stdout


def _clean_copy(target):
    """The checkout's sources without build products (as a clean clone
    has them), so that no earlier build leaks into a wheel."""
    shutil.copytree(REPO, target, ignore=shutil.ignore_patterns(
        '.venv', '.git', 'build', 'dist', 'work_dirs', 'data', '*.so',
        '.mim', '*.egg-info', '__pycache__', '.whl'))
    return target


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel ``pip wheel`` builds from the checkout."""
    dist = tmp_path_factory.mktemp('dist')
    src = _clean_copy(dist / 'src')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '-w', str(dist), str(src)],
                   check=True, capture_output=True)
    return next(dist.glob('mmconvmlp-*.whl'))


@pytest.mark.slow
def test_wheel_carries_configs_tools_and_model_index(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names
                                if n.endswith('METADATA'))).decode()
    for path in ('configs/detection/retinanet_convmlp_s.py',
                 'configs/detection/metafile.yml',
                 'configs/segmentation/semantic_fpn_convmlp_l.py',
                 'configs/segmentation/metafile.yml', 'model-index.yml',
                 'tools/train.py', 'tools/test.py', 'tools/dist_train.sh',
                 'tools/analysis_tools/get_flops.py'):
        assert f'mmconvmlp/.mim/{path}' in names, path
    assert not any('__pycache__' in n for n in names)
    requires = [line for line in metadata.splitlines()
                if line.startswith('Requires-Dist')]
    plain = [r for r in requires if 'extra ==' not in r]
    # no stack's distribution is required: each would pull itself over the
    # other's (upstream mmengine over onedl-mmengine, or back)
    assert not any(name in r for r in plain for name in (
        'mmengine', 'mmdet', 'mmsegmentation', 'mmcv', 'onedl'))
    for extra in ('det', 'seg', 'onedl', 'all', 'tests'):
        assert f'Provides-Extra: {extra}' in metadata
    assert any(r.startswith('Requires-Dist: mmdet') and 'extra == "det"' in r
               for r in requires)
    onedl = [r for r in requires if 'extra == "onedl"' in r]
    assert any(r.startswith('Requires-Dist: onedl-mmdetection') for r in onedl)
    assert not any(r.split()[1].startswith(('mmengine', 'mmdet', 'mmseg'))
                   for r in onedl)
    assert 'License: Apache-2.0' in metadata


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_from_outside_the_repo(wheel, tmp_path):
    transcript = []
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)],
                   check=True)
    python = venv / 'bin' / 'python'
    site = subprocess.run([python, '-c', 'import sysconfig; print('
                           'sysconfig.get_paths()["purelib"])'],
                          check=True, capture_output=True,
                          text=True).stdout.strip()
    # torch, mmcv, mmdet, mmseg: reuse this environment's (a path entry,
    # whose .pth files -- our editable install -- are not processed)
    Path(site, 'dependencies.pth').write_text(
        sysconfig.get_paths()['purelib'] + '\n')
    user = tmp_path / 'user'
    user.mkdir()
    _run([sys.executable, '-m', 'pip', '--python', python, 'install', '-q',
          '--no-deps', '--force-reinstall', wheel], user, transcript)

    where = _run([python, '-c', 'import mmconvmlp; print(mmconvmlp.__file__)'],
                 user, transcript)
    assert where.startswith(site), where
    names = _run([python, '-m', 'mmconvmlp.model_zoo', 'list'], user,
                 transcript).split()
    assert 'detection/retinanet_convmlp_s' in names
    assert 'segmentation/semantic_fpn_convmlp_m' in names
    models = _run([python, '-m', 'mmconvmlp.model_zoo', 'models'], user,
                  transcript)
    assert 'retinanet_convmlp_s' in models and 'box AP 37.2' in models
    loaded = _run([python, '-c', textwrap.dedent('''
        from mmconvmlp.model_zoo import get_config
        cfg = get_config('semantic_fpn_convmlp_s')
        print(cfg.model.backbone.type, cfg.model.neck.in_channels)
    ''')], user, transcript)
    assert 'mmconvmlp.ConvMLP [64, 128, 256, 512]' in loaded

    base = _run([python, '-m', 'mmconvmlp.model_zoo', 'path',
                 'retinanet_convmlp_s_builtin'], user, transcript).strip()
    assert base.startswith(site) and '.mim/configs/detection' in base
    tool = {name: _run([python, '-m', 'mmconvmlp.model_zoo', 'path',
                        f'tools/{name}'], user, transcript).strip()
            for name in ('train.py', 'test.py',
                         'dataset_converters/make_builtin.py')}
    (user / 'my_retinanet.py').write_text(textwrap.dedent(f'''
        _base_ = {base!r}
        model = dict(bbox_head=dict(num_classes=3))
        train_cfg = dict(max_epochs=1, val_interval=1)
        train_dataloader = dict(num_workers=0, persistent_workers=False)
        val_dataloader = dict(num_workers=0, persistent_workers=False)
        test_dataloader = val_dataloader
    '''))
    _run([python, tool['dataset_converters/make_builtin.py'], 'data/builtin',
          '--num-train', '4', '--num-val', '2', '--size', '128'], user,
         transcript)
    _run([python, tool['train.py'], 'my_retinanet.py', '--work-dir', 'work'],
         user, transcript)
    assert (user / 'work' / 'epoch_1.pth').exists()
    tested = _run([python, tool['test.py'], 'my_retinanet.py',
                   'work/epoch_1.pth', '--work-dir', 'work',
                   '--cfg-options', 'model.test_cfg.score_thr=0.0'], user,
                  transcript)
    assert 'coco/bbox_mAP' in tested
    out = os.environ.get('MMCONVMLP_WHEEL_TRANSCRIPT')
    if out:
        Path(out).write_text('\n'.join(transcript))


@pytest.mark.slow
def test_failing_compiler_gives_a_wheel_without_the_op(tmp_path):
    """The op is optional: a compiler that fails leaves it out, says so,
    and the install goes on."""
    src = _clean_copy(tmp_path / 'src')
    env = dict(os.environ, CC='false', CXX='false')
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '-v', '--no-deps',
         '--no-build-isolation', '-w', str(tmp_path), str(src)],
        capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'the optional Winograd op was NOT built' in (proc.stdout +
                                                        proc.stderr)
    wheel = next(tmp_path.glob('mmconvmlp-*.whl'))
    with zipfile.ZipFile(wheel) as zf:
        assert not any('_winograd' in n for n in zf.namelist())
        assert 'mmconvmlp/.mim/model-index.yml' in zf.namelist()
