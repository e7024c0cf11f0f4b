"""Benchmark any mmseg 1.x configs side by side: the logic behind
``tools/analysis_tools/benchmark_seg.py``.

Every model is measured in a fresh process (:func:`measure_model`, run by
:func:`~mmconvmlp.analysis.measure.run_isolated`), models in turns: each round
measures every model once, so a change in the machine's load hits all of
them alike, and a model's latency is the median over all its rounds'
samples. Per model and size a row holds the bare forward's latency
(whole inference on a random batch: backbone, neck, head and the resize to
the input), images/s, peak memory, FLOPs and parameters by part (the
counter of ``get_flops.py``), with ``--images`` / ``--dataset`` a second row
timing the config's real test pipeline per image (loading, resize, slide or
whole inference, as mmseg's ``benchmark.py`` counts FPS), and, given a
checkpoint and the dataset, the mIoU of the normal test loop. The mIoU a
metafile reports for the config stands in its own column.
"""
import glob
import itertools
import os
import os.path as osp
import re
import statistics

import torch

from .measure import measure_peak_memory, measure_times, run_isolated

#: The default comparison: ConvMLP against Semantic FPN peers of mmseg's
#: model zoo (with their ADE20K mIoU in mmseg's metafiles).
DEFAULT_MODELS = (
    'semantic_fpn_convmlp_s', 'semantic_fpn_convmlp_m',
    'semantic_fpn_convmlp_l',
    'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
    'mmseg::sem_fpn/fpn_r101_4xb4-160k_ade20k-512x512.py',
    'mmseg::twins/twins_pcpvt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512.py',
    'mmseg::twins/twins_svt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512.py',
)
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class EncodeDecode(torch.nn.Module):
    """A segmentor's whole inference on a batch of one size (backbone,
    neck, head and the resize to the input) as one module: the bare
    forward that the benchmark times."""

    def __init__(self, segmentor, height, width):
        super().__init__()
        self.segmentor = segmentor
        self.metas = [dict(img_shape=(height, width), ori_shape=(height, width),
                           pad_shape=(height, width))]

    def forward(self, x):
        return self.segmentor.encode_decode(x, self.metas)


class RuntimeEncodeDecode(EncodeDecode):
    """:class:`EncodeDecode` of an exported segmentor in a runtime
    (:mod:`mmconvmlp.deploy.runtime`): the graph, then the head's resize to
    the input."""

    def forward(self, x):
        (logits, ) = self.segmentor.run_graph(x)
        return self.segmentor.torch_model.decode_head.predict_by_feat(
            logits, self.metas)


def _runtime(cfg, model, backend, height, width, work_dir, dynamic=False):
    """``model`` exported into ``work_dir``, in ``backend``: at ``height``
    x ``width`` (the bare forward), or ``dynamic`` (pipeline and mIoU on
    images of any size)."""
    from ..deploy import build_runtime_model, export_onnx
    os.makedirs(work_dir, exist_ok=True)
    name = 'dynamic' if dynamic else f'{height}x{width}'
    onnx_file = osp.join(work_dir, f'model_{name}.onnx')
    export_onnx(model, cfg, onnx_file, shape=(height, width),
                dynamic=dynamic)
    return build_runtime_model(onnx_file, backend, model_cfg=cfg.model)


class BenchmarkError(Exception):
    """A model that cannot be measured; its message is one clear line."""


def parse_spec(spec):
    """``'CONFIG[:CHECKPOINT]'`` -> (config, checkpoint or None); CONFIG may
    be a path, an ``mmseg::`` name or one of our configs' names."""
    match = re.fullmatch(r'(.+?\.py|[a-z]+::[^:]+|[^:]+)(?::(.+))?', spec)
    if not match:
        raise BenchmarkError(f'cannot read model spec {spec!r}: expected '
                             'CONFIG[:CHECKPOINT]')
    return match.group(1), match.group(2)


def locate_config(config):
    """The config's file (path, ``pkg::`` name or shipped name), or a
    :class:`BenchmarkError` naming it."""
    from ..model_zoo import find_config
    try:
        return find_config(config)
    except (FileNotFoundError, ImportError) as err:
        raise BenchmarkError(f'unknown config {config!r}: {err}') from None


def model_name(config, checkpoint=None):
    """A short name for tables: the config file's stem (and the
    checkpoint's file name, if any)."""
    name = osp.splitext(osp.basename(config.split('::')[-1]))[0]
    return f'{name}:{osp.basename(checkpoint)}' if checkpoint else name


def reported_miou(path):
    """The mIoU that the metafile beside a config reports for it (mmseg's
    ``metafile.yaml``, our ``metafile.yml``), or None."""
    import yaml
    stem = osp.splitext(osp.basename(path))[0]
    for metafile in glob.glob(osp.join(osp.dirname(path), 'metafile.y*ml')):
        with open(metafile) as f:
            models = (yaml.safe_load(f) or {}).get('Models', [])
        for model in models:
            if osp.splitext(osp.basename(model.get('Config', '')))[0] != stem:
                continue
            results = model.get('Results', [])
            for result in results if isinstance(results, list) else [results]:
                if 'mIoU' in result.get('Metrics', {}):
                    return float(result['Metrics']['mIoU'])
    return None


def _build(cfg, checkpoint, device):
    from .complexity import build_untrained
    model = build_untrained(cfg)
    if checkpoint:
        from mmengine.runner import load_checkpoint

        from ..engine import install_checkpoint_io
        install_checkpoint_io()  # mmengine checkpoints load on torch >= 2.6
        try:
            load_checkpoint(model, checkpoint, map_location='cpu',
                            strict=True)
        except Exception as err:
            detail = '; '.join(line for line in str(err).splitlines()
                               if line.strip())
            raise BenchmarkError(f'checkpoint {checkpoint} does not fit '
                                 f'{cfg.filename}: {detail[:400]}') from None
    return model.to(device).eval()


def _pipeline_samples(cfg, images, use_dataset):
    """A function returning the i-th test sample as the config's test
    pipeline makes it: from the images in ``images``, or from the test
    dataset (``use_dataset``)."""
    from mmengine.dataset import Compose
    from mmseg.registry import DATASETS
    if use_dataset:
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        if len(dataset) == 0:
            raise BenchmarkError(f'the test dataset of {cfg.filename} is '
                                 'empty')
        return lambda i: dataset[i % len(dataset)]
    files = sorted(f for f in glob.glob(osp.join(images, '*'))
                   if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise BenchmarkError(f'--images {images}: no image files there')
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if t['type'] != 'LoadAnnotations']  # plain images: no labels
    pipeline = Compose(steps)
    return lambda i: pipeline(dict(img_path=files[i % len(files)]))


def _evaluate(cfg, checkpoint, work_dir):
    from mmengine.runner import Runner

    from ..engine import install_checkpoint_io
    install_checkpoint_io()
    cfg = cfg.copy()
    cfg.load_from = checkpoint if 'Runtime' not in cfg.model.type else None
    cfg.work_dir = work_dir
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    metrics = Runner.from_cfg(cfg).test()
    return float(metrics['mIoU'])


def check_data_root(cfg):
    """A :class:`BenchmarkError` if the test dataset's folder is missing."""
    root = cfg.test_dataloader.dataset.get('data_root') or '.'
    if not osp.isdir(root):
        raise BenchmarkError(f'data root {root} of {cfg.filename} (the test '
                             'dataset) does not exist')


def measure_model(job):
    """Measure one model in this (fresh) process; see the module docstring.

    Args:
        job (dict): ``config`` (file), ``checkpoint``, ``height``,
            ``width``, ``batch``, ``device``, ``repeats``, ``warmup``,
            ``images`` (folder or None), ``dataset`` (bool), and
            ``complexity`` / ``evaluate`` (whether to count FLOPs and run
            the test loop in this round).

    Returns:
        dict: ``forward`` (seconds per batch, list), ``pipeline`` (seconds
        per image, list, or None), ``peak_mib``, ``complexity`` (as
        :func:`mmconvmlp.analysis.complexity.model_complexity` returns) and
        ``miou``, where measured.
    """
    import mmconvmlp  # noqa: F401  (registers ConvMLP in this process)
    from ..model_zoo import read_config
    cfg = read_config(job['config'])
    if job['dataset']:
        check_data_root(cfg)
    height, width, device = job['height'], job['width'], job['device']
    model = _build(cfg, job['checkpoint'], device)
    backend = job.get('backend', 'pytorch')
    module = EncodeDecode(model, height, width)
    if backend != 'pytorch':
        module = RuntimeEncodeDecode(
            _runtime(cfg, model, backend, height, width, job['work_dir']),
            height, width)
        if job['images'] or job['dataset']:
            model = _runtime(cfg, model, backend, height, width,
                             job['work_dir'], dynamic=True)
    x = torch.randn(job['batch'], 3, height, width, device=device)
    result = {}
    with torch.no_grad():
        try:  # the first call: peak memory in this fresh process
            result['peak_mib'] = measure_peak_memory(lambda: module(x),
                                                     device)
        except Exception as err:
            raise BenchmarkError(
                f'{osp.basename(job["config"])} cannot take {height}x{width}'
                f': {type(err).__name__}: {str(err).splitlines()[0]}') from None
        result['forward'] = measure_times(lambda: module(x), job['repeats'],
                                          job['warmup'], device)
        result['pipeline'] = None
        if job['images'] or job['dataset']:
            sample = _pipeline_samples(cfg, job['images'], job['dataset'])
            counter = itertools.count()

            def one_image():
                from mmengine.dataset import pseudo_collate
                model.test_step(pseudo_collate([sample(next(counter))]))

            result['pipeline'] = measure_times(one_image, job['repeats'],
                                               job['warmup'], device)
    if job['complexity']:
        from .complexity import model_complexity
        result['complexity'] = model_complexity(cfg, (height, width))
    if job['evaluate']:
        if backend != 'pytorch':  # the dynamic file
            from ..deploy.runtime import use_runtime_model
            use_runtime_model(cfg, model.onnx_file, backend)
        result['miou'] = _evaluate(cfg, job['checkpoint'],
                                   job['work_dir'])
    return result


def make_jobs(specs, options):
    """One job per ``CONFIG[:CHECKPOINT]`` spec (see :func:`measure_model`),
    and backend, with ``options`` (the tool's arguments: batch, device,
    repeats, warmup, images, dataset, out_dir, backends: 'pytorch',
    'onnxruntime', 'openvino'; a runtime times the model exported at each
    size, its mIoU that of the exported file). Returns (jobs, rows of the
    specs that cannot be measured, each with its one-line error)."""
    jobs, rows = [], []
    for spec in specs:
        try:
            config, checkpoint = parse_spec(spec)
            path = locate_config(config)
            if checkpoint and not osp.isfile(checkpoint):
                raise BenchmarkError(f'checkpoint {checkpoint} not found')
        except BenchmarkError as err:
            print(f'[benchmark_seg] skipped {spec}: {err}', flush=True)
            rows.append(dict(model=model_name(spec), error=str(err)))
            continue
        source = (config if '::' in config else
                  'file' if osp.isfile(config) else 'shipped')
        for backend in options.get('backends') or ['pytorch']:
            name = model_name(config, checkpoint)
            jobs.append(dict(
                {k: options[k] for k in ('batch', 'device', 'repeats',
                                         'warmup', 'images', 'dataset')},
                name=name if backend == 'pytorch' else f'{name} [{backend}]',
                source=source, config=path, backend=backend,
                checkpoint=checkpoint, reported_miou=reported_miou(path),
                work_dir=osp.join(options['out_dir'], 'eval',
                                  str(len(jobs)))))
    return jobs, rows


def measure_in_turns(jobs, sizes, rounds):
    """Measure every job at every (H, W) of ``sizes``, each in a fresh
    process, ``rounds`` times in turns (FLOPs and mIoU in the first round
    only); print a progress line per measurement. A job that fails gets a
    row with its one-line error and is not measured again; the others go
    on. Returns the rows (see :func:`summarize`)."""
    results, rows = {}, []
    for round_ in range(rounds):
        for height, width in sizes:
            for index, job in enumerate(jobs):
                key = (index, height, width)
                if key in results and results[key] is None:
                    continue  # failed in an earlier round
                task = dict(job, height=height, width=width,
                            complexity=round_ == 0,
                            evaluate=(round_ == 0 and job['dataset']
                                      and bool(job['checkpoint'])))
                try:
                    out = run_isolated(measure_model, task)
                except RuntimeError as err:
                    message = str(err).split('failed: ', 1)[-1]
                    print(f'[benchmark_seg] {job["name"]} {height}x{width}: '
                          f'error: {message}', flush=True)
                    results[key] = None
                    rows.append(dict(model=job['name'], source=job['source'],
                                     size=f'{height}x{width}', error=message))
                    continue
                results.setdefault(key, []).append(out)
                print(f'[benchmark_seg] round {round_ + 1}/{rounds} '
                      f'{job["name"]} {height}x{width}: forward '
                      f'{1e3 * statistics.median(out["forward"]):.1f} ms',
                      flush=True)
    for height, width in sizes:
        for index, job in enumerate(jobs):
            if results.get((index, height, width)):
                rows += summarize(job, f'{height}x{width}',
                                  results[(index, height, width)])
    return rows


def environment(device):
    """Where the figures were measured."""
    import platform
    where = (torch.cuda.get_device_name() if device.startswith('cuda') else
             f'CPU {torch.backends.cpu.get_cpu_capability()} '
             f'({platform.processor() or platform.machine()})')
    return dict(device=device, hardware=where, torch=torch.__version__,
                threads=torch.get_num_threads(), cpu_count=os.cpu_count())


def summarize(job, size, results):
    """Rows (forward, and pipeline if timed) from one model's rounds at
    one size (``'HxW'``)."""
    first = results[0]
    stats = first.get('complexity') or {}
    base = dict(model=job['name'], source=job['source'], size=size,
                peak_mib=max(r['peak_mib'] for r in results),
                miou=first.get('miou'), reported_miou=job['reported_miou'],
                checkpoint=job['checkpoint'])
    for part in ('whole', 'backbone', 'neck', 'heads'):
        if part in stats:
            base[f'{part}_gflops'] = stats[part]['flops'] / 1e9
            base[f'{part}_mparams'] = stats[part]['params'] / 1e6
    rows = []
    for mode, per in (('forward', job['batch']), ('pipeline', 1)):
        samples = [t for r in results for t in (r[mode] or [])]
        if not samples:
            continue
        q = statistics.quantiles(samples, n=4) if len(samples) > 1 else [
            samples[0]] * 3
        median = statistics.median(samples)
        rows.append(dict(base, mode=mode, latency_ms=median * 1e3,
                         iqr_ms=(q[2] - q[0]) * 1e3, fps=per / median,
                         samples=len(samples)))
    return rows


def run_benchmark(specs, sizes, options):
    """The whole benchmark: a job per spec and backend, measured at each
    ``'HxW'`` of ``sizes`` in ``options['rounds']`` rounds, the report
    written into ``options['out_dir']`` (:func:`.seg_report.write_report`).
    Returns the Markdown text and the files written."""
    from .seg_report import write_report
    if options.get('images') and not osp.isdir(options['images']):
        raise BenchmarkError(f'--images {options["images"]}: no such folder')
    jobs, rows = make_jobs(specs, options)
    shapes = [tuple(map(int, s.lower().split('x'))) for s in sizes]
    rows += measure_in_turns(jobs, shapes, options['rounds'])
    return write_report(rows, environment(options['device']), options,
                        options['out_dir'])
