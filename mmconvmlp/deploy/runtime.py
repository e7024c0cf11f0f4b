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
"""
import os.path as osp

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel

from ..registry import MODELS
from .onnx_export import read_metadata

#: The runtimes :func:`build_backend` knows.
BACKENDS = ('onnxruntime', 'openvino')


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
    """An ONNX file compiled by OpenVINO for the CPU, in float32 (OpenVINO
    would otherwise pick bfloat16 on CPUs that have it), tuned for latency.
    ``backend(array)`` returns the outputs as a list of arrays."""

    def __init__(self, onnx_file, threads=None):
        import openvino as ov
        core = ov.Core()
        self.compiled = core.compile_model(
            core.read_model(onnx_file), 'CPU', {
                'INFERENCE_NUM_THREADS': threads or torch.get_num_threads(),
                'INFERENCE_PRECISION_HINT': 'f32',
                'PERFORMANCE_HINT': 'LATENCY',
            })
        self.request = self.compiled.create_infer_request()

    def __call__(self, inputs):
        results = self.request.infer({0: inputs})
        return [np.asarray(results[out]) for out in self.compiled.outputs]


def build_backend(onnx_file, backend='onnxruntime', threads=None):
    """Load ``onnx_file`` into ``backend`` ('onnxruntime' or 'openvino')."""
    if backend not in BACKENDS:
        raise ValueError(f'backend {backend!r}: expected one of {BACKENDS}')
    if not osp.isfile(onnx_file):
        raise FileNotFoundError(f'ONNX file not found: {onnx_file}')
    try:
        cls = (ONNXRuntimeBackend if backend == 'onnxruntime'
               else OpenVINOBackend)
        return cls(onnx_file, threads)
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


class _RuntimeModel(BaseModel):
    """What the runtime detector and segmentor share: the graph in a
    runtime, the config's data preprocessor, and the PyTorch model's heads
    for post-processing (without backbone and neck)."""

    task = None

    def __init__(self, onnx_file, backend='onnxruntime', model_cfg=None,
                 threads=None, data_preprocessor=None, init_cfg=None):
        from mmengine.registry import init_default_scope

        from ..registry import build_model
        self.metadata = read_metadata(onnx_file)
        if self.metadata['task'] != self.task:
            raise ValueError(
                f'{onnx_file} holds a {self.metadata["task"]} model; '
                f'{type(self).__name__} runs {self.task} models')
        cfg = Config.fromstring(self.metadata['config'], '.py')
        if model_cfg is not None:
            cfg.model = model_cfg
        init_default_scope(cfg.default_scope)
        super().__init__(
            data_preprocessor=data_preprocessor or cfg.model.data_preprocessor,
            init_cfg=init_cfg)
        # the PyTorch model only post-processes: drop its heavy parts
        torch_model = build_model(cfg).eval()
        torch_model.backbone = nn.Identity()
        if hasattr(torch_model, 'neck'):
            torch_model.neck = nn.Identity()
        self.torch_model = torch_model
        self.onnx_file = onnx_file
        self.backend_name = backend
        self.backend = build_backend(onnx_file, backend, threads)
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
        data_preprocessor (dict, optional): overrides the model config's
            (mmengine's Runner passes a config's top-level one).
    """

    task = 'detection'

    def __init__(self, onnx_file, backend='onnxruntime', model_cfg=None,
                 threads=None, **kwargs):
        super().__init__(onnx_file, backend, model_cfg, threads, **kwargs)
        self.two_stage = 'roi_head_file' in self.metadata
        if self.two_stage:
            from ..checkpoint import load_file
            roi_file = osp.join(osp.dirname(onnx_file),
                                self.metadata['roi_head_file'])
            if not osp.isfile(roi_file):
                raise FileNotFoundError(
                    f'{onnx_file} is a two-stage detector whose RoI head '
                    f'runs in PyTorch: its weights {roi_file} are missing')
            self.torch_model.roi_head.load_state_dict(
                load_file(roi_file)['state_dict'])

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
                        threads=None):
    """The runtime model (:class:`RuntimeDetector` or
    :class:`RuntimeSegmentor`) for an exported file."""
    task = read_metadata(onnx_file)['task']
    cls = RuntimeSegmentor if task == 'segmentation' else RuntimeDetector
    return cls(onnx_file, backend, model_cfg, threads).eval()
