"""Where ember's time goes in a benchmark case: ``python -m benchmarks.profile_ember [case]``.

Runs the case's statement many times under cProfile and prints the functions
with the most time of their own, then the most time including callees.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats

from benchmarks import cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choices = ["add", "add_grad", "mm", "mlp_step"]
    parser.add_argument("case", nargs="?", default="mlp_step", choices=choices)
    parser.add_argument("-n", "--number", type=int, help="executions (default: 200k add, 2k step)")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")  # only read when numpy first loads

    stmt, namespace = cases.ember_cases()[args.case]
    number = args.number or (2_000 if args.case == "mlp_step" else 200_000)
    loop = f"for _ in range({number}):\n    {stmt}\n"
    exec(loop, namespace)  # warm-up
    profiler = cProfile.Profile()
    profiler.runctx(loop, namespace, {})
    stats = pstats.Stats(profiler).strip_dirs()
    print(f"ember {args.case}: {number} executions")
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
