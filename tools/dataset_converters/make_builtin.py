"""Write the built-in dataset (see mmconvmlp.datasets.builtin).

    python tools/dataset_converters/make_builtin.py [ROOT] [--num-train N]
"""
import argparse

from mmconvmlp.datasets import make_builtin_dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('root', nargs='?', default='data/builtin')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    manifest = make_builtin_dataset(args.root, args.num_train, args.num_val,
                                    args.size, args.seed)
    print(f'built-in dataset in {args.root}: {manifest["num_train"]} train, '
          f'{manifest["num_val"]} val images, classes {manifest["classes"]}')


if __name__ == '__main__':
    main()
