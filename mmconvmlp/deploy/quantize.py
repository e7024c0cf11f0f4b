"""Opt-in int8: ONNX Runtime static quantization of an exported file.

:func:`quantize_onnx` calibrates on images the user names (by default the
built-in dataset's training images), preprocessed exactly as the model's
config preprocesses them, and writes a QDQ model (int8 weights per channel,
uint8 activations) that keeps the exported file's metadata, so the runtime
models and ``tools/test.py --backend onnxruntime`` run it unchanged. Its
speed and its mAP / mIoU change are measured, not assumed: README,
"int8".
"""
import glob
import os
import os.path as osp
import tempfile

from ..checkpoint import atomic_write
from ..images import check_image_file
from .metadata import read_metadata, stored_pipeline, write_metadata

#: Where :func:`quantize_onnx` looks for calibration images by default.
DEFAULT_IMAGES = 'data/builtin/images/training'
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')
#: The ops that run in int8: the convolutions and the channel MLPs' matrix
#: products (norms, activations and resizes stay float).
QUANTIZED_OPS = ('Conv', 'MatMul', 'Gemm')


def calibration_images(images=DEFAULT_IMAGES, num=32):
    """The first ``num`` image files (sorted) of a directory, or the given
    list of files."""
    if isinstance(images, (list, tuple)):
        files = list(images)
    elif osp.isdir(images):
        files = sorted(f for f in glob.glob(osp.join(images, '*'))
                       if f.lower().endswith(IMAGE_SUFFIXES))
    else:
        raise FileNotFoundError(
            f'calibration images: no directory {images} (name a directory '
            'of images; the default is the built-in dataset: '
            'python tools/dataset_converters/make_builtin.py data/builtin)')
    if not files:
        raise FileNotFoundError(f'calibration images: no {IMAGE_SUFFIXES} '
                                f'files in {images}')
    files = files[:num]
    for path in files:
        check_image_file(path)
    return files


class _Calibration:
    """ONNX Runtime's calibration reader: the images, through the exported
    model's test pipeline (annotations skipped) and data preprocessor, as
    stored in its metadata."""

    def __init__(self, files, metadata, input_name, input_shape):
        from mmengine.dataset import Compose, pseudo_collate
        from mmengine.registry import init_default_scope

        from ..registry import MODELS
        init_default_scope(metadata['default_scope'])
        self.pipeline = Compose([t for t in stored_pipeline(metadata)
                                 if t['type'] != 'LoadAnnotations'])
        self.preprocessor = MODELS.build(
            metadata['model']['data_preprocessor'])
        self.collate = pseudo_collate
        self.files, self.input_name = iter(files), input_name
        self.fixed = (tuple(input_shape[2:]) if input_shape[2] > 0
                      else None)

    def get_next(self):
        import torch.nn.functional as F
        path = next(self.files, None)
        if path is None:
            return None
        data = self.pipeline(dict(img_path=path, img_id=0))
        inputs = self.preprocessor(self.collate([data]), False)['inputs']
        if self.fixed is not None:  # a file exported at a fixed size
            h, w = inputs.shape[2:]
            inputs = F.pad(inputs, (0, max(self.fixed[1] - w, 0), 0,
                                    max(self.fixed[0] - h, 0)))
            inputs = inputs[:, :, :self.fixed[0], :self.fixed[1]]
        return {self.input_name: inputs.float().numpy()}


def quantize_onnx(onnx_file, out_file, images=DEFAULT_IMAGES, num=32,
                  per_channel=True):
    """Write an int8 (QDQ) copy of ``onnx_file``, calibrated on ``images``.

    Args:
        onnx_file (str): a file written by
            :func:`~mmconvmlp.deploy.export_onnx`.
        out_file (str): the quantized file; its metadata is the source's
            plus ``quantization``.
        images (str | list[str]): a directory of images, or image files.
        num (int): how many images calibrate (the first, sorted).
        per_channel (bool): per-channel weight scales.

    Returns:
        dict: the ``quantization`` metadata written.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    metadata = read_metadata(onnx_file)
    if 'test_pipeline' not in metadata:
        raise ValueError(f'{onnx_file} stores no test pipeline to calibrate '
                         'with: export it from a config that has one')
    files = calibration_images(images, num)
    info = dict(method='onnxruntime static, QDQ, Conv/MatMul/Gemm with int8 '
                f'weights per {"channel" if per_channel else "tensor"} and '
                'uint8 activations, MinMax calibration',
                images=len(files),
                source=os.path.basename(onnx_file))
    with tempfile.TemporaryDirectory() as tmp:
        prepared = osp.join(tmp, 'prepared.onnx')
        quantized_file = osp.join(tmp, 'quantized.onnx')
        quant_pre_process(onnx_file, prepared, skip_symbolic_shape=True)
        reader = _Calibration(files, metadata, 'inputs',
                              metadata['input_shape'])
        quantize_static(prepared, quantized_file, reader,
                        quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        per_channel=per_channel,
                        op_types_to_quantize=list(QUANTIZED_OPS),
                        calibrate_method=CalibrationMethod.MinMax)
        quantized = onnx.load(quantized_file)
    del quantized.metadata_props[:]
    write_metadata(quantized, dict(metadata, quantization=info))
    if 'roi_head_file' in metadata:  # the RoI head stays in PyTorch, fp32
        src, dst = (osp.join(osp.dirname(osp.abspath(f)),
                             metadata['roi_head_file'])
                    for f in (onnx_file, out_file))
        if src != dst:
            with open(src, 'rb') as f:
                atomic_write(f.read(), dst)
    atomic_write(quantized.SerializeToString(), out_file)
    return info
