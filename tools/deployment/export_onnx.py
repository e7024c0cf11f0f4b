"""Export a detector or segmentor to ONNX.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx
        [--shape H W | --dynamic] [--batch N] [--cfg-options ...]

The graph takes the preprocessed image batch and returns the model's raw
head outputs (``model(x, mode='tensor')``, flattened); Mask R-CNN's is
backbone, neck and RPN head, its RoI head's weights go beside it
(OUT.roi_head.pth). Preprocessing, class names and the config go into the
file's metadata; ONNX's checker validates it. Run it with
``tools/test.py CONFIG OUT.onnx --backend onnxruntime|openvino`` or
:func:`mmconvmlp.deploy.build_runtime_model`.
"""
import argparse

import mmconvmlp  # noqa: F401  (registers ConvMLP)
from mmconvmlp.deploy.onnx_export import export_onnx, load_model
from mmconvmlp.engine.cli import add_cfg_options, check_cfg_options
from mmconvmlp.model_zoo import read_config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='checkpoint file or official name')
    parser.add_argument('out', help='the .onnx file to write')
    size = parser.add_mutually_exclusive_group()
    size.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                      default=[800, 1216],
                      help='the input size the file accepts (default '
                      '800 1216; a multiple of the pad divisor)')
    size.add_argument('--dynamic', action='store_true',
                      help='any batch size, height and width')
    parser.add_argument('--batch', type=int, default=1)
    add_cfg_options(parser)
    args = parser.parse_args()

    cfg = read_config(args.config)
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    model, dataset_meta = load_model(cfg, args.checkpoint)
    meta = export_onnx(model, cfg, args.out, shape=tuple(args.shape),
                       batch=args.batch, dynamic=args.dynamic,
                       **dataset_meta)
    outputs = ', '.join(f'{name} x{count}' if count else name
                        for name, count in meta['output_groups'])
    print(f'wrote {args.out}: input {meta["input_shape"]} (-1: dynamic), '
          f'outputs {outputs}, {len(meta["classes"])} classes')
    if 'roi_head_file' in meta:
        print(f'the RoI head runs in PyTorch: its weights are in '
              f'{meta["roi_head_file"]} beside it')


if __name__ == '__main__':
    main()
