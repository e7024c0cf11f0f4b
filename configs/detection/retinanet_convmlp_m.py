# RetinaNet with ConvMLP-M on COCO 2017; everything else as retinanet_convmlp_s.
_base_ = './retinanet_convmlp_s.py'

model = dict(
    backbone=dict(
        arch='m', init_cfg=dict(checkpoint='convmlp_m_imagenet')))
