"""Draw a backbone's (or neck's) feature maps over an image.

    python tools/analysis_tools/vis_featmaps.py IMAGE CONFIG [CHECKPOINT]
        --out maps.png [--out-indices 0 1 2 4] [--neck] [--topk K]
        [--short-side 512] [--compare CONFIG2 [CHECKPOINT2]]

One panel per map, labelled with its stride and channels: the channel mean
over the image (``--topk K``: the K strongest channels). ``--compare`` adds a
second model's row, e.g. ConvMLP-S beside mmdet's ResNet-50
(``mmdet::retinanet/retinanet_r50_fpn_1x_coco.py``). Detection and
segmentation configs (paths or ``mmdet::`` / ``mmseg::`` names). Without a
checkpoint the model keeps its initial weights (random, or the
``init_cfg`` it names if that can be loaded).
"""
import argparse
import os.path as osp

import mmcv

from mmconvmlp.analysis.complexity import build_untrained, load_config
from mmconvmlp.engine import install_checkpoint_io
from mmconvmlp.images import load_image
from mmconvmlp.analysis.featmaps import featmap_figure, feature_maps


def build(config, checkpoint, out_indices):
    """The model of ``config`` with ``checkpoint``'s weights."""
    from mmengine.runner import load_checkpoint
    cfg = load_config(config)
    if out_indices is not None:
        cfg.model.backbone.out_indices = out_indices
    model = build_untrained(cfg)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--out', default='featmaps.png')
    parser.add_argument('--out-indices', type=int, nargs='+',
                        help="the first model's backbone maps to draw "
                        "(default: the config's)")
    parser.add_argument('--neck', action='store_true',
                        help="draw the neck's maps instead")
    parser.add_argument('--topk', type=int, default=0,
                        help='draw the K strongest channels (default: mean)')
    parser.add_argument('--short-side', type=int, default=512,
                        help="resize the image's shorter side to this")
    parser.add_argument('--compare', nargs='+', metavar='CONFIG [CKPT]',
                        help='a second model, drawn in a row below')
    args = parser.parse_args()
    install_checkpoint_io()  # mmengine checkpoints load on torch >= 2.6
    image = load_image(args.image, args.short_side)
    models = [(args.config, args.checkpoint)]
    if args.compare:
        if len(args.compare) > 2:
            parser.error('--compare takes CONFIG [CHECKPOINT]')
        models.append((args.compare[0], (args.compare + [None])[1]))
    rows = []
    for i, (config, checkpoint) in enumerate(models):
        model = build(config, checkpoint, args.out_indices if i == 0 else None)
        name = osp.splitext(osp.basename(config.split('::')[-1]))[0]
        rows.append((name, feature_maps(model, image, args.neck)))
    figure = featmap_figure(image, rows, args.topk)
    mmcv.imwrite(figure[..., ::-1], args.out)
    print(f'wrote {args.out}: {len(rows)} row(s) of '
          f'{max(len(m) for _, m in rows)} panels, {figure.shape[1]}x'
          f'{figure.shape[0]} pixels')


if __name__ == '__main__':
    main()
