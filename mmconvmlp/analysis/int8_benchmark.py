"""Compare int8 settings on a trained model, in one run: each setting's
task metric (points lost against float32) and speed against ONNX Runtime
float32: the logic behind ``tools/analysis_tools/benchmark_int8.py``.

The settings are :func:`~mmconvmlp.deploy.quantize.quantize_onnx`'s: ONNX
Runtime's quantizer with MinMax, Entropy or Percentile calibration, uint8
(U8S8) or int8 (S8S8) activations, 7-bit weights; OpenVINO's (NNCF), whose
file runs in OpenVINO; each again with the parts named by ``keep_fp32``
(what :func:`~mmconvmlp.deploy.quantize.layer_sensitivity` names) kept in
float32. Every file is evaluated by the config's test loop on its test data
and its ``test_step`` on one image of the given size is timed, in turns
with the float32 file in ONNX Runtime and in OpenVINO.
"""
import os
import os.path as osp

import torch

from .measure import measure_latencies
from .tables import markdown_table

#: name -> quantize_onnx settings (the route decides the runtime: NNCF's
#: file runs in OpenVINO, ONNX Runtime's in ONNX Runtime).
SETTINGS = {
    'onnxruntime minmax': dict(method='minmax'),
    'onnxruntime entropy': dict(method='entropy'),
    'onnxruntime percentile': dict(method='percentile'),
    'onnxruntime minmax S8S8': dict(method='minmax', activations='int8'),
    'onnxruntime minmax 7-bit': dict(method='minmax', reduce_range=True),
    'nncf': dict(route='nncf'),
}


def _slug(name):
    return ''.join(c if c.isalnum() else '_' for c in name)


def int8_benchmark(config, checkpoint, work_dir, shape=(800, 1216),
                   settings=None, keep_fp32=(), images=None, num=32,
                   repeats=3, cfg_options=None):
    """Quantize, evaluate and time each setting (see the module docstring).

    Args:
        config (str): the model's config.
        checkpoint (str): its trained weights.
        work_dir (str): where the files go.
        shape (tuple[int, int]): the image size timed.
        settings (Sequence[str], optional): names of :data:`SETTINGS`
            (default: all).
        keep_fp32 (Sequence[str]): parts kept in float32 in a second
            variant of the onnxruntime minmax and percentile and the nncf
            settings.
        images (str, optional): calibration images (default: the test data
            root's ``images/training``).
        num (int): calibration images.
        repeats (int): timed runs per file.
        cfg_options (dict, optional): config overrides (``--cfg-options``).

    Returns:
        list[dict]: one row per file: name, runtime, settings text,
        metrics, ``drop`` (points, worst metric), latency and ``speedup``
        over ONNX Runtime float32.
    """
    from ..deploy.onnx_export import export_onnx, load_model
    from ..deploy.quantize import describe, quantize_onnx
    from ..deploy.runtime import build_runtime_model
    from ..deploy.tune import _Evaluator, metric_drops
    from ..model_zoo import read_config
    from .predict_benchmark import predict_batch
    cfg = read_config(config)
    if cfg_options:
        from ..engine.cli import check_cfg_options
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    root = cfg.test_dataloader.dataset.get('data_root') or '.'
    images = images or osp.join(root, 'images', 'training')
    os.makedirs(work_dir, exist_ok=True)
    model, meta = load_model(cfg, checkpoint)
    fp32 = osp.join(work_dir, 'model.onnx')
    export_onnx(model.eval(), cfg, fp32, dynamic=True, **meta)
    names = list(settings or SETTINGS)
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise ValueError(f'int8 settings {unknown}: expected names of '
                         f'{list(SETTINGS)}')
    variants = [(n, SETTINGS[n]) for n in names]
    if keep_fp32:
        variants += [(f'{n} + fp32 {" ".join(keep_fp32)}',
                      dict(SETTINGS[n], keep_fp32=list(keep_fp32)))
                     for n in ('onnxruntime minmax', 'onnxruntime percentile',
                               'nncf') if n in names]
    evaluate = _Evaluator(cfg, work_dir)
    rows, models = [], {}
    for backend in ('onnxruntime', 'openvino'):
        name = f'fp32 {backend}'
        models[name] = build_runtime_model(fp32, backend, model_cfg=cfg.model)
        rows.append(dict(name=name, runtime=backend, settings='float32',
                         metrics=evaluate(models[name])))
    for name, setting in variants:
        out = osp.join(work_dir, _slug(name) + '.onnx')
        info = quantize_onnx(fp32, out, images, num, **setting)
        runtime = 'openvino' if info['route'] == 'nncf' else 'onnxruntime'
        models[name] = build_runtime_model(out, runtime, model_cfg=cfg.model)
        rows.append(dict(name=name, runtime=runtime,
                         settings=describe(info),
                         nodes_kept_fp32=info['nodes_kept_fp32'],
                         metrics=evaluate(models[name])))
    batch = predict_batch(cfg.default_scope, *shape)
    with torch.no_grad():
        times = measure_latencies(
            {n: (lambda m=m: m.test_step(batch)) for n, m in models.items()},
            repeats=repeats, warmup=1)
    base = rows[0]['metrics']
    for row in rows:
        row['drop'] = max(metric_drops(row['metrics'], base).values(),
                          default=0.)
        row['latency_ms'] = times[row['name']] * 1e3
        row['speedup'] = times['fp32 onnxruntime'] / times[row['name']]
    return rows


def int8_table(rows):
    """The rows of :func:`int8_benchmark` as Markdown."""
    table = [dict(r, metrics=', '.join(
        f'{k} {v:.4g}' for k, v in r['metrics'].items())) for r in rows]
    return markdown_table(table, [
        ('name', 'file', '{}'), ('runtime', 'runtime', '{}'),
        ('metrics', 'metrics', '{}'), ('drop', 'points lost', '{:.2f}'),
        ('latency_ms', 'latency (ms)', '{:.1f}'),
        ('speedup', 'vs ORT fp32', '{:.2f}×'),
        ('settings', 'settings', '{}')])
