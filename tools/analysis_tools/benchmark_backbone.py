"""Benchmark ConvMLP inference and training paths side by side, in one run.

    python tools/analysis_tools/benchmark_backbone.py [--archs s m l]
        [--sizes 224x224 512x512 800x1216] [--repeats 5] [--compile]
        [--end-to-end]

Per arch and size: the straightforward implementation, the default and
``winograd=True`` modules, ``optimize_for_inference`` (fp32 with and
without Winograd convolutions, bf16), the exported backbone in ONNX Runtime
and OpenVINO, and mmdet's ResNet-50: latency, GFLOP/s, speed-up, error,
then the fastest path; the training step and its peak memory; with
``--end-to-end`` whole models. What is measured how:
:mod:`mmconvmlp.analysis.backbone_benchmark`.
"""
import argparse

import torch

from mmconvmlp.analysis.backbone_benchmark import print_backbone_benchmark


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--archs', nargs='+', default=['s', 'm', 'l'])
    parser.add_argument('--sizes', nargs='+',
                        default=['224x224', '512x512', '800x1216'])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--compile', action='store_true',
                        help='also time torch.compile of the optimized model')
    parser.add_argument('--end-to-end', action='store_true',
                        help='also time whole models (benchmark_predict.py)')
    parser.add_argument('--train-arch', default='s')
    parser.add_argument('--train-size', default='512x512',
                        help='HxW of the training-step measurements')
    parser.add_argument('--e2e-size', default=None,
                        help='HxW of the end-to-end predict measurements '
                        '(default: 800x1216 detection, 512x2048 segmentation)')
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    print_backbone_benchmark(
        args.archs, args.sizes, args.repeats, args.compile, args.train_arch,
        args.train_size, args.end_to_end, args.e2e_size, args.device)


if __name__ == '__main__':
    main()
