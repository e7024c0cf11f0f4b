"""The built-in dataset: reproducible, exact annotations, both layouts."""
import hashlib
import json
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmconvmlp.datasets import CLASSES, make_builtin_dataset


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            with open(os.path.join(dirpath, name), 'rb') as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def test_reproducible(tmp_path):
    make_builtin_dataset(str(tmp_path / 'a'), num_train=4, num_val=2)
    make_builtin_dataset(str(tmp_path / 'b'), num_train=4, num_val=2)
    assert _digest(tmp_path / 'a') == _digest(tmp_path / 'b')
    make_builtin_dataset(str(tmp_path / 'c'), num_train=4, num_val=2, seed=1)
    assert _digest(tmp_path / 'a') != _digest(tmp_path / 'c')


def test_second_call_writes_nothing(tmp_path):
    root = str(tmp_path)
    make_builtin_dataset(root, num_train=3, num_val=1)
    stamp = os.stat(os.path.join(root, 'instances_training.json')).st_mtime_ns
    make_builtin_dataset(root, num_train=3, num_val=1)
    assert os.stat(os.path.join(root, 'instances_training.json')
                   ).st_mtime_ns == stamp


def test_annotations_are_exact(tmp_path):
    root = str(tmp_path)
    manifest = make_builtin_dataset(root, num_train=12, num_val=3, size=128)
    assert manifest['classes'] == list(CLASSES)
    for split, count in (('training', 12), ('validation', 3)):
        coco = COCO(os.path.join(root, f'instances_{split}.json'))
        assert len(coco.getImgIds()) == count
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(
            CLASSES)
        for image_id in coco.getImgIds():
            info = coco.loadImgs(image_id)[0]
            image = Image.open(os.path.join(root, 'images', split,
                                            info['file_name']))
            assert image.size == (128, 128) and image.mode == 'RGB'
            label = np.array(Image.open(os.path.join(
                root, 'annotations', split,
                info['file_name'].replace('.jpg', '.png'))))
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
            assert 1 <= len(anns) <= 4
            assert set(np.unique(label)) <= {1, 2, 3, 4}
            for ann in anns:
                poly = np.array(ann['segmentation'][0]).reshape(-1, 2)
                x, y, w, h = ann['bbox']
                assert np.allclose([x, y, x + w, y + h],
                                   [*poly.min(0), *poly.max(0)], atol=0.01)
                rle = mask_utils.frPyObjects(ann['segmentation'], 128, 128)
                mask = mask_utils.decode(mask_utils.merge(rle)).astype(bool)
                # the polygon's pixels carry its class in the label map
                agree = (label[mask] == ann['category_id'] + 1).mean()
                assert agree > 0.9
                assert abs(mask.sum() - ann['area']) < 0.2 * ann['area'] + 20


def test_manifest_records_settings(tmp_path):
    make_builtin_dataset(str(tmp_path), num_train=2, num_val=1, seed=5)
    with open(tmp_path / 'manifest.json') as f:
        manifest = json.load(f)
    assert manifest['seed'] == 5 and manifest['num_train'] == 2
