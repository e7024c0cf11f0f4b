"""Benchmark mmseg 1.x segmentation models side by side, in one run.

    python tools/analysis_tools/benchmark_seg.py [CONFIG[:CHECKPOINT] ...]
        [--sizes 512x512 ...] [--images DIR | --dataset] [--repeats 5]
        [--warmup 2] [--rounds 2] [--batch 1] [--device cpu|cuda]
        [--out-dir work_dirs/benchmark_seg]

CONFIG: a path (a config of yours, with ``custom_imports`` if it needs
them), an mmseg model-zoo name (``mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-
512x512.py``) or one of our configs' names (``semantic_fpn_convmlp_s``).
Without configs: ConvMLP-S/M/L Semantic FPN against mmseg's ResNet-50/101
and Twins PCPVT-S / SVT-S Semantic FPN. Random weights unless a checkpoint
is given; with a checkpoint and ``--dataset`` also the mIoU of the config's
test loop. Writes ``benchmark_seg.{md,csv,json}`` and two plots
(``benchmark_seg_pareto.png``: latency against reported mIoU;
``benchmark_seg_cost.png``: latency against params and FLOPs) into
``--out-dir``. See :mod:`mmconvmlp.seg_benchmark` for what is measured how.
"""
import argparse
import json
import os
import os.path as osp
import statistics

import torch

from mmconvmlp.benchmarking import run_isolated
from mmconvmlp.seg_benchmark import (DEFAULT_MODELS, BenchmarkError,
                                     environment, locate_config, measure_model,
                                     model_name, parse_spec, plot,
                                     reported_miou, summarize, table,
                                     write_csv)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('models', nargs='*', metavar='CONFIG[:CHECKPOINT]',
                        default=list(DEFAULT_MODELS))
    parser.add_argument('--sizes', nargs='+', default=['512x512'],
                        help='input sizes HxW of the bare forward')
    data = parser.add_mutually_exclusive_group()
    data.add_argument('--images', help="time the config's test pipeline on "
                      'the images in this folder')
    data.add_argument('--dataset', action='store_true',
                      help="time the test pipeline on the config's test "
                      'dataset (and evaluate mIoU where a checkpoint is given)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed runs per model and round')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=2,
                        help='rounds; each measures every model once, in a '
                        'fresh process')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out-dir', default='work_dirs/benchmark_seg')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.images and not osp.isdir(args.images):
        raise SystemExit(f'--images {args.images}: no such folder')
    jobs, rows = [], []
    for spec in args.models:
        try:
            config, checkpoint = parse_spec(spec)
            path = locate_config(config)
            if checkpoint and not osp.isfile(checkpoint):
                raise BenchmarkError(f'checkpoint {checkpoint} not found')
        except BenchmarkError as err:
            print(f'[benchmark_seg] skipped {spec}: {err}', flush=True)
            rows.append(dict(model=model_name(spec), error=str(err)))
            continue
        jobs.append(dict(
            name=model_name(config, checkpoint), source=config if '::' in config else (
                'shipped' if not osp.isfile(config) else 'file'),
            config=path, checkpoint=checkpoint, batch=args.batch,
            device=args.device, repeats=args.repeats, warmup=args.warmup,
            images=args.images, dataset=args.dataset,
            reported_miou=reported_miou(path),
            work_dir=osp.join(args.out_dir, 'eval', str(len(jobs)))))
    sizes = [tuple(map(int, s.lower().split('x'))) for s in args.sizes]
    results = {}
    for round_ in range(args.rounds):
        for (height, width) in sizes:
            for index, job in enumerate(jobs):
                key = (index, height, width)
                if key in results and results[key] is None:
                    continue  # failed in an earlier round
                task = dict(job, height=height, width=width,
                            complexity=round_ == 0,
                            evaluate=round_ == 0 and bool(job['checkpoint'])
                            and args.dataset)
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
                print(f'[benchmark_seg] round {round_ + 1}/{args.rounds} '
                      f'{job["name"]} {height}x{width}: forward '
                      f'{1e3 * statistics.median(out["forward"]):.1f} ms',
                      flush=True)
    for (height, width) in sizes:
        for index, job in enumerate(jobs):
            done = results.get((index, height, width))
            if done:
                rows += summarize(job['name'], job['source'],
                                  f'{height}x{width}', job, done)
    env = environment(args.device)
    title = (f'Semantic segmentation on {env["hardware"]}, {env["threads"]} '
             f'threads, torch {env["torch"]}, batch {args.batch}, fp32')
    os.makedirs(args.out_dir, exist_ok=True)
    text = (f'{title}; latency: median of {args.rounds} rounds x '
            f'{args.repeats} runs\n\n{table(rows)}\n')
    stem = osp.join(args.out_dir, 'benchmark_seg')
    with open(stem + '.md', 'w') as f:
        f.write(text)
    write_csv(rows, stem + '.csv')
    with open(stem + '.json', 'w') as f:
        json.dump(dict(environment=env, args=vars(args), rows=rows), f,
                  indent=1)
    plots = plot(rows, args.out_dir, title)
    print(text)
    print(f'wrote {stem}.md, .csv, .json, ' + ', '.join(plots))


if __name__ == '__main__':
    main()
