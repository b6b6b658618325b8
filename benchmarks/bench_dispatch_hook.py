"""Eager dispatch cost of ``registry.apply`` before and after the symbolic API's hook.

The symbolic API (``ember.placeholder``) adds one check of a module global,
``registry._symbolic_hook``, to the paths of ``apply`` that call ``compute``
(the inline fast path for ``a + b`` of one dtype is untouched). This times,
in one process and interleaved so machine load hits both alike, the
``apply`` of a git revision without the hook (``--before REV``, default
8b70e35) beside the current one, on ``a + b`` ((4, 4) float32, the
fast path) and ``a + c`` (float32 + float64: the path with the check), and
then the current one once a placeholder exists (the hook is set, so the slow
path pays one Python call that scans the operands).

Run: python -m benchmarks.bench_dispatch_hook --before 8b70e35
"""

from __future__ import annotations

import argparse
import subprocess
import timeit
from pathlib import Path

import ember
from ember._src.ops import registry
from ember._src.ops.elementwise import add_op

ROOT = Path(__file__).resolve().parents[1]


def _old_apply(rev: str):  # type: ignore[no-untyped-def]
    """``apply`` as it was in ``rev``, compiled in the registry module's namespace."""
    src = subprocess.run(
        ["git", "show", f"{rev}:src/ember/_src/ops/registry.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    start = src.index("def apply(")
    end = src.index("\n_GRAD_KINDS", start)
    namespace = dict(vars(registry))
    exec(compile(src[start:end], f"<registry.apply@{rev}>", "exec"), namespace)
    return namespace["apply"]


def _interleaved(stmts: dict[str, str], env: dict, repeat: int, number: int = 20000) -> dict:  # type: ignore[type-arg]
    """Best time per statement in microseconds, timing the statements in turn ``repeat`` times."""
    timers = {name: timeit.Timer(stmt, globals=env) for name, stmt in stmts.items()}
    best = {name: float("inf") for name in stmts}
    for _ in range(repeat):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(number) / number * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="8b70e35", help="a revision without the hook")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    old, new = _old_apply(args.before), registry.apply
    a, b = ember.ones(4, 4), ember.ones(4, 4)
    c = ember.ones(4, 4, dtype=ember.float64)
    env = {"old": old, "new": new, "op": add_op, "a": a, "b": b, "c": c}
    rows = _interleaved(
        {
            "before a+b": "old(op, a, b)",
            "after  a+b": "new(op, a, b)",
            "before a+c": "old(op, a, c)",
            "after  a+c": "new(op, a, c)",
        },
        env,
        args.repeat,
    )
    ember.placeholder((None, 4))  # installs the hook
    rows |= _interleaved(
        {
            "after, placeholder exists, a+b": "new(op, a, b)",
            "after, placeholder exists, a+c": "new(op, a, c)",
        },
        env,
        args.repeat,
    )
    for name, us in rows.items():
        print(f"{name:34s} {us:6.3f} us  (best of {args.repeat} x 20000, statements interleaved)")


if __name__ == "__main__":
    main()
