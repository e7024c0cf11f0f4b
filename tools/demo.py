"""Draw a model's predictions on one image.

    python tools/demo.py IMAGE CONFIG CHECKPOINT --out result.png
    python tools/demo.py IMAGE CONFIG MODEL.onnx --backend onnxruntime

Detection configs draw boxes (and masks for Mask R-CNN) with mmdet's
visualizer; segmentation configs draw the label map with mmseg's. With
``--backend onnxruntime|openvino`` a file exported by
tools/deployment/export_onnx.py predicts in that runtime.
"""
import argparse

import numpy as np

import mmconvmlp  # noqa: F401  (registers ConvMLP)
from mmconvmlp.engine import install_checkpoint_io
from mmconvmlp.images import load_image
from mmconvmlp.model_zoo import read_config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image')
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='checkpoint, or the .onnx file '
                        'with --backend onnxruntime|openvino')
    parser.add_argument('--backend', default='pytorch',
                        choices=['pytorch', 'onnxruntime', 'openvino'])
    parser.add_argument('--out', default='result.png')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: smallest score drawn')
    args = parser.parse_args()

    install_checkpoint_io()  # mmengine checkpoints load on torch >= 2.6
    cfg = read_config(args.config)
    rgb = load_image(args.image)  # grey and RGBA files: 3 channels
    image = np.ascontiguousarray(rgb[..., ::-1])  # BGR, as the models read
    runtime = None
    if args.backend != 'pytorch':
        from mmconvmlp.deploy import build_runtime_model
        from mmconvmlp.deploy.onnx_export import dataset_meta
        runtime = build_runtime_model(
            args.checkpoint, args.backend, model_cfg=cfg.model,
            classes=dataset_meta(cfg)['classes'] or None)
        runtime.cfg = cfg  # the inference APIs read the test pipeline here
    if cfg.default_scope == 'mmseg':
        from mmseg.apis import inference_model, init_model
        from mmseg.registry import VISUALIZERS
        model = runtime or init_model(cfg, args.checkpoint,
                                      device=args.device)
        result = inference_model(model, image)
        extra = {}
    else:
        from mmdet.apis import inference_detector, init_detector
        from mmdet.registry import VISUALIZERS
        model = runtime or init_detector(cfg, args.checkpoint,
                                         device=args.device)
        result = inference_detector(model, image)
        extra = dict(pred_score_thr=args.score_thr)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample('result', rgb,
                              data_sample=result,
                              draw_gt=False, show=False, out_file=args.out,
                              **extra)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
