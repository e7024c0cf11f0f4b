# Mask R-CNN with ConvMLP-L on COCO 2017; everything else as mask_rcnn_convmlp_s.
_base_ = './mask_rcnn_convmlp_s.py'

model = dict(
    backbone=dict(
        arch='l', init_cfg=dict(checkpoint='convmlp_l_imagenet')),
    neck=dict(in_channels=[96, 192, 384, 768]))
