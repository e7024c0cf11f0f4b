"""FLOPs and parameters of a config's model, whole and by part.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]]
    python tools/analysis_tools/get_flops.py --all [--shape H [W]]

CONFIG is a path, an ``mmdet::`` / ``mmseg::`` name or the name of one of
our configs (``retinanet_convmlp_s``). Counted by mmengine's counter on one
random image (1 multiply-add = 1 FLOP; see :mod:`mmconvmlp.analysis.complexity`) at
``--shape`` (default: 800x1333 for detection, 512x512 for segmentation).
``--all`` prints one table over every shipped config.
"""
import argparse
import os.path as osp

from mmconvmlp.analysis.complexity import model_complexity
from mmconvmlp.analysis.tables import markdown_table
from mmconvmlp.model_zoo import list_configs

PARTS = ('whole', 'backbone', 'neck', 'heads')


def _row(name, result):
    row = dict(config=name, shape='{}x{}'.format(*result['shape']))
    for part in PARTS:
        if part in result:
            row[f'{part}_gflops'] = result[part]['flops'] / 1e9
            row[f'{part}_params'] = result[part]['params'] / 1e6
    return row


COLUMNS = [('config', 'config', '{}'), ('shape', 'H×W', '{}')] + [
    (f'{part}_{kind}', f'{part} {unit}', '{:.2f}') for part in PARTS
    for kind, unit in (('gflops', 'GFLOPs'), ('params', 'params (M)'))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?')
    parser.add_argument('--all', action='store_true',
                        help='every shipped config (built-in data ones left '
                        'out)')
    parser.add_argument('--shape', type=int, nargs='+',
                        help='input H [W] (W defaults to H)')
    args = parser.parse_args()
    if bool(args.all) == bool(args.config):
        parser.error('give either CONFIG or --all')
    shape = None
    if args.shape:
        if len(args.shape) > 2:
            parser.error('--shape takes H or H W')
        shape = (args.shape[0], args.shape[-1])
    names = ([n for n in list_configs() if not n.endswith('_builtin')]
             if args.all else [args.config])
    rows = []
    for name in names:
        result = model_complexity(name, shape)
        rows.append(_row(osp.basename(name), result))
        if not args.all:
            print(f'config: {name}\ninput shape: {rows[-1]["shape"]}')
            for part in PARTS:
                if part in result:
                    print(f'{part:9s} FLOPs {result[part]["flops"] / 1e9:8.2f}'
                          f' G   params {result[part]["params"] / 1e6:7.2f} M')
    print('\nFLOPs: mmengine counter, 1 multiply-add = 1 FLOP\n')
    print(markdown_table(rows, COLUMNS))


if __name__ == '__main__':
    main()
