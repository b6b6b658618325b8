"""The ``ember`` command: one subcommand per job.

Each subcommand registers its parser in :func:`build_parser` and sets ``func``,
which takes the parsed arguments and returns the exit status. Mistakes a user
can fix (a bad config, a missing file) print one message and exit with status 2
(1 for other failures); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

import ember
from ember._src.cli import info, run_commands, train
from ember._src.cli.config import UserError
from ember._src.io import convert

USER_ERROR = 2
FAILURE = 1

EPILOG = """\
examples:
  ember train examples/configs/digits_cnn.yaml      train; writes runs/digits_cnn/
  ember train examples/configs/digits_cnn.yaml --validate
  ember train runs/digits_cnn --resume              continue a stopped run
  ember evaluate runs/digits_cnn                    test-set metrics
  ember predict runs/digits_cnn --input x.npy       one prediction per line
  ember export runs/digits_cnn --format onnx
  ember plot runs/digits_cnn                        runs/digits_cnn/curves.png

The config format, the run directory and every command: docs/cli.md.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ember",
        description="ember: a deep learning framework on NumPy.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ember {ember.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=description or help, parents=[common])

    p = add(
        "train",
        "train the model a config file describes, writing runs/<name>/",
        "Train the model a YAML or JSON config describes and write a run directory: the "
        "resolved config, checkpoints (last and best), TensorBoard logs, metrics.json, the "
        "final model and its ONNX export. Ctrl-C saves a checkpoint; --resume continues. "
        "A bad config is reported with its file, line and key before anything trains.",
    )
    train.add_arguments(p)
    p.set_defaults(func=train.run)

    run_commands.add_evaluate(
        add("evaluate", "print a trained run's loss and metrics on its test (or other) split")
    )
    run_commands.add_predict(
        add("predict", "run a trained model on samples from a .npy or .csv file")
    )
    run_commands.add_export(add("export", "export a trained run's model (ONNX)"))
    run_commands.add_plot(add("plot", "draw a run's training curves as a PNG"))

    p = add("info", "print ember's version, backends, BLAS and thread counts")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=info.run)

    p = add("convert", "convert weight files from other frameworks to ember's")
    convert.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ember`` command line with ``argv`` (default: ``sys.argv[1:]``)."""
    args = build_parser().parse_args(argv)
    if args.debug:
        return int(args.func(args))
    try:
        return int(args.func(args))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR
    except BrokenPipeError:  # the reader went away (`ember ... | head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILURE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return train.INTERRUPTED
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return FAILURE
    except Exception as e:
        where = traceback.extract_tb(e.__traceback__)[-1]
        print(
            f"error: {type(e).__name__}: {e}\n(at {where.filename}:{where.lineno}; run with "
            "--debug for the traceback)",
            file=sys.stderr,
        )
        return FAILURE
