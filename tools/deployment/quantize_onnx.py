"""Quantize an exported file to int8 (ONNX Runtime static quantization).

    python tools/deployment/quantize_onnx.py MODEL.onnx MODEL_INT8.onnx
        [--images DIR] [--num 32]

Calibrates on the images of DIR (default: the built-in dataset's training
images), preprocessed as the model's config does; the result keeps the
metadata, so ``tools/test.py CONFIG MODEL_INT8.onnx --backend onnxruntime``
evaluates it. Opt-in: see the README's int8 figures before using it.
"""
import argparse

from mmconvmlp.deploy.quantize import DEFAULT_IMAGES, quantize_onnx


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('onnx_file')
    parser.add_argument('out')
    parser.add_argument('--images', default=DEFAULT_IMAGES,
                        help=f'calibration images (default {DEFAULT_IMAGES})')
    parser.add_argument('--num', type=int, default=32,
                        help='how many images calibrate')
    args = parser.parse_args()
    info = quantize_onnx(args.onnx_file, args.out, args.images, args.num)
    print(f'wrote {args.out}: {info["method"]}, calibrated on '
          f'{info["images"]} images')


if __name__ == '__main__':
    main()
