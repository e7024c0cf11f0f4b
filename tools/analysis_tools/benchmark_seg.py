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
``--out-dir``. See :mod:`mmconvmlp.analysis.seg_benchmark` for what is
measured how.
"""
import argparse

import torch

from mmconvmlp.analysis.seg_benchmark import (DEFAULT_MODELS, BenchmarkError,
                                              run_benchmark)


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
    try:
        text, files = run_benchmark(args.models, args.sizes, vars(args))
    except BenchmarkError as err:
        raise SystemExit(str(err)) from None
    print(text)
    print('wrote ' + ', '.join(files))


if __name__ == '__main__':
    main()
