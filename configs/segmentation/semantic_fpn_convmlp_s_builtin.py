# Semantic FPN-ConvMLP-S on the built-in dataset (mmconvmlp.datasets.builtin:
# shapes pasted into photographs, 256x256, ADE20K layout and label coding).
# Only data, image size and schedule differ from semantic_fpn_convmlp_s.py,
# plus what an offline machine forces: the backbone starts from random
# weights, since no ImageNet checkpoint can be downloaded.
_base_ = './semantic_fpn_convmlp_s.py'

data_root = 'data/builtin'
metainfo = dict(
    classes=('background', 'disc', 'square', 'triangle'),
    palette=[[120, 120, 120], [230, 25, 75], [60, 180, 75], [0, 130, 200]])
crop_size = (256, 256)
max_iters = 400

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None),
    decode_head=dict(num_classes=4))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.75, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=True)
train_dataloader = dict(
    num_workers=1,
    dataset=dict(**dataset, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(**dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=100, max_keep_ckpts=2))
