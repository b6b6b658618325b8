"""Time per training step, ember compiled beside ember eager, PyTorch eager, torch.compile and
JAX jit, on the workloads of ``benchmarks/train_steps.py``.

    python -m benchmarks.bench_compile --threads 1           # the figures to quote
    python -m benchmarks.bench_compile --threads 1 --clock cpu   # robust to other load
    python -m benchmarks.bench_compile --quick --only lstm   # 1 round of short repeats
    python -m benchmarks.bench_compile --modes ember_compiled ember_eager

One step is the whole training step of ``train_steps.TrainStep``: forward,
loss, ``backward()``, ``optimizer.step()``, ``zero_grad()``. Modes:

* ``ember_compiled``: ``ember.compile`` of that step (parameters and optimizer
  state updated by the generated code and written back after each call);
* ``ember_eager``, ``torch_eager``: the step as it is;
* ``torch_compile``: ``torch.compile`` of the same step function (default
  inductor backend, CPU);
* ``jax_jit``: the same networks, loss and optimizer written with ``jax.numpy``
  (below), one ``jax.jit``-compiled step function, parameters and Adam/SGD
  state donated to it; skipped with a note where JAX is not installed.

Every (workload, mode) runs in its own process, from the shared start
(``train_steps.shared_weights``). The loss of the third step is reported, with
dropout off (the transformer's is taken on a second model in eval mode; the
other networks have no dropout, so their timed model gives it): the runner
checks every mode agrees within 1e-4 relative, so all compute the same step,
and the third step already runs the compiled code in every compiled mode. The
step is then timed as in ``train_steps`` (the batch doubles until it takes
``--min-time``, then ``--repeats`` timed batches; rounds alternate the order of
the modes; each figure is the median of all repeats). Compile time: the wall
time (always wall clock: inductor compiles in worker processes) of the first
three calls minus three steady steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.train_steps import (
    ADAM_LR,
    AGREE_RTOL,
    ROOT,
    SGD_LR,
    WORKLOADS,
    TrainStep,
    ember_revision,
    load_average,
    worker_env,
)

MODES = ("ember_compiled", "ember_eager", "torch_eager", "torch_compile", "jax_jit")
CHECK_STEPS = 3
DROPOUT = ("transformer",)  # workloads whose loss is checked on a second model, in eval mode


# ----------------------------------------------------------------- ember and torch
def _step_fn(step: TrainStep, mode: str) -> tuple[Callable[[], Any], str]:
    """The callable one training step is, and a note on how it runs."""
    if mode == "ember_compiled":
        import ember

        return ember.compile(step.__call__), "ember.compile of the whole step"
    if mode == "torch_compile":
        import torch

        return torch.compile(step.__call__), "torch.compile of the whole step (inductor)"
    return step.__call__, ""


def _framework_step(mode: str, name: str, train: bool, tiny: bool) -> tuple[Any, str]:
    step = TrainStep(mode.split("_")[0], name, tiny)
    step.model.train(train)
    fn, note = _step_fn(step, mode)
    return (lambda: fn()), note


# ----------------------------------------------------------------- JAX
def _jax_step(name: str, train: bool, tiny: bool) -> tuple[Callable[[], Any], str]:
    """The workload as a jitted JAX step on the same start; calling it returns the loss."""
    import jax
    import jax.numpy as jnp

    # The same start as every other mode: ember's model holds the shared weights (its
    # state_dict keys are PyTorch's), and x, y.
    ref = TrainStep("ember", name, tiny)
    params = {k: jnp.asarray(v.numpy()) for k, v in ref.model.state_dict().items()}
    y_np = ref.y.numpy()
    x, y = (
        jnp.asarray(ref.x.numpy()),
        jnp.asarray(y_np.astype(np.int32) if y_np.dtype.kind == "i" else y_np),
    )
    forward = _JAX_MODELS[name]
    adam = name not in ("mlp_b32", "mlp_b256")

    def loss_fn(p: Any, key: Any) -> Any:
        out = forward(jnp, jax, p, x, key if train else None)
        if name.startswith("cnn"):
            logp = jax.nn.log_softmax(out, axis=-1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
        return jnp.mean((out - y) ** 2)

    def update(p: Any, state: Any, key: Any) -> Any:
        loss, g = jax.value_and_grad(loss_fn)(p, key)
        if not adam:
            return {k: p[k] - SGD_LR * g[k] for k in p}, state, loss
        m, v, t = state
        t = t + 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        m = {k: b1 * m[k] + (1 - b1) * g[k] for k in p}
        v = {k: b2 * v[k] + (1 - b2) * g[k] * g[k] for k in p}
        c1, c2 = 1 - b1**t, 1 - b2**t
        new = {k: p[k] - ADAM_LR / c1 * m[k] / (jnp.sqrt(v[k] / c2) + eps) for k in p}
        return new, (m, v, t), loss

    jitted = jax.jit(update, donate_argnums=(0, 1))

    def zeros() -> dict[str, Any]:
        return {k: jnp.zeros_like(v) for k, v in params.items()}

    box = {"p": params, "s": (zeros(), zeros(), jnp.float32(0)), "key": jax.random.PRNGKey(0)}

    def run() -> Any:
        box["key"], sub = jax.random.split(box["key"])
        box["p"], box["s"], loss = jitted(box["p"], box["s"], sub)
        return loss.block_until_ready()

    return run, "jax.jit of the whole step (value_and_grad and the optimizer)"


def _dropout(jnp: Any, jax: Any, x: Any, key: Any, p: float = 0.1) -> Any:
    keep = jax.random.bernoulli(key, 1 - p, x.shape)
    return jnp.where(keep, x / (1 - p), 0)


def _mlp_jax(jnp: Any, jax: Any, p: Any, x: Any, key: Any) -> Any:
    h = jnp.maximum(x @ p["0.weight"].T + p["0.bias"], 0)
    return h @ p["2.weight"].T + p["2.bias"]


def _cnn_jax(jnp: Any, jax: Any, p: Any, x: Any, key: Any) -> Any:
    def conv(h: Any, w: Any, b: Any) -> Any:
        dims = ("NCHW", "OIHW", "NCHW")
        out = jax.lax.conv_general_dilated(h, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=dims)
        return out + b[None, :, None, None]

    def pool(h: Any) -> Any:
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    h = pool(jnp.maximum(conv(x, p["0.weight"], p["0.bias"]), 0))
    h = pool(jnp.maximum(conv(h, p["3.weight"], p["3.bias"]), 0))
    return h.reshape(h.shape[0], -1) @ p["7.weight"].T + p["7.bias"]


def _lstm_jax(jnp: Any, jax: Any, p: Any, x: Any, key: Any) -> Any:
    wih, whh = p["weight_ih_l0"].T, p["weight_hh_l0"].T
    bias = p["bias_ih_l0"] + p["bias_hh_l0"]
    hidden = whh.shape[0]

    def cell(carry: Any, xt: Any) -> Any:
        h, c = carry
        i, f, g, o = jnp.split(xt @ wih + h @ whh + bias, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    zero = jnp.zeros((x.shape[0], hidden), x.dtype)
    (h, _), _ = jax.lax.scan(cell, (zero, zero), jnp.swapaxes(x, 0, 1))
    return h


def _transformer_jax(jnp: Any, jax: Any, p: Any, x: Any, key: Any) -> Any:
    keys = list(jax.random.split(key, 4)) if key is not None else [None] * 4

    def drop(h: Any, k: Any) -> Any:
        return h if k is None else _dropout(jnp, jax, h, k)

    def norm(h: Any, w: Any, b: Any) -> Any:
        mu = h.mean(-1, keepdims=True)
        var = ((h - mu) ** 2).mean(-1, keepdims=True)
        return (h - mu) / jnp.sqrt(var + 1e-5) * w + b

    batch, seq, d = x.shape
    heads = 4
    qkv = x @ p["self_attn.in_proj_weight"].T + p["self_attn.in_proj_bias"]
    q, k, v = (t.reshape(batch, seq, heads, d // heads).transpose(0, 2, 1, 3)
               for t in jnp.split(qkv, 3, axis=-1))  # fmt: skip
    weights = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // heads), axis=-1)
    a = (drop(weights, keys[0]) @ v).transpose(0, 2, 1, 3).reshape(batch, seq, d)
    a = a @ p["self_attn.out_proj.weight"].T + p["self_attn.out_proj.bias"]
    h = norm(x + drop(a, keys[1]), p["norm1.weight"], p["norm1.bias"])
    f = jnp.maximum(h @ p["linear1.weight"].T + p["linear1.bias"], 0)
    f = drop(f, keys[2]) @ p["linear2.weight"].T + p["linear2.bias"]
    return norm(h + drop(f, keys[3]), p["norm2.weight"], p["norm2.bias"])


_JAX_MODELS = {
    "mlp_b32": _mlp_jax,
    "mlp_b256": _mlp_jax,
    "cnn_digits": _cnn_jax,
    "cnn_mnist": _cnn_jax,
    "lstm": _lstm_jax,
    "transformer": _transformer_jax,
}


# ----------------------------------------------------------------- one worker process
def make_step(mode: str, name: str, train: bool, tiny: bool = False) -> tuple[Any, str]:
    if mode == "jax_jit":
        return _jax_step(name, train, tiny)
    return _framework_step(mode, name, train, tiny)


def environment(mode: str) -> dict[str, Any]:
    if mode == "jax_jit":
        import jax

        return {"version": jax.__version__, "threads": os.environ.get("XLA_FLAGS", "default")}
    import importlib

    train_steps = importlib.import_module("benchmarks.train_steps")
    env: dict[str, Any] = train_steps.environment(mode.split("_")[0])
    return env


def _loss(value: Any) -> float:
    return float(np.asarray(value.item() if hasattr(value, "item") else value))


def check_loss(mode: str, name: str, tiny: bool = False) -> float:
    """The loss of step ``CHECK_STEPS`` from the shared start, dropout off."""
    run, _ = make_step(mode, name, train=False, tiny=tiny)
    for _ in range(CHECK_STEPS):
        loss = run()
    return _loss(loss)


def worker(mode: str, name: str, repeats: int, min_time: float, clock: str) -> dict[str, Any]:
    if mode.startswith("torch") and os.environ.get("OMP_NUM_THREADS"):
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    # Only the transformer has dropout: the others check and time one model (one compile).
    loss = check_loss(mode, name) if name in DROPOUT else None
    run, note = make_step(mode, name, train=True)
    t0 = time.perf_counter()
    for _ in range(CHECK_STEPS):
        last = run()
    first = time.perf_counter() - t0
    if loss is None:
        loss = _loss(last)

    timer = time.process_time if clock == "cpu" else time.perf_counter

    def batch(number: int) -> float:
        t0 = timer()
        for _ in range(number):
            run()
        return timer() - t0

    number = 1
    while batch(number) < min_time:
        number *= 2
    times = [batch(number) / number for _ in range(repeats)]
    t0 = time.perf_counter()
    for _ in range(CHECK_STEPS):
        run()
    steady = time.perf_counter() - t0
    compile_s = max(0.0, first - steady) if "eager" not in mode else None
    return {"loss": loss, "times": times, "compile_s": compile_s, "note": note,
            "env": environment(mode)}  # fmt: skip


# ----------------------------------------------------------------- the runner
def run_worker(mode: str, name: str, args: argparse.Namespace) -> dict[str, Any] | str:
    cmd = [sys.executable, "-m", "benchmarks.bench_compile", "--worker", mode, "--case", name,
           "--repeats", str(args.repeats), "--min-time", str(args.min_time),
           "--clock", args.clock]  # fmt: skip
    env = worker_env(args.threads)
    if args.threads is not None:  # XLA's CPU client: one intra-op thread, no Eigen pool
        env["XLA_FLAGS"] = (
            f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={args.threads}"
        )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        return f"{mode} on {name}: {lines[-1][:200]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _available(mode: str) -> str | None:
    """Why a mode cannot run here, or None."""
    module = {"torch_eager": "torch", "torch_compile": "torch", "jax_jit": "jax"}.get(mode)
    if module is None:
        return None
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"{mode}: skipped, {module} is not installed (pip install {module})"
    return None


Results = dict[tuple[str, str], list[Any]]


def report(
    names: list[str], modes: list[str], results: Results, notes: list[str],
    args: argparse.Namespace, load_start: str,
) -> tuple[str, bool]:  # fmt: skip
    lines = [
        f"OPENBLAS_CORETYPE={worker_env(args.threads)['OPENBLAS_CORETYPE']}   threads requested: "
        f"{args.threads or 'library default'}   CPUs={os.cpu_count()}   "
        f"Python {platform.python_version()}   {platform.machine()}",
        f"ember at {ember_revision()}",
        f"load average (1, 5, 15 min): {load_start} at the start, {load_average()} at the end",
        f"{args.clock} time; each figure: median of {args.rounds} round(s) x {args.repeats} "
        f"repeats of >= {args.min_time} s per (workload, mode), each in its own process",
        "",
    ]
    for mode in modes:
        env = next((r[0]["env"] for (_, m), r in results.items() if m == mode and r), None)
        note = next((r[0]["note"] for (_, m), r in results.items() if m == mode and r), "")
        if env is not None:
            threads = env.get("threads", "?")
            lines.append(f"{mode:<15} {env['version']}, threads {threads}" +
                         (f"; {note}" if note else ""))  # fmt: skip
    lines += [*notes, ""]
    width = max(len(WORKLOADS[n].label) for n in names)
    head = f"{'workload (ms per training step)':<{width}}" + "".join(f" {m:>14}" for m in modes)
    lines += [head, "-" * len(head)]
    med: dict[tuple[str, str], float] = {}
    agree_all = True
    for name in names:
        cells = []
        for mode in modes:
            runs = results.get((name, mode), [])
            if runs:
                med[name, mode] = statistics.median(t for r in runs for t in r["times"])
                cells.append(f" {1e3 * med[name, mode]:14.3f}")
            else:
                cells.append(f" {'-':>14}")
        lines.append(f"{WORKLOADS[name].label:<{width}}" + "".join(cells))
    lines.append("")
    refs = [m for m in ("ember_eager", "torch_eager", "torch_compile", "jax_jit") if m in modes]
    if "ember_compiled" in modes:
        head = f"{'ember compiled / ...':<{width}}" + "".join(f" {m:>14}" for m in refs)
        lines += [head, "-" * len(head)]
        for name in names:
            cells = []
            for ref in refs:
                if (name, "ember_compiled") in med and (name, ref) in med:
                    cells.append(f" {med[name, 'ember_compiled'] / med[name, ref]:13.2f}x")
                else:
                    cells.append(f" {'-':>14}")
            lines.append(f"{WORKLOADS[name].label:<{width}}" + "".join(cells))
        lines.append("")
    compiled = [m for m in modes if "eager" not in m]
    head = f"{'compile time (s) / step-3 loss':<{width}}" + "".join(f" {m:>14}" for m in compiled)
    head += "  losses agree"
    lines += [head, "-" * len(head)]
    for name in names:
        cells, losses = [], []
        for mode in modes:
            runs = results.get((name, mode), [])
            if runs:
                losses.append(runs[0]["loss"])
            if mode in compiled:
                c = runs[0]["compile_s"] if runs else None
                cells.append(f" {c:14.2f}" if c is not None else f" {'-':>14}")
        spread = (max(losses) - min(losses)) / abs(statistics.median(losses)) if losses else 0.0
        ok = spread <= AGREE_RTOL
        agree_all &= ok
        lines.append(f"{WORKLOADS[name].label:<{width}}" + "".join(cells) +
                     f"  {'yes' if ok else 'NO'} ({spread:.0e}, {len(losses)} modes)")  # fmt: skip
    lines.append(f"(compile time: first 3 calls minus 3 steady steps. losses agree: the loss of "
                 f"step {CHECK_STEPS} with dropout off, every mode within {AGREE_RTOL:g} "
                 "relative of the median)")  # fmt: skip
    return "\n".join(lines), agree_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="BLAS/OpenMP/torch/XLA threads")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 short repeats")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 2)")
    parser.add_argument("--repeats", type=int, help="timed repeats per round (default 5)")
    parser.add_argument("--min-time", type=float, help="seconds per repeat (default 0.2)")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall",
        help="wall: perf_counter; cpu: process CPU time (all threads), robust to other load",
    )  # fmt: skip
    parser.add_argument("--only", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 2)
    args.repeats = args.repeats or (3 if quick else 5)
    args.min_time = args.min_time or (0.05 if quick else 0.2)
    if args.worker:
        sys.path.insert(0, str(ROOT / "src"))
        print(json.dumps(worker(args.worker, args.case, args.repeats, args.min_time, args.clock)))
        return 0
    notes = [n for n in map(_available, args.modes) if n]
    modes = [m for m in args.modes if _available(m) is None]
    load_start = load_average()
    results: dict[tuple[str, str], list[Any]] = {}
    for r in range(args.rounds):
        for name in args.only:
            order = modes if r % 2 == 0 else modes[::-1]
            for mode in order:
                out = run_worker(mode, name, args)
                if isinstance(out, str):
                    if out not in notes:
                        notes.append(out)
                        print(out, file=sys.stderr)
                    continue
                results.setdefault((name, mode), []).append(out)
                ms = 1e3 * statistics.median(out["times"])
                print(f"round {r + 1}: {name} {mode} {ms:.3f} ms", file=sys.stderr)
    text, agree = report(args.only, modes, results, notes, args, load_start)
    print(text)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
