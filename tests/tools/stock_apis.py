"""mmdet's and mmseg's own inference APIs on our configs and checkpoints,
in a fresh process that imports nothing of ours but what the config's
``custom_imports`` registers (on the OneDL fork also the fix that lets
mmengine find ``mmseg::`` configs: :mod:`mmconvmlp.engine.stack`)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_COMMON = '''
    import sys
    from importlib.metadata import PackageNotFoundError, version
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader
    cfg, ckpt, image = sys.argv[1:4]
    try:  # onedl-mmengine 0.10.12 cannot find mmseg:: configs by itself
        version('onedl-mmengine')
        from mmconvmlp.engine.stack import fix_config_lookup
        fix_config_lookup()
    except PackageNotFoundError:
        pass
    print('unsafe globals:',
          torch.serialization.get_unsafe_globals_in_checkpoint(ckpt))
'''
_REPORT = '''
    print('local checkpoint loader:', CheckpointLoader._schemes[''].__module__)
    print('mmconvmlp modules:', sorted(
        m for m in sys.modules if m.startswith('mmconvmlp')))
'''

DETECTION = _COMMON + '''
    from mmdet.apis import DetInferencer, inference_detector, init_detector
    model = init_detector(cfg, ckpt, device='cpu')
    result = inference_detector(model, image)
    print('init_detector + inference_detector:', type(model).__name__,
          'classes', model.dataset_meta['classes'],
          'detections', len(result.pred_instances))
    inferencer = DetInferencer(model=cfg, weights=ckpt, device='cpu',
                               show_progress=False)
    out = inferencer(image, no_save_vis=True, return_datasamples=True)
    print('DetInferencer:', 'detections',
          len(out['predictions'][0].pred_instances))
''' + _REPORT

SEGMENTATION = _COMMON + '''
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    model = init_model(cfg, ckpt, device='cpu')
    result = inference_model(model, image)
    print('init_model + inference_model:', type(model).__name__,
          'classes', model.dataset_meta['classes'],
          'label map', tuple(result.pred_sem_seg.shape))
    inferencer = MMSegInferencer(model=cfg, weights=ckpt, device='cpu')
    out = inferencer(image, return_datasamples=True)
    print('MMSegInferencer:', 'label map', tuple(out.pred_sem_seg.shape))
''' + _REPORT


def run_stock(snippet, config, checkpoint, image, cwd):
    """Run ``snippet`` (DETECTION or SEGMENTATION) on the files; return its
    output, raising with it if it fails."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='2')
    proc = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(snippet), str(config),
         str(checkpoint), str(image)], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f'stock API failed:\n{proc.stdout[-2000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc.stdout


def check_stock_output(out):
    """What every run must show: a checkpoint that needs no allow-list, read
    by mmengine's own loader (ours is not switched on)."""
    assert 'unsafe globals: []' in out, out
    assert 'local checkpoint loader: mmengine.runner.checkpoint' in out, out
