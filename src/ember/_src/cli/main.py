"""The ``ember`` command: one subcommand per job (``info`` now; train, export, serve later).

Each subcommand registers its parser in :func:`build_parser` and sets
``func``, which takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import ember
from ember._src.cli import info
from ember._src.io import convert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ember", description="ember: a deep learning framework on NumPy."
    )
    parser.add_argument("--version", action="version", version=f"ember {ember.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("info", help="print ember's version, backends, BLAS and thread counts")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=info.run)

    p = sub.add_parser("convert", help="convert weight files from other frameworks to ember's")
    convert.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ember`` command line with ``argv`` (default: ``sys.argv[1:]``)."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))
