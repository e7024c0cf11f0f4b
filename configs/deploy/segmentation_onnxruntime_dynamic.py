# mmdeploy 1.3.1 deploy config: Semantic FPN-ConvMLP to ONNX Runtime with
# dynamic batch, height and width, argmax included. Use it through
# tools/deployment/mmdeploy_export.py (README, "mmdeploy"), which also
# registers the rewriter that keeps mmseg's Upsample dynamic.
_base_ = ['./_base_/onnxruntime_dynamic.py']
onnx_config = dict(
    output_names=['output'],
    dynamic_axes=dict(output={0: 'batch', 2: 'height', 3: 'width'}))
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
