"""The compile benchmark's modes compute the same training steps (benchmarks/bench_compile.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, ROOT)

from benchmarks import bench_compile, train_steps  # noqa: E402


@pytest.mark.parametrize("name", list(train_steps.WORKLOADS))
def test_compiled_step_follows_eager_and_torch(name: str) -> None:
    compiled = bench_compile.check_loss("ember_compiled", name, tiny=True)
    eager = bench_compile.check_loss("ember_eager", name, tiny=True)
    assert compiled == pytest.approx(eager, rel=1e-6)
    pytest.importorskip("torch")
    torch_loss = bench_compile.check_loss("torch_eager", name, tiny=True)
    assert compiled == pytest.approx(torch_loss, rel=train_steps.AGREE_RTOL)


@pytest.mark.parametrize("name", ["lstm"])  # the run itself checks every workload
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_versions_of_the_networks_compute_the_same_step(name: str) -> None:
    jax_loss = bench_compile.check_loss("jax_jit", name, tiny=True)
    eager = bench_compile.check_loss("ember_eager", name, tiny=True)
    assert jax_loss == pytest.approx(eager, rel=train_steps.AGREE_RTOL)
