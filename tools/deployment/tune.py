"""Find the fastest inference path that keeps the accuracy, on this machine.

    python tools/deployment/tune.py CONFIG CHECKPOINT --out-dir DIR
        [--shape H W] [--precision fp32 bf16 int8] [--max-drop POINTS]
        [--tolerance REL] [--data DIR] [--calibration DIR]
        [--paths NAME ...] [--compile] [--repeats 5] [--keep-fp32 PART ...]
        [--cfg-options KEY=VALUE ...]

Builds every path available here (eager; optimize_for_inference with and
without Winograd convolutions and with the transforms a probe finds paying
here, torch.compile with --compile; ONNX Runtime;
OpenVINO; bf16 in PyTorch and OpenVINO where the CPU has it natively; int8
in ONNX Runtime and, quantized by NNCF, in OpenVINO, with the parts
--keep-fp32 names in float32),
checks each against eager float32 (raw outputs, and the task metric on the
config's test data, the built-in data by default), times them in turns and
writes DIR/report.json, DIR/report.md and the fastest kept path: DIR/
winner.onnx (run it with tools/test.py --backend) or DIR/winner.json (the
optimize_for_inference settings: tools/test.py --optimize). See
mmconvmlp.deploy.tune.
"""
import argparse

from mmconvmlp.deploy.tune import PATHS, tune
from mmconvmlp.engine.cli import add_cfg_options


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1216],
                        metavar=('H', 'W'), help='the image size timed')
    parser.add_argument('--precision', nargs='+', default=['fp32', 'bf16',
                                                           'int8'],
                        choices=['fp32', 'bf16', 'int8'])
    parser.add_argument('--max-drop', type=float, default=0.5,
                        help='task-metric points a path may lose')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help="largest relative error of a float32 path's "
                        'raw outputs against eager')
    parser.add_argument('--data', help='test data root (default: the '
                        "config's)")
    parser.add_argument('--calibration', help='int8 calibration images '
                        '(default: DATA/images/training)')
    parser.add_argument('--paths', nargs='+', choices=list(PATHS),
                        help='only these paths are candidates (eager is measured '
                        'as the reference in any case)')
    parser.add_argument('--compile', action='store_true',
                        help='also try torch.compile (compiles per shape)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--keep-fp32', nargs='+', default=[], metavar='PART',
                        help='int8 paths: parts kept in float32 (see '
                        'tools/deployment/quantize_onnx.py --sensitivity)')
    add_cfg_options(parser)
    args = parser.parse_args()
    report = tune(args.config, args.checkpoint, args.out_dir,
                  tuple(args.shape), args.precision, args.max_drop,
                  args.tolerance, args.data, args.calibration, args.paths,
                  args.compile, args.repeats,
                  dict(keep_fp32=args.keep_fp32), args.cfg_options)
    with open(f'{args.out_dir}/report.md') as f:
        print(f.read())
    print(f'winner: {report["winner"]["artifact"]}')


if __name__ == '__main__':
    main()
