"""Time per training step of six small networks, ember eager beside PyTorch eager.

    python -m benchmarks.train_steps                    # 3 interleaved rounds, library threads
    python -m benchmarks.train_steps --threads 1        # steadier on a shared machine
    python -m benchmarks.train_steps --quick            # 1 round of short repeats
    python -m benchmarks.train_steps --only lstm cnn_mnist
    python -m benchmarks.train_steps --profile lstm     # where ember's step spends its time

One step is ``loss_fn(model(x), y)``, ``loss.backward()``, ``optimizer.step()``,
``optimizer.zero_grad()``, with the same module, loss and optimizer classes in
both frameworks (float32):

* ``mlp_b32`` / ``mlp_b256``: the seed MLP, Linear(500, 50), ReLU,
  Linear(50, 500), MSELoss, SGD(lr=0.01), at batch 32 and 256;
* ``cnn_digits``: Conv2d(1, 16, 3, padding=1), ReLU, MaxPool2d(2),
  Conv2d(16, 32, 3, padding=1), ReLU, MaxPool2d(2), Flatten, Linear(32*2*2, 10)
  on 1x8x8 images at batch 64, CrossEntropyLoss, Adam(lr=1e-3);
* ``cnn_mnist``: the same CNN on 1x28x28 images at batch 128, Linear(32*7*7, 10);
* ``lstm``: LSTM(32, 128, batch_first=True) on (32, 50, 32), MSELoss of the
  last hidden state against a target, Adam;
* ``transformer``: TransformerEncoderLayer(128, 4, batch_first=True) (PyTorch's
  defaults: dim_feedforward 2048, dropout 0.1, training mode) on (32, 64, 128),
  MSELoss against a target, Adam.

Weights and data come from one NumPy generator with a fixed seed and are
copied into both frameworks. Each worker first runs one step with dropout off
(``model.eval()``) and reports its loss; the runner checks the two frameworks
agree within 1e-4 relative. Each (workload, framework) runs in its own
process; rounds alternate which framework goes first; each figure is the
median of every timed repeat of every round. ``OPENBLAS_CORETYPE`` is set to
``Haswell`` unless already set.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("ember", "torch")
SGD_LR, ADAM_LR = 0.01, 1e-3
AGREE_RTOL = 1e-4
GOAL = 1.5  # issue 3: ember eager within 1.5x of PyTorch eager
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ----------------------------------------------------------------- workloads
class Setup(NamedTuple):
    """What one workload builds from a framework's ``nn`` and ``optim``."""

    model: Any
    loss_fn: Any
    optimizer: Callable[[Any], Any]  # parameters -> optimizer
    x: np.ndarray
    y: np.ndarray
    predict: Callable[[Any], Any] = lambda out: out  # model output -> what the loss compares


def _normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _mlp(nn: Any, optim: Any, s: dict[str, int], rng: np.random.Generator) -> Setup:
    model = nn.Sequential(nn.Linear(s["d_in"], s["hidden"]), nn.ReLU(),
                          nn.Linear(s["hidden"], s["d_in"]))  # fmt: skip
    x, y = _normal(rng, s["batch"], s["d_in"]), _normal(rng, s["batch"], s["d_in"])
    return Setup(model, nn.MSELoss(), lambda p: optim.SGD(p, lr=SGD_LR), x, y)


def _cnn(nn: Any, optim: Any, s: dict[str, int], rng: np.random.Generator) -> Setup:
    side = s["side"]
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (side // 4) ** 2, 10),
    )  # fmt: skip
    x = _normal(rng, s["batch"], 1, side, side)
    y = rng.integers(0, 10, s["batch"]).astype(np.int64)
    return Setup(model, nn.CrossEntropyLoss(), lambda p: optim.Adam(p, lr=ADAM_LR), x, y)


def _lstm(nn: Any, optim: Any, s: dict[str, int], rng: np.random.Generator) -> Setup:
    model = nn.LSTM(s["d_in"], s["hidden"], batch_first=True)
    x = _normal(rng, s["batch"], s["seq"], s["d_in"])
    y = 0.5 * _normal(rng, s["batch"], s["hidden"])
    last_hidden = lambda out: out[1][0][-1]  # out = (outputs, (h_n, c_n))
    return Setup(model, nn.MSELoss(), lambda p: optim.Adam(p, lr=ADAM_LR), x, y, last_hidden)


def _transformer(nn: Any, optim: Any, s: dict[str, int], rng: np.random.Generator) -> Setup:
    d = s["d_model"]
    model = nn.TransformerEncoderLayer(d, s["heads"], dim_feedforward=s["ff"], batch_first=True)
    x, y = _normal(rng, s["batch"], s["seq"], d), _normal(rng, s["batch"], s["seq"], d)
    return Setup(model, nn.MSELoss(), lambda p: optim.Adam(p, lr=ADAM_LR), x, y)


@dataclass(frozen=True)
class Workload:
    label: str
    build: Callable[[Any, Any, dict[str, int], np.random.Generator], Setup]
    full: dict[str, int]
    tiny: dict[str, int]  # for the test: the same code path in well under a second


_MLP_TINY = {"batch": 4, "d_in": 20, "hidden": 5}
WORKLOADS: dict[str, Workload] = {
    "mlp_b32": Workload("MLP 500-50-500 b32, SGD", _mlp,
                        {"batch": 32, "d_in": 500, "hidden": 50}, _MLP_TINY),
    "mlp_b256": Workload("MLP 500-50-500 b256, SGD", _mlp,
                         {"batch": 256, "d_in": 500, "hidden": 50}, _MLP_TINY),
    "cnn_digits": Workload("CNN 1x8x8 b64, Adam", _cnn,
                           {"batch": 64, "side": 8}, {"batch": 4, "side": 8}),
    "cnn_mnist": Workload("CNN 1x28x28 b128, Adam", _cnn,
                          {"batch": 128, "side": 28}, {"batch": 2, "side": 12}),
    "lstm": Workload("LSTM 32->128 seq50 b32, Adam", _lstm,
                     {"batch": 32, "seq": 50, "d_in": 32, "hidden": 128},
                     {"batch": 3, "seq": 5, "d_in": 4, "hidden": 8}),
    "transformer": Workload("EncoderLayer d128 h4 seq64 b32, Adam", _transformer,
                            {"batch": 32, "seq": 64, "d_model": 128, "heads": 4, "ff": 2048},
                            {"batch": 2, "seq": 6, "d_model": 16, "heads": 4, "ff": 32}),
}  # fmt: skip


def shared_weights(state: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """New values for a state dict, drawn in its (framework-independent) key order.

    Weights are uniform in +-1/sqrt(fan_in) (as both frameworks' defaults are),
    a bias takes the bound of the weight before it, and norms start at 1 and 0.
    """
    out, bound = {}, 1.0
    for key, value in state.items():
        shape = tuple(value.shape)
        if "norm" in key:
            fill = np.ones if key.endswith("weight") else np.zeros
            out[key] = fill(shape, np.float32)
            continue
        if len(shape) > 1:
            bound = 1 / math.sqrt(math.prod(shape[1:]))
        out[key] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return out


class TrainStep:
    """One training step of a workload in one framework; calling it returns the loss.

    Every instance starts from the same weights and data, whichever the framework.
    """

    def __init__(self, framework: str, name: str, tiny: bool = False) -> None:
        fw: Any = importlib.import_module(framework)
        nn: Any = importlib.import_module(f"{framework}.nn")
        optim: Any = importlib.import_module(f"{framework}.optim")
        spec = WORKLOADS[name]
        rng = np.random.default_rng(0)
        setup = spec.build(nn, optim, spec.tiny if tiny else spec.full, rng)
        self.model = setup.model
        weights = shared_weights(self.model.state_dict(), rng)
        self.model.load_state_dict({k: fw.from_numpy(v) for k, v in weights.items()})
        self.optimizer = setup.optimizer(self.model.parameters())
        self.x, self.y = fw.from_numpy(setup.x), fw.from_numpy(setup.y)
        self.loss_fn, self.predict = setup.loss_fn, setup.predict

    def loss(self) -> Any:
        """The forward pass and the loss."""
        return self.loss_fn(self.predict(self.model(self.x)), self.y)

    def __call__(self) -> Any:
        loss = self.loss()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss


def first_losses(framework: str, name: str, steps: int = 1, tiny: bool = False) -> list[float]:
    """The losses of the first ``steps`` training steps, dropout off (``model.eval()``)."""
    step = TrainStep(framework, name, tiny)
    step.model.eval()
    return [float(step().item()) for _ in range(steps)]


# ----------------------------------------------------------------- one worker process
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
    import ember
    from ember._src.cli.info import blas_info

    b = blas_info()
    blas = f"{b['name']} {b['version']}".strip() + (f", core {b['core']}" if "core" in b else "")
    return {
        "version": f"{ember.__version__} (numpy {np.__version__})",
        "blas": blas,
        "threads": b.get("threads", "?"),
    }


def worker(framework: str, name: str, repeats: int, min_time: float, clock: str) -> dict[str, Any]:
    """The first loss and the seconds per step of every timed repeat (garbage collector on)."""
    if framework == "torch" and os.environ.get("OMP_NUM_THREADS"):
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    timer = time.process_time if clock == "cpu" else time.perf_counter
    step = TrainStep(framework, name)
    step.model.eval()  # the checked step: dropout off, so both frameworks compute the same
    loss = float(step().item())
    step.model.train()

    def batch(number: int) -> float:
        t0 = timer()
        for _ in range(number):
            step()
        return timer() - t0

    number = 1
    while batch(number) < min_time:  # the warm-up: double until one batch takes min_time
        number *= 2
    times = [batch(number) / number for _ in range(repeats)]
    return {"loss": loss, "times": times, "env": environment(framework)}


# ----------------------------------------------------------------- the runner
def worker_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_CORETYPE", "Haswell")
    if threads is not None:
        for var in _THREAD_VARS:
            env[var] = str(threads)
    path = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    return env


def run_worker(framework: str, name: str, args: argparse.Namespace) -> dict[str, Any] | str:
    """One worker's result, or a line saying why there is none."""
    cmd = [
        sys.executable, "-m", "benchmarks.train_steps", "--worker", framework, "--case", name,
        "--repeats", str(args.repeats), "--min-time", str(args.min_time), "--clock", args.clock,
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=worker_env(args.threads), cwd=ROOT
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{framework} worker failed on {name}: {last}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def ember_revision() -> str:
    """The commit being measured, and whether ember's sources differ from it."""
    try:
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run([*git, "status", "--porcelain", "src/ember"], capture_output=True,
                               text=True).stdout.strip()  # fmt: skip
    except OSError:
        return "unknown (no git)"
    return (head or "unknown") + (" + uncommitted changes in src/ember" if dirty else "")


def report(
    names: list[str],
    results: dict[tuple[str, str], list[dict[str, Any]]],
    failures: list[str],
    args: argparse.Namespace,
    load_start: str,
    revision_start: str,
) -> tuple[str, bool]:
    """The table, and whether every workload's first losses agree."""
    lines = [
        f"OPENBLAS_CORETYPE={worker_env(args.threads)['OPENBLAS_CORETYPE']}   "
        f"threads requested: {args.threads or 'library default'}   CPUs={os.cpu_count()}   "
        f"Python {platform.python_version()}   {platform.machine()}",
        f"ember at {revision_start}"
        + ("" if revision_start == ember_revision() else f", at {ember_revision()} by the end"),
        f"load average (1, 5, 15 min): {load_start} at the start, {load_average()} at the end",
        f"{args.clock} time; each figure: median of {args.rounds} round(s) x {args.repeats} "
        f"repeats of >= {args.min_time} s",
        "",
    ]
    for fw in FRAMEWORKS:
        env = next((runs[0]["env"] for (_, f), runs in results.items() if f == fw), None)
        if env is not None:
            lines.append(f"{fw:<6} {env['version']}, {env['threads']} thread(s), {env['blas']}")
    lines.extend(failures)
    lines.append("")
    title = "workload (one training step)"
    width = max(len(title), *(len(WORKLOADS[n].label) for n in names))
    head = f"{title:<{width}} {'ember ms':>9} {'torch ms':>9} "
    head += f"{'ember/torch':>11} {'per round':>11}  {'first loss ember':>16} {'torch':>12}  agree"
    lines += [head, "-" * len(head)]
    all_agree = True
    for name in names:
        med, loss = {}, {}
        for fw in FRAMEWORKS:
            runs = results.get((name, fw), [])
            if runs:
                med[fw] = statistics.median(t for r in runs for t in r["times"])
                loss[fw] = runs[0]["loss"]
        ratio, spread = "-", "-"
        if len(med) == 2:
            ratio = f"{med['ember'] / med['torch']:.2f}x"
            # The ratio within each round (the two workers ran back to back): its spread
            # says how much the machine's load moved the figures.
            per_round = [
                statistics.median(e["times"]) / statistics.median(t["times"])
                for e, t in zip(results[name, "ember"], results[name, "torch"])
            ]
            spread = f"{min(per_round):.2f}-{max(per_round):.2f}"
        agree = "-"
        if len(loss) == 2:
            rel = abs(loss["ember"] - loss["torch"]) / abs(loss["torch"])
            ok = rel <= AGREE_RTOL
            agree = f"{'yes' if ok else 'NO'} ({rel:.0e})"
            all_agree &= ok
        cells = [f"{1e3 * med[fw]:9.3f}" if fw in med else f"{'-':>9}" for fw in FRAMEWORKS]
        losses = [f"{loss[fw]:.6g}" if fw in loss else "-" for fw in FRAMEWORKS]
        lines.append(f"{WORKLOADS[name].label:<{width}} {cells[0]} {cells[1]} {ratio:>11} "
                     f"{spread:>11}  {losses[0]:>16} {losses[1]:>12}  {agree}")  # fmt: skip
    lines.append(f"(goal: ember/torch <= {GOAL}x. per round: the lowest and highest ratio "
                 "within one round.")  # fmt: skip
    lines.append(f" agree: the first losses within {AGREE_RTOL:g} relative; in brackets their "
                 "relative difference)")  # fmt: skip
    return "\n".join(lines), all_agree


# ----------------------------------------------------------------- the profile
GROUPS = (
    "BLAS/matmul kernels",
    "conv/pool kernels",
    "other NumPy kernels",
    "dispatch",
    "backward engine",
    "optimizer",
    "other Python",
)
_BLAS_NAMES = ("numpy.matmul", "numpy.dot", "numpy.vdot", "numpy.inner", "c_einsum")
_DISPATCH_FILES = ("ops/registry.py", "core/tensor.py", "ops/methods.py", "core/dtype.py",
                   "core/aval.py", "core/backend.py")  # fmt: skip
_Key = tuple[str, int, str]  # pstats' (file, line, function)


def _code_key(fn: Any) -> _Key | None:
    code = getattr(fn, "__code__", None)
    return None if code is None else (code.co_filename, code.co_firstlineno, code.co_name)


def _kernel_roles() -> tuple[dict[_Key, str], set[_Key]]:
    """Every op forward and backend kernel (with its group), and every gradient rule."""
    from ember._src.core import backend
    from ember._src.ops.registry import REGISTRY

    kernels: dict[_Key, str] = {}
    rules: set[_Key] = set()
    blas_ops = ("matmul", "einsum")
    for op in REGISTRY.values():
        key = _code_key(op.forward)
        if key is not None:
            kernels[key] = "BLAS/matmul kernels" if op.name in blas_ops else "other NumPy kernels"
        rules.update(k for k in map(_code_key, op.vjp or ()) if k is not None)
    for fn in backend.get_backend("cpu")._kernels.values():
        key = _code_key(fn)
        if key is not None:
            kernels[key] = "other NumPy kernels"
    # In-place methods run their ufunc (or the copy back) inside methods.py.
    from ember._src.core.tensor import Tensor
    from ember._src.ops import methods

    for fn in (Tensor.mul_, methods._commit):
        key = _code_key(fn)
        if key is not None:
            kernels[key] = "other NumPy kernels"
    for key in kernels:  # conv and pool forwards only look up their kernel: charge them there
        if key[0].replace(os.sep, "/").endswith(("ops/conv.py", "ops/pool.py")):
            kernels[key] = "conv/pool kernels"
    return kernels, rules


def group_profile(stats: dict[_Key, Any]) -> dict[tuple[str, str], float]:
    """Own time (tottime) of every profiled function, summed per (group, detail).

    C functions and NumPy's and the standard library's Python code are charged
    to what called them, split by the time each caller spent in them; NumPy
    functions are kernels, matmul-like ones BLAS; an ember function is a kernel
    when it is an op's forward, a backend kernel, or ember code that only
    kernels call (im2col, padding, ...).
    """
    kernels, rules = _kernel_roles()
    callees: dict[_Key, set[_Key]] = {}
    for key, (*_, callers) in stats.items():
        for caller in callers:
            callees.setdefault(caller, set()).add(key)
    # Ember helpers called only from kernels belong to the kernel (a fixed point).
    changed = True
    while changed:
        changed = False
        for key, (*_, callers) in stats.items():
            path = key[0].replace(os.sep, "/")
            if key in kernels or "/ember/_src/ops/" not in path or not callers:
                continue
            groups = {kernels.get(c) for c in callers}
            if None not in groups and len(groups) == 1:
                kernels[key] = groups.pop()  # type: ignore[assignment]
                changed = True

    memo: dict[_Key, list[tuple[tuple[str, str], float]]] = {}
    busy: set[_Key] = set()  # recursion through callers can cycle

    def own_group(key: _Key) -> list[tuple[tuple[str, str], float]]:
        """[((group, detail), share of the key's own time)], remembered."""
        if key not in memo:
            busy.add(key)
            memo[key] = classify(key)
            busy.discard(key)
        return memo[key]

    def classify(key: _Key) -> list[tuple[tuple[str, str], float]]:
        path, _, func = key
        path = path.replace(os.sep, "/")
        if key in kernels:
            detail = "in-place ops (methods.py)" if path.endswith("methods.py") else Path(path).name
            return [((kernels[key], detail), 1.0)]
        ember_file = "/ember/_src/" in path
        if ember_file or "/benchmarks/" in path:
            rel = path.split("/ember/_src/")[-1] if ember_file else "benchmarks (the step)"
            if rel.endswith(_DISPATCH_FILES):
                return [(("dispatch", rel), 1.0)]
            if rel.endswith("core/autograd.py"):
                return [(("backward engine", rel), 1.0)]
            if rel.startswith("optim/"):
                return [(("optimizer", rel), 1.0)]
            return [(("other Python", "gradient rules" if key in rules else rel), 1.0)]
        is_numpy = "numpy" in func or "/numpy/" in path
        if any(n in func for n in _BLAS_NAMES):
            return [(("BLAS/matmul kernels", func), 1.0)]
        callers = stats[key][4]
        total = sum(edge[2] for edge in callers.values())
        if not callers or total <= 0 or busy & set(callers):
            return [(("other NumPy kernels" if is_numpy else "other Python", func), 1.0)]
        out = []
        for caller, edge in callers.items():
            for (group, detail), share in own_group(caller):
                if is_numpy and group != "conv/pool kernels":
                    group, detail = "other NumPy kernels", func
                out.append(((group, detail), share * edge[2] / total))
        return out

    sums: dict[tuple[str, str], float] = {}
    for key, (_, _, own, _, _) in stats.items():
        for gd, share in own_group(key):
            sums[gd] = sums.get(gd, 0.0) + own * share
    return sums


def phases(step: TrainStep, steps: int) -> dict[str, float]:
    """Median seconds of each part of a step, without the profiler."""
    parts: dict[str, list[float]] = {"forward + loss": [], "backward": [], "optimizer.step": [],
                                     "zero_grad": [], "whole step": []}  # fmt: skip
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step.loss()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        step.optimizer.step()
        t3 = time.perf_counter()
        step.optimizer.zero_grad()
        t4 = time.perf_counter()
        for part, t in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            parts[part].append(t)
    return {part: statistics.median(ts) for part, ts in parts.items()}


def kernel_times(step: TrainStep, steps: int) -> tuple[float, dict[str, float]]:
    """Seconds per step, and per op the seconds inside its forward (the kernel), no profiler.

    Every op's forward is wrapped with a timer for the run (in this process
    only); the wrapper adds well under a microsecond per op.
    """
    from ember._src.ops.registry import REGISTRY

    spent: dict[str, float] = {}
    clock = time.perf_counter

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def forward(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + clock() - t0

        return forward

    originals = {op: op.forward for op in REGISTRY.values()}
    for op, fn in originals.items():
        op.forward = timed(op.name, fn)
    try:
        t0 = clock()
        for _ in range(steps):
            step()
        total = clock() - t0
    finally:
        for op, fn in originals.items():
            op.forward = fn
    return total / steps, {k: v / steps for k, v in spent.items()}


def _minor_faults() -> int:
    try:
        import resource
    except ImportError:  # not on Windows
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def profile(name: str, steps: int, top: int) -> None:
    """Time ember's step per phase (no profiler), then run it under cProfile and group."""
    import cProfile
    import pstats

    step = TrainStep("ember", name)
    for _ in range(3):
        step()
    split = phases(step, steps)
    faults_before = _minor_faults()
    step_time, kernels = kernel_times(step, steps)
    faults = (_minor_faults() - faults_before) / steps
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(lambda: [step() for _ in range(steps)])
    profiled = (time.perf_counter() - t0) / steps
    stats: dict[_Key, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    sums = group_profile(stats)
    total = sum(sums.values())
    print(f"ember {WORKLOADS[name].label}, {steps} steps, load average {load_average()}")
    print("without the profiler (median ms):  " + "   ".join(
        f"{part} {1e3 * t:.2f}" for part, t in split.items()))  # fmt: skip
    blas = sum(t for op, t in kernels.items() if op in ("matmul", "einsum"))
    conv = sum(t for op, t in kernels.items() if "conv" in op or "pool" in op or "spatial" in op)
    rest = sum(kernels.values()) - blas - conv
    print(f"op forwards timed directly: {1e3 * step_time:.2f} ms/step, of which kernels "
          f"{1e3 * (blas + conv + rest):.2f} (matmul {1e3 * blas:.2f}, conv/pool "
          f"{1e3 * conv:.2f}, other ops {1e3 * rest:.2f}) and the rest, Python around the "
          f"kernels, {1e3 * (step_time - blas - conv - rest):.2f}")  # fmt: skip
    print(f"  minor page faults: {faults:.0f} per step (fresh memory the kernels touch first)")
    busiest = sorted(kernels.items(), key=lambda kv: -kv[1])[:6]
    print("  busiest op kernels (ms/step): " + ", ".join(
        f"{op} {1e3 * t:.2f}" for op, t in busiest))  # fmt: skip
    print(f"under cProfile: {1e3 * profiled:.2f} ms/step; own time (tottime) by group "
          "(the profiler inflates the Python-heavy groups):")  # fmt: skip
    for group in GROUPS:
        details = {d: t for (g, d), t in sums.items() if g == group}
        own = sum(details.values())
        print(f"  {group:<22} {1e3 * own / steps:8.2f} ms/step {100 * own / total:5.1f} %")
        for detail, t in sorted(details.items(), key=lambda kv: -kv[1])[:4]:
            if t >= 0.01 * total:
                print(f"      {detail:<52.52} {1e3 * t / steps:8.2f} ms/step")
    print(f"\ntop {top} functions by own time (ms per step: own, cumulative; calls per step):")
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    for (path, line, func), (_, calls, own, cum, _) in rows:
        where = f"{Path(path).name}:{line}({func})" if path != "~" else func
        print(f"  {1e3 * own / steps:8.2f} {1e3 * cum / steps:8.2f} {calls / steps:7.0f}  "
              f"{where[:90]}")  # fmt: skip


# ----------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="BLAS/OpenMP/torch threads (default: each "
                        "library's own choice)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="1 round of 3 short repeats")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--repeats", type=int, help="timed repeats per round (default 5)")
    parser.add_argument("--min-time", type=float, help="seconds per repeat (default 0.2)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or process CPU time (robust to load at --threads 1)",
    )
    parser.add_argument("--only", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--profile", choices=list(WORKLOADS), help="profile ember's step")
    parser.add_argument("--steps", type=int, default=20, help="steps to profile")
    parser.add_argument("--top", type=int, default=25, help="functions to list when profiling")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    preset = (1, 3, 0.05) if args.quick else (3, 5, 0.2)
    args.rounds = args.rounds or preset[0]
    args.repeats = args.repeats or preset[1]
    args.min_time = args.min_time or preset[2]

    if args.worker and args.profile:
        profile(args.profile, args.steps, args.top)
        return 0
    if args.worker:
        out = worker(args.worker, args.case, args.repeats, args.min_time, args.clock)
        print(json.dumps(out))
        return 0
    if args.profile:  # in a worker: the thread count and core type apply when NumPy loads
        cmd = [
            sys.executable, "-m", "benchmarks.train_steps", "--worker", "ember",
            "--profile", args.profile, "--steps", str(args.steps), "--top", str(args.top),
        ]  # fmt: skip
        print(f"threads requested: {args.threads or 'library default'}, OPENBLAS_CORETYPE="
              f"{worker_env(args.threads)['OPENBLAS_CORETYPE']}", flush=True)  # fmt: skip
        return subprocess.run(cmd, env=worker_env(args.threads), cwd=ROOT).returncode

    load_start, revision_start = load_average(), ember_revision()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    failures: list[str] = []
    for r in range(args.rounds):
        for name in args.only:
            for fw in FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]:
                print(f"round {r + 1}/{args.rounds}: {name} {fw} …", file=sys.stderr, flush=True)
                res = run_worker(fw, name, args)
                if isinstance(res, str):
                    failures.append(res)
                else:
                    results.setdefault((name, fw), []).append(res)
    text, agree = report(args.only, results, failures, args, load_start, revision_start)
    print(text)
    return 0 if agree and not any(f.startswith("ember") for f in failures) else 1


if __name__ == "__main__":
    sys.exit(main())
