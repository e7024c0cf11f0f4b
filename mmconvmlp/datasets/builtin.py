"""The built-in dataset: real photographs with shapes pasted in.

A fresh machine has neither COCO nor ADE20K. This module writes a small,
reproducible dataset that both tasks train on in minutes on a CPU:

* backgrounds are crops of the colour photographs that scikit-image ships;
* each image gets 1-4 flat-coloured shapes (:data:`CLASSES`) at random
  sizes, rotations and colours, never overlapping;
* the shapes are polygons, so the boxes and masks are exact.

Layout under ``root`` (``split`` is ``training`` or ``validation``)::

    images/<split>/NNNN.jpg           the photographs (both tasks)
    annotations/<split>/NNNN.png      ADE20K-style labels: 0 unused,
                                      1 background, 2.. the shapes
    instances_<split>.json            COCO boxes and polygon masks
    manifest.json                     the settings that made it
"""
import json
import math
import os
import os.path as osp

import numpy as np
from PIL import Image, ImageDraw

#: Object classes of the detection / instance segmentation task.
CLASSES = ('disc', 'square', 'triangle')
#: Classes of the semantic segmentation task (after reduce_zero_label).
SEG_CLASSES = ('background', ) + CLASSES
#: Number of polygon vertices per class.
_VERTICES = {'disc': 32, 'square': 4, 'triangle': 3}
#: Colour photographs that ship inside scikit-image (no download needed).
BACKGROUNDS = ('astronaut.png', 'coffee.png', 'chelsea.png', 'rocket.jpg',
               'motorcycle_left.png', 'ihc.png', 'hubble_deep_field.jpg',
               'retina.jpg')
SPLITS = ('training', 'validation')


def _load_backgrounds():
    """Load the RGB sample photographs bundled with scikit-image."""
    try:
        import skimage.data
    except ImportError as err:
        raise ImportError('the built-in dataset needs scikit-image for its '
                          'background photographs: pip install '
                          'scikit-image') from err
    data_dir = osp.dirname(skimage.data.__file__)
    photos = []
    for name in BACKGROUNDS:
        path = osp.join(data_dir, name)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'scikit-image sample photograph missing: {path}')
        photos.append(np.asarray(Image.open(path).convert('RGB')))
    return photos


def _crop(photo, size, rng):
    """A random square crop of ``photo``, resized to ``size``."""
    h, w = photo.shape[:2]
    side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[y:y + side, x:x + side])
    return crop.resize((size, size), Image.BILINEAR)


def _polygon(cls, cx, cy, radius, angle):
    n = _VERTICES[cls]
    return [(cx + radius * math.cos(angle + 2 * math.pi * k / n),
             cy + radius * math.sin(angle + 2 * math.pi * k / n))
            for k in range(n)]


def _area(points):
    xs, ys = np.array(points).T
    return float(abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))
                 / 2)


def _colour(rng):
    """A saturated random colour, far from grey."""
    hsv = Image.new('HSV', (1, 1), (int(rng.integers(0, 256)),
                                    int(rng.integers(180, 256)),
                                    int(rng.integers(150, 256))))
    return hsv.convert('RGB').getpixel((0, 0))


def _scene(photo, size, rng):
    """Paste shapes into a background; return image, label map and objects."""
    image = _crop(photo, size, rng)
    label = Image.new('L', (size, size), 1)
    draw, draw_label = ImageDraw.Draw(image), ImageDraw.Draw(label)
    boxes, objects = [], []
    for _ in range(int(rng.integers(1, 5))):
        for _attempt in range(50):
            radius = float(rng.uniform(size * 0.06, size * 0.2))
            cx, cy = rng.uniform(radius, size - radius, 2)
            box = (cx - radius, cy - radius, cx + radius, cy + radius)
            if all(box[2] + 4 < b[0] or b[2] + 4 < box[0] or box[3] + 4 < b[1]
                   or b[3] + 4 < box[1] for b in boxes):
                break
        else:
            continue
        boxes.append(box)
        cls_id = int(rng.integers(0, len(CLASSES)))
        points = _polygon(CLASSES[cls_id], cx, cy, radius,
                          float(rng.uniform(0, 2 * math.pi)))
        draw.polygon(points, fill=_colour(rng))
        draw_label.polygon(points, fill=cls_id + 2)
        objects.append((cls_id, points))
    return image, label, objects


def _coco_annotation(ann_id, image_id, cls_id, points):
    xs, ys = zip(*points)
    x0, y0 = min(xs), min(ys)
    return dict(id=ann_id, image_id=image_id, category_id=cls_id + 1,
                bbox=[x0, y0, max(xs) - x0, max(ys) - y0], area=_area(points),
                segmentation=[[round(c, 2) for p in points for c in p]],
                iscrowd=0)


def make_builtin_dataset(root, num_train=200, num_val=50, size=256, seed=0):
    """Write the built-in dataset under ``root`` (see the module doc).

    Reproducible: the same arguments give the same files. When ``root``
    already holds a dataset made with the same arguments, nothing is written.

    Returns:
        dict: the manifest (arguments, classes, image counts).
    """
    manifest = dict(num_train=num_train, num_val=num_val, size=size,
                    seed=seed, classes=list(CLASSES),
                    seg_classes=list(SEG_CLASSES), version=1)
    manifest_path = osp.join(root, 'manifest.json')
    if osp.isfile(manifest_path):
        with open(manifest_path) as f:
            if json.load(f) == manifest:
                return manifest
    rng = np.random.default_rng(seed)
    photos = _load_backgrounds()
    for split, count in zip(SPLITS, (num_train, num_val)):
        for sub in ('images', 'annotations'):
            os.makedirs(osp.join(root, sub, split), exist_ok=True)
        coco = dict(images=[], annotations=[], categories=[
            dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)])
        for image_id in range(count):
            photo = photos[int(rng.integers(0, len(photos)))]
            image, label, objects = _scene(photo, size, rng)
            name = f'{image_id:04d}'
            image.save(osp.join(root, 'images', split, f'{name}.jpg'),
                       quality=95)
            label.save(osp.join(root, 'annotations', split, f'{name}.png'))
            coco['images'].append(dict(id=image_id, file_name=f'{name}.jpg',
                                       height=size, width=size))
            for cls_id, points in objects:
                coco['annotations'].append(_coco_annotation(
                    len(coco['annotations']) + 1, image_id, cls_id, points))
        with open(osp.join(root, f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f)
    return manifest
