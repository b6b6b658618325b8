"""ember.get_num_threads / set_num_threads drive the OpenBLAS that NumPy loaded."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember._src.core import threads


@pytest.mark.skipif(threads.openblas() is None, reason="NumPy's BLAS here is not OpenBLAS")
def test_set_num_threads_changes_what_openblas_reports_and_products_stay_right() -> None:
    before = ember.get_num_threads()
    _, fns = threads.openblas()  # type: ignore[misc]
    try:
        ember.set_num_threads(1)
        assert ember.get_num_threads() == 1 == fns["get_num_threads"]()
        a = np.random.default_rng(0).normal(size=(300, 200))
        np.testing.assert_allclose((ember.from_numpy(a) @ ember.from_numpy(a.T)).numpy(), a @ a.T)
        ember.set_num_threads(2)
        assert ember.get_num_threads() == 2
    finally:
        ember.set_num_threads(before)
    assert ember.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_what_is_not_a_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        ember.set_num_threads(bad)  # type: ignore[arg-type]


def test_without_a_reachable_blas_the_error_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "openblas", lambda: None)
    with pytest.raises(RuntimeError, match="OPENBLAS_NUM_THREADS"):
        ember.set_num_threads(1)
    assert ember.get_num_threads() >= 1
