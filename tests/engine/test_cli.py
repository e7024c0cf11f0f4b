"""Config handling shared by tools/train.py and tools/test.py."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmconvmlp.engine.cli import (check_cfg_options, configure_train,
                                  load_config, train_parser)

CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'detection',
                  'retinanet_convmlp_s.py')


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(CONFIG)


@pytest.mark.parametrize('key', [
    'train_dataloader.batch_size', 'model.backbone.with_cp',
    'train_dataloader.dataset.pipeline.2.scale', 'work_dir', 'randomness',
    'model.backbone.norm_cfg.type', 'train_dataloader.pin_memory'])
def test_existing_or_argument_keys_pass(cfg, key):
    check_cfg_options(cfg, {key: 1})


@pytest.mark.parametrize('key, message', [
    ('train_dataloder.batch_size', "no key 'train_dataloder' in the top level "
     'of the config; did you mean train_dataloader'),
    ('model.backbon.arch', "no key 'backbon' in model; did you mean backbone"),
    ('optim_wraper', "no key 'optim_wraper'"),
    ('model.backbone.archh', "no key 'archh' in model.backbone; did you mean "
     'arch'),
    ('train_dataloader.dataset.pipeline.9.scale', 'has only 5 entries'),
])
def test_typos_are_refused(cfg, key, message):
    with pytest.raises(KeyError, match=message):
        check_cfg_options(cfg, {key: 1})


def test_train_flags(tmp_path):
    ckpt = tmp_path / 'epoch_3.pth'
    ckpt.write_bytes(b'')
    args = train_parser().parse_args([CONFIG, '--resume', str(ckpt),
                                      '--auto-scale-lr', '--cfg-options',
                                      'train_dataloader.batch_size=4'])
    cfg = configure_train(load_config(args), args)
    assert cfg.resume and cfg.load_from == str(ckpt)
    assert cfg.auto_scale_lr.enable
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.work_dir == './work_dirs/retinanet_convmlp_s'
    args = train_parser().parse_args([CONFIG, '--resume'])
    cfg = configure_train(load_config(args), args)
    assert cfg.resume and cfg.load_from is None


def test_missing_resume_file_is_named(tmp_path):
    args = train_parser().parse_args([CONFIG, '--resume',
                                      str(tmp_path / 'gone.pth')])
    with pytest.raises(FileNotFoundError, match='gone.pth'):
        configure_train(load_config(args), args)


def test_missing_config_is_named():
    args = train_parser().parse_args(['configs/nope.py'])
    with pytest.raises(FileNotFoundError, match='configs/nope.py'):
        load_config(args)


@pytest.mark.parametrize('option, expected', [
    ('model.neck.in_channels=[256,512,1024,2048]', '[64, 128, 256, 512]'),
    ('model.backbone.arch=l', '[96, 192, 384, 768]'),
])
def test_neck_channels_must_match_backbone(option, expected):
    args = train_parser().parse_args([CONFIG, '--cfg-options', option])
    with pytest.raises(ValueError, match=r'do not match the channels of the '
                       r'ConvMLP backbone.*set model.neck.in_channels=' +
                       expected.replace('[', r'\[').replace(']', r'\]')):
        load_config(args)


@pytest.mark.parametrize('junk,message', [
    ('foo', "'foo': expected KEY=VALUE"),
    ('=1', "'' is not a config key"),
    ('a..b=1', "'' is not a config key"),
    ('model.__class__=1', "'__class__' is not a config key"),
    ('model.backbone.arch-x=1', "'arch-x' is not a config key"),
    ("__import__('os')=1", "is not a config key"),
])
def test_cfg_options_junk_is_one_line(junk, message, capsys):
    with pytest.raises(SystemExit) as info:
        train_parser().parse_args([CONFIG, '--cfg-options', junk])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'error: argument --cfg-options' in err and message in err


def test_optimize_flag_adds_the_hook(tmp_path):
    from mmconvmlp.engine.cli import configure_test, test_parser
    ckpt, settings = tmp_path / 'model.pth', tmp_path / 'winner.json'
    ckpt.write_bytes(b'')
    settings.write_text('{"optimize_for_inference": {"winograd": false}}')
    args = test_parser().parse_args([CONFIG, str(ckpt), '--optimize',
                                     str(settings)])
    cfg = configure_test(load_config(args), args)
    assert cfg.custom_hooks[-1] == dict(
        type='mmconvmlp.OptimizeForInferenceHook', winograd=False)
    args = test_parser().parse_args([CONFIG, str(ckpt), '--optimize',
                                     str(settings), '--backend', 'openvino'])
    with pytest.raises(ValueError, match='--optimize applies to the PyTorch'):
        configure_test(load_config(args), args)
