"""The logic behind ``tools/train.py`` and ``tools/test.py``.

One pair of tools serves detection and segmentation: the config's
``default_scope`` (``mmdet`` or ``mmseg``) decides. Flags follow mmdet's.
"""
import argparse
import difflib
import inspect
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def _common_args(parser):
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (nested keys with dots, '
        'lists as key="[a,b]"); every key must already exist in the config')
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
    parser.add_argument('checkpoint', help='checkpoint file')
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
    """Refuse ``--cfg-options`` keys that do not exist in ``cfg``.

    A mistyped key would otherwise silently add a new setting and leave the
    intended one unchanged. New top-level keys are allowed only if they are
    arguments of mmengine's ``Runner``; inside an existing dict, a new *last*
    key is allowed (a constructor argument the config leaves at its default),
    but every key on the way to it must exist.

    Raises:
        KeyError: naming the bad key, where it was looked up, and the closest
            existing keys.
    """
    runner_args = set(inspect.signature(Runner.__init__).parameters)
    for full_key in options:
        parts = full_key.split('.')
        node, path = cfg.to_dict(), []
        for depth, part in enumerate(parts):
            is_last = depth == len(parts) - 1
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
            if part not in node:
                if depth == 0 and part in runner_args:
                    break
                if is_last and depth > 0:
                    break
                where = '.'.join(path) or 'the top level of the config'
                close = difflib.get_close_matches(part, list(node), n=3)
                hint = f'; did you mean {", ".join(close)}?' if close else ''
                raise KeyError(
                    f'--cfg-options {full_key}: no key {part!r} in {where}'
                    f'{hint}')
            node, path = node[part], path + [part]


def load_config(args):
    """Read the config and apply the flags shared by train and test."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
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
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        _enable_visualization(cfg, args)
    if args.out and cfg.default_scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    elif args.out and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {args.out}')
    return cfg


def build_runner(cfg):
    """Build the Runner the config asks for."""
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def add_detection_dump(runner, out):
    """Dump detections to ``out`` (.pkl) as mmdet's test.py does."""
    from mmdet.evaluation import DumpDetResults
    runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
