"""The seed example programs run and their loss falls."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
PROGRAMS = ["manual_grad_net.py", "autograd_net.py"]


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
