"""Benchmark Semantic FPN models side by side, in one run.

    python tools/analysis_tools/benchmark_seg.py [--out-dir DIR]
        [--sizes 512x512 512x2048] [--repeats 3]
        [--eval-config CFG --eval-checkpoint CKPT]

Measures ConvMLP-S/M/L Semantic FPN and mmseg's own ResNet-50 Semantic FPN:
latency and images/s (median after warm-up), peak memory, FLOPs and
parameters (mmengine's counter), for the backbone alone and the whole model,
at each size (HxW). Writes ``benchmark_seg.md`` and ``benchmark_seg.png``
(latency against parameters) into ``--out-dir``. With ``--eval-config`` and
``--eval-checkpoint`` it also runs the config's test loop and prints mIoU.
Every figure is measured here; the paper's mIoU column is labelled as such.
"""
import argparse
import os
import os.path as osp

import torch

from mmconvmlp.benchmarking import (markdown_table, measure_segmentor,
                                    run_isolated)

SEG_CONFIGS = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..',
                       'configs', 'segmentation')
CONFIGS = {
    'ConvMLP-S': osp.join(SEG_CONFIGS, 'semantic_fpn_convmlp_s.py'),
    'ConvMLP-M': osp.join(SEG_CONFIGS, 'semantic_fpn_convmlp_m.py'),
    'ConvMLP-L': osp.join(SEG_CONFIGS, 'semantic_fpn_convmlp_l.py'),
    'ResNet-50 (mmseg)': 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
}
#: The paper's ADE20K mIoU (not measured here).
PAPER_MIOU = {'ConvMLP-S': 35.8, 'ConvMLP-M': 38.6, 'ConvMLP-L': 40.0}
COLUMNS = [('model', 'model', '{}'), ('part', 'part', '{}'),
           ('size', 'H×W', '{}'), ('latency_ms', 'latency (ms)', '{:.1f}'),
           ('fps', 'images/s', '{:.2f}'), ('peak_mib', 'peak mem (MiB)',
                                            '{:.0f}'),
           ('flops', 'GFLOPs (1 mult-add = 1)', '{:.1f}'),
           ('params', 'params (M)', '{:.2f}'),
           ('paper_miou', 'paper mIoU (not measured)', '{:.1f}')]


def evaluate(config, checkpoint):
    """mIoU of a checkpoint through the config's normal test loop."""
    import mmconvmlp  # noqa: F401
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join('work_dirs', 'benchmark_seg_eval')
    return Runner.from_cfg(cfg).test()


def plot(rows, path):
    """Latency against parameters, one series per input size."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for size in sorted({r['size'] for r in rows}):
        pts = [r for r in rows if r['size'] == size and r['part'] == 'whole']
        ax.scatter([r['params'] for r in pts], [r['latency_ms'] for r in pts],
                   label=f'whole model, {size}')
        for r in pts:
            ax.annotate(r['model'], (r['params'], r['latency_ms']),
                        fontsize=7)
    ax.set_xlabel('parameters (M)')
    ax.set_ylabel('latency (ms)')
    ax.set_title(f'Semantic FPN, batch 1, {rows[0]["device"]}')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out-dir', default='work_dirs/benchmark_seg')
    parser.add_argument('--sizes', nargs='+', default=['512x512', '512x2048'])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--models', nargs='+', default=list(CONFIGS),
                        choices=list(CONFIGS))
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--eval-config')
    parser.add_argument('--eval-checkpoint')
    args = parser.parse_args()

    rows = []
    for size in args.sizes:
        height, width = map(int, size.lower().split('x'))
        for name in args.models:
            for part in ('backbone', 'whole'):
                result = run_isolated(measure_segmentor, CONFIGS[name], height,
                                      width, part, args.device, args.repeats)
                rows.append(dict(result, model=name, part=part, size=size,
                                 device=args.device,
                                 latency_ms=result['latency'] * 1e3,
                                 paper_miou=PAPER_MIOU.get(name)
                                 if part == 'whole' else None))
                print(f'{name:18s} {part:8s} {size:9s} '
                      f'{rows[-1]["latency_ms"]:9.1f} ms', flush=True)
    os.makedirs(args.out_dir, exist_ok=True)
    table = (f'Semantic FPN on {args.device} ({torch.get_num_threads()} '
             f'threads), batch 1, fp32, median of {args.repeats} runs\n\n'
             + markdown_table(rows, COLUMNS))
    with open(osp.join(args.out_dir, 'benchmark_seg.md'), 'w') as f:
        f.write(table + '\n')
    plot(rows, osp.join(args.out_dir, 'benchmark_seg.png'))
    print(table)
    if args.eval_config and args.eval_checkpoint:
        metrics = evaluate(args.eval_config, args.eval_checkpoint)
        print(f'mIoU of {args.eval_checkpoint}: {metrics["mIoU"]:.2f}')


if __name__ == '__main__':
    main()
