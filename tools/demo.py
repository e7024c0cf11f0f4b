"""Draw a model's predictions on one image.

    python tools/demo.py IMAGE CONFIG CHECKPOINT --out result.png

Detection configs draw boxes (and masks for Mask R-CNN) with mmdet's
visualizer; segmentation configs draw the label map with mmseg's.
"""
import argparse

import mmcv
from mmengine.config import Config

import mmconvmlp  # noqa: F401  (registers ConvMLP)
from mmconvmlp.engine import install_checkpoint_io


def read_image(path):
    """The image as a 3-channel BGR array (grey and RGBA files converted),
    or an error that names the file."""
    try:
        image = mmcv.imread(path)
    except Exception as err:
        raise ValueError(f'cannot read image {path}: {err}') from None
    if image is None or image.size == 0:
        raise ValueError(f'cannot read image {path}: empty or not an image')
    return image


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', default='result.png')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: smallest score drawn')
    args = parser.parse_args()

    install_checkpoint_io()  # mmengine checkpoints load on torch >= 2.6
    cfg = Config.fromfile(args.config)
    image = read_image(args.image)
    if cfg.default_scope == 'mmseg':
        from mmseg.apis import inference_model, init_model
        from mmseg.registry import VISUALIZERS
        model = init_model(cfg, args.checkpoint, device=args.device)
        result = inference_model(model, image)
        extra = {}
    else:
        from mmdet.apis import inference_detector, init_detector
        from mmdet.registry import VISUALIZERS
        model = init_detector(cfg, args.checkpoint, device=args.device)
        result = inference_detector(model, image)
        extra = dict(pred_score_thr=args.score_thr)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample('result', mmcv.bgr2rgb(image),
                              data_sample=result,
                              draw_gt=False, show=False, out_file=args.out,
                              **extra)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
