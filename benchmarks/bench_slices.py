"""Backward through many slices of one tensor (an RNN reading x[:, t] for every step).

    python -m benchmarks.bench_slices [--steps 50 200] [--threads 1]

Each framework runs in its own subprocess; prints ms per forward+backward and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def run(framework: str, steps: int, repeats: int = 5) -> float:
    import numpy as np

    lib = __import__(framework)
    if framework == "torch":
        lib.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    x = lib.from_numpy(np.random.default_rng(0).standard_normal((32, steps, 128)).astype("f4"))
    x.requires_grad_(True)

    def step() -> None:
        total = x[:, 0] * 0
        for t in range(steps):
            total = total + x[:, t].tanh()
        total.sum().backward()
        x.grad = None

    step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[50, 200])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(run(args.worker[0], int(args.worker[1]))))
        return
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), BENCH_THREADS=str(args.threads))
    env.setdefault("OPENBLAS_CORETYPE", "Haswell")
    print(
        f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']} threads={args.threads} "
        f"load={os.getloadavg()[0]:.1f}"
    )
    print(f"{'steps':>6} {'ember ms':>10} {'torch ms':>10} {'ratio':>7}")
    for steps in args.steps:
        res = {}
        for fw in ("ember", "torch"):
            cmd = [sys.executable, "-m", "benchmarks.bench_slices", "--worker", fw, str(steps)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            res[fw] = json.loads(out.stdout)
        print(
            f"{steps:>6} {res['ember']:>10.2f} {res['torch']:>10.2f} "
            f"{res['ember'] / res['torch']:>6.2f}x"
        )


if __name__ == "__main__":
    main()
