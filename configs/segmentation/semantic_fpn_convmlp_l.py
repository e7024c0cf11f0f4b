# Semantic FPN with ConvMLP-L on ADE20K; everything else as semantic_fpn_convmlp_s.
_base_ = './semantic_fpn_convmlp_s.py'

model = dict(
    backbone=dict(
        arch='l', init_cfg=dict(checkpoint='convmlp_l_imagenet')),
    neck=dict(in_channels=[96, 192, 384, 768]))
