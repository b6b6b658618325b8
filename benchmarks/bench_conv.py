"""Convolution and max pooling on the Digits-CNN shapes, ember beside PyTorch.

    python -m benchmarks.bench_conv                # 3 interleaved rounds, 2 threads
    python -m benchmarks.bench_conv --threads 1    # steadier on a shared machine
    python -m benchmarks.bench_conv --quick        # 1 round, shorter repeats
    python -m benchmarks.bench_conv --threads 1 --clock cpu  # CPU time: robust to other load

The network is the Digits CNN: conv 1->16 3x3 (padding 1), relu, max pool 2,
conv 16->32 3x3 (padding 1), relu, max pool 2; on 8x8 images at batch 64
(``digits``) and on 28x28 images at batch 128 (``mnist``). Per shape, float32:

* ``conv1`` / ``conv2``: ``conv2d(x, w, b, padding=1)`` forward only (``fwd``)
  and forward + ``backward`` (``fwd+bwd``: the weight and bias gradients, and
  for conv2 the input gradient too, as inside the network);
* ``pool1`` / ``pool2``: ``max_pool2d(x, 2)`` forward, and forward + backward;
* ``features``: both blocks (conv, relu, pool, conv, relu, pool) forward +
  backward from a sum loss, what a training step spends outside the linear head.

Each framework runs in its own process (``--worker``), so imports and thread
pools do not mix; rounds alternate the frameworks and each figure is the
median of all repeats. Both start from the same inputs and weights (one NumPy
generator) and report a checksum of the ``features`` output, so the two are
known to compute the same thing. ``OPENBLAS_CORETYPE`` is set to ``Haswell``
unless already set; PyTorch gets ``torch.set_num_threads(threads)`` and both
get the OpenMP/OpenBLAS/MKL thread variables.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "ember")
SHAPES = {"digits": (64, 8), "mnist": (128, 28)}  # batch, image side
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ----------------------------------------------------------------- workloads
def _arrays(batch: int, side: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)

    def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    half = side // 2
    return {
        "x1": normal(batch, 1, side, side),
        "w1": normal(16, 1, 3, 3, scale=1 / 3),
        "b1": normal(16, scale=0.1),
        "x2": normal(batch, 16, half, half),
        "w2": normal(32, 16, 3, 3, scale=1 / 12),
        "b2": normal(32, scale=0.1),
        "g1": normal(batch, 16, side, side),
        "g2": normal(batch, 32, half, half),
        "p1": normal(batch, 16, side, side),
        "p2": normal(batch, 32, half, half),
        "q1": normal(batch, 16, half, half),
        "q2": normal(batch, 32, half // 2, half // 2),
    }


def make_cases(framework: str, shape: str) -> tuple[dict[str, Callable[[], Any]], float]:
    """{case: zero-argument callable} for one framework and shape, and a checksum."""
    fw: Any = importlib.import_module(framework)
    F: Any = importlib.import_module(f"{framework}.nn.functional")
    if not hasattr(F, "conv2d"):  # before ember.nn.functional re-exports them
        from types import SimpleNamespace

        from ember._src.nn.conv import conv2d
        from ember._src.nn.pooling import max_pool2d

        F = SimpleNamespace(conv2d=conv2d, max_pool2d=max_pool2d, relu=F.relu)
    if framework == "torch":
        fw.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    a = _arrays(*SHAPES[shape])

    def t(name: str, grad: bool = False) -> Any:
        v = fw.from_numpy(a[name].copy())
        return v.requires_grad_() if grad else v

    x1, x2 = t("x1"), t("x2", grad=True)
    w1, b1, w2, b2 = (t(n, grad=True) for n in ("w1", "b1", "w2", "b2"))
    g1, g2, q1, q2 = t("g1"), t("g2"), t("q1"), t("q2")
    p1, p2 = t("p1", grad=True), t("p2", grad=True)
    leaves = (x2, w1, b1, w2, b2, p1, p2)

    def clear() -> None:
        for v in leaves:
            v.grad = None

    def fwd_bwd(fn: Callable[[], Any], g: Any) -> Callable[[], None]:
        def run() -> None:
            fn().backward(g)
            clear()

        return run

    def no_grad(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with fw.no_grad():
                return fn()

        return run

    conv1 = lambda: F.conv2d(x1, w1, b1, padding=1)
    conv2 = lambda: F.conv2d(x2, w2, b2, padding=1)
    pool1 = lambda: F.max_pool2d(p1, 2)
    pool2 = lambda: F.max_pool2d(p2, 2)

    def features() -> Any:
        h = F.max_pool2d(F.relu(F.conv2d(x1, w1, b1, padding=1)), 2)
        return F.max_pool2d(F.relu(F.conv2d(h, w2, b2, padding=1)), 2)

    def features_step() -> None:
        features().sum().backward()
        clear()

    cases = {
        "conv1 fwd": no_grad(conv1),
        "conv1 fwd+bwd": fwd_bwd(conv1, g1),
        "conv2 fwd": no_grad(conv2),
        "conv2 fwd+bwd": fwd_bwd(conv2, g2),
        "pool1 fwd": no_grad(pool1),
        "pool1 fwd+bwd": fwd_bwd(pool1, q1),
        "pool2 fwd": no_grad(pool2),
        "pool2 fwd+bwd": fwd_bwd(pool2, q2),
        "features fwd+bwd": features_step,
    }
    with fw.no_grad():
        checksum = float(features().double().sum())
    return cases, checksum


def time_case(fn: Callable[[], Any], min_time: float, repeats: int, clock: str) -> list[float]:
    """Seconds per call, one figure per repeat, after a warm-up (garbage collector on)."""
    timer = timeit.Timer(
        fn, setup="gc.enable()", timer=time.process_time if clock == "cpu" else time.perf_counter
    )
    number, _ = timer.autorange()  # also the warm-up: runs until a batch takes >= 0.2 s
    number = max(1, int(number * min_time / 0.2))
    return [t / number for t in timer.repeat(repeat=repeats, number=number)]


def worker(framework: str, min_time: float, repeats: int, clock: str) -> None:
    out: dict[str, Any] = {"times": {}, "checksums": {}}
    if framework == "torch":
        import torch

        out["version"] = f"torch {torch.__version__}, threads {torch.get_num_threads()}"
    else:
        import ember

        out["version"] = f"ember {ember.__version__}, numpy {np.__version__}"
    for shape in SHAPES:
        cases, out["checksums"][shape] = make_cases(framework, shape)
        for name, fn in cases.items():
            out["times"][f"{shape} {name}"] = time_case(fn, min_time, repeats, clock)
    print(json.dumps(out))


# ----------------------------------------------------------------- the runner
def run_worker(framework: str, args: argparse.Namespace) -> dict[str, Any] | str:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_CORETYPE", "Haswell")
    for var in _THREAD_VARS:
        env[var] = str(args.threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "benchmarks.bench_conv", "--worker", framework,
           "--min-time", str(args.min_time), "--repeats", str(args.repeats),
           "--clock", args.clock]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{framework} worker failed: {last}"
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.1, help="seconds per repeat")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 short repeats")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or process CPU time (with --threads 1: robust to other load)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.min_time, args.repeats, args.clock)
        return
    if args.quick:
        args.rounds, args.repeats, args.min_time = 1, 3, 0.03

    times: dict[str, dict[str, list[float]]] = {f: {} for f in FRAMEWORKS}
    info: dict[str, str] = {}
    for _ in range(args.rounds):
        for fw in FRAMEWORKS:
            res = run_worker(fw, args)
            if isinstance(res, str):
                info[fw] = res
                continue
            info[fw] = f"{res['version']}; features checksum {res['checksums']}"
            for case, ts in res["times"].items():
                times[fw].setdefault(case, []).extend(ts)

    coretype = os.environ.get("OPENBLAS_CORETYPE", "Haswell")
    print(f"OPENBLAS_CORETYPE={coretype}, {args.threads} thread(s), float32, {args.clock} "
          f"time, median of {args.rounds} round(s) x {args.repeats} repeats")  # fmt: skip
    for fw in FRAMEWORKS:
        print(f"  {fw}: {info.get(fw, 'not run')}")
    cases = list(times["ember"] or times["torch"])
    print(f"{'case':<28}{'torch ms':>10}{'ember ms':>10}{'ember/torch':>13}")
    for case in cases:
        tt, te = times["torch"].get(case), times["ember"].get(case)
        mt = statistics.median(tt) * 1e3 if tt else float("nan")
        me = statistics.median(te) * 1e3 if te else float("nan")
        print(f"{case:<28}{mt:>10.3f}{me:>10.3f}{me / mt:>12.2f}x")


if __name__ == "__main__":
    main()
