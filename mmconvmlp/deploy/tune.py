"""Find the fastest inference path that keeps the accuracy, on this machine.

:func:`tune` builds the paths available here for a detector or segmentor
and its checkpoint: PyTorch eager, ``optimize_for_inference`` with and
without Winograd convolutions, with the transforms that pay here (probed
at the size timed; ``torch.compile`` on request), the
exported file in ONNX Runtime and OpenVINO, bf16 (``optimize_for_inference``
and OpenVINO's) where the CPU computes it natively and int8 (ONNX Runtime's
quantizer, and NNCF's file run in OpenVINO) where asked. Each path
is checked against eager float32: its raw outputs on one batch (float32
paths must stay within ``tolerance``) and its task metric on the config's
test data (every path must stay within ``max_drop`` points); the paths are
timed in turns on one image of the given size (``test_step``: preprocessing
and post-processing included). The report (``report.json``, ``report.md``)
names the machine, every path's latency, error, metric and why it was kept
or refused; the fastest kept path is written as a ready artifact: an
``.onnx`` file that ``tools/test.py --backend`` runs, or the
``optimize_for_inference`` settings of the PyTorch path, which
``tools/test.py --optimize`` runs.
"""
import importlib
import importlib.util
import json
import os
import os.path as osp
import platform
import shlex
import shutil

import torch

#: Every path :func:`tune` knows: name -> (precision, runtime).
PATHS = {
    'eager': ('fp32', 'pytorch'),
    'optimize': ('fp32', 'pytorch'),
    'optimize, direct convs': ('fp32', 'pytorch'),
    'optimize, probed': ('fp32', 'pytorch'),
    'optimize + compile': ('fp32', 'pytorch'),
    'onnxruntime': ('fp32', 'onnxruntime'),
    'openvino': ('fp32', 'openvino'),
    'optimize bf16': ('bf16', 'pytorch'),
    'openvino bf16': ('bf16', 'openvino'),
    'onnxruntime int8': ('int8', 'onnxruntime'),
    'openvino int8': ('int8', 'openvino'),
}
#: The quantizer of each int8 path (:func:`~mmconvmlp.deploy.quantize.
#: quantize_onnx`'s route) and the file it writes beside the export.
INT8 = {'onnxruntime int8': ('onnxruntime', '_int8.onnx'),
        'openvino int8': ('nncf', '_nncf_int8.onnx')}
#: optimize_for_inference's settings of each PyTorch path but eager
#: (``probe=True``: probe at the size timed).
OPTIMIZE = {'optimize': {}, 'optimize, direct convs': dict(winograd=False),
            'optimize, probed': dict(probe=True),
            'optimize + compile': dict(compile=True),
            'optimize bf16': dict(bf16=True)}


def machine():
    """The CPU (capability, the flags that decide low-precision speed),
    threads and versions of what runs the paths."""
    from .cpu import cpu_flags, native_bf16, native_int8
    versions = {}
    for name in ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmseg', 'onnxruntime',
                 'openvino', 'nncf'):
        try:
            versions[name] = importlib.import_module(name).__version__
        except Exception:  # not installed: the path is not available
            continue
    return dict(
        cpu=platform.processor() or platform.machine(),
        capability=torch.backends.cpu.get_cpu_capability(),
        native_bf16=native_bf16(), native_int8=native_int8(),
        flags=sorted(f for f in cpu_flags() if f.startswith(
            ('avx2', 'fma', 'avx512', 'amx', 'avx_vnni'))),
        threads=torch.get_num_threads(), versions=versions)


def available_paths(precisions, compile=False):
    """The names of :data:`PATHS` to try here for ``precisions``: runtimes
    that are installed, bf16 only where the CPU computes it natively, the
    compiled path only if asked (it compiles for every input shape)."""
    from .cpu import native_bf16
    names = []
    for name, (precision, runtime) in PATHS.items():
        if precision not in precisions or (
                name == 'optimize + compile' and not compile):
            continue
        # the runtime, and the quantizer of an int8 path (a module each)
        needs = {runtime, INT8[name][0]} if name in INT8 else {runtime}
        if any(importlib.util.find_spec(n) is None
               for n in needs - {'pytorch'}):
            continue
        if precision == 'bf16' and not native_bf16():
            continue
        names.append(name)
    return names


def _flat(outputs):
    flat = []
    for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
        flat += _flat(out) if isinstance(out, (list, tuple)) else [out]
    return flat


def raw_outputs(path, x):
    """The raw outputs of a path on a preprocessed batch, flat."""
    from .onnx_export import FlatOutputs
    from .runtime import _RuntimeModel
    with torch.no_grad():
        if isinstance(path, _RuntimeModel):
            return _flat(path(x, mode='tensor'))
        return _flat(FlatOutputs(path)(x))


def metric_drops(metrics, reference):
    """Points each task metric lost against the reference (COCO mAPs are
    fractions: x100)."""
    drops = {}
    for key, value in reference.items():
        scale = 100 if key.startswith('coco/') else 1
        drops[key] = (value - metrics[key]) * scale
    return drops


def _task_metrics(metrics):
    keys = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU')
    return {k: float(metrics[k]) for k in keys if k in metrics}


class _Evaluator:
    """The config's test loop, run with any path as the model."""

    def __init__(self, cfg, work_dir):
        from mmengine.runner import Runner
        cfg = cfg.copy()
        cfg.work_dir = work_dir
        cfg.load_from = None
        cfg.test_dataloader.num_workers = 0
        cfg.test_dataloader.persistent_workers = False
        cfg.default_hooks.pop('visualization', None)
        self.runner = Runner.from_cfg(cfg)
        self.loop = self.runner.build_test_loop(self.runner._test_loop)
        self.runner.call_hook('before_run')  # as Runner.test() does

    def __call__(self, model):
        self.runner.model = model
        return _task_metrics(self.loop.run())


def path_file(name, onnx_file):
    """The file a runtime path runs: the export, or its int8 copy."""
    if name in INT8:
        return onnx_file.replace('.onnx', INT8[name][1])
    return onnx_file


def build_path(name, model, cfg, onnx_file, calibration, int8=None,
               shape=None):
    """The model of path ``name`` (one with ``test_step``); ``int8``: the
    settings of :func:`~mmconvmlp.deploy.quantize.quantize_onnx` for the
    int8 paths; ``shape``: the input size (H, W) a probed path probes."""
    from .runtime import build_runtime_model
    if name == 'eager':
        return model
    if name in OPTIMIZE:
        from .optimize import optimize_for_inference
        settings = dict(OPTIMIZE[name])
        if settings.get('probe'):
            settings['probe'] = tuple(shape)
        return optimize_for_inference(model, **settings)
    precision, runtime = PATHS[name]
    if name in INT8:
        from .quantize import quantize_onnx
        quantize_onnx(onnx_file, path_file(name, onnx_file), calibration,
                      **dict(int8 or {}, route=INT8[name][0]))
    return build_runtime_model(path_file(name, onnx_file), runtime,
                               model_cfg=cfg.model,
                               precision='bf16' if precision == 'bf16'
                               else 'fp32')


def tune(config, checkpoint, out_dir, shape=(800, 1216),
         precisions=('fp32', 'bf16', 'int8'), max_drop=0.5, tolerance=1e-3,
         data_root=None, calibration=None, paths=None, compile=False,
         repeats=5, int8=None, cfg_options=None):
    """Measure every path (see the module docstring) and write the report
    and the winner into ``out_dir``.

    Args:
        config (str): the model's config (path or name of ours).
        checkpoint (str): its weights.
        shape (tuple[int, int]): H, W of the image each path is timed on.
        precisions (Sequence[str]): of 'fp32', 'bf16', 'int8'.
        max_drop (float): task-metric points a path may lose.
        tolerance (float): largest relative error of a float32 path's raw
            outputs against eager.
        data_root (str, optional): the test data (default: the config's).
        calibration (str, optional): int8 calibration images (default: the
            data root's ``images/training``).
        paths (Sequence[str], optional): only these of :data:`PATHS` are
            candidates (eager is measured as the reference in any case).
        compile (bool): also try ``torch.compile``.
        repeats (int): timed runs per path.
        int8 (dict, optional): settings of the int8 paths (keyword
            arguments of :func:`~mmconvmlp.deploy.quantize.quantize_onnx`
            but the route, e.g. ``keep_fp32``).
        cfg_options (dict, optional): config overrides, as
            ``--cfg-options`` gives them (checked for typos).

    Returns:
        dict: the report (as ``report.json``).
    """
    from ..analysis.measure import max_rel_error, measure_latencies
    from ..analysis.predict_benchmark import predict_batch
    from ..model_zoo import read_config
    from .onnx_export import export_onnx, load_model
    cfg = read_config(config)
    if cfg_options:
        from ..engine.cli import check_cfg_options
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    if data_root:
        _use_data(cfg, data_root)
    root = cfg.test_dataloader.dataset.get('data_root') or '.'
    calibration = calibration or osp.join(root, 'images', 'training')
    os.makedirs(out_dir, exist_ok=True)
    model, meta = load_model(cfg, checkpoint)
    names = [n for n in available_paths(precisions, compile)
             if paths is None or n in paths]
    candidates = set(names)
    if 'eager' not in names:
        names.insert(0, 'eager')  # the reference, measured in any case
    onnx_file = osp.join(out_dir, 'work', 'model.onnx')
    if any(PATHS[n][1] != 'pytorch' for n in names):
        os.makedirs(osp.dirname(onnx_file), exist_ok=True)
        export_onnx(model, cfg, onnx_file, dynamic=True, **meta)
    evaluate = _Evaluator(cfg, osp.join(out_dir, 'work'))
    batch = predict_batch(cfg.default_scope, *shape)
    x = model.data_preprocessor(batch, False)['inputs']
    reference = raw_outputs(model, x)
    rows, built = [], {}
    for name in names:
        row = dict(path=name, precision=PATHS[name][0],
                   runtime=PATHS[name][1])
        rows.append(row)
        try:
            path = build_path(name, model, cfg, onnx_file, calibration,
                              int8, x.shape[-2:])
            row.update(_transforms(path))
            row['error'] = max_rel_error(raw_outputs(path, x), reference)
            row['metrics'] = evaluate(path)
        except Exception as err:  # a path that does not run here
            row.update(status='refused', reason=f'{type(err).__name__}: '
                       f'{str(err).splitlines()[0][:200]}')
            continue
        built[name] = path
    if 'eager' not in built:  # the reference itself does not run
        raise RuntimeError(f'{config} with {checkpoint}: eager PyTorch, the '
                           f'reference, fails: {rows[0]["reason"]}')
    base = rows[0]['metrics']
    for row in rows:
        if 'status' in row:
            continue
        row['drop'] = metric_drops(row['metrics'], base)
        worst = max(row['drop'].values(), default=0.)
        if row['precision'] == 'fp32' and row['error'] > tolerance:
            row.update(status='refused', reason=f'raw outputs {row["error"]:.1e}'
                       f' from eager, over the tolerance {tolerance:.0e}')
        elif worst > max_drop:
            row.update(status='refused', reason=f'loses {worst:.2f} points, '
                       f'over --max-drop {max_drop}')
        else:
            row.update(status='kept', reason='within tolerance' if
                       row['precision'] == 'fp32' else
                       f'loses {worst:.2f} points (at most {max_drop})')
    with torch.no_grad():
        times = measure_latencies(
            {n: (lambda p=p: p.test_step(batch)) for n, p in built.items()},
            repeats=repeats, warmup=1)
    for row in rows:
        if row['path'] in times:
            row['latency_ms'] = times[row['path']] * 1e3
            row['speedup'] = times['eager'] / times[row['path']]
    kept = [r for r in rows if r['status'] == 'kept' and 'latency_ms' in r
            and r['path'] in candidates]
    winner = (write_winner(min(kept, key=lambda r: r['latency_ms']), config,
                           checkpoint, onnx_file, out_dir, cfg_options)
              if kept else
              dict(path=None, artifact=None, command=None))
    report = dict(machine=machine(), config=config, checkpoint=checkpoint,
                  shape=list(shape), max_drop=max_drop, tolerance=tolerance,
                  int8=int8 or {}, paths=rows, winner=winner)
    with open(osp.join(out_dir, 'report.json'), 'w') as f:
        json.dump(report, f, indent=1)
    with open(osp.join(out_dir, 'report.md'), 'w') as f:
        f.write(report_markdown(report))
    return report


def _transforms(path):
    """The ``optimize_for_inference`` settings a PyTorch path applied
    (``settings``) and, if it probed, the probe's timings."""
    applied = dict(getattr(path, 'inference_transforms', None) or {})
    if not applied:
        return {}
    found = dict(settings=applied)
    if 'probe_ms' in applied:
        found['probe_ms'] = applied.pop('probe_ms')
    return found


def _use_data(cfg, data_root):
    """Point the config's test data (and its COCO annotation file) at
    ``data_root``."""
    old = cfg.test_dataloader.dataset.get('data_root') or ''
    cfg.test_dataloader.dataset.data_root = data_root
    ann = cfg.get('test_evaluator', {}).get('ann_file')
    if ann and old and ann.startswith(old):
        cfg.test_evaluator.ann_file = osp.join(data_root, ann[len(old):])


def write_winner(row, config, checkpoint, onnx_file, out_dir,
                 cfg_options=None):
    """Write the winning path as an artifact; return it and how to run
    it."""
    name = row['path']
    options = ' '.join(shlex.quote(f'{k}={v}')
                       for k, v in (cfg_options or {}).items())
    options = options and ' --cfg-options ' + options
    if row['runtime'] != 'pytorch':
        target = osp.join(out_dir, 'winner.onnx')
        shutil.copyfile(path_file(name, onnx_file), target)
        roi = osp.splitext(onnx_file)[0] + '.roi_head.pth'
        if osp.isfile(roi):  # the name both files' metadata give
            shutil.copyfile(roi, osp.join(out_dir, osp.basename(roi)))
        precision = (' --precision bf16' if row['precision'] == 'bf16'
                     else '')
        return dict(path=name, artifact=target, command=(
            f'python tools/test.py {config} {target} --backend '
            f'{row["runtime"]}{precision}{options}'))
    settings = row.get('settings')
    target = osp.join(out_dir, 'winner.json')
    with open(target, 'w') as f:
        json.dump(dict(path=name, optimize_for_inference=settings), f,
                  indent=1)
    command = f'python tools/test.py {config} {checkpoint}{options}'
    if settings is not None:
        command += f' --optimize {target}'
    return dict(path=name, artifact=target, command=command)


def report_markdown(report):
    """The report as Markdown: the machine, the paths, the winner."""
    from ..analysis.tables import markdown_table
    m = report['machine']
    rows = [dict(r, metrics=', '.join(f'{k} {v:.4g}' for k, v in (
        r.get('metrics') or {}).items()), drop=max(
            (r.get('drop') or {0: None}).values(), default=None))
        for r in report['paths']]
    head = (f'# Inference paths of {report["config"]} at '
            f'{report["shape"][0]}x{report["shape"][1]}\n\n'
            f'CPU {m["capability"]} ({m["cpu"]}; native bf16: '
            f'{m["native_bf16"]}; flags: {" ".join(m["flags"])}), '
            f'{m["threads"]} threads; '
            + ', '.join(f'{k} {v}' for k, v in m['versions'].items())
            + f'. Kept: within {report["tolerance"]:.0e} of eager (fp32 '
            f'raw outputs) and at most {report["max_drop"]} metric points '
            'lost.\n\n')
    table = markdown_table(rows, [
        ('path', 'path', '{}'), ('precision', 'precision', '{}'),
        ('latency_ms', 'latency (ms)', '{:.1f}'),
        ('speedup', 'vs eager', '{:.2f}×'),
        ('error', 'max rel. error vs eager', '{:.1e}'),
        ('metrics', 'metrics', '{}'), ('drop', 'points lost', '{:.2f}'),
        ('status', 'status', '{}'), ('reason', 'why', '{}')])
    for row in report['paths']:
        if 'probe_ms' in row:
            applied = [k for k in row['probe_ms'] if row['settings'][k]]
            times = ', '.join(f'{k} {t["on_ms"]:.1f} / {t["off_ms"]:.1f}'
                              for k, t in row['probe_ms'].items())
            table += (f'\n\n{row["path"]}: applied '
                      f'{", ".join(applied) or "none"}; probe, ms with / '
                      f'without each: {times}')
    win = report['winner']
    if win['path'] is None:
        return head + table + '\n\nNo path was kept.\n'
    return (head + table + f'\n\nFastest kept path: **{win["path"]}**: '
            f'`{win["artifact"]}`; run it with\n\n    {win["command"]}\n')
