"""Benchmark whole models' predict step along every inference path.

    python tools/analysis_tools/benchmark_predict.py [--size H W]
        [--models retinanet mask_rcnn semantic_fpn] [--repeats 5] [--no-bf16]
        [--int8 [IMAGES]]

RetinaNet-, Mask R-CNN- (800x1216) and Semantic FPN-ConvMLP-S (512x2048),
random weights: PyTorch eager, optimize_for_inference fp32 and bf16, and
the exported file in ONNX Runtime and OpenVINO (where installed) and,
with ``--int8``, that file quantized (calibrated on IMAGES, by default the
built-in training images) in ONNX Runtime; each
path's ``test_step`` (preprocessing and post-processing included) timed in
turns in one run, with its prediction compared with eager's
(mmconvmlp.predict_benchmark).
"""
import argparse
import os.path as osp

import torch

from mmconvmlp.benchmarking import markdown_table
from mmconvmlp.deploy.quantize import DEFAULT_IMAGES

KEYS = {'retinanet': 'RetinaNet-ConvMLP-S',
        'mask_rcnn': 'Mask R-CNN-ConvMLP-S',
        'semantic_fpn': 'Semantic FPN-ConvMLP-S'}


def print_predict_benchmark(size=None, repeats=5, models=tuple(KEYS),
                            bf16=True, int8_images=None):
    """Measure and print the table (``size``: (H, W) for every model, else
    each model's default)."""
    import mmconvmlp  # noqa: F401
    from mmconvmlp.predict_benchmark import (MODELS, installed_backends,
                                             measure_model)
    root = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..',
                    'configs')
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
        rows += measure_model(name, osp.join(root, config), height, width,
                              backends, repeats=repeats, bf16=bf16,
                              int8_images=int8_images)
    print(markdown_table(rows, [
        ('model', 'model', '{}'), ('size', 'H×W', '{}'),
        ('path', 'path', '{}'), ('latency', 'latency (ms)', '{:.0f}'),
        ('speedup', 'vs eager', '{:.2f}×'),
        ('agreement', 'prediction vs eager', '{}')]))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--models', nargs='+', choices=list(KEYS),
                        default=list(KEYS))
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--no-bf16', action='store_true',
                        help='skip optimize_for_inference(bf16=True) (slow '
                        'on CPUs without native bfloat16)')
    parser.add_argument('--int8', nargs='?', const=DEFAULT_IMAGES,
                        metavar='IMAGES',
                        help='also time the int8 file (ONNX Runtime), '
                        f'calibrated on IMAGES (default {DEFAULT_IMAGES})')
    args = parser.parse_args()
    print_predict_benchmark(tuple(args.size) if args.size else None,
                            args.repeats, args.models, not args.no_bf16,
                            args.int8)


if __name__ == '__main__':
    main()
