"""Time whole models' predict step along every inference path, in one run.

The paths: PyTorch eager (the model as built), ``optimize_for_inference`` in
float32 and in bf16, and the exported file in ONNX Runtime and OpenVINO
(:mod:`mmconvmlp.deploy.runtime`, exported at the benchmark's size). Each
path runs ``test_step`` on the same uint8 image (preprocessing and
post-processing included), the paths timed in turns; each path's prediction
is compared with eager's: the logic behind
``tools/analysis_tools/benchmark_predict.py``.
"""
import importlib.util
import os.path as osp
import tempfile

import torch

from .measure import measure_latencies
from .tables import markdown_table
from .weights import spread_weights

#: name -> (config under configs/, default H x W)
MODELS = {
    'RetinaNet-ConvMLP-S': ('detection/retinanet_convmlp_s.py', (800, 1216)),
    'Mask R-CNN-ConvMLP-S': ('detection/mask_rcnn_convmlp_s.py', (800, 1216)),
    'Semantic FPN-ConvMLP-S': ('segmentation/semantic_fpn_convmlp_s.py',
                               (512, 2048)),
}


def installed_backends():
    """The runtimes of :mod:`mmconvmlp.deploy.runtime` that are installed."""
    return [name for name in ('onnxruntime', 'openvino')
            if importlib.util.find_spec(name) is not None]


def random_model(cfg, seed=0):
    """``cfg.model`` with random weights (no checkpoint is downloaded), norm
    statistics spread (:func:`.weights.spread_weights`), in eval mode;
    detectors keep every box (``score_thr=0``), so that there are
    predictions to compare."""
    from mmengine.logging import MMLogger
    from mmengine.model import revert_sync_batchnorm

    from ..registry import build_model
    cfg.model.backbone.init_cfg = None
    if cfg.default_scope == 'mmdet':
        test_cfg = cfg.model.test_cfg
        for part in ([test_cfg.rcnn] if 'rcnn' in test_cfg else [test_cfg]):
            part.score_thr = 0.
    torch.manual_seed(seed)
    model = revert_sync_batchnorm(build_model(cfg))
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # init_weights logs every parameter
    model.init_weights()
    logger.setLevel(level)
    return spread_weights(model, seed).eval()


def predict_batch(scope, height, width, seed=0):
    """One random uint8 image of ``height`` x ``width`` with the metadata
    the test pipeline gives, as ``test_step`` takes it."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                          generator=gen)
    meta = dict(img_shape=(height, width), ori_shape=(height, width),
                pad_shape=(height, width), scale_factor=(1., 1.))
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=meta)
    else:
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=dict(meta, img_id=0))
    return dict(inputs=[image], data_samples=[sample])


def agreement(scope, ref, out, tol=1e-3):
    """How far a prediction is from the reference one, as text.
    Detection: how many reference boxes have a twin (same label, box within
    ``tol`` of the image scale; with random weights, near-equal scores at
    the top-k cut-off may let different boxes in), and over the twins the
    largest relative difference of boxes and of scores and the share of
    mask pixels equal; segmentation: the share of pixels with the same
    label."""
    if scope == 'mmseg':
        same = (out.pred_sem_seg.data == ref.pred_sem_seg.data).float()
        return f'{100 * same.mean().item():.4f}% of pixels equal'
    a, b = out.pred_instances, ref.pred_instances
    if len(b.scores) == 0:
        return f'{len(a.scores)} boxes, none in the reference'
    scale = float(b.bboxes.abs().max())
    worst, matched, pixels = 0., 0, []
    for i in range(len(b.scores)):
        same = (a.labels == b.labels[i]).nonzero().flatten()
        if len(same) == 0:
            continue
        gaps = (a.bboxes[same] - b.bboxes[i]).abs().amax(1) / scale
        j = int(same[gaps.argmin()])
        if float(gaps.min()) > tol:
            continue
        matched += 1
        score_gap = abs(float(a.scores[j] - b.scores[i])) / max(
            abs(float(b.scores[i])), 1e-12)
        worst = max(worst, float(gaps.min()), score_gap)
        if 'masks' in b:
            pixels.append((a.masks[j] == b.masks[i]).float().mean())
    text = (f'{matched}/{len(b.scores)} boxes matched, max rel. diff '
            f'{worst:.1e}')
    if pixels:
        text += f', {100 * float(min(pixels)):.2f}% mask pixels equal (worst)'
    return text


def build_paths(model, cfg, height, width, backends, bf16=True,
                work_dir=None, int8_images=None):
    """name -> model with ``test_step``: eager, optimized fp32 (and bf16),
    each runtime on a file exported at ``height`` x ``width`` and, with
    ``int8_images`` (calibration images), that file quantized to int8 in
    ONNX Runtime."""
    from ..deploy import build_runtime_model, export_onnx, optimize_for_inference
    paths = {'PyTorch eager': model,
             'optimize_for_inference fp32': optimize_for_inference(model)}
    if bf16:
        paths['optimize_for_inference bf16'] = optimize_for_inference(
            model, bf16=True)
    if backends:
        work_dir = work_dir or tempfile.mkdtemp(prefix='mmconvmlp-bench-')
        onnx_file = osp.join(work_dir, 'model.onnx')
        export_onnx(model, cfg, onnx_file, shape=(height, width))
        for backend in backends:
            paths[backend] = build_runtime_model(onnx_file, backend,
                                                 model_cfg=cfg.model)
        if int8_images and 'onnxruntime' in backends:
            from ..deploy.quantize import quantize_onnx
            int8_file = osp.join(work_dir, 'model_int8.onnx')
            quantize_onnx(onnx_file, int8_file, int8_images)
            paths['onnxruntime int8'] = build_runtime_model(
                int8_file, 'onnxruntime', model_cfg=cfg.model)
    return paths


def measure_model(name, config, height, width, backends, repeats=5,
                  bf16=True, int8_images=None):
    """Rows (model, size, path, latency in ms, speed-up over eager,
    agreement with eager) of one model."""
    from ..model_zoo import read_config
    cfg = read_config(config)
    model = random_model(cfg)
    paths = build_paths(model, cfg, height, width, backends, bf16=bf16,
                        int8_images=int8_images)
    data = predict_batch(cfg.default_scope, height, width)
    with torch.no_grad():
        preds = {path: net.test_step(data)[0] for path, net in paths.items()}
        times = measure_latencies(
            {path: (lambda net=net: net.test_step(data))
             for path, net in paths.items()},
            repeats=repeats, warmup=1)
    eager = times['PyTorch eager']
    return [dict(model=name, size=f'{height}x{width}', path=path,
                 latency=seconds * 1e3, speedup=eager / seconds,
                 agreement=agreement(cfg.default_scope,
                                     preds['PyTorch eager'], preds[path]))
            for path, seconds in times.items()]


#: The tool's short names of the models.
KEYS = {'retinanet': 'RetinaNet-ConvMLP-S',
        'mask_rcnn': 'Mask R-CNN-ConvMLP-S',
        'semantic_fpn': 'Semantic FPN-ConvMLP-S'}


def print_predict_benchmark(size=None, repeats=5, models=tuple(KEYS),
                            bf16=True, int8_images=None):
    """Measure and print the table (``size``: (H, W) for every model, else
    each model's default)."""
    from ..model_zoo import config_path
    backends = installed_backends()
    print(f'\n## Predict step of whole models (CPU '
          f'{torch.backends.cpu.get_cpu_capability()}, '
          f'{torch.get_num_threads()} threads, torch {torch.__version__}, '
          f'batch 1, median of {repeats}; random weights, detectors keep '
          f'every box: score_thr 0; runtimes: {", ".join(backends)})\n')
    rows = []
    for key in models:
        name = KEYS[key]
        config, default = MODELS[name]
        height, width = size or default
        rows += measure_model(name, config_path(config), height, width,
                              backends, repeats=repeats, bf16=bf16,
                              int8_images=int8_images)
    print(markdown_table(rows, [
        ('model', 'model', '{}'), ('size', 'H×W', '{}'),
        ('path', 'path', '{}'), ('latency', 'latency (ms)', '{:.0f}'),
        ('speedup', 'vs eager', '{:.2f}×'),
        ('agreement', 'prediction vs eager', '{}')]))
    return rows
