"""The training-step benchmark's workloads run and match PyTorch (benchmarks/train_steps.py)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, ROOT)

from benchmarks import train_steps  # noqa: E402


@pytest.mark.parametrize("name", list(train_steps.WORKLOADS))
def test_ember_step_runs_and_its_first_loss_matches_torch(name: str) -> None:
    losses = train_steps.first_losses("ember", name, steps=2, tiny=True)
    assert all(math.isfinite(v) for v in losses), losses
    pytest.importorskip("torch")
    (expected,) = train_steps.first_losses("torch", name, steps=1, tiny=True)
    assert losses[0] == pytest.approx(expected, rel=train_steps.AGREE_RTOL)


def test_shared_weights_follow_fan_in_and_norm_defaults() -> None:
    import numpy as np

    state = {
        "w": np.zeros((4, 9)),
        "b": np.zeros(4),
        "norm1.weight": np.zeros(3),
        "norm1.bias": np.zeros(3),
    }
    out = train_steps.shared_weights(state, np.random.default_rng(0))
    assert np.abs(out["w"]).max() <= 1 / 3 and np.abs(out["b"]).max() <= 1 / 3
    assert (out["norm1.weight"] == 1).all() and (out["norm1.bias"] == 0).all()
    assert all(v.dtype == np.float32 for v in out.values())


def test_profile_groups_cover_all_own_time() -> None:
    import cProfile
    import pstats

    step = train_steps.TrainStep("ember", "mlp_b32", tiny=True)
    prof = cProfile.Profile()
    prof.runcall(lambda: [step() for _ in range(3)])
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    sums = train_steps.group_profile(stats)
    assert {g for g, _ in sums} <= set(train_steps.GROUPS)
    assert sum(sums.values()) == pytest.approx(sum(s[2] for s in stats.values()))
    for group in ("BLAS/matmul kernels", "dispatch", "backward engine", "optimizer"):
        assert sum(t for (g, _), t in sums.items() if g == group) > 0, group
