# Semantic FPN with ConvMLP-S on ADE20K (data/ade/ADEChallengeData2016), the
# paper's setup: ImageNet-pretrained backbone, 512x512 crops, 40k iterations,
# AdamW lr 2e-4, weight decay 1e-4, poly schedule (power 0.9), 32 images per
# batch in total (8 GPUs x 4). With fewer GPUs, keep 4 per GPU and add
# --auto-scale-lr to scale the lr linearly (or raise batch_size per GPU).
# The decode head uses SyncBN, as mmseg's Semantic FPN; on a single process
# mmengine falls back to BN.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_40k.py'
]
custom_imports = dict(imports=['mmconvmlp'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmconvmlp.ConvMLP',
        arch='s',
        init_cfg=dict(type='Pretrained', checkpoint='convmlp_s_imagenet')),
    neck=dict(in_channels=[64, 128, 256, 512]),
    decode_head=dict(num_classes=150))

train_dataloader = dict(batch_size=4)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40000,
         by_epoch=False)
]
auto_scale_lr = dict(enable=False, base_batch_size=32)
