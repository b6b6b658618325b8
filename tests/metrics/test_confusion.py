"""Precision and Recall against scikit-learn's precision_score and recall_score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

import ember.metrics as M

from .helpers import stream

N = 401
SCORES = {"precision": (M.Precision, precision_score), "recall": (M.Recall, recall_score)}


def binary(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    p = np.clip(0.3 * y + 0.7 * rng.random(N), 0, 1)
    return y, p, rng.random(N)


@pytest.mark.parametrize("metric", SCORES)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary(metric, weighted):
    cls, reference = SCORES[metric]
    y, p, w = binary()
    sw = w if weighted else None
    got = stream(lambda: cls(dtype="float64"), y, p, sw)
    assert got == pytest.approx(reference(y, p > 0.5, sample_weight=sw), abs=1e-12)


@pytest.mark.parametrize("metric", SCORES)
def test_several_thresholds_give_one_result_each(metric):
    cls, reference = SCORES[metric]
    y, p, w = binary(1)
    thresholds = [0.2, 0.5, 0.7]
    got = stream(lambda: cls(thresholds=thresholds, dtype="float64"), y, p, w)
    want = [reference(y, p > t, sample_weight=w) for t in thresholds]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert cls(thresholds=0.7).get_config()["thresholds"] == 0.7


@pytest.mark.parametrize("metric", SCORES)
def test_multi_label_pools_every_element_and_class_id_keeps_one(metric):
    cls, reference = SCORES[metric]
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (N, 4))
    p = np.clip(0.3 * y + 0.7 * rng.random((N, 4)), 0, 1)
    sw = rng.random(N)
    pooled = stream(lambda: cls(dtype="float64"), y, p, sw)
    want = reference(y, p > 0.5, average="micro", sample_weight=sw)
    assert pooled == pytest.approx(want, abs=1e-12)
    one = stream(lambda: cls(class_id=2, dtype="float64"), y, p, sw)
    assert one == pytest.approx(reference(y[:, 2], p[:, 2] > 0.5, sample_weight=sw), abs=1e-12)
    with pytest.raises(ValueError, match=r"class_id=4 is out of range.*\(3, 4\)"):
        cls(class_id=4).update_state(y[:3], p[:3])


def test_no_positives_give_zero_not_nan():
    precision, recall = M.Precision(), M.Recall()
    for m in (precision, recall):
        assert m.result().item() == 0.0  # nothing seen yet
        m.update_state([0, 0, 1], [0.1, 0.2, 0.3])  # nothing predicted positive
    assert precision.result().item() == 0.0
    assert recall.result().item() == 0.0
    recall.reset_state()
    recall.update_state([0, 0], [0.9, 0.2])  # no actual positive
    assert recall.result().item() == 0.0


def test_labels_must_be_binary_and_shapes_match():
    with pytest.raises(ValueError, match=r"binary labels 0 or 1.*\[2\.0\]"):
        M.Precision().update_state([0, 2], [0.1, 0.9])
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 2\)"):
        M.Recall().update_state([0, 1, 1], np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(2,\).*\(3,\)"):
        M.Recall().update_state([0, 1, 1], [0.1, 0.2, 0.3], sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        M.Precision(thresholds=[0.5, np.nan])
