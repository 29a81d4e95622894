"""Command line: ``python -m numpy_shufflenet {table1,summary} ...``; ``--help`` on each command."""

import argparse
import sys

from .counting import summary
from .model import GROUPS, SCALES, ShuffleNet
from .report import format_table1


def _table1(args):
    print(format_table1(args.input_size))


def _summary(args):
    model = ShuffleNet(groups=args.groups, scale=args.scale, num_classes=args.num_classes)
    table = summary(model, (3, args.input_size, args.input_size), depth=args.depth)
    print(f"ShuffleNet {args.scale}x, g={args.groups}, widths {model.widths}")
    print(table)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m numpy_shufflenet",
                                     description="ShuffleNet v1 in NumPy: rebuild the paper's numbers.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("table1", help="paper Table 1: widths and complexity for g = 1, 2, 3, 4, 8",
                            description="Rebuild paper Table 1 and the released models' FLOPs/params.")
    p.add_argument("--input-size", type=int, default=224, help="image side in pixels (default 224)")
    p.set_defaults(run=_table1)

    p = commands.add_parser("summary", help="per-layer table of shapes, parameters and multiply-adds",
                            description="Per-layer summary of one ShuffleNet.")
    p.add_argument("--groups", type=int, default=3, choices=GROUPS, help="groups g (default 3)")
    p.add_argument("--scale", type=float, default=1.0, choices=SCALES, help="width multiplier (default 1.0)")
    p.add_argument("--input-size", type=int, default=224, help="image side in pixels, at least 32 (default 224)")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (default 1000)")
    p.add_argument("--depth", type=int, default=None,
                   help="sum rows into blocks named by the first DEPTH name parts (2: one row per unit)")
    p.set_defaults(run=_summary)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
