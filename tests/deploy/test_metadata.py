"""Exported files are data: hostile .onnx files get one clear line that
names the file and the key, and nothing in them is executed."""
import json

import pytest

from mmconvmlp.deploy import build_runtime_model, read_metadata
from mmconvmlp.deploy.metadata import MetadataError, load_onnx_proto

onnx = pytest.importorskip('onnx')

#: Valid metadata of a small detector (as export_onnx writes it).
VALID = dict(
    format=2, task='detection', default_scope='mmdet',
    output_groups=[['cls_scores', 1], ['bbox_preds', 1]],
    preprocessing=dict(mean=[1.0, 2.0, 3.0], std=[1.0, 1.0, 1.0],
                       bgr_to_rgb=True, pad_size_divisor=32, pad_value=0.0,
                       input_channel_order='BGR'),
    classes=['a', 'b'], palette=[], input_shape=[-1, 3, -1, -1],
    model=dict(type='RetinaNet', bbox_head=dict(type='RetinaHead',
                                                num_classes=2)),
    test_pipeline=[dict(type='LoadImageFromFile')])


def _graph():
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    return helper.make_model(graph)


def _write(path, entries):
    """An ONNX file whose metadata holds ``entries`` (key -> text)."""
    proto = _graph()
    for key, text in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f'mmconvmlp.{key}', text
    onnx.save(proto, str(path))
    return str(path)


class Raw(str):
    """Text stored in the metadata as it is, not as JSON."""


def _with(**changes):
    """VALID as JSON texts, with ``changes`` (None removes a key; a
    :class:`Raw` is stored as it is, anything else as JSON)."""
    entries = {k: json.dumps(v) for k, v in VALID.items()}
    for key, value in changes.items():
        if value is None:
            entries.pop(key)
        else:
            entries[key] = value if isinstance(value, Raw) else json.dumps(
                value)
    return entries


def test_valid_metadata_reads(tmp_path):
    assert read_metadata(_write(tmp_path / 'ok.onnx', _with())) == VALID


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = dict(a=value)
    return value


#: (what is wrong, entries, what the one-line error says)
HOSTILE = [
    ('unknown key', _with(evil=1), 'unknown metadata key mmconvmlp.evil'),
    ('_base_ in model', _with(model=dict(VALID['model'],
                                         _base_='x.py')),
     'mmconvmlp.model._base_: a config construct'),
    ('custom_imports deep in model',
     _with(model=dict(VALID['model'], bbox_head=dict(
         type='RetinaHead', custom_imports=dict(imports=['os'])))),
     'mmconvmlp.model.bbox_head.custom_imports'),
    ('_delete_ in the pipeline',
     _with(test_pipeline=[dict(type='LoadImageFromFile', _delete_=True)]),
     'mmconvmlp.test_pipeline.0._delete_'),
    ('a type that is not a name', _with(model=dict(type=['os.system'])),
     'mmconvmlp.model.type: expected a registered type name'),
    ('a key that is not an identifier',
     _with(model={'type': 'RetinaNet', 'a b': 1}), 'is not an identifier'),
    ('missing key', _with(task=None), 'mmconvmlp.task is missing'),
    ('wrong task', _with(task='exec'), "mmconvmlp.task: expected one of"),
    ('scope of the other task', _with(default_scope='mmseg'),
     "default_scope is 'mmseg' for a detection model"),
    ('classes not a list', _with(classes='abc'), 'mmconvmlp.classes'),
    ('class name not a string', _with(classes=[1, 2]), 'mmconvmlp.classes.0'),
    ('palette colour out of range', _with(palette=[[0, 0, 999]]),
     'mmconvmlp.palette.0'),
    ('NaN mean', _with(preprocessing=Raw(
        '{"mean": [NaN], "std": [], "bgr_to_rgb": true, "pad_size_divisor": '
        '1, "pad_value": 0, "input_channel_order": "BGR"}')),
     'mmconvmlp.preprocessing.mean.0: expected a finite number'),
    ('extra preprocessing key', _with(preprocessing=dict(
        VALID['preprocessing'], exec='x')), 'mmconvmlp.preprocessing'),
    ('input shape of 3 dims', _with(input_shape=[1, 3, 4]),
     'mmconvmlp.input_shape'),
    ('output count too large', _with(output_groups=[['x', 10 ** 9]]),
     'mmconvmlp.output_groups.0'),
    ('not JSON', _with(classes=Raw('__import__("os")')),
     'mmconvmlp.classes is not JSON'),
    ('a very large value', _with(classes=['x' * (2 << 20)]),
     'characters (at most'),
    ('nested too deeply for JSON',
     _with(model=Raw('[' * 100000 + ']' * 100000)),
     'nested too deeply'),
    ('nested deeper than allowed', _with(model=_nested(40)),
     'nested deeper than 32'),
    ('RoI head outside the folder', _with(roi_head_file='../../x.pth'),
     'mmconvmlp.roi_head_file: expected the bare name'),
    ('RoI head absolute', _with(roi_head_file='/etc/passwd'),
     'expected the bare name'),
    ('RoI head ..', _with(roi_head_file='..'), 'expected the bare name'),
    ('newer format', _with(format=3), 'this mmconvmlp reads format 2'),
    ('earlier format (config as Python)',
     {'config': "open('x', 'w')", 'task': '"detection"'},
     'carried their config as Python code'),
]


@pytest.mark.parametrize('what,entries,message', HOSTILE,
                         ids=[h[0] for h in HOSTILE])
def test_hostile_metadata_is_refused_by_name(tmp_path, what, entries,
                                             message):
    path = _write(tmp_path / 'hostile.onnx', entries)
    with pytest.raises(MetadataError) as info:
        build_runtime_model(path)
    text = str(info.value)
    assert message in text and path in text
    assert '\n' not in text


def test_code_in_an_earlier_files_config_is_not_run(tmp_path):
    """What an exported file of the earlier format could do: its config
    (Python text) was executed when the file was loaded."""
    marker = tmp_path / 'pwned'
    path = _write(tmp_path / 'crafted.onnx', {
        'config': f"import os\nopen({str(marker)!r}, 'w').close()\n"
                  "default_scope = 'mmseg'\nmodel = dict(type='x')",
        'task': '"segmentation"', 'default_scope': '"mmseg"',
        'output_groups': '[["seg_logits", 0]]', 'classes': '[]',
        'palette': '[]', 'input_shape': '[-1, 3, -1, -1]'})
    with pytest.raises(MetadataError, match='export it again'):
        build_runtime_model(path)
    from mmconvmlp.deploy.quantize import quantize_onnx
    with pytest.raises(MetadataError, match='export it again'):
        quantize_onnx(path, str(tmp_path / 'int8.onnx'), str(tmp_path))
    assert not marker.exists()
    assert not (tmp_path / 'int8.onnx').exists()


def test_foreign_truncated_and_odd_files(tmp_path):
    foreign = tmp_path / 'foreign.onnx'
    onnx.save(_graph(), str(foreign))
    with pytest.raises(MetadataError, match='not exported by mmconvmlp'):
        read_metadata(str(foreign))
    good = _write(tmp_path / 'good.onnx', _with())
    data = open(good, 'rb').read()
    cases = {
        'truncated.onnx': data[:len(data) // 2],
        'garbage.onnx': b'\x08\x07garbage' * 100,
        'empty.onnx': b'',
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(MetadataError, match=f'{path}'):
            read_metadata(str(path))
    with pytest.raises(MetadataError, match='is a directory'):
        read_metadata(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='missing.onnx'):
        read_metadata(str(tmp_path / 'missing.onnx'))


def test_external_data_is_refused(tmp_path):
    """A graph whose weights live in other files would read them from
    wherever its metadata points."""
    import numpy as np
    from onnx import helper, numpy_helper
    weight = numpy_helper.from_array(np.ones(4, np.float32), 'w')
    graph = helper.make_graph(
        [helper.make_node('Add', ['x', 'w'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [4])],
        [weight])
    proto = helper.make_model(graph)
    path = str(tmp_path / 'external.onnx')
    onnx.save(proto, path, save_as_external_data=True,
              all_tensors_to_one_file=True, location='weights.bin',
              size_threshold=0)
    with pytest.raises(MetadataError, match='external data: w'):
        load_onnx_proto(path)
