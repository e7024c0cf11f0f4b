"""What an exported file carries besides its graph: plain data, checked.

:func:`export_onnx <mmconvmlp.deploy.export_onnx>` stores, as JSON under
``mmconvmlp.*`` keys of the ONNX file's metadata, everything a runtime
needs: the task, how the flat outputs group, the preprocessing, class names
and palette, the input shape, and the model's settings for the
post-processing (``model``: the heads and ``test_cfg``, without backbone and
neck) and the test pipeline (``test_pipeline``, for int8 calibration).

An exported file is data: :func:`read_metadata` parses it with
``json.loads`` only and checks every entry against :data:`SCHEMA`. A key it
does not know, a value of the wrong type or size, a config construct
(``_base_``, ``custom_imports``, ``_delete_``), or a RoI-head file that is
not a bare file name beside the ``.onnx`` is refused with an error naming
the file and the key. Nothing in a file is ever executed; files written
before this format (whose config was Python text) are refused with the
advice to export them again.
"""
import json
import math
import os.path as osp
import re

#: The version of the metadata written; files without it are refused.
FORMAT = 2
PREFIX = 'mmconvmlp.'
#: Largest JSON text of one entry (a palette of 1000 classes is ~20 KB).
MAX_ENTRY_CHARS = 1 << 20
#: Deepest nesting accepted in ``model`` and ``test_pipeline``.
MAX_DEPTH = 32
#: Keys that make a config more than data; refused anywhere in an entry.
CONFIG_CONSTRUCTS = ('_base_', '_delete_', 'custom_imports', '_scope_base_')
KEY = re.compile(r'[A-Za-z_][A-Za-z0-9_]{0,99}')


class MetadataError(ValueError):
    """An exported file whose metadata cannot be used; names file and key."""


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_plain(value, where, depth=0):
    """Refuse anything in a ``model`` / ``test_pipeline`` entry that is not
    plain JSON data with identifier keys, or that is a config construct."""
    if depth > MAX_DEPTH:
        raise TypeError(f'{where}: nested deeper than {MAX_DEPTH} levels')
    if isinstance(value, dict):
        for key, item in value.items():
            if not KEY.fullmatch(key):
                raise TypeError(f'{where}: key {key[:40]!r} is not an '
                                'identifier')
            if key in CONFIG_CONSTRUCTS:
                raise TypeError(f'{where}.{key}: a config construct; the '
                                'file may hold settings only')
            if key == 'type' and not isinstance(item, str):
                raise TypeError(f'{where}.type: expected a registered type '
                                f'name (str), got {type(item).__name__}')
            _check_plain(item, f'{where}.{key}', depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f'{where}.{i}', depth + 1)
    elif not (value is None or isinstance(value, (str, bool))
              or _is_number(value)):
        raise TypeError(f'{where}: {type(value).__name__} is not plain data')


def _check_list(value, where, item_check, min_len=0, max_len=100000):
    if not isinstance(value, list) or not min_len <= len(value) <= max_len:
        count = (min_len if min_len == max_len
                 else f'{min_len} to {max_len}')
        raise TypeError(f'{where}: expected a list of {count} entries')
    for i, item in enumerate(value):
        item_check(item, f'{where}.{i}')


def _string(value, where):
    if not isinstance(value, str) or len(value) > 1000:
        raise TypeError(f'{where}: expected a string of at most 1000 chars')


def _choice(*options):
    def check(value, where):
        if value not in options:
            raise TypeError(f'{where}: expected one of {list(options)}, got '
                            f'{str(value)[:80]!r}')
    return check


def _format(value, where):
    if value != FORMAT:
        raise TypeError(f'{where}: format {str(value)[:20]!r}, this '
                        f'mmconvmlp reads format {FORMAT}: export the file '
                        'again with this version')


def _output_groups(value, where):
    def group(item, at):
        if not (isinstance(item, list) and len(item) == 2
                and isinstance(item[0], str) and isinstance(item[1], int)
                and not isinstance(item[1], bool) and 0 <= item[1] <= 64):
            raise TypeError(f'{at}: expected [name, count 0..64]')
    _check_list(value, where, group, 1, 16)


def _preprocessing(value, where):
    expected = {'mean', 'std', 'bgr_to_rgb', 'pad_size_divisor',
                'pad_value', 'input_channel_order'}
    if not isinstance(value, dict) or set(value) != expected:
        raise TypeError(f'{where}: expected a dict with keys '
                        f'{sorted(expected)}')
    for key in ('mean', 'std'):
        _check_list(value[key], f'{where}.{key}', _number, 0, 4)
    if not isinstance(value['bgr_to_rgb'], bool):
        raise TypeError(f'{where}.bgr_to_rgb: expected true or false')
    divisor = value['pad_size_divisor']
    if not (isinstance(divisor, int) and 1 <= divisor <= 4096):
        raise TypeError(f'{where}.pad_size_divisor: expected 1..4096')
    _number(value['pad_value'], f'{where}.pad_value')
    _choice('BGR')(value['input_channel_order'],
                   f'{where}.input_channel_order')


def _number(value, where):
    if not _is_number(value):
        raise TypeError(f'{where}: expected a finite number')


def _palette(value, where):
    def color(item, at):
        if not (isinstance(item, list) and len(item) == 3 and all(
                isinstance(c, int) and 0 <= c <= 255 for c in item)):
            raise TypeError(f'{at}: expected [r, g, b] in 0..255')
    _check_list(value, where, color)


def _input_shape(value, where):
    def dim(item, at):
        if not (isinstance(item, int) and not isinstance(item, bool)
                and (item == -1 or 1 <= item <= 65536)):
            raise TypeError(f'{at}: expected -1 (dynamic) or 1..65536')
    _check_list(value, where, dim, 4, 4)


def _plain_dict(value, where):
    if not isinstance(value, dict):
        raise TypeError(f'{where}: expected a dict')
    _check_plain(value, where)


def _pipeline(value, where):
    _check_list(value, where, _plain_dict, 1, 64)


def _bare_file_name(value, where):
    if not (isinstance(value, str) and 0 < len(value) <= 255
            and value not in ('.', '..') and '/' not in value
            and '\\' not in value and '\0' not in value
            and not osp.isabs(value)):
        raise TypeError(f'{where}: expected the bare name of a file beside '
                        f'the .onnx, got {str(value)[:80]!r}')


#: Every key the metadata may hold -> (required, check).
SCHEMA = {
    'format': (True, _format),
    'task': (True, _choice('detection', 'segmentation')),
    'default_scope': (True, _choice('mmdet', 'mmseg')),
    'output_groups': (True, _output_groups),
    'preprocessing': (True, _preprocessing),
    'classes': (True, lambda v, w: _check_list(v, w, _string)),
    'palette': (True, _palette),
    'input_shape': (True, _input_shape),
    'model': (True, _plain_dict),
    'test_pipeline': (False, _pipeline),
    'roi_head_file': (False, _bare_file_name),
    'quantization': (False, _plain_dict),
}


def check_metadata(metadata, source='metadata'):
    """Check parsed metadata against :data:`SCHEMA`.

    Raises:
        MetadataError: naming ``source`` and the offending key.
    """
    for key in metadata:
        if key not in SCHEMA:
            raise MetadataError(
                f'{source}: unknown metadata key {PREFIX}{key[:60]} (an '
                'exported file holds only '
                f'{", ".join(PREFIX + k for k in SCHEMA)})')
    for key, (required, check) in SCHEMA.items():
        if key not in metadata:
            if required:
                raise MetadataError(f'{source}: metadata key {PREFIX}{key} '
                                    'is missing')
            continue
        try:
            check(metadata[key], PREFIX + key)
        except TypeError as err:
            raise MetadataError(f'{source}: {err}') from None
    scope = 'mmseg' if metadata['task'] == 'segmentation' else 'mmdet'
    if metadata['default_scope'] != scope:
        raise MetadataError(f'{source}: {PREFIX}default_scope is '
                            f'{metadata["default_scope"]!r} for a '
                            f'{metadata["task"]} model')
    return metadata


def to_json(value, where):
    """``value`` as JSON text; a value JSON cannot hold (a config's lazy
    object, a function) is an error naming ``where``."""
    def refuse(obj):
        raise TypeError(f'{where}: {type(obj).__name__} cannot be stored in '
                        'an exported file (plain settings only)')
    return json.dumps(value, default=refuse)


def write_metadata(proto, metadata):
    """Check ``metadata`` as :func:`read_metadata` will (sizes, schema) and
    store it in the ONNX ``proto``, one JSON entry per key. Returns what
    :func:`read_metadata` will read back."""
    texts = {key: to_json(value, PREFIX + key)
             for key, value in metadata.items()}
    parsed = {key: _parse(text, 'metadata to export', PREFIX + key)
              for key, text in texts.items()}
    check_metadata(parsed, 'metadata to export')
    for key, text in texts.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = PREFIX + key, text
    return parsed


def _parse(text, source, key):
    if len(text) > MAX_ENTRY_CHARS:
        raise MetadataError(f'{source}: metadata key {key} holds '
                            f'{len(text)} characters (at most '
                            f'{MAX_ENTRY_CHARS})')
    try:
        return json.loads(text)
    except RecursionError:
        raise MetadataError(f'{source}: metadata key {key} is nested too '
                            'deeply') from None
    except ValueError as err:
        raise MetadataError(f'{source}: metadata key {key} is not JSON '
                            f'({err})') from None


def load_onnx_proto(onnx_file):
    """The ONNX model of ``onnx_file`` without external data, or a clear
    error: missing, a directory, not an ONNX file, or one that would read
    other files (external data; mmconvmlp writes self-contained files)."""
    import onnx
    from google.protobuf.message import DecodeError
    if osp.isdir(onnx_file):
        raise MetadataError(f'{onnx_file} is a directory, not an ONNX file')
    if not osp.isfile(onnx_file):
        raise FileNotFoundError(f'ONNX file not found: {onnx_file}')
    try:
        proto = onnx.load(onnx_file, load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as err:
        raise MetadataError(f'cannot read {onnx_file}: not an ONNX file, or '
                            f'truncated ({type(err).__name__}: '
                            f'{str(err)[:200]})') from None
    if not proto.graph.node:
        raise MetadataError(f'cannot read {onnx_file}: not an ONNX model '
                            '(no graph)')
    external = [t.name for t in proto.graph.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise MetadataError(
            f'{onnx_file} reads its weights from other files (external '
            f'data: {", ".join(external[:3])}); mmconvmlp exports '
            'self-contained files: export it again')
    return proto


def read_metadata(onnx_file, proto=None):
    """The checked metadata of a file written by
    :func:`~mmconvmlp.deploy.export_onnx` (see the module's docstring).

    Raises:
        MetadataError: the file is not one of ours, is from an earlier
            format, or an entry is not what :data:`SCHEMA` allows.
    """
    proto = proto or load_onnx_proto(onnx_file)
    raw = {entry.key[len(PREFIX):]: entry.value
           for entry in proto.metadata_props if entry.key.startswith(PREFIX)}
    if not raw:
        raise MetadataError(
            f'{onnx_file} was not exported by mmconvmlp (no mmconvmlp.* '
            'metadata); export it with tools/deployment/export_onnx.py')
    if 'format' not in raw:
        raise MetadataError(
            f'{onnx_file} was exported by an earlier mmconvmlp, whose files '
            'carried their config as Python code (never run now): export '
            'it again with tools/deployment/export_onnx.py')
    metadata = {key: _parse(text, onnx_file, PREFIX + key)
                for key, text in raw.items()}
    return check_metadata(metadata, onnx_file)


#: Parts of a model config that the exported graph replaces or that only
#: training and weight initialisation read.
NOT_STORED = ('backbone', 'neck', 'init_cfg', 'pretrained', 'train_cfg')


def model_settings(model_cfg):
    """What of a model config the post-processing needs, as plain data: the
    config without backbone, neck, training and initialisation settings."""
    cfg = model_cfg.to_dict() if hasattr(model_cfg, 'to_dict') else dict(
        model_cfg)
    return json.loads(to_json({k: v for k, v in cfg.items()
                               if k not in NOT_STORED}, 'model'))


def _numbers_as_tuples(value):
    if isinstance(value, dict):
        return {k: _numbers_as_tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(_is_number(v) for v in value):
            return tuple(value)
        return [_numbers_as_tuples(v) for v in value]
    return value


def stored_pipeline(metadata):
    """The stored test pipeline as transform configs, with the lists of
    numbers JSON made of the config's tuples (sizes, scales) tuples again,
    as mmcv's transforms require."""
    return [_numbers_as_tuples(t) for t in metadata['test_pipeline']]
