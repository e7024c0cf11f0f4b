"""Prepare a trained checkpoint for publishing, as mmdet's tool does.

    python tools/model_converters/publish_model.py IN.pth OUT.pth

Keeps the weights and meta (as plain data: stock ``torch.load`` opens the
file weights-only), drops optimizer, schedulers, message hub and random
states, and writes ``OUT-<sha256[:8]>.pth``.
"""
import argparse

from mmconvmlp.checkpoint import publish


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('in_file', help='checkpoint written by training')
    parser.add_argument('out_file', help='OUT.pth: the sha256 prefix is '
                        'added to its name')
    args = parser.parse_args()
    final, dropped = publish(args.in_file, args.out_file)
    print(f'dropped: {", ".join(dropped) or "nothing"}')
    print(f'published {final}')


if __name__ == '__main__':
    main()
