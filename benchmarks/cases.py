"""The benchmark workloads, written once per framework.

Each ``<framework>_cases()`` returns ``{case name: (statement, namespace)}``:
the statement is timed inline (as ``timeit`` does), so a (4, 4) add pays no
extra Python call. The inputs come from one NumPy generator with a fixed seed,
so every framework starts from the same numbers and the MLP step's losses can
be compared across frameworks.

Cases:

* ``add``: ``a + b`` on (4, 4) float32 tensors that do not require grad: the
  per-op eager overhead of dispatch (NumPy's ufunc call is the floor).
* ``add_grad``: the same add with ``a`` and ``b`` requiring grad: dispatch plus
  recording one node on the tape (forward only; backward is in the MLP step).
* ``mm``: ``x @ w1``, (32, 500) by (500, 50) float32, no grad: the BLAS
  call the MLP step makes five of (two forward, three backward), so the step's
  ratio can be split into BLAS speed and framework overhead.
* ``mlp_step``: one SGD step of the seed's 2-layer ReLU network, x (32, 500),
  w1 (500, 50), w2 (50, 500), MSE loss: forward, ``backward()``, the update
  under no_grad, and clearing the gradients. NumPy runs the same step with
  hand-written gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BATCH, D_IN, HIDDEN, D_OUT = 32, 500, 50, 500
LR = 1e-2
CHECK_STEPS = 3

Case = tuple[str, dict[str, Any]]


def arrays() -> dict[str, np.ndarray]:
    """The shared inputs, float32, identical in every process."""
    rng = np.random.default_rng(0)

    def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return {
        "a": normal(4, 4),
        "b": normal(4, 4),
        "x": normal(BATCH, D_IN),
        "y": normal(BATCH, D_OUT),
        "w1": normal(D_IN, HIDDEN, scale=0.1),
        "w2": normal(HIDDEN, D_OUT, scale=0.1),
    }


# ----------------------------------------------------------------- NumPy
def numpy_mlp(d: dict[str, np.ndarray]) -> Callable[[], float]:
    x, y, w1, w2 = d["x"], d["y"], d["w1"].copy(), d["w2"].copy()

    def step() -> float:
        nonlocal w1, w2  # updated in place
        h = x @ w1
        h_relu = np.maximum(h, 0)
        y_pred = h_relu @ w2
        diff = y_pred - y
        loss = float(np.mean(diff * diff))
        # Hand-written backward of mean((relu(x @ w1) @ w2 - y) ** 2).
        grad_y_pred = diff * (2.0 / diff.size)
        grad_w2 = h_relu.T @ grad_y_pred
        grad_h = grad_y_pred @ w2.T
        grad_h[h < 0] = 0
        grad_w1 = x.T @ grad_h
        w1 -= LR * grad_w1
        w2 -= LR * grad_w2
        return loss

    return step


def numpy_cases() -> dict[str, Case]:
    d = arrays()
    return {
        "add": ("a + b", {"a": d["a"], "b": d["b"]}),
        "mm": ("x @ w1", {"x": d["x"], "w1": d["w1"]}),
        "mlp_step": ("step()", {"step": numpy_mlp(d)}),
    }


# ----------------------------------------------------------------- autograd frameworks
def autograd_mlp(fw: Any, d: dict[str, np.ndarray]) -> Callable[[], Any]:
    """The step for a PyTorch-like module ``fw`` (``torch`` or ``ember``)."""
    x, y = fw.from_numpy(d["x"]), fw.from_numpy(d["y"])
    w1 = fw.from_numpy(d["w1"].copy()).requires_grad_()
    w2 = fw.from_numpy(d["w2"].copy()).requires_grad_()

    def step() -> Any:
        nonlocal w1, w2  # updated in place
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).mean()
        loss.backward()
        with fw.no_grad():
            w1 -= LR * w1.grad
            w2 -= LR * w2.grad
        w1.grad = None
        w2.grad = None
        return loss

    return step


def autograd_cases(fw: Any) -> dict[str, Case]:
    d = arrays()
    a, b = fw.from_numpy(d["a"]), fw.from_numpy(d["b"])
    ag = fw.from_numpy(d["a"].copy()).requires_grad_()
    bg = fw.from_numpy(d["b"].copy()).requires_grad_()
    return {
        "add": ("a + b", {"a": a, "b": b}),
        "add_grad": ("a + b", {"a": ag, "b": bg}),
        "mm": ("x @ w1", {"x": fw.from_numpy(d["x"]), "w1": fw.from_numpy(d["w1"])}),
        "mlp_step": ("step()", {"step": autograd_mlp(fw, d)}),
    }


def torch_cases() -> dict[str, Case]:
    import torch

    return autograd_cases(torch)


def ember_cases() -> dict[str, Case]:
    import ember

    return autograd_cases(ember)


def check_losses(framework: str) -> list[float]:
    """The first few MLP losses from a fresh start, to check frameworks agree."""
    d = arrays()
    if framework == "numpy":
        numpy_step = numpy_mlp(d)
        return [numpy_step() for _ in range(CHECK_STEPS)]
    step = autograd_mlp(__import__(framework), d)
    return [float(step().item()) for _ in range(CHECK_STEPS)]


CASES: dict[str, Callable[[], dict[str, Case]]] = {
    "numpy": numpy_cases,
    "torch": torch_cases,
    "ember": ember_cases,
}
