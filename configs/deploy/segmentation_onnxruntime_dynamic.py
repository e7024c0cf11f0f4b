# mmdeploy 1.3.1 deploy config: Semantic FPN-ConvMLP to ONNX Runtime with
# dynamic batch, height and width, argmax included. Use it through
# tools/deployment/mmdeploy_export.py (README, "mmdeploy"), which also
# registers the rewriter that keeps mmseg's Upsample dynamic.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    optimize=True,
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        output={0: 'batch', 2: 'height', 3: 'width'}))
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
backend_config = dict(type='onnxruntime')
