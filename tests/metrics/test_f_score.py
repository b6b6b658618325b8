"""F1Score and FBetaScore against scikit-learn's f1_score and fbeta_score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, fbeta_score

import ember.metrics as M

from .helpers import stream

N, C = 457, 4
AVERAGES = [None, "micro", "macro", "weighted"]


def multiclass(seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, N)
    logits = rng.normal(size=(N, C)) + np.eye(C)[labels]
    return labels, logits, rng.random(N)


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_multiclass_argmax(average, weighted, sparse):
    labels, logits, w = multiclass()
    sw = w if weighted else None
    y = labels if sparse else np.eye(C)[labels]
    got = stream(lambda: M.F1Score(average=average, dtype="float64"), y, logits, sw)
    want = f1_score(labels, logits.argmax(1), average=average, labels=range(C), sample_weight=sw)
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_fbeta(average, beta):
    labels, logits, w = multiclass(1)
    make = lambda: M.FBetaScore(average=average, beta=beta, dtype="float64")
    got = stream(make, labels[:, None], logits, w)
    want = fbeta_score(
        labels, logits.argmax(1), beta=beta, average=average, labels=range(C), sample_weight=w
    )
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("average", AVERAGES)
def test_multi_label_with_threshold(average):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (N, C))
    p = np.clip(0.3 * y + 0.7 * rng.random((N, C)), 0, 1)
    sw = rng.random(N)
    got = stream(lambda: M.F1Score(average=average, threshold=0.4, dtype="float64"), y, p, sw)
    np.testing.assert_allclose(got, f1_score(y, p > 0.4, average=average, sample_weight=sw))


@pytest.mark.parametrize("average", ["micro", "macro", "weighted"])
@pytest.mark.parametrize("threshold", [None, 0.3])
def test_binary_column(average, threshold):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, N)
    p = np.clip(0.3 * y + 0.7 * rng.random(N), 0, 1)
    sw = rng.random(N)
    got = stream(lambda: M.F1Score(average, threshold, dtype="float64"), y, p, sw)
    t = 0.5 if threshold is None else threshold  # one column, no threshold: 0.5
    assert got == pytest.approx(f1_score(y, p > t, sample_weight=sw), abs=1e-12)
    per_class = stream(lambda: M.F1Score(None, threshold, dtype="float64"), y, p[:, None], sw)
    assert per_class.shape == (1,) and per_class[0] == pytest.approx(got, abs=1e-12)


def test_absent_class_counts_in_the_average_as_zero():
    m = M.F1Score(average="macro", dtype="float64")
    m.update_state([0, 1, 1], [[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    want = f1_score([0, 1, 1], [0, 1, 0], average="macro", labels=range(3), zero_division=0)
    assert m.result().item() == pytest.approx(want)
    assert M.F1Score().result().shape == (0,)  # per-class scores before any class is seen
    assert M.F1Score(average="macro").result().item() == 0.0


def test_errors():
    m = M.F1Score()
    m.update_state([0, 2], np.eye(3)[[0, 2]])
    before = m.result().numpy()
    with pytest.raises(ValueError, match="4 classes but earlier batches had 3"):
        m.update_state([0, 3], np.eye(4)[[0, 3]])
    np.testing.assert_array_equal(m.result().numpy(), before)  # a failed update changes nothing
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        m.update_state(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="average must be one of"):
        M.F1Score(average="samples")
    with pytest.raises(ValueError, match="beta must be positive"):
        M.FBetaScore(beta=0)
