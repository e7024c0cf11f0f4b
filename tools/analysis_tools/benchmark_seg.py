"""Benchmark mmseg 1.x segmentation models side by side, in one run.

    python tools/analysis_tools/benchmark_seg.py [CONFIG[:CHECKPOINT] ...]
        [--sizes 512x512 ...] [--images DIR | --dataset] [--repeats 5]
        [--warmup 2] [--rounds 2] [--batch 1] [--device cpu|cuda]
        [--backends pytorch onnxruntime openvino]
        [--out-dir work_dirs/benchmark_seg]

CONFIG: a path (a config of yours, with ``custom_imports`` if it needs
them), an mmseg model-zoo name (``mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-
512x512.py``) or one of our configs' names (``semantic_fpn_convmlp_s``).
Without configs: ConvMLP-S/M/L Semantic FPN against mmseg's ResNet-50/101
and Twins PCPVT-S / SVT-S Semantic FPN. Random weights unless a checkpoint
is given; with a checkpoint and ``--dataset`` also the mIoU of the config's
test loop. ``--backends`` adds each model exported to ONNX (at each size)
in ONNX Runtime / OpenVINO, timed in turns with PyTorch. Writes
``benchmark_seg.{md,csv,json}`` and two plots
(``benchmark_seg_pareto.png``: latency against reported mIoU;
``benchmark_seg_cost.png``: latency against params and FLOPs) into
``--out-dir``. See :mod:`mmconvmlp.seg_benchmark` for what is measured how.
"""
import argparse
import json
import os
import os.path as osp

import torch

from mmconvmlp.seg_benchmark import (DEFAULT_MODELS, environment, make_jobs,
                                     measure_in_turns, plot, table, write_csv)


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
    parser.add_argument('--backends', nargs='+', default=['pytorch'],
                        choices=['pytorch', 'onnxruntime', 'openvino'],
                        help='also time (and evaluate) each model exported '
                        'to ONNX in these runtimes, in turns with PyTorch')
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out-dir', default='work_dirs/benchmark_seg')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.images and not osp.isdir(args.images):
        raise SystemExit(f'--images {args.images}: no such folder')
    jobs, rows = make_jobs(args.models, vars(args))
    sizes = [tuple(map(int, s.lower().split('x'))) for s in args.sizes]
    rows += measure_in_turns(jobs, sizes, args.rounds)
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
