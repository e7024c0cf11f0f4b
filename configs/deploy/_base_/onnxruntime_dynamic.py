# What both mmdeploy 1.3.1 deploy configs share: ONNX (opset 11) for ONNX
# Runtime, dynamic batch, height and width of the input. mmdeploy's own base
# configs live in its repository, not its wheel, so ours is here.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    input_shape=None,
    optimize=True,
    dynamic_axes=dict(input={0: 'batch', 2: 'height', 3: 'width'}))
backend_config = dict(type='onnxruntime')
