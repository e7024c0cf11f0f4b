# RetinaNet-ConvMLP-S on the built-in dataset (mmconvmlp.datasets.builtin:
# shapes pasted into photographs, 256x256, trained and tested at 160x160 so
# that `make demo` fits in minutes on two CPU cores), for `make demo` and the
# tests.
# Only data, image size and schedule differ from retinanet_convmlp_s.py, plus
# what an offline machine forces: the backbone starts from random weights,
# since no ImageNet checkpoint can be downloaded, and so takes a larger,
# clipped lr.
_base_ = './retinanet_convmlp_s.py'

data_root = 'data/builtin/'
metainfo = dict(classes=('disc', 'square', 'triangle'))
image_size = (160, 160)
max_epochs = 5

model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=3))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
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
         milestones=[max_epochs - 1], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=1, max_keep_ckpts=2))
