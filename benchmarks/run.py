"""Run every framework's benchmarks in its own process and print them side by side.

    python -m benchmarks.run            # 5 interleaved rounds, 5 repeats of >= 0.05 s each
    python -m benchmarks.run --quick    # 1 round, 5 repeats of >= 0.02 s each

Rounds alternate the frameworks (numpy, torch, ember, numpy, …) so slow drift
in machine load hits all of them alike; every figure is the median of all its
repeats. ``OPENBLAS_CORETYPE`` is set to ``Haswell`` in the workers unless it
is already set, and printed with the thread counts beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import cases

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("numpy", "torch", "ember")
ROWS = (
    ("add", "add (4,4) f32, no grad"),
    ("add_grad", "add (4,4) f32, requires_grad"),
    ("mm", f"mm ({cases.BATCH},{cases.D_IN})x({cases.D_IN},{cases.HIDDEN}) f32, no grad"),
    ("mlp_step", f"MLP step x({cases.BATCH},{cases.D_IN}) h{cases.HIDDEN}, fwd+bwd+SGD"),
)
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_CORETYPE", "Haswell")
    if threads is not None:
        for var in _THREAD_VARS:
            env[var] = str(threads)
    # The workers import `benchmarks` from the repository root.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_worker(framework: str, args: argparse.Namespace) -> dict[str, Any] | str:
    """One worker's JSON result, or a line saying why there is none."""
    cmd = [
        sys.executable, "-m", "benchmarks.worker", framework,
        "--min-time", str(args.min_time), "--repeats", str(args.repeats),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=worker_env(args.threads), cwd=ROOT
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{framework} worker failed: {last}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def ember_revision() -> str:
    """The commit being measured, and whether ember's sources differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src/ember"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return "unknown (no git)"
    if not head:
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes in src/ember" if dirty else "")


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.3f} ms"


def fmt_ratio(num: float | None, den: float | None) -> str:
    return "-" if num is None or den is None else f"{num / den:.2f}x"


def report(results: dict[str, list[dict[str, Any]]], failures: dict[str, str]) -> str:
    lines = []
    first = {fw: runs[0] for fw, runs in results.items()}
    coretype = next((r["coretype"] for r in first.values()), os.environ.get("OPENBLAS_CORETYPE"))
    lines.append(
        f"OPENBLAS_CORETYPE={coretype}   CPUs={os.cpu_count()}   "
        f"Python {platform.python_version()}   {platform.machine()}"
    )
    lines.append(f"ember at {ember_revision()}")
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        lines.append(f"load average at the end (1, 5, 15 min): {load}")
    lines.append("")
    lines.append(f"{'framework':<10} {'version':<12} {'threads':>7}  BLAS")
    for fw in FRAMEWORKS:
        if fw in first:
            env = first[fw]["env"]
            lines.append(f"{fw:<10} {env['version']:<12} {env['threads']!s:>7}  {env['blas']}")
        else:
            lines.append(f"{fw:<10} {failures.get(fw, 'not run')}")
    lines.append("")

    med: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], int] = {}
    for fw, runs in results.items():
        for case, _ in ROWS:
            samples = [t for run in runs for t in run["times"].get(case, [])]
            if samples:
                med[fw, case] = statistics.median(samples)
                counts[fw, case] = len(samples)

    width = max(len(label) for _, label in ROWS)
    head = f"{'benchmark (median per call)':<{width}}"
    head += "".join(f" {fw:>11}" for fw in FRAMEWORKS) + f" {'ember/torch':>12} {'ember/numpy':>12}"
    lines.append(head)
    lines.append("-" * len(head))
    for case, label in ROWS:
        row = f"{label:<{width}}"
        row += "".join(f" {fmt_time(med.get((fw, case))):>11}" for fw in FRAMEWORKS)
        ember = med.get(("ember", case))
        row += f" {fmt_ratio(ember, med.get(('torch', case))):>12}"
        row += f" {fmt_ratio(ember, med.get(('numpy', case))):>12}"
        lines.append(row)
    n = sorted(set(counts.values()))
    lines.append(f"(each figure: median of {'/'.join(map(str, n))} timed repeats)")

    losses = {fw: runs[0]["check_losses"] for fw, runs in results.items()}
    lines.append("")
    lines.append("MLP losses of the first steps from the same start (must agree):")
    for fw, values in losses.items():
        lines.append(f"  {fw:<6} " + "  ".join(f"{v:.6f}" for v in values))
    if len(losses) > 1:
        ref = next(iter(losses.values()))
        worst = max(abs(a - b) / abs(b) for v in losses.values() for a, b in zip(v, ref))
        verdict = "agree" if worst < 1e-4 else "DISAGREE"
        lines.append(f"  {verdict} (largest relative difference {worst:.1e})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of short repeats")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per framework")
    parser.add_argument("--repeats", type=int, help="timed repeats per case per round")
    parser.add_argument("--min-time", type=float, help="seconds per timed repeat")
    parser.add_argument("--threads", type=int, help="set the BLAS/OpenMP thread count")
    parser.add_argument("--only", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    quick = (1, 5, 0.02) if args.quick else (5, 5, 0.05)
    args.rounds = args.rounds or quick[0]
    args.repeats = args.repeats or quick[1]
    args.min_time = args.min_time or quick[2]

    results: dict[str, list[dict[str, Any]]] = {}
    failures: dict[str, str] = {}
    for r in range(args.rounds):
        for fw in args.only:
            if fw in failures:
                continue
            print(f"round {r + 1}/{args.rounds}: {fw} …", file=sys.stderr, flush=True)
            out = run_worker(fw, args)
            if isinstance(out, str):
                failures[fw] = out
            else:
                results.setdefault(fw, []).append(out)
    print(report(results, failures))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "failures": failures}, indent=1))
    return 0 if "ember" in results or "ember" not in args.only else 1


if __name__ == "__main__":
    sys.exit(main())
