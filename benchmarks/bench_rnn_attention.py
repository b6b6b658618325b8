"""Training-step time of an LSTM and a transformer encoder layer, ember beside PyTorch.

    python -m benchmarks.bench_rnn_attention                 # 3 interleaved rounds, 2 threads
    python -m benchmarks.bench_rnn_attention --threads 1     # steadier on a shared machine
    python -m benchmarks.bench_rnn_attention --profile lstm  # where ember's LSTM step goes
    python -m benchmarks.bench_rnn_attention --ablation      # per-step vs whole-sequence input
                                                             # projection in ember's LSTM

Cases (float32, one training step = forward, ``loss.backward()``,
``optimizer.step()`` with plain SGD, ``zero_grad()``):

* ``lstm``: ``LSTM(32, 128)``, input (seq 50, batch 32, 32), loss ``mean(out**2)``.
* ``transformer``: ``TransformerEncoderLayer(128, 4, batch_first=True)`` with
  PyTorch's defaults (``dim_feedforward=2048``, ``dropout=0.1``, training mode),
  input (batch 32, seq 64, 128), loss ``mean(out**2)``.

Each framework runs in its own process (``--worker``), so imports and thread
pools do not mix; rounds alternate the frameworks and each figure is the
median of all repeats. Both start from the same weights and inputs (one NumPy
generator), and each worker reports its loss before training (dropout off) so
the runs are known to compute the same thing. ``OPENBLAS_CORETYPE`` is set to
``Haswell`` unless already set; PyTorch gets ``torch.set_num_threads(threads)``
and both get the OpenMP/OpenBLAS/MKL thread variables.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "ember")
CASES = ("lstm", "transformer")
LSTM_IN, LSTM_HIDDEN, LSTM_SEQ, LSTM_BATCH = 32, 128, 50, 32
D_MODEL, HEADS, TR_SEQ, TR_BATCH = 128, 4, 64, 32
LR = 0.01
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ----------------------------------------------------------------- workloads
def _inputs(case: str) -> np.ndarray:
    rng = np.random.default_rng(1)
    shape = (LSTM_SEQ, LSTM_BATCH, LSTM_IN) if case == "lstm" else (TR_BATCH, TR_SEQ, D_MODEL)
    return rng.standard_normal(shape).astype(np.float32)


def _shared_weights(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """Replacement values for a state dict, the same in every process."""
    rng = np.random.default_rng(0)
    out = {}
    for k, v in state.items():
        shape = tuple(v.shape)
        if k.startswith("norm") and k.endswith("weight"):
            out[k] = np.ones(shape, np.float32)
        elif k.startswith("norm"):
            out[k] = np.zeros(shape, np.float32)
        else:
            bound = 1 / np.sqrt(shape[-1])
            out[k] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return out


def make_step(framework: str, case: str) -> tuple[Callable[[], None], Callable[[], float]]:
    """(one training step, the loss before training with dropout off)."""
    # Either framework, through the names they share.
    fw: Any = importlib.import_module(framework)
    nn: Any = importlib.import_module(f"{framework}.nn")
    optim: Any = importlib.import_module(f"{framework}.optim")
    if framework == "torch":
        fw.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    to_tensor = fw.from_numpy
    if case == "lstm":
        model = nn.LSTM(LSTM_IN, LSTM_HIDDEN)
    else:
        model = nn.TransformerEncoderLayer(D_MODEL, HEADS, batch_first=True)
    model.load_state_dict({k: to_tensor(v) for k, v in _shared_weights(model.state_dict()).items()})
    opt = optim.SGD(model.parameters(), lr=LR)
    x = to_tensor(_inputs(case))

    def forward() -> Any:
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        return (out * out).mean()

    def step() -> None:
        loss = forward()
        loss.backward()
        opt.step()
        opt.zero_grad()

    def check() -> float:
        model.eval()
        with fw.no_grad():
            value = float(forward())
        model.train()
        return value

    return step, check


def environment(framework: str) -> dict[str, Any]:
    if framework == "torch":
        import torch

        return {"version": torch.__version__, "threads": torch.get_num_threads()}
    import ember
    from ember._src.cli.info import blas_info

    b = blas_info()
    return {"version": ember.__version__, "blas": b.get("name", "?"), "threads": b.get("threads")}


def worker(framework: str, case: str, repeats: int, min_time: float) -> dict[str, Any]:
    step, check = make_step(framework, case)
    loss = check()
    step()  # warm-up: first-call allocations and imports
    number, elapsed = 1, 0.0
    while True:  # calibrate how many steps make one repeat
        t0 = time.perf_counter()
        for _ in range(number):
            step()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            break
        number *= 2
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            step()
        times.append((time.perf_counter() - t0) / number)
    return {"loss": loss, "times": times, "env": environment(framework)}


def profile(case: str, steps: int, top: int) -> None:
    """Run ember's step under cProfile; print own-time and cumulative tables."""
    import cProfile
    import pstats

    step, _ = make_step("ember", case)
    step()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(lambda: [step() for _ in range(steps)])
    wall = time.perf_counter() - t0
    print(f"ember {case}: {steps} steps under cProfile, {1e3 * wall / steps:.1f} ms/step profiled")
    stats = pstats.Stats(prof)
    groups: dict[str, float] = {}
    for (path, _, func), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        group = _group(path.replace(os.sep, "/"), func)
        groups[group] = groups.get(group, 0.0) + own
    total = sum(groups.values())
    print("own time by group (profiler overhead inflates the Python-heavy groups):")
    for group, own in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {group:52s} {1e3 * own / steps:8.2f} ms/step  {100 * own / total:5.1f} %")
    stats.strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def _group(path: str, func: str) -> str:
    """Which part of ember a profiled function belongs to."""
    if func == "_matmul_forward":
        return "BLAS: matmul forward kernels"
    if ("/_src/ops/" in path and func == "<lambda>") or "numpy" in func or "ndarray" in func:
        return "NumPy: elementwise/shape/reduce kernels"
    if path.endswith(("ops/registry.py", "core/tensor.py", "ops/methods.py")):
        return "dispatch: apply, casts, wrapping, methods"
    if path.endswith("core/autograd.py"):
        return "tape: backward engine, gradient accumulation"
    if "/_src/ops/" in path:
        return "op wrappers: argument and index handling"
    if "/_src/nn/" in path:
        return "nn layer code"
    if "/_src/optim/" in path:
        return "optimizer"
    return "other (Python builtins, creation, random)"


def ablation(rounds: int) -> None:
    """CPU time of ember's LSTM step with the input projected once for the whole sequence
    and sliced per step (as shipped; the engine sums slice gradients sparsely) or
    projected step by step."""
    import statistics as st

    import ember
    from ember._src.nn import rnn
    from ember._src.ops import shape as S

    def per_step(self: Any, layer: int, direction: int, xs: list[Any], state: Any) -> Any:
        w_ih, w_hh, b_ih, b_hh, _ = self._layer_params(layer, direction)
        w_ih_t, w_hh_t, b, ys = S.t(w_ih), S.t(w_hh), b_ih + b_hh, []
        for x in xs:
            state = rnn._lstm_step(x @ w_ih_t + b, state, w_hh_t, None)
            ys.append(state[0])
        return ys, state

    step, _ = make_step("ember", "lstm")
    variants = {
        "whole-sequence projection": rnn.RNNBase._run,
        "per-step projection": per_step,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            rnn.RNNBase._run = run
            step()
            t0 = time.process_time()
            for _ in range(5):
                step()
            times[name].append((time.process_time() - t0) / 5)
    rnn.RNNBase._run = variants["whole-sequence projection"]
    base = st.median(times["whole-sequence projection"])
    print(f"ember LSTM step, CPU time, median of {rounds} rounds ({ember.__version__}):")
    for name, ts in times.items():
        print(f"  {name:28s} {1e3 * st.median(ts):8.2f} ms  {st.median(ts) / base:5.2f}x")


# ----------------------------------------------------------------- runner
def worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_CORETYPE", "Haswell")
    for var in _THREAD_VARS:
        env[var] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT),
                                                      env.get("PYTHONPATH")]))  # fmt: skip
    return env


def run_worker(framework: str, case: str, args: argparse.Namespace) -> dict[str, Any] | str:
    cmd = [
        sys.executable, "-m", "benchmarks.bench_rnn_attention", "--worker", framework,
        "--case", case, "--repeats", str(args.repeats), "--min-time", str(args.min_time),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=worker_env(args.threads), cwd=ROOT
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{framework} worker failed: {last}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per repeat")
    parser.add_argument("--only", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--profile", choices=CASES, help="profile ember's step instead")
    parser.add_argument("--steps", type=int, default=20, help="steps to profile")
    parser.add_argument("--ablation", action="store_true", help="LSTM projection variants")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.case, args.repeats, args.min_time)))
        return
    if args.profile:
        profile(args.profile, args.steps, args.top)
        return
    if args.ablation:
        ablation(max(args.rounds, 6))
        return

    results: dict[tuple[str, str], list[float]] = {}
    info: dict[tuple[str, str], Any] = {}
    for r in range(args.rounds):
        for case in args.only:
            order = FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]
            for fw in order:
                res = run_worker(fw, case, args)
                if isinstance(res, str):
                    print(res)
                    continue
                results.setdefault((case, fw), []).extend(res["times"])
                info[(case, fw)] = res
    coretype = worker_env(args.threads)["OPENBLAS_CORETYPE"]
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"threads {args.threads}, OPENBLAS_CORETYPE={coretype}, load average {load}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    for (case, fw), res in sorted(info.items()):
        print(f"  {fw:6s} {case:12s} {res['env']}  loss before training {res['loss']:.6f}")
    print(f"{'case':34s} {'ember ms':>9s} {'torch ms':>9s} {'ember/torch':>11s}")
    labels = {
        "lstm": f"LSTM {LSTM_IN}->{LSTM_HIDDEN} seq {LSTM_SEQ} batch {LSTM_BATCH}",
        "transformer": f"EncoderLayer d{D_MODEL} h{HEADS} seq {TR_SEQ} b{TR_BATCH}",
    }
    for case in args.only:
        e, t = results.get((case, "ember")), results.get((case, "torch"))
        em = statistics.median(e) * 1e3 if e else float("nan")
        tm = statistics.median(t) * 1e3 if t else float("nan")
        print(f"{labels[case]:34s} {em:9.2f} {tm:9.2f} {em / tm:11.2f}")


if __name__ == "__main__":
    main()
