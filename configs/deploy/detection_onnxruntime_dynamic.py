# mmdeploy 1.3.1 deploy config: single-stage detectors (RetinaNet-ConvMLP)
# end to end, NMS included, to ONNX Runtime with dynamic batch, height and
# width. Use it through tools/deployment/mmdeploy_export.py (README,
# "mmdeploy").
_base_ = ['./_base_/onnxruntime_dynamic.py']
onnx_config = dict(
    output_names=['dets', 'labels'],
    dynamic_axes=dict(dets={0: 'batch', 1: 'num_dets'},
                      labels={0: 'batch', 1: 'num_dets'}))
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.05,
        confidence_threshold=0.005,
        iou_threshold=0.5,
        max_output_boxes_per_class=200,
        pre_top_k=5000,
        keep_top_k=100,
        background_label_id=-1))
