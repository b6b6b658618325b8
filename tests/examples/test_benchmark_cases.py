"""The benchmark programs compute the same thing in every framework (benchmarks/cases.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, ROOT)

from benchmarks import cases, run, worker  # noqa: E402


def test_ember_mlp_step_matches_numpy_hand_written_gradients() -> None:
    assert cases.check_losses("ember") == pytest.approx(cases.check_losses("numpy"), rel=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_ember_mlp_step_matches_torch() -> None:
    assert cases.check_losses("ember") == pytest.approx(cases.check_losses("torch"), rel=1e-5)


@pytest.mark.parametrize("framework", ["numpy", "ember"])
def test_every_case_runs_and_is_timed(framework: str) -> None:
    for name, (stmt, namespace) in cases.CASES[framework]().items():
        times = worker.time_case(stmt, namespace, min_time=0.001, repeats=2)
        assert len(times) == 2 and all(t > 0 for t in times), name


def test_report_prints_ratios_and_missing_frameworks() -> None:
    def result(scale: float) -> dict[str, object]:
        return {
            "env": {"version": "0", "blas": "b", "threads": 1},
            "coretype": "Haswell",
            "check_losses": [1.0, 0.5],
            "times": {"add": [1e-6 * scale], "mlp_step": [1e-3 * scale]},
        }

    text = run.report({"numpy": [result(1.0)], "ember": [result(2.0)]}, {"torch": "missing"})
    assert "OPENBLAS_CORETYPE=Haswell" in text
    assert "torch      missing" in text
    assert "2.00x" in text  # ember/numpy
    assert "agree" in text
