"""AUC against scikit-learn's roc_auc_score and average_precision_score.

AUC keeps confusion counts at fixed thresholds only, so it sees each score as
the bin between two thresholds. Two kinds of data:

* on-grid: every score is the midpoint of a bin, so binning loses nothing and
  the ROC area must equal scikit-learn's to rounding;
* continuous (num_thresholds=1000): positive/negative pairs that share a bin
  count as ties (1/2) where scikit-learn orders them (0 or 1), and every other
  pair is ordered the same way, so the ROC error is at most half the weighted
  fraction of same-bin pairs. The tests compute that bound from the data.

PR "interpolation" is not average precision (a right-step sum): the tests check
it against an independent numerical integration of the interpolated curve, and
against average precision within the gap the interpolation can open between
two curve points, sum(|Δrecall|·|Δprecision|).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

import ember
import ember.metrics as M

from .helpers import stream

N = 600


def grid_data(num_thresholds: int, seed: int, levels: int | None = None):
    """Labels, on-grid scores (with ties when ``levels`` is small) and weights."""
    rng = np.random.default_rng(seed)
    bins = num_thresholds - 1
    used = np.sort(rng.choice(bins, size=levels or bins, replace=False))
    y = rng.integers(0, 2, N)
    # Positives lean high so the areas are away from 1/2.
    j = np.clip(rng.integers(0, len(used), N) + (y * len(used) * 0.2).astype(int), 0, len(used) - 1)
    return y, (used[j] + 0.5) / bins, rng.random(N)


def auc(y, p, w, **kwargs) -> float:
    return float(stream(lambda: M.AUC(dtype="float64", **kwargs), y, p, w))


@pytest.mark.parametrize("levels", [30, None])
@pytest.mark.parametrize("weighted", [False, True])
def test_roc_on_grid_equals_sklearn(levels, weighted):
    y, p, w = grid_data(200, seed=0, levels=levels)
    sw = w if weighted else None
    assert auc(y, p, sw) == pytest.approx(roc_auc_score(y, p, sample_weight=sw), abs=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_roc_on_continuous_scores_within_the_tie_bound(weighted):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    w = rng.random(2000) if weighted else np.ones(2000)
    got = auc(y, p, w, num_thresholds=1000)
    bins = np.searchsorted(M.AUC(num_thresholds=1000).thresholds, p, side="left")
    pos = np.bincount(bins, w * y, minlength=1001)
    neg = np.bincount(bins, w * (1 - y), minlength=1001)
    bound = 0.5 * np.sum(pos * neg) / (pos.sum() * neg.sum())
    assert 0 < bound < 1e-3
    assert abs(got - roc_auc_score(y, p, sample_weight=w)) <= bound + 1e-12


def test_roc_summation_methods_bracket_the_trapezoid():
    y, p, w = grid_data(50, seed=2)
    lo = auc(y, p, w, num_thresholds=50, summation_method="minoring")
    mid = auc(y, p, w, num_thresholds=50)
    hi = auc(y, p, w, num_thresholds=50, summation_method="majoring")
    assert lo < mid < hi


def curve_points(y, p, w):
    """Weighted (tp, fp) after each distinct score, highest first, from (0, 0)."""
    order = np.argsort(-p, kind="stable")
    p, pos, neg = p[order], (w * y)[order], (w * (1 - y))[order]
    last = np.r_[np.nonzero(np.diff(p))[0], len(p) - 1]  # last index of each distinct score
    return np.r_[0, np.cumsum(pos)[last]], np.r_[0, np.cumsum(neg)[last]]


def integrate_interpolated_pr(y, p, w, steps: int = 4000) -> float:
    """∫ precision d(recall) with tp and fp linear between curve points (midpoint rule)."""
    tp, fp = curve_points(y, p, w)
    t = (np.arange(steps) + 0.5) / steps
    area = 0.0
    for i in range(len(tp) - 1):
        dtp, dfp = tp[i + 1] - tp[i], fp[i + 1] - fp[i]
        tps, fps = tp[i] + t * dtp, fp[i] + t * dfp
        area += np.sum(tps / (tps + fps)) * dtp / steps
    return area / tp[-1]


@pytest.mark.parametrize("levels", [25, None])
@pytest.mark.parametrize("weighted", [False, True])
def test_pr_on_grid(levels, weighted):
    y, p, w = grid_data(1000, seed=3, levels=levels)
    sw = w if weighted else np.ones(N)
    interp = auc(y, p, sw, num_thresholds=1000, curve="PR")
    lo = auc(y, p, sw, num_thresholds=1000, curve="PR", summation_method="minoring")
    hi = auc(y, p, sw, num_thresholds=1000, curve="PR", summation_method="majoring")
    ap = average_precision_score(y, p, sample_weight=sw)
    assert lo - 1e-12 <= ap <= hi + 1e-12
    assert interp == pytest.approx(integrate_interpolated_pr(y, p, sw), abs=1e-6)
    precision, recall, _ = precision_recall_curve(y, p, sample_weight=sw)
    gap = np.sum(np.abs(np.diff(recall)) * np.abs(np.diff(precision)))
    assert gap < (0.1 if levels else 0.005)  # ties make long flat steps; else it is tight
    assert abs(interp - ap) <= gap + 1e-12


def test_multi_label_averages_the_labels():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, (N, 3))
    p = (rng.integers(0, 199, (N, 3)) + 0.5) / 199
    p = np.where(y == 1, np.minimum(p + 0.2, 198.5 / 199), p)
    p = (np.floor(p * 199) + 0.5) / 199  # back on the grid
    sw = rng.random(N)
    got = auc(y, p, sw, multi_label=True)
    want = np.mean([roc_auc_score(y[:, k], p[:, k], sample_weight=sw) for k in range(3)])
    assert got == pytest.approx(want, abs=1e-12)
    pooled = auc(y, p, sw)
    assert pooled == pytest.approx(
        roc_auc_score(y.ravel(), p.ravel(), sample_weight=np.repeat(sw, 3))
    )


def test_explicit_thresholds_and_logits():
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    p = np.array([0.1, 0.3, 0.6, 0.9, 0.6, 0.3, 0.9, 0.1])
    m = M.AUC(thresholds=[0.75, 0.25, 0.5], dtype="float64")
    assert m.num_thresholds == 5 and m.thresholds[1:-1] == [0.25, 0.5, 0.75]
    m.update_state(y, p)
    assert m.result().item() == pytest.approx(roc_auc_score(y, p))
    logits = np.log(p / (1 - p))
    m = M.AUC(thresholds=[0.25, 0.5, 0.75], from_logits=True, dtype="float64")
    m.update_state(ember.tensor(y), ember.tensor(logits))
    assert m.result().item() == pytest.approx(roc_auc_score(y, p))
    m.update_state([0, 1, 1], [-1e4, 1e4, np.inf])  # no overflow warning (-W error)
    with pytest.raises(ValueError, match=r"\[nan\]; logits must not be NaN"):
        m.update_state([1], [np.nan])


@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_one_class_only_gives_zero(curve):
    m = M.AUC(curve=curve)
    assert m.result().item() == 0.0
    m.update_state([0, 0, 0], [0.2, 0.5, 0.9])
    assert m.result().item() == 0.0
    if curve == "ROC":  # no negatives: no false positive rate to integrate over
        m.reset_state()
        m.update_state([1, 1], [0.2, 0.9])
        assert m.result().item() == 0.0


def test_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\].*\[1\.5, nan\].*from_logits=True"):
        M.AUC().update_state([0, 1, 1], [0.5, 1.5, np.nan])
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 2\)"):
        M.AUC().update_state([0, 1, 1], np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"multi_label=True.*\(3,\)"):
        M.AUC(multi_label=True).update_state([0, 1, 1], [0.1, 0.2, 0.3])
    m = M.AUC(multi_label=True)
    m.update_state(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="3 labels but earlier batches had 2"):
        m.update_state(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="num_thresholds must be > 1"):
        M.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="curve must be"):
        M.AUC(curve="DET")
    with pytest.raises(ValueError, match="summation_method"):
        M.AUC(summation_method="trapezoid")
    with pytest.raises(ValueError, match=r"thresholds must lie in \[0, 1\]"):
        M.AUC(thresholds=[0.5, 2.0])
