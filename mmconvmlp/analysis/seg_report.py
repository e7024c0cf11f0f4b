"""The segmentation benchmark's report: its Markdown table and its plots
(latency against the mIoU metafiles report, with the Pareto front; latency
against parameters and FLOPs)."""
import json
import os
import os.path as osp
import re

from .tables import markdown_table, write_csv


def _parts(prefix, fmt):
    def cell(row):
        if row.get(f'whole_{prefix}') is None:
            return None
        inner = '/'.join(fmt.format(row.get(f'{p}_{prefix}') or 0)
                         for p in ('backbone', 'neck', 'heads'))
        return f'{fmt.format(row[f"whole_{prefix}"])} ({inner})'
    return cell


COLUMNS = [('model', 'model', '{}'), ('source', 'source', '{}'),
           ('size', 'H×W', '{}'), ('mode', 'timed', '{}'),
           ('latency_ms', 'latency ms (median)', '{:.1f}'),
           ('iqr_ms', 'IQR ms', '{:.1f}'), ('fps', 'images/s', '{:.2f}'),
           ('peak_mib', 'peak MiB', '{:.0f}'),
           ('gflops', 'GFLOPs whole (backbone/neck/heads)', '{}'),
           ('mparams', 'params M whole (backbone/neck/heads)', '{}'),
           ('miou', 'mIoU measured', '{:.2f}'),
           ('reported_miou', 'mIoU reported (metafile)', '{:.2f}'),
           ('error', 'error', '{}')]


def table(rows):
    """The Markdown table of the rows."""
    shown = [dict(r, gflops=_parts('gflops', '{:.1f}')(r),
                  mparams=_parts('mparams', '{:.2f}')(r)) for r in rows]
    return markdown_table(shown, COLUMNS)


def pareto_front(points):
    """The points (latency, mIoU) no other point beats on both: faster or
    as fast with a higher mIoU. Sorted by latency."""
    front, best = [], float('-inf')
    for latency, miou in sorted(points, key=lambda p: (p[0], -p[1])):
        if miou > best:
            front.append((latency, miou))
            best = miou
    return front


def short_name(name):
    """A plot label: the model name without mmseg's schedule suffix
    (``fpn_r50_4xb4-160k_ade20k-512x512`` -> ``fpn_r50``)."""
    return re.sub(r'_\d+xb\d+-.*$', '', name)


def _label(ax, points):
    """Label each (x, y, text) point so that the text stays inside the
    axes: left of points in the right half, right of the others, with a
    margin around the data for the text's height."""
    if not points:
        return
    ax.margins(x=0.05, y=0.12)
    xs = [x for x, _, _ in points]
    middle = (min(xs) + max(xs)) / 2
    for x, y, text in points:
        right = x > middle
        ax.annotate(text, (x, y), xytext=(-3 if right else 3, 3),
                    textcoords='offset points', fontsize=7,
                    ha='right' if right else 'left')


def _measured(rows):
    """The forward rows that were measured, and their sizes."""
    fwd = [r for r in rows if r.get('mode') == 'forward' and not r.get(
        'error')]
    return fwd, sorted({r['size'] for r in fwd})


def pareto_figure(rows, title):
    """Latency against the reported mIoU, per size, the Pareto front
    dashed (a matplotlib figure)."""
    import matplotlib.pyplot as plt
    fwd, sizes = _measured(rows)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for size in sizes:
        pts = [r for r in fwd if r['size'] == size and r['reported_miou']]
        if not pts:
            continue
        sc = ax.scatter([r['latency_ms'] for r in pts],
                        [r['reported_miou'] for r in pts], label=size)
        front = pareto_front([(r['latency_ms'], r['reported_miou'])
                              for r in pts])
        ax.plot(*zip(*front), '--', color=sc.get_facecolor()[0], lw=1,
                drawstyle='steps-post')
        _label(ax, [(r['latency_ms'], r['reported_miou'],
                     short_name(r['model'])) for r in pts])
    ax.set_xlabel('latency, ms (measured)')
    ax.set_ylabel('mIoU (reported by metafiles)')
    ax.set_title(f'{title}\n(dashed: Pareto front)', fontsize=8)
    ax.legend(fontsize=7, title='input H×W', title_fontsize=7)
    fig.tight_layout()
    return fig


def cost_figure(rows, title):
    """Latency against parameters and against FLOPs, per size (a
    matplotlib figure)."""
    import matplotlib.pyplot as plt
    fwd, sizes = _measured(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], 'whole_mparams', 'parameters (M)'),
                           (axes[1], 'whole_gflops', 'GFLOPs')):
        for size in sizes:
            pts = [r for r in fwd if r['size'] == size and r.get(key)]
            ax.scatter([r[key] for r in pts], [r['latency_ms'] for r in pts],
                       label=size)
            _label(ax, [(r[key], r['latency_ms'], short_name(r['model']))
                        for r in pts])
        ax.set_xlabel(label)
        ax.set_ylabel('latency, ms (measured)')
        ax.legend(fontsize=7, title='input H×W', title_fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def plot(rows, out_dir, title):
    """``benchmark_seg_pareto.png`` (:func:`pareto_figure`) and
    ``benchmark_seg_cost.png`` (:func:`cost_figure`) in ``out_dir``.
    Returns the files written."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    written = []
    for name, figure in (('pareto', pareto_figure), ('cost', cost_figure)):
        fig = figure(rows, title)
        written.append(osp.join(out_dir, f'benchmark_seg_{name}.png'))
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written


def write_report(rows, env, options, out_dir):
    """Write ``benchmark_seg.{md,csv,json}`` and the plots into ``out_dir``;
    return the Markdown text and the files written."""
    title = (f'Semantic segmentation on {env["hardware"]}, {env["threads"]} '
             f'threads, torch {env["torch"]}, batch {options["batch"]}, fp32')
    os.makedirs(out_dir, exist_ok=True)
    text = (f'{title}; latency: median of {options["rounds"]} rounds x '
            f'{options["repeats"]} runs\n\n{table(rows)}\n')
    stem = osp.join(out_dir, 'benchmark_seg')
    with open(stem + '.md', 'w') as f:
        f.write(text)
    write_csv(rows, stem + '.csv')
    with open(stem + '.json', 'w') as f:
        json.dump(dict(environment=env, args=options, rows=rows), f,
                  indent=1)
    files = [stem + ext for ext in ('.md', '.csv', '.json')]
    return text, files + plot(rows, out_dir, title)
