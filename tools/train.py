"""Train a detector or segmentor: ``python tools/train.py CONFIG [flags]``.

The config's ``default_scope`` (mmdet or mmseg) decides which. Flags as in
mmdet's tools/train.py; see ``--help``.
"""
import mmconvmlp  # noqa: F401  (registers ConvMLP)
from mmconvmlp.engine.cli import configure_train, load_config, run, train_parser


def main():
    args = train_parser().parse_args()
    run(configure_train(load_config(args), args), 'train')


if __name__ == '__main__':
    main()
