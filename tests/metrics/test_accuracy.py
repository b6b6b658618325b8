"""Accuracy metrics against scikit-learn's accuracy_score and top_k_accuracy_score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, top_k_accuracy_score

import ember
import ember.metrics as M

from .helpers import stream

N, C = 503, 5


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, N)
    logits = rng.normal(size=(N, C)) + 1.5 * np.eye(C)[labels]  # better than chance
    weights = rng.random(N) * (rng.random(N) > 0.1)  # some zero weights
    return labels, logits, weights


@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_exact_match(weighted):
    labels, logits, w = data()
    pred = np.argmax(logits, axis=1)
    sw = w if weighted else None
    got = stream(lambda: M.Accuracy(dtype="float64"), labels, pred, sw)
    assert got == pytest.approx(accuracy_score(labels, pred, sample_weight=sw), abs=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_accuracy(weighted, threshold):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, N)
    p = np.clip(0.35 * y + 0.65 * rng.random(N), 0, 1)
    sw = rng.random(N) if weighted else None
    make = lambda: M.BinaryAccuracy(threshold=threshold, dtype="float64")
    got = stream(make, y.astype(np.float32), p[:, None], sw)  # y (n,) against p (n, 1)
    want = accuracy_score(y, p > threshold, sample_weight=sw)
    assert got == pytest.approx(want, abs=1e-12)


def test_binary_accuracy_multi_label_and_logits():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (N, 3))
    logits = rng.normal(size=(N, 3)) + y
    sw = rng.random(N)
    got = stream(lambda: M.BinaryAccuracy(threshold=0.0, dtype="float64"), y, logits, sw)
    per_sample = ((logits > 0) == y).mean(axis=1)
    assert got == pytest.approx(np.average(per_sample, weights=sw), abs=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_categorical_accuracy(weighted):
    labels, logits, w = data()
    sw = w if weighted else None
    got = stream(lambda: M.CategoricalAccuracy(dtype="float64"), np.eye(C)[labels], logits, sw)
    want = accuracy_score(labels, logits.argmax(1), sample_weight=sw)
    assert got == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("column", [False, True])
def test_sparse_categorical_accuracy(weighted, column):
    labels, logits, w = data()
    sw = w if weighted else None
    y = labels[:, None] if column else labels
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = stream(lambda: M.SparseCategoricalAccuracy(dtype="float64"), y, probs, sw)
    want = accuracy_score(labels, logits.argmax(1), sample_weight=sw)
    assert got == pytest.approx(want, abs=1e-12)


def test_sparse_categorical_accuracy_over_time_steps():
    rng = np.random.default_rng(3)
    labels, logits, sw = rng.integers(0, 4, (60, 7)), rng.normal(size=(60, 7, 4)), rng.random(60)
    got = stream(lambda: M.SparseCategoricalAccuracy(dtype="float64"), labels, logits, sw)
    hits = (logits.argmax(-1) == labels).mean(axis=1)  # per-sample weights cover every step
    assert got == pytest.approx(np.average(hits, weights=sw), abs=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_top_k_accuracy(weighted, k):
    labels, logits, w = data()
    sw = w if weighted else None
    want = top_k_accuracy_score(labels, logits, k=k, labels=range(C), sample_weight=sw)
    dense = stream(
        lambda: M.TopKCategoricalAccuracy(k, dtype="float64"), np.eye(C)[labels], logits, sw
    )
    sparse = stream(lambda: M.SparseTopKCategoricalAccuracy(k, dtype="float64"), labels, logits, sw)
    assert dense == pytest.approx(want, abs=1e-12)
    assert sparse == pytest.approx(want, abs=1e-12)


def test_top_k_ties_count_for_the_label():
    # TensorFlow's in_top_k: classes tied at the k-th score are all in the top k.
    m = M.SparseTopKCategoricalAccuracy(k=1)
    m.update_state([0, 1, 2], [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    assert m.result().item() == pytest.approx(2 / 3)
    m = M.SparseTopKCategoricalAccuracy(k=2)
    m.update_state([0], [[np.nan, 0.1, 0.2]])  # a NaN score never hits
    assert m.result().item() == 0.0
    m = M.SparseTopKCategoricalAccuracy(k=5)  # k >= classes: every finite score hits
    m.update_state([0, 2], [[0.1, 0.5, 0.4], [0.9, 0.1, 0.0]])
    assert m.result().item() == 1.0


def test_accuracy_takes_requires_grad_tensors_and_bools():
    m = M.BinaryAccuracy()
    m.update_state(ember.tensor([True, False]), ember.tensor([0.9, 0.7], requires_grad=True))
    assert m.result().item() == 0.5


def test_accuracy_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 3\)"):
        M.BinaryAccuracy().update_state(np.zeros(4), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 3\).*SparseCategoricalAccuracy"):
        M.CategoricalAccuracy().update_state(np.zeros(4), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(4, 2\).*\(4, 3\)"):
        M.SparseCategoricalAccuracy().update_state(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(5,\).*\(4, 3\)"):
        M.SparseTopKCategoricalAccuracy().update_state(np.zeros(5), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="one score per class"):
        M.CategoricalAccuracy().update_state(np.zeros((4, 0)), np.zeros((4, 0)))


def test_sparse_labels_must_be_classes():
    m = M.SparseCategoricalAccuracy()
    with pytest.raises(ValueError, match=r"\[0, 3\).*found \[3\]"):
        m.update_state([0, 3], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"integer class labels.*\[0\.5\]"):
        m.update_state([0.5, 1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"integer class labels.*\[nan, -1\.0\]"):
        m.update_state([np.nan, -1.0, 2.0], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="positive integer"):
        M.TopKCategoricalAccuracy(k=0)
