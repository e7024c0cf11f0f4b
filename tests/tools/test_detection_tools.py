"""train.py, --resume, test.py, demo.py and the converter on detection."""
import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from mmconvmlp.checkpoint import load_file
from quick_runs import KEEP_ALL_BOXES, NO_WORKERS
from stock_apis import DETECTION, check_stock_output, run_stock

RETINANET = 'detection/retinanet_convmlp_s_builtin.py'
FAST = ['train_cfg.max_epochs=2', 'train_cfg.val_interval=2', *KEEP_ALL_BOXES,
        *NO_WORKERS]


@pytest.mark.slow
def test_train_resume_test_demo(run_tool, builtin_workspace, config_path, tmp_path):
    ws, cfg = builtin_workspace, config_path(RETINANET)
    work = tmp_path / 'work'
    run_tool('train.py', cfg, '--work-dir', work, '--cfg-options', *FAST,
             cwd=ws)
    assert (work / 'epoch_2.pth').is_file()
    # written atomically, yet with a plain write's mode under umask 022
    for name in ('epoch_2.pth', 'last_checkpoint'):
        assert oct((work / name).stat().st_mode & 0o777) == '0o644', name
    ckpt = load_file(str(work / 'epoch_2.pth'))
    assert ckpt['meta']['epoch'] == 2
    assert ckpt['meta']['dataset_meta']['classes'] == ('disc', 'square',
                                                      'triangle')

    # --resume (auto: the latest checkpoint in the work dir) goes on to epoch 3
    more = [o.replace('max_epochs=2', 'max_epochs=3') for o in FAST]
    out = run_tool('train.py', cfg, '--work-dir', work, '--resume',
                   '--cfg-options', *more, cwd=ws)
    log = out.stdout + out.stderr
    assert 'resumed epoch: 2' in log
    assert 'Epoch(train) [3]' in log and 'Epoch(train) [1]' not in log
    resumed = load_file(str(work / 'epoch_3.pth'))
    assert resumed['meta']['epoch'] == 3
    assert resumed['meta']['iter'] == 3 * 4  # 4 iterations an epoch

    # test.py: COCO metrics, dumped predictions, drawn images
    out = run_tool('test.py', cfg, work / 'epoch_3.pth', '--work-dir',
                   tmp_path / 'test', '--out', tmp_path / 'preds.pkl',
                   '--show-dir', tmp_path / 'vis', '--cfg-options',
                   'model.test_cfg.score_thr=0.0',
                   'test_dataloader.num_workers=0',
                   'test_dataloader.persistent_workers=False', cwd=ws)
    log = out.stdout + out.stderr
    assert 'coco/bbox_mAP:' in log and 'coco/bbox_mAP_50:' in log
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 4 and 'pred_instances' in preds[0]
    assert len(list((tmp_path / 'vis').glob('*.jpg'))) == 4

    # demo.py draws one image
    image = ws / 'data/builtin/images/validation/0000.jpg'
    run_tool('demo.py', image, cfg, work / 'epoch_3.pth', '--out',
             tmp_path / 'demo.png', cwd=ws)
    assert (tmp_path / 'demo.png').stat().st_size > 0

    # mmdet's own APIs open the checkpoint (stock weights-only torch.load),
    # and so they do the published one
    out = run_stock(DETECTION, cfg, work / 'epoch_3.pth', image, cwd=ws)
    check_stock_output(out)
    assert "classes ('disc', 'square', 'triangle')" in out
    out = run_tool('model_converters/publish_model.py', work / 'epoch_3.pth',
                   tmp_path / 'published.pth', cwd=ws)
    published = out.stdout.split('published ')[-1].strip()
    assert 'message_hub, optimizer, param_schedulers, random_states' in \
        out.stdout
    check_stock_output(run_stock(DETECTION, cfg, published, image, cwd=ws))


@pytest.mark.slow
def test_mask_rcnn_trains_and_tests(run_tool, builtin_workspace, config_path, tmp_path):
    cfg = config_path('detection/mask_rcnn_convmlp_s_builtin.py')
    fast = [o.replace('max_epochs=2', 'max_epochs=1').replace(
        'val_interval=2', 'val_interval=1') for o in FAST]
    run_tool('train.py', cfg, '--work-dir', tmp_path, '--cfg-options', *fast,
             cwd=builtin_workspace)
    out = run_tool('test.py', cfg, tmp_path / 'epoch_1.pth', '--cfg-options',
                   'test_dataloader.num_workers=0',
                   'test_dataloader.persistent_workers=False',
                   cwd=builtin_workspace)
    assert 'coco/segm_mAP:' in out.stdout + out.stderr


@pytest.mark.slow
def test_custom_dataset_with_user_classes(run_tool, builtin_workspace, config_path,
                                          tmp_path):
    """A user's own COCO-format data with two classes of their naming."""
    data = tmp_path / 'mydata'
    shutil.copytree(builtin_workspace / 'data/builtin/images', data / 'images')
    names = {1: 'coin', 2: 'tile'}
    for split in ('training', 'validation'):
        with open(builtin_workspace / f'data/builtin/instances_{split}.json') as f:
            coco = json.load(f)
        coco['categories'] = [dict(id=i, name=n) for i, n in names.items()]
        coco['annotations'] = [a for a in coco['annotations']
                               if a['category_id'] in names]
        with open(data / f'{split}.json', 'w') as f:
            json.dump(coco, f)
    user_cfg = tmp_path / 'my_retinanet.py'
    user_cfg.write_text(
        f"_base_ = {config_path(RETINANET)!r}\n"
        f"data_root = '{data}/'\n"
        "metainfo = dict(classes=('coin', 'tile'))\n"
        "model = dict(bbox_head=dict(num_classes=2))\n"
        "train_dataloader = dict(dataset=dict(data_root=data_root, "
        "metainfo=metainfo, ann_file='training.json'))\n"
        "val_dataloader = dict(dataset=dict(data_root=data_root, "
        "metainfo=metainfo, ann_file='validation.json'))\n"
        "test_dataloader = val_dataloader\n"
        "val_evaluator = dict(ann_file=data_root + 'validation.json')\n"
        "test_evaluator = val_evaluator\n")
    fast = [o.replace('max_epochs=2', 'max_epochs=1').replace(
        'val_interval=2', 'val_interval=1') for o in FAST]
    out = run_tool('train.py', user_cfg, '--work-dir', tmp_path / 'work',
                   '--cfg-options', *fast, cwd=tmp_path)
    assert 'coco/bbox_mAP:' in out.stdout + out.stderr
    ckpt = load_file(str(tmp_path / 'work/epoch_1.pth'))
    assert ckpt['meta']['dataset_meta']['classes'] == ('coin', 'tile')
    assert ckpt['state_dict']['bbox_head.retina_cls.weight'].shape[0] == 2 * 9


@pytest.mark.parametrize('missing', ['annotation', 'image', 'not_json'])
def test_missing_data_names_the_path(run_tool, builtin_workspace, config_path, tmp_path,
                                     missing):
    ws = tmp_path / 'ws'
    shutil.copytree(builtin_workspace / 'data', ws / 'data')
    if missing == 'image':
        gone = ws / 'data/builtin/images/training/0003.jpg'
    else:
        gone = ws / 'data/builtin/instances_training.json'
    gone.unlink()
    if missing == 'not_json':
        gone.write_text('{"images": [')
    out = run_tool('train.py', config_path(RETINANET), '--work-dir',
                   tmp_path / 'work', '--cfg-options', *FAST, cwd=ws,
                   check=False)
    assert out.returncode != 0
    assert str(gone.relative_to(ws)) in out.stderr
    if missing == 'not_json':
        assert 'is not valid JSON' in out.stderr


def test_converter_on_official_layout(run_tool, tmp_path):
    """An mmdet 2.x-era checkpoint becomes one mmdet 3.x reads directly."""
    from mmconvmlp import ConvMLP
    backbone = ConvMLP(arch='s').state_dict()
    official = {
        'meta': {'mmcv_version': '1.3.8', 'CLASSES': ('person', 'bicycle'),
                 'epoch': 12, 'hook_msgs': {'best_score': np.float64(0.5)},
                 'config': "import os; model = dict(type='RetinaNet')"},
        'state_dict': {**{f'backbone.{k}': v for k, v in backbone.items()},
                       'bbox_head.retina_cls.weight': torch.zeros(18, 256, 3, 3)},
        'optimizer': {'state': {}, 'param_groups': []},
    }
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save(official, src)
    out = run_tool('model_converters/convert_official.py', src, dst,
                   cwd=tmp_path)
    assert 'classes: 2' in out.stdout
    converted = load_file(str(dst))
    assert converted['meta']['dataset_meta']['classes'] == ['person',
                                                           'bicycle']
    assert 'optimizer' not in converted
    assert converted['state_dict'].keys() == official['state_dict'].keys()
    assert torch.serialization.get_unsafe_globals_in_checkpoint(dst) == []


@pytest.fixture(scope='module')
def untrained_checkpoint(tmp_path_factory, config_path):
    """A RetinaNet-ConvMLP-S built-in checkpoint with initial weights."""
    from mmengine.config import Config

    from mmconvmlp.checkpoint import save_file
    from mmconvmlp.registry import build_model
    cfg = Config.fromfile(config_path(RETINANET))
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    path = tmp_path_factory.mktemp('ckpt') / 'untrained.pth'
    save_file({'state_dict': model.state_dict(),
               'meta': {'dataset_meta': {'classes': cfg.metainfo.classes}}},
              str(path))
    return path


@pytest.mark.parametrize('mode', ['L', 'RGBA'])
def test_demo_takes_grey_and_rgba_images(run_tool, builtin_workspace,
                                         config_path, untrained_checkpoint,
                                         tmp_path, mode):
    """Files with 1 or 4 channels are read as 3-channel images (mmcv)."""
    from PIL import Image
    src = builtin_workspace / 'data/builtin/images/validation/0001.jpg'
    image = tmp_path / f'{mode}.png'
    Image.open(src).convert(mode).save(image)
    run_tool('demo.py', image, config_path(RETINANET), untrained_checkpoint,
             '--out', tmp_path / 'out.png', cwd=tmp_path)
    assert Image.open(tmp_path / 'out.png').size == (128, 128)


def test_demo_empty_image_names_the_file(run_tool, config_path,
                                         untrained_checkpoint, tmp_path):
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    out = run_tool('demo.py', empty, config_path(RETINANET),
                   untrained_checkpoint, '--out', tmp_path / 'out.png',
                   cwd=tmp_path, check=False)
    assert out.returncode != 0
    assert str(empty) in out.stderr
