"""Loading backbone weights: the three layouts, and every refusal."""
import os
import urllib.error

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

from mmconvmlp import ConvMLP
from mmconvmlp.analysis.weights import spread_weights
from mmconvmlp.checkpoint import (OFFICIAL_CHECKPOINTS, CheckpointError,
                                  load_file, plain_data, publish, resolve)
from mmconvmlp.reference import ReferenceConvMLP


@pytest.fixture
def reference():
    """A reference ConvMLP-S with classifier and non-trivial BN stats."""
    torch.manual_seed(1)
    return spread_weights(ReferenceConvMLP('s', num_classes=1000)).eval()


def _features(model, x):
    with torch.no_grad():
        return model.eval()(x)


def _official_classification(ref, path):
    torch.save(ref.state_dict(), path)


def _official_downstream(ref, path):
    state = {f'backbone.{k}': v for k, v in ref.state_dict().items()
             if not k.startswith(('head.', 'norm.'))}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 64, 1, 1)
    torch.save({'state_dict': state,
                'meta': {'mmcv_version': '1.3.8', 'CLASSES': ('person', 'car'),
                         'config': "model = dict(type='RetinaNet')",
                         'epoch': 12, 'iter': 87960}}, path)


def _mmengine_saved(ref, path):
    hub = MessageHub.get_instance('test_checkpoint')
    hub.update_scalar('train/loss', 1.5)
    hub.update_info('iter', 3)
    state = {f'backbone.{k}': v for k, v in ref.state_dict().items()
             if not k.startswith(('head.', 'norm.'))}
    torch.save({'meta': {'epoch': 1, 'iter': 3, 'seed': np.int64(42),
                         'dataset_meta': {'classes': ('a', 'b')}},
                'state_dict': state, 'message_hub': hub.state_dict(),
                'optimizer': {'state': {}, 'param_groups': []}}, path)


@pytest.mark.parametrize('writer', [_official_classification,
                                    _official_downstream, _mmengine_saved])
@pytest.mark.parametrize('prefix', [None, 'backbone.'])
def test_layouts_reproduce_features(tmp_path, reference, writer, prefix):
    path = str(tmp_path / 'ckpt.pth')
    writer(reference, path)
    if prefix and writer is _official_classification:
        prefix = None  # a classification checkpoint has no prefix
    model = ConvMLP(arch='s', winograd=False,  # bit-exact: direct convs
                    init_cfg=dict(type='Pretrained', checkpoint=path,
                                  prefix=prefix))
    model.init_weights()
    x = torch.randn(1, 3, 80, 72)
    for a, b in zip(_features(model, x), _features(reference, x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_missing_backbone_weights_are_an_error(tmp_path, reference):
    state = reference.state_dict()
    del state['stages.2.blocks.1.connect.weight']
    del state['tokenizer.block.0.weight']
    path = str(tmp_path / 'partial.pth')
    torch.save(state, path)
    model = ConvMLP(arch='s', init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointError) as err:
        model.init_weights()
    msg = str(err.value)
    assert path in msg and 'lacks 2' in msg
    assert 'stages.2.blocks.1.connect.weight' in msg
    assert 'tokenizer.block.0.weight' in msg


def test_wrong_arch_is_an_error(tmp_path, reference):
    path = str(tmp_path / 's.pth')
    torch.save(reference.state_dict(), path)
    model = ConvMLP(arch='l', init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointError, match='shapes differ'):
        model.init_weights()


def test_wrong_prefix_is_an_error(tmp_path, reference):
    path = str(tmp_path / 'det.pth')
    _official_downstream(reference, path)
    model = ConvMLP(arch='s', init_cfg=dict(type='Pretrained', checkpoint=path,
                                            prefix='encoder.'))
    with pytest.raises(CheckpointError, match="no keys under prefix 'encoder.'"):
        model.init_weights()


class _RunsCode:

    def __reduce__(self):
        return (os.system, ('touch {}'.format(os.environ['PWNED_MARKER']), ))


def test_code_in_pickle_is_refused_and_not_run(tmp_path, monkeypatch):
    marker = tmp_path / 'pwned'
    monkeypatch.setenv('PWNED_MARKER', str(marker))
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'payload': _RunsCode()}, path)
    model = ConvMLP(arch='s', init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointError, match='refused to load .*evil.pth'):
        model.init_weights()
    assert not marker.exists()


@pytest.mark.parametrize('damage', ['truncate', 'garbage', 'empty'])
def test_corrupt_file_is_a_clear_error(tmp_path, reference, damage):
    path = tmp_path / 'bad.pth'
    torch.save(reference.state_dict(), str(path))
    data = path.read_bytes()
    path.write_bytes({'truncate': data[:len(data) // 2],
                      'garbage': b'not a checkpoint at all' * 10,
                      'empty': b''}[damage])
    with pytest.raises(CheckpointError, match=f'cannot read checkpoint {path}'):
        load_file(str(path))


def test_missing_file_names_it():
    with pytest.raises(FileNotFoundError, match='/no/such/file.pth'):
        resolve('/no/such/file.pth')


def test_short_names_cover_every_official_file():
    assert len(OFFICIAL_CHECKPOINTS) == 12
    assert OFFICIAL_CHECKPOINTS['convmlp_s_imagenet'] == (
        'https://shi-labs.com/projects/convmlp/checkpoints/'
        'convmlp_s_imagenet.pth')
    assert OFFICIAL_CHECKPOINTS['sem_fpn_convmlp_l_ade20k'].endswith(
        'segmentation/sem_fpn_convmlp_l_ade20k.pth')


def test_offline_short_name_says_how_to_pass_a_local_file(tmp_path,
                                                         monkeypatch):
    def offline(url, dst, progress=True):
        raise urllib.error.URLError('Name or service not known')

    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    model = ConvMLP(arch='m', init_cfg=dict(type='Pretrained',
                                            checkpoint='convmlp_m_imagenet'))
    with pytest.raises(CheckpointError) as err:
        model.init_weights()
    msg = str(err.value)
    assert 'convmlp_m_imagenet.pth' in msg and 'offline' in msg
    assert "checkpoint='/path/to/file.pth'" in msg


def test_short_name_uses_cached_download(tmp_path, monkeypatch, reference):
    cache = tmp_path / 'checkpoints'
    cache.mkdir()
    torch.save(reference.state_dict(), str(cache / 'convmlp_s_imagenet.pth'))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    assert resolve('convmlp_s_imagenet') == str(cache / 'convmlp_s_imagenet.pth')


@pytest.mark.parametrize('arch, backbone_m, classifier_m', [
    ('s', 8.5, 9.0), ('m', 16.9, 17.4), ('l', 42.0, 42.7)])
def test_param_counts_match_paper(arch, backbone_m, classifier_m):
    backbone = sum(p.numel() for p in ConvMLP(arch=arch).parameters())
    classifier = sum(p.numel() for p in ReferenceConvMLP(
        arch, num_classes=1000).parameters())
    assert round(classifier / 1e6, 1) == classifier_m
    assert round(backbone / 1e6, 1) == backbone_m


#: Checkpoints a user may hand us that are not what they claim:
#: (content written with torch.save, or raw bytes) -> the one-line error.
HOSTILE_CHECKPOINTS = {
    'code-carrying pickle': ({'state_dict': {}, 'x': _RunsCode()},
                             'refused to load'),
    'truncated': (b'PK\x03\x04' + b'\0' * 40, 'cannot read checkpoint'),
    'a list': ([torch.zeros(1)], 'holds a list, expected a dict'),
    'state_dict of strings': ({'state_dict': {'backbone.w': 'abc'}},
                              'not a state dict of tensors'),
    'state_dict not a dict': ({'state_dict': 'abc'},
                              '"state_dict" is a str'),
    'foreign keys only': ({'state_dict': {'foo.weight': torch.zeros(1)}},
                          'lacks'),
}


@pytest.mark.parametrize('name', list(HOSTILE_CHECKPOINTS))
def test_hostile_checkpoints_get_one_line(tmp_path, monkeypatch, name):
    marker = tmp_path / 'pwned'
    monkeypatch.setenv('PWNED_MARKER', str(marker))
    content, message = HOSTILE_CHECKPOINTS[name]
    path = tmp_path / 'ckpt.pth'
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, str(path))
    model = ConvMLP(arch='s', init_cfg=dict(type='Pretrained',
                                            checkpoint=str(path)))
    with pytest.raises(CheckpointError) as info:
        model.init_weights()
    text = str(info.value)
    assert message in text and str(path) in text
    assert not marker.exists()


def test_a_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match='is a directory'):
        resolve(str(tmp_path))
    with pytest.raises(CheckpointError, match='is a directory'):
        load_file(str(tmp_path))


def test_plain_data_opens_with_stock_weights_only_load(tmp_path):
    from collections import OrderedDict
    state = OrderedDict(w=torch.ones(2))
    state._metadata = OrderedDict({'': {'version': 2}})
    data = {'meta': {'seed': np.int64(3), 'arr': np.arange(3),
                     'score': np.float64(0.5),
                     'names': ('a', 'b'), 'mix': [np.float32(0.5), None],
                     'obj': np.array(['x', 'y'])},
            'state_dict': state}
    strange = []
    plain = plain_data(data, strange=strange)
    assert strange == []
    path = tmp_path / 'plain.pth'
    torch.save(plain, path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    back = torch.load(path)  # stock: weights-only
    assert back['meta']['seed'] == 3 and type(back['meta']['seed']) is int
    assert back['meta']['arr'].tolist() == [0, 1, 2]
    assert back['meta']['names'] == ('a', 'b')
    assert back['meta']['obj'] == ['x', 'y']
    assert back['state_dict']._metadata == {'': {'version': 2}}
    plain_data({'x': object()}, strange=strange)
    assert strange == ['checkpoint.x: object']


def test_publish_drops_training_state_and_names_the_hash(tmp_path,
                                                         reference):
    import hashlib
    src = str(tmp_path / 'epoch_1.pth')
    _mmengine_saved(reference, src)
    final, dropped = publish(src, str(tmp_path / 'model.pth'))
    assert dropped == ['message_hub', 'optimizer']
    digest = hashlib.sha256(open(final, 'rb').read()).hexdigest()
    assert final == str(tmp_path / f'model-{digest[:8]}.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(final) == []
    published = torch.load(final)
    assert set(published) == {'meta', 'state_dict'}
    assert published['meta']['seed'] == 42
    with pytest.raises(CheckpointError, match='no "state_dict"'):
        torch.save({'x': torch.zeros(1)}, tmp_path / 'weights.pth')
        publish(str(tmp_path / 'weights.pth'), str(tmp_path / 'out.pth'))
