# Mask R-CNN with ConvMLP-S on COCO 2017 (data/coco/), the paper's setup:
# ImageNet-pretrained backbone, FPN on its four maps, AdamW lr 1e-4,
# weight decay 1e-4, 1x schedule, 16 images per batch in total (8 GPUs x 2).
# With another total batch size, add --auto-scale-lr to scale the lr linearly.
# Multi-GPU: `norm_cfg=dict(type='SyncBN')` in the backbone syncs the BN
# statistics of the convolutional stem across GPUs (GPU only).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmconvmlp'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmconvmlp.ConvMLP',
        arch='s',
        init_cfg=dict(type='Pretrained', checkpoint='convmlp_s_imagenet')),
    neck=dict(in_channels=[64, 128, 256, 512]))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))
