"""Run exported files in ONNX Runtime or OpenVINO as mmdet / mmseg models.

:class:`RuntimeDetector` and :class:`RuntimeSegmentor` load a file written
by :func:`~mmconvmlp.deploy.export_onnx`, preprocess with the config's own
data preprocessor, run the graph in the chosen runtime and apply the
model's own post-processing (the head's ``predict_by_feat``; for two-stage
detectors the RPN's proposals and the RoI head in PyTorch; for segmentors
mmseg's resize and argmax). They return the same ``DetDataSample`` /
``SegDataSample`` as the PyTorch model, so mmengine's Runner tests them
like any model::

    model = dict(type='mmconvmlp.RuntimeDetector', onnx_file='model.onnx',
                 backend='onnxruntime')

The file is data: its metadata is checked JSON (:mod:`.metadata`), the
RoI-head weights beside a two-stage detector's file are read weights-only.
Without a config the post-processing is built from the settings stored in
the file; given the user's model config (``model_cfg``: ``tools/test.py``,
``tools/demo.py``), that config builds it and the file is only checked to
fit it (task, preprocessing, classes). Only the heads are built: backbone
and neck run in the graph.
"""
import os.path as osp

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel

from ..registry import MODELS
from .metadata import MetadataError, model_settings, read_metadata
from .onnx_export import dataset_meta, preprocessing_metadata

#: The runtimes :func:`build_backend` knows.
BACKENDS = ('onnxruntime', 'openvino')
#: The float precisions OpenVINO computes in (int8 comes from the file).
OPENVINO_PRECISIONS = {'fp32': 'f32', 'bf16': 'bf16'}


class ONNXRuntimeBackend:
    """An ONNX file in an ONNX Runtime CPU session: ``backend(array)``
    returns the outputs as a list of arrays, in the file's order."""

    def __init__(self, onnx_file, threads=None):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        self.session = ort.InferenceSession(
            onnx_file, options, providers=['CPUExecutionProvider'])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, inputs):
        return self.session.run(None, {self.input_name: inputs})


class OpenVINOBackend:
    """An ONNX file compiled by OpenVINO for the CPU, tuned for latency, in
    float32 (OpenVINO would otherwise pick bfloat16 on CPUs that have it)
    or, with ``precision='bf16'``, in OpenVINO's bfloat16 (native on CPUs
    with AVX-512 BF16 or AMX only). ``backend(array)`` returns the outputs
    as a list of arrays."""

    def __init__(self, onnx_file, threads=None, precision='fp32'):
        import openvino as ov
        core = ov.Core()
        self.compiled = core.compile_model(
            core.read_model(onnx_file), 'CPU', {
                'INFERENCE_NUM_THREADS': threads or torch.get_num_threads(),
                'INFERENCE_PRECISION_HINT': OPENVINO_PRECISIONS[precision],
                'PERFORMANCE_HINT': 'LATENCY',
            })
        self.request = self.compiled.create_infer_request()

    def __call__(self, inputs):
        results = self.request.infer({0: inputs})
        return [np.asarray(results[out]) for out in self.compiled.outputs]


def build_backend(onnx_file, backend='onnxruntime', threads=None,
                  precision='fp32'):
    """Load ``onnx_file`` into ``backend`` ('onnxruntime' or 'openvino');
    ``precision`` 'bf16' runs OpenVINO in bfloat16."""
    if backend not in BACKENDS:
        raise ValueError(f'backend {backend!r}: expected one of {BACKENDS}')
    if precision not in OPENVINO_PRECISIONS or (
            precision != 'fp32' and backend != 'openvino'):
        raise ValueError(f'precision {precision!r} with backend {backend!r}: '
                         'expected fp32, or bf16 with openvino')
    if not osp.isfile(onnx_file):
        raise FileNotFoundError(f'ONNX file not found: {onnx_file}')
    try:
        if backend == 'onnxruntime':
            return ONNXRuntimeBackend(onnx_file, threads)
        return OpenVINOBackend(onnx_file, threads, precision)
    except ImportError as err:
        raise ImportError(
            f'backend {backend!r} is not installed ({err}); install it with '
            "pip install 'mmconvmlp[deploy]'") from None


def _group(arrays, groups, device):
    """Split the flat outputs into the groups the metadata names."""
    tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(device)
               for a in arrays]
    expected = sum(max(count, 1) for _, count in groups)
    if len(tensors) != expected:
        raise ValueError(f'the graph returned {len(tensors)} outputs, its '
                         f'metadata names {expected}: {groups}')
    out, start = [], 0
    for _, count in groups:
        out.append(tensors[start] if count == 0 else
                   tensors[start:start + count])
        start += max(count, 1)
    return out


@MODELS.register_module()
class InExportedGraph(nn.Module):
    """Stands in for the backbone of a runtime model's PyTorch part: the
    backbone (and neck) run in the exported graph."""

    def forward(self, *args, **kwargs):
        raise RuntimeError('this part of the model runs in the exported '
                           'graph, not in PyTorch')


def _num_classes(settings):
    """The number of classes the heads of a model's settings predict."""
    for path in (('bbox_head', ), ('roi_head', 'bbox_head'),
                 ('decode_head', )):
        node = settings
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and 'num_classes' in node:
            return node['num_classes']
    return None


def check_compatible(metadata, settings, classes=None, source='file'):
    """Refuse a user's model config that the exported file does not fit:
    another preprocessing (mean, std, channel order, pad divisor) or other
    classes (their number in the heads, their names if ``classes`` is
    given). The error names the setting, the file's and the config's
    values."""
    stored = metadata['preprocessing']
    given = preprocessing_metadata(settings.get('data_preprocessor'))
    for key in ('mean', 'std', 'bgr_to_rgb', 'pad_size_divisor'):
        if given[key] != stored[key]:
            raise ValueError(
                f'{source} was exported with data_preprocessor {key}='
                f'{stored[key]}, the config has {given[key]}: export it '
                'from this config, or test it with the config it came from')
    names = metadata['classes']
    num = _num_classes(settings)
    if names and num is not None and num != len(names):
        raise ValueError(f'{source} predicts {len(names)} classes '
                         f'({", ".join(names[:5])}...), the config\'s heads '
                         f'{num}')
    if names and classes and list(classes) != names:
        raise ValueError(f'{source} was exported for the classes {names}, '
                         f'the config\'s test dataset has {list(classes)}')


class _RuntimeModel(BaseModel):
    """What the runtime detector and segmentor share: the graph in a
    runtime, the data preprocessor, and the model's heads in PyTorch for
    post-processing (its backbone stands in: :class:`InExportedGraph`)."""

    task = None

    def __init__(self, onnx_file, backend='onnxruntime', model_cfg=None,
                 threads=None, classes=None, data_preprocessor=None,
                 init_cfg=None, precision='fp32'):
        from mmengine.registry import init_default_scope

        from ..registry import build_model
        self.metadata = read_metadata(onnx_file)
        if self.metadata['task'] != self.task:
            raise MetadataError(
                f'{onnx_file} holds a {self.metadata["task"]} model; '
                f'{type(self).__name__} runs {self.task} models')
        if model_cfg is None:
            settings = self.metadata['model']
        else:
            settings = model_settings(model_cfg)
            check_compatible(self.metadata, settings, classes, onnx_file)
        scope = self.metadata['default_scope']
        init_default_scope(scope)
        super().__init__(
            data_preprocessor=data_preprocessor
            or settings.get('data_preprocessor'), init_cfg=init_cfg)
        heads_only = dict(settings, neck=None, train_cfg=None,
                          backbone=dict(type='mmconvmlp.InExportedGraph'))
        self.torch_model = build_model(
            Config(dict(default_scope=scope, model=heads_only))).eval()
        self.onnx_file = onnx_file
        self.backend_name = backend
        self.backend = build_backend(onnx_file, backend, threads, precision)
        self.dataset_meta = dict(classes=tuple(self.metadata['classes']))
        if self.metadata.get('palette'):
            self.dataset_meta['palette'] = self.metadata['palette']

    def run_graph(self, inputs):
        """Run the graph on a preprocessed batch; the outputs, grouped as
        ``model(inputs, mode='tensor')`` groups them."""
        expected = self.metadata['input_shape']
        if any(e > 0 and e != got for e, got in zip(expected, inputs.shape)):
            raise ValueError(
                f'{self.onnx_file} takes inputs of shape {expected} (export '
                f'with --dynamic for any size), got {list(inputs.shape)}')
        arrays = self.backend(
            inputs.detach().cpu().float().contiguous().numpy())
        return _group(arrays, self.metadata['output_groups'], inputs.device)

    def forward(self, inputs, data_samples=None, mode='predict'):
        """``mode='tensor'``: the raw outputs; ``'predict'``: data samples
        with predictions. Runtime models do not train."""
        if mode == 'loss':
            raise RuntimeError(f'{type(self).__name__} runs an exported '
                               'graph: it computes no losses')
        outputs = self.run_graph(inputs)
        if mode == 'tensor':
            return outputs
        if mode != 'predict':
            raise ValueError(f'mode {mode!r}: expected predict or tensor')
        with torch.no_grad():
            return self.postprocess(outputs, inputs, data_samples)

    def predict(self, inputs, data_samples=None):
        """Predictions for a preprocessed batch, as the PyTorch model's
        ``predict``."""
        return self(inputs, data_samples, mode='predict')


@MODELS.register_module()
class RuntimeDetector(_RuntimeModel):
    """An exported mmdet detector in ONNX Runtime or OpenVINO.

    Args:
        onnx_file (str): written by :func:`~mmconvmlp.deploy.export_onnx`
            (for two-stage detectors, with its ``.roi_head.pth`` beside it).
        backend (str): 'onnxruntime' or 'openvino'.
        model_cfg (dict, optional): the model config whose preprocessing and
            post-processing (``test_cfg``) apply; by default the one stored
            in the file.
        threads (int, optional): runtime threads (default: torch's).
        precision (str): 'fp32', or 'bf16' (OpenVINO's bfloat16).
        data_preprocessor (dict, optional): overrides the model config's
            (mmengine's Runner passes a config's top-level one).
    """

    task = 'detection'

    def __init__(self, onnx_file, backend='onnxruntime', model_cfg=None,
                 threads=None, **kwargs):
        super().__init__(onnx_file, backend, model_cfg, threads, **kwargs)
        self.two_stage = 'roi_head_file' in self.metadata
        if self.two_stage:
            self._load_roi_head(onnx_file)
        elif hasattr(self.torch_model, 'roi_head'):
            raise MetadataError(f'{onnx_file} holds a one-stage detector, '
                                'the config a two-stage one')

    def _load_roi_head(self, onnx_file):
        """The RoI head's weights from the bare file name the metadata
        gives, beside ``onnx_file``, weights-only."""
        from ..checkpoint import CheckpointError, load_file
        roi_file = osp.join(osp.dirname(osp.abspath(onnx_file)),
                            self.metadata['roi_head_file'])
        if not osp.isfile(roi_file):
            raise FileNotFoundError(
                f'{onnx_file} is a two-stage detector whose RoI head '
                f'runs in PyTorch: its weights {roi_file} are missing')
        roi_head = getattr(self.torch_model, 'roi_head', None)
        if roi_head is None:
            raise MetadataError(f'{onnx_file} holds a two-stage detector, '
                                'the config a one-stage one')
        state = load_file(roi_file)
        if not isinstance(state, dict) or not isinstance(
                state.get('state_dict'), dict):
            raise CheckpointError(f'{roi_file}: expected a dict with a '
                                  '"state_dict" of the RoI head')
        try:
            roi_head.load_state_dict(state['state_dict'])
        except RuntimeError as err:
            raise CheckpointError(f'{roi_file} does not fit the RoI head: '
                                  f'{str(err).splitlines()[0]}') from None

    def postprocess(self, outputs, inputs, data_samples):
        """mmdet's post-processing of the raw outputs (``rescale=True``)."""
        model = self.torch_model
        metas = [sample.metainfo for sample in data_samples]
        if not self.two_stage:
            results = model.bbox_head.predict_by_feat(
                *outputs, batch_img_metas=metas, rescale=True)
        else:
            feats, rpn_scores, rpn_deltas = outputs
            proposals = model.rpn_head.predict_by_feat(
                rpn_scores, rpn_deltas, batch_img_metas=metas, rescale=False)
            results = model.roi_head.predict(tuple(feats), proposals,
                                             data_samples, rescale=True)
        return model.add_pred_to_datasample(data_samples, results)


@MODELS.register_module()
class RuntimeSegmentor(_RuntimeModel):
    """An exported mmseg encoder-decoder in ONNX Runtime or OpenVINO
    (``test_cfg.mode='whole'``). Arguments as :class:`RuntimeDetector`."""

    task = 'segmentation'

    def __init__(self, onnx_file, backend='onnxruntime', model_cfg=None,
                 threads=None, **kwargs):
        super().__init__(onnx_file, backend, model_cfg, threads, **kwargs)
        mode = self.torch_model.test_cfg.get('mode', 'whole')
        if mode != 'whole':
            raise NotImplementedError(
                f"model.test_cfg.mode={mode!r}: runtime segmentors run "
                "'whole' inference only")

    def postprocess(self, outputs, inputs, data_samples):
        """mmseg's post-processing: resize to the image, argmax."""
        (logits, ) = outputs
        if data_samples is None:
            metas = [dict(ori_shape=inputs.shape[2:],
                          img_shape=inputs.shape[2:],
                          pad_shape=inputs.shape[2:],
                          padding_size=[0, 0, 0, 0])] * inputs.shape[0]
        else:
            metas = [sample.metainfo for sample in data_samples]
        model = self.torch_model
        logits = model.decode_head.predict_by_feat(logits, metas)
        return model.postprocess_result(logits, data_samples)


def build_runtime_model(onnx_file, backend='onnxruntime', model_cfg=None,
                        threads=None, classes=None, precision='fp32'):
    """The runtime model (:class:`RuntimeDetector` or
    :class:`RuntimeSegmentor`) for an exported file; with ``model_cfg``
    (and ``classes``) of the user's config, see :func:`check_compatible`."""
    task = read_metadata(onnx_file)['task']
    cls = RuntimeSegmentor if task == 'segmentation' else RuntimeDetector
    return cls(onnx_file, backend, model_cfg, threads,
               classes=classes, precision=precision).eval()


def use_runtime_model(cfg, onnx_file, backend, precision='fp32'):
    """Make ``cfg.model`` the runtime model of an exported file, built from
    the config's own model settings (preprocessing, ``test_cfg``); the file
    is checked to fit them and the config's test classes. ``precision``:
    see :class:`RuntimeDetector`."""
    if not str(onnx_file).endswith('.onnx'):
        raise ValueError(f'--backend {backend} runs an exported .onnx file '
                         f'(tools/deployment/export_onnx.py), got '
                         f'{onnx_file}')
    kind = ('RuntimeSegmentor' if cfg.get('default_scope') == 'mmseg'
            else 'RuntimeDetector')
    cfg.model = dict(type=f'mmconvmlp.{kind}',
                     onnx_file=osp.abspath(onnx_file), backend=backend,
                     precision=precision, model_cfg=cfg.model.to_dict(),
                     classes=dataset_meta(cfg)['classes'] or None)
    cfg.load_from = None
    return cfg
