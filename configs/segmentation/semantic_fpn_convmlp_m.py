# Semantic FPN with ConvMLP-M on ADE20K; everything else as semantic_fpn_convmlp_s.
_base_ = './semantic_fpn_convmlp_s.py'

model = dict(
    backbone=dict(
        arch='m', init_cfg=dict(checkpoint='convmlp_m_imagenet')))
