"""Regression metrics against scikit-learn's mean_absolute_error, mean_squared_error, r2_score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

import ember.metrics as M

from .helpers import feed, stream

N = 389


def data(shape, seed: int = 0, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    y = offset + rng.normal(size=shape) * np.arange(1, 1 + np.prod(shape[1:], dtype=int))
    return y, y + rng.normal(size=shape), rng.random(N)


ERRORS = {
    "mae": (M.MeanAbsoluteError, mean_absolute_error),
    "mse": (M.MeanSquaredError, mean_squared_error),
    "rmse": (M.RootMeanSquaredError, lambda *a, **k: np.sqrt(mean_squared_error(*a, **k))),
}


@pytest.mark.parametrize("metric", ERRORS)
@pytest.mark.parametrize("shape", [(N,), (N, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_errors(metric, shape, weighted):
    cls, reference = ERRORS[metric]
    y, p, w = data(shape)
    sw = w if weighted else None
    got = stream(lambda: cls(dtype="float64"), y, p, sw)
    assert got == pytest.approx(reference(y, p, sample_weight=sw), rel=1e-12)


AGGREGATIONS = {
    None: "raw_values",
    "uniform_average": "uniform_average",
    "variance_weighted_average": "variance_weighted",
}


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("shape", [(N,), (N, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_r2(aggregation, shape, weighted):
    y, p, w = data(shape, seed=1)
    sw = w if weighted else None
    got = stream(lambda: M.R2Score(aggregation, dtype="float64"), y, p, sw)
    want = r2_score(y, p, sample_weight=sw, multioutput=AGGREGATIONS[aggregation])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_r2_stays_exact_far_from_zero():
    # Sums of squares minus squared sums would lose every digit at this offset; the
    # inputs themselves only hold about 7 digits of their deviations from the mean.
    y, p, w = data((N, 2), seed=2, offset=1e9)
    got = feed(M.R2Score(None, dtype="float64"), y, p, w)
    want = r2_score(y, p, sample_weight=w, multioutput="raw_values")
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_r2_constant_targets_and_adjusted():
    m = M.R2Score(dtype="float64", class_aggregation=None)
    m.update_state([[2.0, 1.0], [2.0, 3.0]], [[2.0, 1.0], [2.0, 3.0]])
    m.update_state([[2.0, 5.0]], [[2.0, 4.0]])
    want = r2_score([[2, 1], [2, 3], [2, 5]], [[2, 1], [2, 3], [2, 4]], multioutput="raw_values")
    np.testing.assert_allclose(m.result().numpy(), want)  # column 0: constant, exact -> 1
    m = M.R2Score(dtype="float64")
    m.update_state([1.0, 1.0], [1.0, 2.0])
    assert m.result().item() == 0.0  # constant targets, wrong prediction

    y, p, _ = data((N,), seed=3)
    adjusted = stream(lambda: M.R2Score(num_regressors=4, dtype="float64"), y, p)
    r2 = r2_score(y, p)
    assert adjusted == pytest.approx(1 - (1 - r2) * (N - 1) / (N - 4 - 1), rel=1e-12)
    m = M.R2Score(num_regressors=3)
    m.update_state([1.0, 2.0, 4.0], [1.0, 2.5, 3.0])
    with pytest.warns(RuntimeWarning, match="returning the plain R"):
        assert m.result().item() == pytest.approx(r2_score([1, 2, 4], [1, 2.5, 3]))


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 2\)"):
        M.MeanSquaredError().update_state(np.zeros(4), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(3,\).*\(4, 2\)"):
        M.MeanAbsoluteError().update_state(np.zeros((4, 2)), np.zeros((4, 2)), np.ones(3))
    m = M.R2Score()
    m.update_state(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="3 outputs but earlier batches had 2"):
        m.update_state(np.zeros((3, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"\(n,\) or \(n, outputs\)"):
        M.R2Score().update_state(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="class_aggregation"):
        M.R2Score(class_aggregation="mean")
