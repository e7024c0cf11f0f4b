"""Test a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [flags]``.

Evaluates with the config's test evaluator (COCO bbox/segm mAP or mIoU).
Flags as in mmdet's tools/test.py; see ``--help``.
"""
import functools

import mmconvmlp  # noqa: F401  (registers ConvMLP)
from mmconvmlp.engine.cli import (add_detection_dump, configure_test,
                                  load_config, run, test_parser)


def main():
    args = test_parser().parse_args()
    cfg = configure_test(load_config(args), args)
    dump = None
    if args.out and cfg.default_scope != 'mmseg':
        dump = functools.partial(add_detection_dump, out=args.out)
    run(cfg, 'test', dump)


if __name__ == '__main__':
    main()
