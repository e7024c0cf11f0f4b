# Mask R-CNN-ConvMLP-S on the built-in dataset (see retinanet_convmlp_s_builtin).
# Only data, image size and schedule differ from mask_rcnn_convmlp_s.py, plus
# the random backbone initialisation an offline machine forces (with the
# larger, clipped lr of retinanet_convmlp_s_builtin).
_base_ = './mask_rcnn_convmlp_s.py'

data_root = 'data/builtin/'
metainfo = dict(classes=('disc', 'square', 'triangle'))
image_size = (256, 256)
max_epochs = 6

model = dict(
    backbone=dict(init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='instances_training.json',
        data_prefix=dict(img='images/training/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='instances_validation.json',
        data_prefix=dict(img='images/validation/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'instances_validation.json')
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(lr=3e-4), clip_grad=dict(max_norm=10, norm_type=2))
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs - 2], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=1, max_keep_ckpts=2))
