"""One framework's benchmarks in this process: ``python -m benchmarks.worker FRAMEWORK``.

Prints one JSON object: the framework's environment (version, BLAS, threads)
and, per case, the seconds per call of every timed repeat. The runner starts
one worker per framework so that no framework's imports, threads or allocator
state touch another's figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import timeit
from typing import Any

from benchmarks import cases


def environment(framework: str) -> dict[str, Any]:
    """Version, BLAS and thread count of the framework in this process."""
    if framework == "torch":
        import torch

        blas = "MKL" if torch.backends.mkl.is_available() else "non-MKL BLAS"
        return {
            "version": torch.__version__,
            "blas": f"{blas}, {torch.backends.cpu.get_cpu_capability()}",
            "threads": torch.get_num_threads(),
        }
    import numpy as np

    from ember._src.cli.info import blas_info

    b = blas_info()
    blas = f"{b['name']} {b['version']}".strip() + (f", core {b['core']}" if "core" in b else "")
    if framework == "ember":
        import ember

        version = ember.__version__
    else:
        version = np.__version__
    return {"version": version, "blas": blas, "threads": b.get("threads", "?")}


def time_case(stmt: str, namespace: dict[str, Any], min_time: float, repeats: int) -> list[float]:
    """Seconds per execution of ``stmt``, one figure per repeat, after a warm-up.

    The statement is compiled into timeit's loop (``time.perf_counter``); the
    garbage collector stays on, since freeing the tape is part of the cost.
    The batch size doubles until a batch takes ``min_time`` (the warm-up), then
    one more batch runs untimed before the repeats.
    """
    timer = timeit.Timer(stmt, setup="gc.enable()", globals={**namespace, "gc": gc})
    number = 1
    while timer.timeit(number) < min_time:
        number *= 2
    timer.timeit(number)
    return [t / number for t in timer.repeat(repeat=repeats, number=number)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=sorted(cases.CASES))
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    result: dict[str, Any] = {
        "framework": args.framework,
        "env": environment(args.framework),
        "coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "check_losses": cases.check_losses(args.framework),
        "times": {},
    }
    for name, (stmt, namespace) in cases.CASES[args.framework]().items():
        result["times"][name] = time_case(stmt, namespace, args.min_time, args.repeats)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
