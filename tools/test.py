"""Test a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [flags]``.

Evaluates with the config's test evaluator (COCO bbox/segm mAP or mIoU).
Flags as in mmdet's tools/test.py; see ``--help``.
"""
import mmconvmlp  # noqa: F401  (registers ConvMLP, safe checkpoint loading)
from mmconvmlp.engine.cli import (add_detection_dump, build_runner,
                                  configure_test, load_config, test_parser)


def main():
    args = test_parser().parse_args()
    cfg = configure_test(load_config(args), args)
    runner = build_runner(cfg)
    if args.out and cfg.default_scope != 'mmseg':
        add_detection_dump(runner, args.out)
    runner.test()


if __name__ == '__main__':
    main()
