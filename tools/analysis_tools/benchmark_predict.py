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
(mmconvmlp.analysis.predict_benchmark).
"""
import argparse

from mmconvmlp.analysis.predict_benchmark import KEYS, print_predict_benchmark
from mmconvmlp.deploy.quantize import DEFAULT_IMAGES

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
