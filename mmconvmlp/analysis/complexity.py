"""FLOPs and parameters of a detection or segmentation config's model,
whole and by part (backbone, neck, heads).

mmengine's counter (``mmengine.analysis.FlopAnalyzer``, the one mmdet's and
mmseg's ``get_flops.py`` use) traces the model's tensor-mode forward on one
random image; one multiply-add counts as one FLOP. The heads' share is the
whole model's count less the backbone's and the neck's, so the parts add up.
For two-stage detectors the RoI stage is counted for the proposals the
untrained RPN keeps (its test_cfg's ``max_per_img``), as mmdet's tool does.
"""
import torch

#: The shape (H, W) a config is counted at when none is given: COCO's test
#: scale for detection, the ADE20K crop for segmentation.
DEFAULT_SHAPES = {'mmdet': (800, 1333), 'mmseg': (512, 512)}


def load_config(config):
    """An mmengine Config from a path, an ``mmdet::`` / ``mmseg::`` name or
    the name of one of our configs."""
    from ..model_zoo import read_config
    return read_config(config)


def build_untrained(cfg):
    """Build ``cfg.model`` without loading any weights, in eval mode on the
    CPU, with SyncBN as plain BN."""
    import mmconvmlp  # noqa: F401  (registers ConvMLP)
    from mmengine.model import revert_sync_batchnorm

    from ..registry import build_model
    cfg = cfg.copy()
    cfg.model.pop('pretrained', None)
    cfg.model.backbone.pop('init_cfg', None)
    return revert_sync_batchnorm(build_model(cfg)).eval()


class TensorMode(torch.nn.Module):
    """A detector's or segmentor's tensor-mode forward on a batch of one
    image of a fixed shape, as a module of the image alone (what the
    counter traces)."""

    def __init__(self, model, height, width):
        super().__init__()
        self.model = model
        meta = dict(img_shape=(height, width), ori_shape=(height, width),
                    pad_shape=(height, width), batch_input_shape=(height,
                                                                  width),
                    scale_factor=(1., 1.))
        self.samples = [_data_sample(model, meta)]

    def forward(self, x):
        return self.model._forward(x, self.samples)


def _data_sample(model, meta):
    if type(model).__module__.startswith('mmseg'):
        from mmseg.structures import SegDataSample
        return SegDataSample(metainfo=meta)
    from mmdet.structures import DetDataSample
    return DetDataSample(metainfo=meta)


def count(module, inputs):
    """(FLOPs, parameters) of ``module(*inputs)`` by mmengine's counter."""
    from mmengine.analysis import FlopAnalyzer, parameter_count
    analyzer = FlopAnalyzer(module, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total(), parameter_count(module)['']


def model_complexity(config, shape=None):
    """FLOPs and parameters of a config's model at ``shape`` (H, W).

    Returns:
        dict: ``shape`` and, for ``whole``, ``backbone``, ``neck`` (absent
        without a neck) and ``heads``, a dict with ``flops`` and
        ``params``.
    """
    cfg = load_config(config) if isinstance(config, str) else config
    height, width = shape or DEFAULT_SHAPES[cfg.default_scope]
    model = build_untrained(cfg)
    x = torch.randn(1, 3, height, width)
    with torch.no_grad():
        whole = count(TensorMode(model, height, width), (x, ))
        parts = {'backbone': count(model.backbone, (x, ))}
        if getattr(model, 'neck', None) is not None:
            feats = model.backbone(x)
            parts['neck'] = count(model.neck, (feats, ))
    result = {'shape': (height, width),
              'whole': dict(flops=whole[0], params=whole[1])}
    for name, (flops, params) in parts.items():
        result[name] = dict(flops=flops, params=params)
    result['heads'] = {
        key: result['whole'][key] - sum(p[key] for p in
                                        map(result.get, parts))
        for key in ('flops', 'params')}
    return result
