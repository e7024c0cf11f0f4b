"""Export detectors and segmentors to ONNX.

The graph takes the preprocessed image batch (what the config's data
preprocessor returns: normalised, channel order converted, padded) and
returns the model's raw head outputs, flattened: what
``model(x, mode='tensor')`` returns, in that order. Post-processing with
data-dependent shapes (box decoding, NMS, resizing to the image) stays
outside the graph; the runtime models of :mod:`mmconvmlp.deploy.runtime`
apply the model's own.

Two-stage detectors (Mask R-CNN) need image metadata, NMS and RoIAlign in
their tensor mode, so their graph is the single-stage part: backbone, neck
and RPN head, returning the neck's feature maps and the RPN outputs. The RoI
head (box and mask branches) runs in PyTorch on the runtime's outputs; its
weights go into a file beside the ``.onnx`` (``<name>.roi_head.pth``).

Everything a runtime needs besides the graph is stored in the file's
metadata as plain JSON data (:mod:`.metadata`): the preprocessing (mean,
std, channel order, pad divisor), the class names, the output groups, the
post-processing settings of the model and the test pipeline. No code: the
config itself is not stored.
"""
import os.path as osp
import tempfile
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import atomic_write, save_file
from .metadata import FORMAT, model_settings, write_metadata

#: Opset of the exported graphs (ONNX Runtime >= 1.13, OpenVINO >= 2022.3).
OPSET = 17


class FlatOutputs(nn.Module):
    """Run ``forward`` of a detector or segmentor as exported: one batch
    tensor in, the raw outputs out as a flat tuple, in groups."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.two_stage = hasattr(model, 'rpn_head') and hasattr(
            model, 'roi_head')

    def forward(self, inputs):
        if self.two_stage:
            feats = self.model.extract_feat(inputs)
            cls_scores, bbox_preds = self.model.rpn_head(feats)
            groups = (feats, cls_scores, bbox_preds)
        else:
            out = self.model(inputs, mode='tensor')
            groups = out if isinstance(out, (tuple, list)) else (out, )
        return tuple(t for group in groups
                     for t in (group if isinstance(group, (tuple, list))
                               else (group, )))

    def output_groups(self, inputs):
        """``[[name, count], ...]``: how the flat outputs group, in order
        (a count of 0 marks a single tensor, not a list)."""
        if self.two_stage:
            feats = self.model.extract_feat(inputs)
            return [['feats', len(feats)], ['rpn_cls_scores', len(feats)],
                    ['rpn_bbox_preds', len(feats)]]
        out = self.model(inputs, mode='tensor')
        if not isinstance(out, (tuple, list)):
            return [['seg_logits', 0]]
        names = ['cls_scores', 'bbox_preds', 'centernesses']
        return [[names[i] if i < len(names) else f'outputs{i}',
                 len(group) if isinstance(group, (tuple, list)) else 0]
                for i, group in enumerate(out)]


class ScaleUpsample(nn.Module):
    """mmseg's ``Upsample`` by a scale factor, in a form that exports with
    a dynamic size: mmseg's computes the output size as Python ints, which a
    traced export freezes at the example's size. Same values for the
    integral factors mmseg's heads use."""

    def __init__(self, scale_factor, mode, align_corners):
        super().__init__()
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.scale_factor,
                             mode=self.mode, align_corners=self.align_corners)


def make_dynamic_safe(model):
    """Replace, in place, the modules of ``model`` whose traced graph would
    be valid only at the example's size (mmseg's ``Upsample`` by a scale
    factor). Returns the number replaced."""
    try:
        from mmseg.models.utils import Upsample
    except ImportError:
        return 0
    replaced = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            if (isinstance(child, Upsample) and not child.size
                    and child.scale_factor):
                factors = child.scale_factor if isinstance(
                    child.scale_factor, tuple) else (child.scale_factor, ) * 2
                if any(f != int(f) for f in factors):
                    raise ValueError(
                        f'{name}: Upsample by a non-integral factor '
                        f'{child.scale_factor} does not export with a '
                        'dynamic size')
                setattr(module, name, ScaleUpsample(
                    child.scale_factor, child.mode, child.align_corners))
                replaced += 1
    return replaced


def trace_to_onnx(module, example, out_file, output_names, dynamic=False):
    """Trace ``module`` (one NCHW tensor in, a flat tuple of tensors out)
    into ``out_file`` with the TorchScript exporter; with ``dynamic``, batch,
    height and width of the input and every output are dynamic."""
    axes = None
    if dynamic:
        axes = {'inputs': {0: 'batch', 2: 'height', 3: 'width'}}
        axes.update({n: {0: 'batch', 2: f'{n}_h', 3: f'{n}_w'}
                     for n in output_names})
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer's notes on shape-dependent Python code: mmdet's and
        # mmseg's heads take the shapes they warn about from the tensors
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(module, (example, ), out_file, dynamo=False,
                          input_names=['inputs'], output_names=output_names,
                          dynamic_axes=axes, opset_version=OPSET)


def export_backbone(backbone, out_file, shape=(224, 224), dynamic=False):
    """Export a ConvMLP backbone (NCHW image in, its feature maps out) to
    ``out_file``, checked by ONNX's checker; for benchmarks and users who
    deploy the backbone alone."""
    import copy

    import onnx
    backbone = copy.deepcopy(backbone).cpu().eval()
    x = torch.randn(1, 3, *shape)
    with torch.no_grad():
        count = len(backbone(x))
    trace_to_onnx(_TupleOutputs(backbone), x, out_file,
                  [f'feats.{i}' for i in range(count)], dynamic)
    onnx.checker.check_model(out_file, full_check=True)


class _TupleOutputs(nn.Module):

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, inputs):
        return tuple(self.module(inputs))


def preprocessing_metadata(preprocessor_cfg):
    """The preprocessing a runtime must apply, from the config's
    ``model.data_preprocessor``."""
    cfg = dict(preprocessor_cfg or {})
    return dict(
        mean=[float(v) for v in cfg.get('mean') or []],
        std=[float(v) for v in cfg.get('std') or []],
        bgr_to_rgb=bool(cfg.get('bgr_to_rgb', cfg.get('rgb_to_bgr', False))),
        pad_size_divisor=int(cfg.get('pad_size_divisor',
                                     cfg.get('size_divisor') or 1)),
        pad_value=float(cfg.get('pad_val', cfg.get('pad_value', 0))),
        input_channel_order='BGR',  # what mmcv's image loaders give
    )


def dataset_meta(cfg, checkpoint_meta=None):
    """Class names and, where known, palette: from the checkpoint's
    ``dataset_meta``, else the config's test dataset (its ``metainfo`` or
    its class's ``METAINFO``)."""
    meta = (checkpoint_meta or {}).get('dataset_meta') or {}
    if not meta.get('classes'):
        dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
        while 'dataset' in dataset:  # wrappers (RepeatDataset, ...)
            dataset = dataset['dataset']
        meta = dict(dataset.get('metainfo') or {})
        if not meta.get('classes'):
            from mmengine.registry import DATASETS
            try:
                dataset_cls = DATASETS.get(dataset.get('type', ''))
            except KeyError:
                dataset_cls = None
            meta = dict(getattr(dataset_cls, 'METAINFO', None) or {})
    out = dict(classes=[str(c) for c in meta.get('classes') or []])
    if meta.get('palette'):
        out['palette'] = [[int(v) for v in color]
                          for color in meta['palette']]
    return out


def load_model(cfg, checkpoint):
    """Build ``cfg.model`` and load ``checkpoint`` into it (through the
    safe loader; mmengine checkpoints or official ones, whose class names
    move to ``dataset_meta``). Returns ``(model, dataset_meta)`` (see
    :func:`dataset_meta`).

    Raises:
        KeyError: the checkpoint's weights do not fit the config's model,
            naming the first missing and unexpected keys.
    """
    from ..checkpoint import convert_official_downstream, load_file, resolve
    from ..registry import build_model
    model = build_model(cfg)
    path = resolve(checkpoint)
    ckpt = load_file(path)
    if isinstance(ckpt, dict) and 'state_dict' in ckpt and (
            'CLASSES' in (ckpt.get('meta') or {})):
        ckpt = convert_official_downstream(ckpt, source=path)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise KeyError(
            f'{path} does not fit the model of the config: '
            f'{len(missing)} weights missing (first: {missing[:3]}), '
            f'{len(unexpected)} unexpected (first: {unexpected[:3]})')
    return model.eval(), dataset_meta(
        cfg, ckpt.get('meta') if isinstance(ckpt, dict) else None)


def export_onnx(model, cfg, out_file, shape=(800, 1216), batch=1,
                dynamic=False, classes=None, palette=None):
    """Export ``model`` (a detector or segmentor built from ``cfg``, with
    its weights) to ``out_file``.

    Args:
        model (nn.Module): the PyTorch model; it is not changed.
        cfg (Config): its config; its post-processing settings and test
            pipeline are stored in the file as plain data.
        out_file (str): the ``.onnx`` file to write.
        shape (tuple[int, int]): height and width of the example input
            (the only input size the file accepts unless ``dynamic``).
        batch (int): batch size of the example input.
        dynamic (bool): make batch, height and width dynamic.
        classes (list[str]): class names stored in the metadata.
        palette (list[list[int]]): their colours (segmentation), stored.

    Returns:
        dict: the metadata written (see :mod:`.metadata`).
    """
    import copy

    import onnx
    scope = cfg.get('default_scope', 'mmdet')
    pipeline = cfg.get('test_pipeline') or (
        cfg.get('test_dataloader') or {}).get('dataset', {}).get('pipeline')
    metadata = dict(
        format=FORMAT,
        task='segmentation' if scope == 'mmseg' else 'detection',
        default_scope=scope,
        preprocessing=preprocessing_metadata(
            cfg.model.get('data_preprocessor')),
        classes=list(classes or []),
        palette=list(palette or []),
        input_shape=[batch if not dynamic else -1, 3,
                     *(shape if not dynamic else (-1, -1))],
        model=model_settings(cfg.model),
    )
    if pipeline:
        metadata['test_pipeline'] = list(pipeline)
    model = copy.deepcopy(model).cpu().eval()
    make_dynamic_safe(model)
    wrapper = FlatOutputs(model).eval()
    x = torch.randn(batch, 3, *shape)
    with torch.no_grad():
        groups = wrapper.output_groups(x)
    names = [f'{name}.{i}' if count else name for name, count in groups
             for i in range(max(count, 1))]
    metadata['output_groups'] = groups
    with tempfile.TemporaryDirectory() as tmp:
        traced = osp.join(tmp, 'traced.onnx')
        trace_to_onnx(wrapper, x, traced, names, dynamic)
        proto = onnx.load(traced)
    onnx.checker.check_model(proto, full_check=True)
    if wrapper.two_stage:
        roi_file = osp.splitext(out_file)[0] + '.roi_head.pth'
        save_file({'state_dict': model.roi_head.state_dict()}, roi_file)
        metadata['roi_head_file'] = osp.basename(roi_file)
    written = write_metadata(proto, metadata)
    atomic_write(proto.SerializeToString(), out_file)
    return written

