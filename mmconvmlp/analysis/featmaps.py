"""Pictures of the feature maps a backbone (and its neck) produces.

:func:`feature_maps` runs a detector's or segmentor's own data preprocessor
and backbone (and neck) on one image; :func:`featmap_figure` draws each map
over the image with mmengine's ``Visualizer.draw_featmap`` (the channel
mean, or the top-k channels as a grid) and lays the panels out, one row per
model, each labelled with its stride and channel count.
"""
import numpy as np
import torch

#: Height of the label strip above each panel, in pixels.
LABEL_HEIGHT = 22


def feature_maps(model, image, neck=False):
    """The backbone's (or with ``neck`` the neck's) maps of an RGB image.

    The image goes through the model's own data preprocessor (channel
    order, mean, std, padding) as in testing.

    Returns:
        list[tuple[str, torch.Tensor]]: a label (``'backbone 1: stride 8,
        128 ch'``) and the (C, h, w) map, per map.
    """
    bgr = torch.from_numpy(np.ascontiguousarray(image[..., ::-1]))
    data = model.data_preprocessor(
        dict(inputs=[bgr.permute(2, 0, 1).contiguous()]), False)
    x = data['inputs']
    with torch.no_grad():
        maps = model.backbone(x)
        part = 'backbone'
        if neck:
            if getattr(model, 'neck', None) is None:
                raise ValueError(f'{type(model).__name__} has no neck')
            maps, part = model.neck(maps), 'neck'
    return [(f'{part} {i}: stride {round(x.shape[-1] / m.shape[-1])}, '
             f'{m.shape[1]} ch', m[0].float()) for i, m in enumerate(maps)]


def _label(panel, text):
    import cv2
    strip = np.full((LABEL_HEIGHT, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (4, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX,
                0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, panel], axis=0)


def featmap_figure(image, rows, topk=0, alpha=0.5):
    """Draw maps over ``image`` and lay them out.

    Args:
        image (np.ndarray): RGB uint8 (H, W, 3); every panel has its size.
        rows (list[tuple[str, list]]): per model, a name and what
            :func:`feature_maps` returned.
        topk (int): 0 draws each map's channel mean; k > 0 the k channels
            with the largest activation sums, as a grid within the panel.

    Returns:
        np.ndarray: RGB uint8 of (rows x (H + LABEL_HEIGHT), cols x W), one
        labelled panel per map, short rows padded with white.
    """
    import mmcv
    from mmengine.visualization import Visualizer
    visualizer = Visualizer()
    height, width = image.shape[:2]
    cols = max(len(maps) for _, maps in rows)
    blank = np.full((height + LABEL_HEIGHT, width, 3), 255, np.uint8)
    grid = []
    for name, maps in rows:
        panels = []
        for label, featmap in maps:
            if topk:
                side = int(np.ceil(np.sqrt(topk)))
                drawn = visualizer.draw_featmap(
                    featmap, image, channel_reduction=None, topk=topk,
                    arrangement=(-(-topk // side), side), alpha=alpha)
            else:
                drawn = visualizer.draw_featmap(
                    featmap, image, channel_reduction='squeeze_mean',
                    alpha=alpha)
            drawn = mmcv.imresize(np.ascontiguousarray(drawn[..., :3]),
                                  (width, height))
            panels.append(_label(drawn, f'{name} | {label}'))
        panels += [blank] * (cols - len(panels))
        grid.append(np.concatenate(panels, axis=1))
    return np.concatenate(grid, axis=0)
