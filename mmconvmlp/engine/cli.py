"""The logic behind ``tools/train.py`` and ``tools/test.py``.

One pair of tools serves detection and segmentation: the config's
``default_scope`` (``mmdet`` or ``mmseg``) decides. Flags follow mmdet's.
"""
import argparse
import difflib
import inspect
import os
import os.path as osp
import re

from mmengine.config import DictAction
from mmengine.runner import Runner

from ..model_zoo import read_config
from .distributed import setup_cpu_distributed, teardown_distributed


#: One part of a ``--cfg-options`` key: a name (no dunders) or an index.
CFG_KEY_PART = re.compile(r'(?!__)[A-Za-z_][A-Za-z0-9_]*|\d+')


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` with one clear line for an argument that is
    not ``KEY=VALUE`` or whose key is not a dotted path of names and
    indices."""

    def __call__(self, parser, namespace, values, option_string=None):
        for kv in values or []:
            if '=' not in kv:
                raise argparse.ArgumentError(
                    self, f'{kv!r}: expected KEY=VALUE')
            bad = [part for part in kv.split('=', 1)[0].split('.')
                   if not CFG_KEY_PART.fullmatch(part)]
            if bad:
                raise argparse.ArgumentError(
                    self, f'{kv!r}: {bad[0]!r} is not a config key (names '
                    'and list indices, joined by dots)')
        super().__call__(parser, namespace, values, option_string)


def add_cfg_options(parser):
    """Add mmdet's ``--cfg-options`` flag, checked (see
    :class:`CfgOptionsAction` and :func:`check_cfg_options`)."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config settings, key=value (nested keys with dots, '
        'lists as key="[a,b]"); a key that looks like a typo of an existing '
        'one is refused')


def _common_args(parser):
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    add_cfg_options(parser)
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def train_parser():
    """Argument parser of ``tools/train.py`` (mmdet's flags)."""
    parser = argparse.ArgumentParser(description='Train a model')
    _common_args(parser)
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (GPU only)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual total '
                        'batch size over auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a path from the latest '
        'checkpoint in the work dir')
    return parser


def test_parser():
    """Argument parser of ``tools/test.py`` (mmdet's flags)."""
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    _common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint file (with --backend '
                        'onnxruntime|openvino: the exported .onnx file)')
    parser.add_argument(
        '--backend', default='pytorch',
        choices=['pytorch', 'onnxruntime', 'openvino'],
        help='run the PyTorch model, or a file exported by '
        'tools/deployment/export_onnx.py in ONNX Runtime or OpenVINO')
    parser.add_argument(
        '--precision', default='fp32', choices=['fp32', 'bf16'],
        help="with --backend openvino: bf16 runs in OpenVINO's bfloat16 "
        '(native on CPUs with AVX-512 BF16 or AMX only)')
    parser.add_argument(
        '--optimize', metavar='SETTINGS.json',
        help='test optimize_for_inference(model, **settings) of the loaded '
        "model: tools/deployment/tune.py's winner.json, or a JSON object of "
        'the settings')
    parser.add_argument('--out', help='detection: dump predictions to this '
                        '.pkl file; segmentation: write predicted label maps '
                        'to this directory')
    parser.add_argument('--show-dir', help='draw predictions into this '
                        'directory (under the work dir)')
    parser.add_argument('--show', action='store_true',
                        help='show predictions in a window')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='seconds each shown image stays')
    return parser


def check_cfg_options(cfg, options):
    """Refuse ``--cfg-options`` keys that look like typos.

    A mistyped key would otherwise silently add a new setting and leave the
    intended one unchanged. A top-level key must exist in the config or be an
    argument of mmengine's ``Runner``. Deeper down a new key is allowed (a
    constructor argument that the config leaves at its default, such as
    ``model.backbone.norm_cfg``; constructors reject unknown ones), unless it
    is a near-spelling of a key that exists there.

    Raises:
        KeyError: naming the bad key, where it was looked up, and the closest
            existing keys.
    """
    runner_args = set(inspect.signature(Runner.__init__).parameters)
    for full_key in options:
        node, path = cfg.to_dict(), []
        for part in full_key.split('.'):
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    raise KeyError(
                        f'--cfg-options {full_key}: {".".join(path)} has only '
                        f'{len(node)} entries')
                node, path = node[int(part)], path + [part]
                continue
            if not isinstance(node, dict):
                raise KeyError(f'--cfg-options {full_key}: {".".join(path)} '
                               f'is a {type(node).__name__}, not a dict')
            if part in node:
                node, path = node[part], path + [part]
                continue
            close = difflib.get_close_matches(part, list(node), n=3,
                                              cutoff=0.8)
            if path and not close:
                break  # a new setting
            if not path and part in runner_args:
                break
            where = '.'.join(path) or 'the top level of the config'
            hint = f'; did you mean {", ".join(close)}?' if close else ''
            raise KeyError(
                f'--cfg-options {full_key}: no key {part!r} in {where}{hint}')


def check_neck_channels(cfg):
    """Refuse a config whose neck expects other channels than the ConvMLP
    backbone gives, naming the channels it should list."""
    model = cfg.get('model', {})
    backbone, neck = model.get('backbone', {}), model.get('neck')
    if not isinstance(neck, dict) or 'in_channels' not in neck or not str(
            backbone.get('type', '')).endswith('ConvMLP'):
        return
    from ..models import ConvMLP
    args = {k: backbone[k] for k in ('arch', 'out_indices') if k in backbone}
    expected = ConvMLP(**args).out_channels
    if list(neck['in_channels']) != expected:
        raise ValueError(
            f'model.neck.in_channels={list(neck["in_channels"])} do not match '
            f'the channels of the ConvMLP backbone (arch '
            f'{args.get("arch", "s")!r}, out_indices '
            f'{args.get("out_indices", "default")}): set '
            f'model.neck.in_channels={expected}')


def explain_data_error(cfg, err):
    """If ``err`` came from an annotation file that is not valid JSON,
    return an error naming that file; else None."""
    import json
    if not isinstance(err, json.JSONDecodeError):
        return None
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(split) or {}).get('dataset', {})
        ann_file = dataset.get('ann_file')
        if not ann_file:
            continue
        path = osp.join(dataset.get('data_root') or '', ann_file)
        try:
            with open(path) as f:
                json.load(f)
        except json.JSONDecodeError as bad:
            return ValueError(f'annotation file {path} ({split}) is not '
                              f'valid JSON: {bad}')
        except OSError:
            continue
    return None


def load_config(args):
    """Read the config and apply the flags shared by train and test."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = read_config(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    check_neck_channels(cfg)
    return cfg


def configure_train(cfg, args):
    """Apply ``tools/train.py``'s own flags to ``cfg``."""
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise KeyError('--auto-scale-lr needs auto_scale_lr = dict('
                           'enable=False, base_batch_size=N) in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'--resume: checkpoint file not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def _enable_visualization(cfg, args):
    """Turn on the visualization hook as mmdet's / mmseg's test.py do."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise KeyError('--show / --show-dir need a "visualization" entry in '
                       'default_hooks')
    hook.draw = True
    if args.show:
        hook.show, hook.wait_time = True, args.wait_time
    if args.show_dir and cfg.default_scope == 'mmseg':
        cfg.visualizer.save_dir = args.show_dir
    elif args.show_dir:
        hook.test_out_dir = args.show_dir


def configure_test(cfg, args):
    """Apply ``tools/test.py``'s own flags to ``cfg``."""
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {args.checkpoint}')
    backend = getattr(args, 'backend', 'pytorch')
    if getattr(args, 'optimize', None):
        if backend != 'pytorch':
            raise ValueError('--optimize applies to the PyTorch model, not to '
                             f'--backend {backend}')
        from ..deploy.optimize_hook import read_settings
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(
            type='mmconvmlp.OptimizeForInferenceHook',
            **read_settings(args.optimize))]
    if backend == 'pytorch':
        cfg.load_from = args.checkpoint
    else:
        from ..deploy.runtime import use_runtime_model
        use_runtime_model(cfg, args.checkpoint, backend,
                          getattr(args, 'precision', 'fp32'))
    if args.show or args.show_dir:
        _enable_visualization(cfg, args)
    if args.out and cfg.default_scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    elif args.out and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {args.out}')
    return cfg


#: The hook the tools add (see :class:`~mmconvmlp.engine.ExactResumeHook`).
EXACT_RESUME_HOOK = 'mmconvmlp.ExactResumeHook'


def build_runner(cfg):
    """Build the Runner the config asks for.

    Switches on what the tools add to stock mmengine, each visible in the
    config the Runner logs: gloo and a CPU DDP wrapper when torchrun starts
    processes without GPUs, and :class:`~mmconvmlp.engine.ExactResumeHook`
    (safe loading, atomic writes, random states) unless the config has it.
    """
    setup_cpu_distributed(cfg)
    hooks = list(cfg.get('custom_hooks', []))
    if not any(str(h.get('type')).endswith('ExactResumeHook') for h in hooks):
        cfg.custom_hooks = hooks + [dict(type=EXACT_RESUME_HOOK)]
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def run(cfg, action, extra=None):
    """Build the Runner and call ``action`` ('train' or 'test'), turning a
    JSON error in an annotation file into one that names the file."""
    try:
        runner = build_runner(cfg)
        if extra is not None:
            extra(runner)
        result = getattr(runner, action)()
    except Exception as err:
        clear = explain_data_error(cfg, err)
        if clear is None:
            raise
        raise clear from None
    teardown_distributed()
    return result


def add_detection_dump(runner, out):
    """Dump detections to ``out`` (.pkl) as mmdet's test.py does."""
    from mmdet.evaluation import DumpDetResults
    runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
