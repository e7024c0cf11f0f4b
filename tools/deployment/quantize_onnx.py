"""Quantize an exported file to int8, or measure which parts to keep fp32.

    python tools/deployment/quantize_onnx.py MODEL.onnx MODEL_INT8.onnx
        [--images DIR] [--num 32] [--route onnxruntime|nncf]
        [--method percentile|minmax|entropy] [--activations uint8|int8]
        [--per-tensor] [--reduce-range | --no-reduce-range]
        [--keep-fp32 PART ...]
    python tools/deployment/quantize_onnx.py MODEL.onnx --sensitivity
        [--num-eval 8] [same settings]

Calibrates on the images of DIR (default: the built-in dataset's training
images), preprocessed as the model's config does; the result keeps the
metadata, so ``tools/test.py CONFIG MODEL_INT8.onnx --backend onnxruntime``
(or ``openvino``) evaluates it. ``--sensitivity`` quantizes again with each
part of the model kept in float32 and prints how much closer to float32
the outputs come (SQNR, dB, on images that did not calibrate): the parts
at the top are the ones ``--keep-fp32`` should name. Opt-in: see
docs/deployment.md for the int8 figures before using it.
"""
import argparse

from mmconvmlp.deploy.quantize import (ACTIVATIONS, DEFAULT_IMAGES, METHODS,
                                       ROUTES, layer_sensitivity,
                                       quantize_onnx)


def sensitivity_table(rows):
    """The rows of :func:`layer_sensitivity` as Markdown."""
    groups = [k for k in rows[0]['sqnr'] if k != 'worst']
    lines = ['| kept fp32 | layers | ' + ' | '.join(
        f'SQNR {g} (dB)' for g in groups) + ' | worst (dB) | gain (dB) |',
        '|---' * (len(groups) + 4) + '|']
    for row in rows:
        lines.append(f'| {row["part"] or "(none)"} | {row["layers"]} | '
                     + ' | '.join(f'{row["sqnr"][g]:.2f}' for g in groups)
                     + f' | {row["sqnr"]["worst"]:.2f} | {row["gain"]:+.2f} |')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('onnx_file')
    parser.add_argument('out', nargs='?', help='the int8 file to write')
    parser.add_argument('--images', default=DEFAULT_IMAGES,
                        help=f'calibration images (default {DEFAULT_IMAGES})')
    parser.add_argument('--num', type=int, default=32,
                        help='how many images calibrate')
    parser.add_argument('--route', default='onnxruntime', choices=ROUTES,
                        help="ONNX Runtime's quantizer or OpenVINO's (NNCF)")
    parser.add_argument('--method', choices=METHODS,
                        help='calibration of the onnxruntime route '
                        '(default percentile)')
    parser.add_argument('--activations', default='uint8', choices=ACTIVATIONS,
                        help='uint8 (asymmetric) or int8 (symmetric, S8S8)')
    parser.add_argument('--per-tensor', action='store_true',
                        help='one weight scale per tensor, not per channel')
    parser.add_argument('--reduce-range',
                        action=argparse.BooleanOptionalAction,
                        help='7-bit weights (default: only on a CPU without '
                        'int8 dot products, VNNI)')
    parser.add_argument('--keep-fp32', nargs='+', default=[], metavar='PART',
                        help='layers or parts kept in float32 (fnmatch '
                        'patterns of layer names, e.g. retina_cls '
                        "'backbone/tokenizer'); --sensitivity names them")
    parser.add_argument('--sensitivity', action='store_true',
                        help='print each part\'s int8 sensitivity instead')
    parser.add_argument('--num-eval', type=int, default=8,
                        help='with --sensitivity: images measured on (those '
                        'after the calibration images)')
    args = parser.parse_args()
    settings = dict(route=args.route, method=args.method,
                    activations=args.activations,
                    per_channel=not args.per_tensor,
                    reduce_range=args.reduce_range, keep_fp32=args.keep_fp32)
    if args.sensitivity:
        rows = layer_sensitivity(args.onnx_file, args.images, args.num,
                                 args.num_eval, **settings)
        print(sensitivity_table(rows))
        return
    if not args.out:
        parser.error('name the int8 file to write (or pass --sensitivity)')
    info = quantize_onnx(args.onnx_file, args.out, args.images, args.num,
                         **settings)
    print(f'wrote {args.out}: {info["method_text"]}, calibrated on '
          f'{info["images"]} images')


if __name__ == '__main__':
    main()
