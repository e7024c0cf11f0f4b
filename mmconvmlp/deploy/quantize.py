"""Opt-in int8: static quantization of an exported file, and the
measurement that says which layers to keep in float32.

:func:`quantize_onnx` calibrates on images the user names (by default the
built-in dataset's training images), preprocessed exactly as the model's
config preprocesses them, and writes a QDQ model that keeps the exported
file's metadata, so the runtime models and ``tools/test.py --backend
onnxruntime|openvino`` run it unchanged. Two routes: ONNX Runtime's
quantizer (MinMax, Entropy or Percentile calibration; uint8 or int8
activations; 7-bit weights where the CPU lacks int8 dot products) and
OpenVINO's, NNCF (its own range estimators and bias correction). Both write
QDQ ONNX, which both runtimes execute in int8.

:func:`layer_sensitivity` measures, for each part of the model in turn
(a backbone stage, a neck branch, a head module), how much closer to
float32 the outputs come when that part alone stays in float32; the parts
it names are what ``keep_fp32`` keeps. Speed and mAP / mIoU of each
setting are measured, not assumed: docs/deployment.md, "int8".
"""
import fnmatch
import glob
import math
import os
import os.path as osp
import re
import tempfile

import numpy as np

from ..checkpoint import atomic_write
from ..images import check_image_file
from .cpu import native_int8
from .metadata import read_metadata, stored_pipeline, write_metadata

#: Where :func:`quantize_onnx` looks for calibration images by default.
DEFAULT_IMAGES = 'data/builtin/images/training'
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')
#: The ops that run in int8: the convolutions and the channel MLPs' matrix
#: products (norms, activations and resizes stay float).
QUANTIZED_OPS = ('Conv', 'MatMul', 'Gemm')
#: The quantizers: ONNX Runtime's and OpenVINO's (NNCF).
ROUTES = ('onnxruntime', 'nncf')
#: ONNX Runtime's calibration methods.
METHODS = ('minmax', 'entropy', 'percentile')
#: Activation types: uint8 (U8S8, asymmetric) or int8 (S8S8, symmetric).
ACTIVATIONS = ('uint8', 'int8')


def calibration_images(images=DEFAULT_IMAGES, num=32):
    """The first ``num`` image files (sorted) of a directory, or the given
    list of files."""
    if isinstance(images, (list, tuple)):
        files = list(images)
    elif osp.isdir(images):
        files = sorted(f for f in glob.glob(osp.join(images, '*'))
                       if f.lower().endswith(IMAGE_SUFFIXES))
    else:
        raise FileNotFoundError(
            f'calibration images: no directory {images} (name a directory '
            'of images; the default is the built-in dataset: '
            'python tools/dataset_converters/make_builtin.py data/builtin)')
    if not files:
        raise FileNotFoundError(f'calibration images: no {IMAGE_SUFFIXES} '
                                f'files in {images}')
    files = files[:num]
    for path in files:
        check_image_file(path)
    return files


class _Calibration:
    """ONNX Runtime's calibration reader: the images, through the exported
    model's test pipeline (annotations skipped) and data preprocessor, as
    stored in its metadata."""

    def __init__(self, files, metadata, input_name, input_shape):
        from mmengine.dataset import Compose, pseudo_collate
        from mmengine.registry import init_default_scope

        from ..registry import MODELS
        init_default_scope(metadata['default_scope'])
        self.pipeline = Compose([t for t in stored_pipeline(metadata)
                                 if t['type'] != 'LoadAnnotations'])
        self.preprocessor = MODELS.build(
            metadata['model']['data_preprocessor'])
        self.collate = pseudo_collate
        self.files, self.input_name = iter(files), input_name
        self.fixed = (tuple(input_shape[2:]) if input_shape[2] > 0
                      else None)

    def get_next(self):
        import torch.nn.functional as F
        path = next(self.files, None)
        if path is None:
            return None
        data = self.pipeline(dict(img_path=path, img_id=0))
        inputs = self.preprocessor(self.collate([data]), False)['inputs']
        if self.fixed is not None:  # a file exported at a fixed size
            h, w = inputs.shape[2:]
            inputs = F.pad(inputs, (0, max(self.fixed[1] - w, 0), 0,
                                    max(self.fixed[0] - h, 0)))
            inputs = inputs[:, :, :self.fixed[0], :self.fixed[1]]
        return {self.input_name: inputs.float().numpy()}


def _batches(files, metadata):
    """The preprocessed inputs of ``files``, one batch of one each."""
    reader = _Calibration(files, metadata, 'inputs', metadata['input_shape'])
    return list(iter(reader.get_next, None))


def layer_name(node_name):
    """The module path of an exported node: ``/model/backbone/stages.0/
    blocks.1/channel_mlp1/fc1/MatMul`` -> ``backbone/stages.0/blocks.1/
    channel_mlp1/fc1``; a module called more than once (a head shared by
    the pyramid levels) keeps one name (``retina_cls_2`` -> ``retina_cls``).
    """
    parts = [p for p in node_name.split('/') if p][:-1]
    if parts and parts[0] == 'model':
        parts = parts[1:]
    return '/'.join(re.sub(r'_\d+$', '', p) for p in parts)


def layer_group(name):
    """The part of the model a layer belongs to: a backbone stage, a neck
    branch or a head module (``backbone/stages.0``, ``neck/fpn_convs.1``,
    ``retina_cls``)."""
    parts = name.split('/')
    return '/'.join(parts[:2] if parts[0] in ('backbone', 'neck')
                    else parts[:1])


def quantizable_layers(model):
    """Layer name -> the names of its nodes that int8 would quantize, in
    graph order (``model``: an ``onnx.ModelProto``)."""
    layers = {}
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS:
            layers.setdefault(layer_name(node.name), []).append(node.name)
    return layers


def nodes_kept_fp32(model, keep_fp32, source='the file'):
    """The node names of the layers that match any of the ``fnmatch``
    patterns ``keep_fp32`` (layer names as :func:`layer_name` gives them;
    a pattern also matches the layers inside a part it names:
    ``backbone/tokenizer`` matches ``backbone/tokenizer/block/block.0``); a
    pattern that matches no layer is refused."""
    layers = quantizable_layers(model)
    nodes = []
    for pattern in keep_fp32:
        matched = [n for name, names in layers.items()
                   if fnmatch.fnmatchcase(name, pattern)
                   or fnmatch.fnmatchcase(name, pattern + '/*')
                   for n in names]
        if not matched:
            groups = sorted({layer_group(name) for name in layers})
            raise ValueError(
                f'keep_fp32: {pattern!r} matches no quantized layer of '
                f'{source}; its parts are {", ".join(groups)} (layer names '
                f'look like {next(iter(layers), "?")!r}; use * and ?)')
        nodes += [n for n in matched if n not in nodes]
    return nodes


def _settings(route, method, activations, per_channel, reduce_range,
              keep_fp32):
    if route not in ROUTES:
        raise ValueError(f'route {route!r}: expected one of {ROUTES}')
    if activations not in ACTIVATIONS:
        raise ValueError(f'activations {activations!r}: expected one of '
                         f'{ACTIVATIONS}')
    if route == 'nncf' and method is not None:
        raise ValueError(f'method {method!r}: the nncf route calibrates '
                         'with its own range estimators; methods are for '
                         'the onnxruntime route')
    method = method or 'percentile'
    if method not in METHODS:
        raise ValueError(f'method {method!r}: expected one of {METHODS}')
    if reduce_range is None:  # 7-bit weights only where products saturate
        reduce_range = route == 'onnxruntime' and not native_int8()
    return dict(route=route, method=method if route == 'onnxruntime' else
                'nncf', activations=activations, per_channel=per_channel,
                reduce_range=bool(reduce_range), keep_fp32=list(keep_fp32))


def _quantize_model(onnx_file, metadata, files, settings, tmp):
    """The quantized ``onnx.ModelProto`` of ``onnx_file``."""
    import onnx
    model = onnx.load(onnx_file)
    exclude = nodes_kept_fp32(model, settings['keep_fp32'], onnx_file)
    symmetric = settings['activations'] == 'int8'
    if settings['route'] == 'nncf':
        import nncf
        from nncf.quantization.advanced_parameters import (
            AdvancedQuantizationParameters, QuantizationParameters)

        # one scale per activation tensor: NNCF would otherwise scale the
        # channels-last input of the depthwise convs per row (its axis 1),
        # which breaks at any other input height
        per_tensor = AdvancedQuantizationParameters(
            activations_quantization_params=QuantizationParameters(
                per_channel=False))
        quantized = nncf.quantize(
            model, nncf.Dataset(_batches(files, metadata)),
            subset_size=len(files),
            preset=(nncf.QuantizationPreset.PERFORMANCE if symmetric else
                    nncf.QuantizationPreset.MIXED),
            ignored_scope=nncf.IgnoredScope(names=exclude),
            advanced_parameters=per_tensor)
        return quantized, len(exclude)
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    prepared = osp.join(tmp, 'prepared.onnx')
    quantized_file = osp.join(tmp, 'quantized.onnx')
    quant_pre_process(onnx_file, prepared, skip_symbolic_shape=True)
    reader = _Calibration(files, metadata, 'inputs', metadata['input_shape'])
    quantize_static(
        prepared, quantized_file, reader, quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
        weight_type=QuantType.QInt8, per_channel=settings['per_channel'],
        reduce_range=settings['reduce_range'],
        op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=exclude,
        calibrate_method={'minmax': CalibrationMethod.MinMax,
                          'entropy': CalibrationMethod.Entropy,
                          'percentile': CalibrationMethod.Percentile}[
                              settings['method']],
        extra_options=dict(ActivationSymmetric=symmetric))
    return onnx.load(quantized_file), len(exclude)


def describe(settings):
    """One line naming a quantization setting."""
    parts = [settings['route'] if settings['route'] == 'nncf' else
             f'onnxruntime {settings["method"]}',
             'S8S8' if settings['activations'] == 'int8' else 'U8S8',
             'per channel' if settings['per_channel'] else 'per tensor']
    if settings['reduce_range']:
        parts.append('7-bit weights')
    if settings['keep_fp32']:
        parts.append('fp32: ' + ', '.join(settings['keep_fp32']))
    return ', '.join(parts)


def quantize_onnx(onnx_file, out_file, images=DEFAULT_IMAGES, num=32,
                  per_channel=True, route='onnxruntime', method=None,
                  activations='uint8', reduce_range=None, keep_fp32=()):
    """Write an int8 (QDQ) copy of ``onnx_file``, calibrated on ``images``.

    Args:
        onnx_file (str): a file written by
            :func:`~mmconvmlp.deploy.export_onnx`.
        out_file (str): the quantized file; its metadata is the source's
            plus ``quantization``.
        images (str | list[str]): a directory of images, or image files.
        num (int): how many images calibrate (the first, sorted).
        per_channel (bool): per-channel weight scales (onnxruntime route;
            NNCF always quantizes weights per channel).
        route (str): 'onnxruntime' or 'nncf' (OpenVINO's quantizer).
        method (str, optional): calibration of the onnxruntime route:
            'percentile' (default: ranges clipped at the 99.999th
            percentile; the one setting within 0.5 points on all three
            built-in models, docs/deployment.md), 'minmax' or 'entropy'.
        activations (str): 'uint8' (asymmetric) or 'int8' (symmetric, S8S8).
        reduce_range (bool, optional): 7-bit weights; by default only on
            the onnxruntime route on a CPU without int8 dot products
            (:func:`~mmconvmlp.deploy.cpu.native_int8`).
        keep_fp32 (Sequence[str]): ``fnmatch`` patterns of layer names
            (:func:`layer_name`) that stay float32, e.g. ``'retina_cls'``,
            ``'backbone/tokenizer/*'``; :func:`layer_sensitivity` says
            which.

    Returns:
        dict: the ``quantization`` metadata written.
    """
    import onnx
    settings = _settings(route, method, activations, per_channel,
                         reduce_range, keep_fp32)
    metadata = read_metadata(onnx_file)
    if 'test_pipeline' not in metadata:
        raise ValueError(f'{onnx_file} stores no test pipeline to calibrate '
                         'with: export it from a config that has one')
    files = calibration_images(images, num)
    with tempfile.TemporaryDirectory() as tmp:
        quantized, kept = _quantize_model(onnx_file, metadata, files,
                                          settings, tmp)
    info = dict(settings, method_text=describe(settings), images=len(files),
                nodes_kept_fp32=kept, source=os.path.basename(onnx_file))
    del quantized.metadata_props[:]
    write_metadata(quantized, dict(metadata, quantization=info))
    if 'roi_head_file' in metadata:  # the RoI head stays in PyTorch, fp32
        src, dst = (osp.join(osp.dirname(osp.abspath(f)),
                             metadata['roi_head_file'])
                    for f in (onnx_file, out_file))
        if src != dst:
            with open(src, 'rb') as f:
                atomic_write(f.read(), dst)
    atomic_write(quantized.SerializeToString(), out_file)
    return info


def sqnr(outputs, references):
    """Signal-to-quantization-noise ratio in dB of ``outputs`` against
    ``references`` (lists of arrays, taken together)."""
    signal = sum(float(np.square(r, dtype=np.float64).sum())
                 for r in references)
    noise = sum(float(np.square(o.astype(np.float64) - r).sum())
                for o, r in zip(outputs, references))
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


def _output_sqnr(session, batches, references, groups):
    """The SQNR of each output group (and their worst) over ``batches``."""
    outs = [session.run(None, b) for b in batches]
    result, start = {}, 0
    for name, count in groups:  # count 0: one tensor, not a list
        take = slice(start, start + max(count, 1))
        result[name] = sqnr([o for out in outs for o in out[take]],
                            [r for ref in references for r in ref[take]])
        start += max(count, 1)
    result['worst'] = min(result.values())
    return result


def layer_sensitivity(onnx_file, images=DEFAULT_IMAGES, num=32, num_eval=8,
                      parts=None, **settings):
    """How sensitive each part of the model is to int8.

    Quantizes ``onnx_file`` as :func:`quantize_onnx` would with
    ``settings``, then again with each part (:func:`layer_group`; all by
    default, or ``parts``) kept in float32, and measures each result's
    outputs against float32 on ``num_eval`` images that did not calibrate
    (the ``num_eval`` after the first ``num`` of ``images``): the SQNR in
    dB of each output group and the worst of them.

    Returns:
        list[dict]: the quantized model first (``part`` None), then one
        row per part, the most sensitive first: the largest ``gain``, the
        SQNR it adds, in dB, averaged over the output groups.
    """
    import onnx
    import onnxruntime as ort
    metadata = read_metadata(onnx_file)
    files = calibration_images(images, num + num_eval)
    if len(files) <= num:
        raise ValueError(f'layer_sensitivity: {images} holds {len(files)} '
                         f'images; it needs more than the {num} that '
                         'calibrate, to measure on others')
    calib, held_out = files[:num], files[num:]
    batches = _batches(held_out, metadata)
    groups = metadata['output_groups']
    base_keep = list(settings.pop('keep_fp32', ()))
    layers = quantizable_layers(onnx.load(onnx_file, load_external_data=False))
    all_parts = list(dict.fromkeys(layer_group(n) for n in layers))
    if parts is not None:
        unknown = [p for p in parts if p not in all_parts]
        if unknown:
            raise ValueError(f'layer_sensitivity: no part {unknown} in '
                             f'{onnx_file}; its parts: {all_parts}')
        all_parts = list(parts)
    fp32 = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    references = [fp32.run(None, b) for b in batches]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for part in [None] + all_parts:
            keep = base_keep + ([] if part is None else [part])
            setting = _settings(settings.get('route', 'onnxruntime'),
                                settings.get('method'),
                                settings.get('activations', 'uint8'),
                                settings.get('per_channel', True),
                                settings.get('reduce_range'), keep)
            quantized, kept = _quantize_model(onnx_file, metadata, calib,
                                              setting, tmp)
            session = ort.InferenceSession(
                quantized.SerializeToString(),
                providers=['CPUExecutionProvider'])
            rows.append(dict(part=part, layers=kept, sqnr=_output_sqnr(
                session, batches, references, groups)))
    base = rows[0]['sqnr']
    for row in rows:  # the mean gain over the output groups, in dB
        gains = [row['sqnr'][g] - base[g] for g, _ in groups]
        row['gain'] = sum(gains) / len(gains)
    return rows[:1] + sorted(rows[1:], key=lambda r: -r['gain'])
