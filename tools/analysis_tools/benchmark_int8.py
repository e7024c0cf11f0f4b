"""Compare int8 settings on a trained model: points lost and speed.

    python tools/analysis_tools/benchmark_int8.py CONFIG CHECKPOINT
        --work-dir DIR [--shape H W] [--settings NAME ...]
        [--keep-fp32 PART ...] [--images DIR] [--num 32] [--repeats 3]
        [--cfg-options KEY=VALUE ...]

Exports the model, quantizes it with each setting (ONNX Runtime's MinMax,
Entropy, Percentile, S8S8, 7-bit weights; NNCF, run in OpenVINO; with
--keep-fp32, MinMax, Percentile and NNCF again with those parts in float32),
evaluates every file with the config's test loop and times its test_step on
one image of H x W in turns with the float32 file in ONNX Runtime and
OpenVINO (mmconvmlp.analysis.int8_benchmark). Which parts to keep:
tools/deployment/quantize_onnx.py MODEL.onnx --sensitivity.
"""
import argparse
import json
import os.path as osp

from mmconvmlp.analysis.int8_benchmark import (SETTINGS, int8_benchmark,
                                               int8_table)
from mmconvmlp.deploy.tune import machine
from mmconvmlp.engine.cli import add_cfg_options


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1216],
                        metavar=('H', 'W'), help='the image size timed')
    parser.add_argument('--settings', nargs='+', choices=list(SETTINGS))
    parser.add_argument('--keep-fp32', nargs='+', default=[], metavar='PART')
    parser.add_argument('--images', help='calibration images (default: '
                        'the data root\'s images/training)')
    parser.add_argument('--num', type=int, default=32)
    parser.add_argument('--repeats', type=int, default=3)
    add_cfg_options(parser)
    args = parser.parse_args()
    rows = int8_benchmark(args.config, args.checkpoint, args.work_dir,
                          tuple(args.shape), args.settings, args.keep_fp32,
                          args.images, args.num, args.repeats,
                          args.cfg_options)
    m = machine()
    with open(osp.join(args.work_dir, 'int8.json'), 'w') as f:
        json.dump(dict(machine=m, rows=rows), f, indent=1)
    print(f'CPU {m["capability"]}, native int8 {m["native_int8"]}, '
          f'{m["threads"]} threads; ' + ', '.join(
              f'{k} {v}' for k, v in m['versions'].items()))
    print(int8_table(rows))


if __name__ == '__main__':
    main()
