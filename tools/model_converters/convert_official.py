"""Convert an official ConvMLP RetinaNet / Mask R-CNN / Semantic FPN
checkpoint (mmdet 2.x / mmseg 0.x era) for mmdet 3.x / mmseg 1.x.

    python tools/model_converters/convert_official.py SRC DST

SRC may be a local file or an official short name
(``retinanet_convmlp_s_coco``, ``maskrcnn_convmlp_m_coco``,
``sem_fpn_convmlp_l_ade20k``, ...). The weights keep their names; the meta's
class names move to ``dataset_meta``; optimizer state is dropped.
"""
import argparse

from mmconvmlp.checkpoint import (convert_official_downstream, load_file,
                                  resolve, save_file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official checkpoint (path or short name)')
    parser.add_argument('dst', help='where to write the converted file')
    args = parser.parse_args()
    path = resolve(args.src)
    converted = convert_official_downstream(load_file(path), source=path)
    save_file(converted, args.dst)
    print(f'{path} -> {args.dst}: {len(converted["state_dict"])} weights, '
          f'classes: {len(converted["meta"]["dataset_meta"].get("classes", []))}')


if __name__ == '__main__':
    main()
