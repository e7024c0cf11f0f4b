"""Export with mmdeploy 1.3.1 (RetinaNet and Semantic FPN to ONNX Runtime).

    python tools/deployment/mmdeploy_export.py DEPLOY_CFG MODEL_CFG CHECKPOINT
        IMAGE --work-dir DIR

DEPLOY_CFG: configs/deploy/detection_onnxruntime_dynamic.py or
segmentation_onnxruntime_dynamic.py. Runs mmdeploy's ``torch2onnx`` with
what it needs on torch >= 2.9 (mmconvmlp.deploy.mmdeploy_route); the file
then runs with mmdeploy's tools (``tools/test.py`` of mmdeploy, or its
``build_task_processor(...).build_backend_model``). Mask R-CNN does not
export through mmdeploy: use tools/deployment/export_onnx.py.
"""
import argparse

import mmconvmlp  # noqa: F401  (registers ConvMLP)
from mmconvmlp.deploy.mmdeploy_route import export_with_mmdeploy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('deploy_cfg')
    parser.add_argument('model_cfg')
    parser.add_argument('checkpoint')
    parser.add_argument('image', help='an image to trace the model with')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    out = export_with_mmdeploy(args.deploy_cfg, args.model_cfg,
                               args.checkpoint, args.image, args.work_dir,
                               device=args.device)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
