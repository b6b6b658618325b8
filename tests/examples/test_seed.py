"""The seed example programs run and their loss falls."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
PROGRAMS = ["manual_grad_net.py", "autograd_net.py", "tf_graph.py", "theano_function.py"]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_seed_{Path(name).stem}", SEED / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("program", PROGRAMS)
def test_loss_falls(program: str) -> None:
    losses = _load(program).train(steps=60, print_every=0)
    assert len(losses) == 60
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0]


def test_manual_and_autograd_agree() -> None:
    # Same seed, same network: hand-written gradients and autograd take the same steps.
    manual = _load("manual_grad_net.py").train(steps=20, print_every=0)
    auto = _load("autograd_net.py").train(steps=20, print_every=0)
    assert auto == pytest.approx(manual, rel=1e-4)


def test_theano_shared_updates_take_the_same_steps_as_fed_weights() -> None:
    # updates= inside the compiled function and the NumPy update outside it agree.
    module = _load("theano_function.py")
    fed = module.train(steps=30, print_every=0)
    shared = module.train(steps=30, print_every=0, shared=True)
    assert shared == pytest.approx(fed, rel=1e-12)
    assert shared[-1] < 0.5 * shared[0]


def test_tf_graph_steps_match_numpy() -> None:
    # The symbolic graph's losses equal the same program written in NumPy.
    losses = _load("tf_graph.py").train(steps=5, print_every=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 500), dtype=np.float32).astype(np.float64)
    w1 = 0.05 * rng.standard_normal((500, 50), dtype=np.float32).astype(np.float64)
    w2 = 0.05 * rng.standard_normal((50, 500), dtype=np.float32).astype(np.float64)
    y = rng.standard_normal((32, 500), dtype=np.float32).astype(np.float64)
    for got in losses:
        h = x @ w1
        d = np.maximum(h, 0) @ w2 - y
        assert got == pytest.approx((d**2).mean(), rel=1e-4)
        gd = 2 * d / d.size
        g2 = np.maximum(h, 0).T @ gd
        g1 = x.T @ ((gd @ w2.T) * (h > 0))
        w1, w2 = w1 - 3.0 * g1, w2 - 3.0 * g2


@pytest.mark.parametrize("program", PROGRAMS)
def test_runs_as_a_script(program: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SEED / program), "--steps", "40", "--print-every", "10"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = proc.stdout.splitlines()
    step_losses = [float(line.split()[-1]) for line in lines if line.startswith("step")]
    assert len(step_losses) == 5  # steps 0, 10, 20, 30 and the last one, 39
    assert step_losses[-1] < 0.5 * step_losses[0]
    assert lines[-1].startswith("loss ")
