"""Train a detector or segmentor: ``python tools/train.py CONFIG [flags]``.

The config's ``default_scope`` (mmdet or mmseg) decides which. Flags as in
mmdet's tools/train.py; see ``--help``.
"""
import mmconvmlp  # noqa: F401  (registers ConvMLP, safe checkpoint loading)
from mmconvmlp.engine.cli import (build_runner, configure_train, load_config,
                                  train_parser)


def main():
    args = train_parser().parse_args()
    cfg = configure_train(load_config(args), args)
    build_runner(cfg).train()


if __name__ == '__main__':
    main()
