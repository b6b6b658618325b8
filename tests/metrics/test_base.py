"""What every metric shares: reset, merge, configs, empty batches, dtypes; Mean, Sum, wrappers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import ember
import ember.metrics as M

from .helpers import feed, one_shot, stream


def labels_and_probs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    return y, np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)


def classes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, 4, n), rng.normal(size=(n, 4))


def predicted_classes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y, p = classes(rng, n)
    return y, p.argmax(axis=1)


def one_hot(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y, p = classes(rng, n)
    return np.eye(4)[y], p


def regression(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.normal(size=(n, 2))
    return y, y + rng.normal(size=(n, 2))


Data = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
CASES: list[tuple[Callable[[], M.Metric], Data]] = [
    (lambda: M.Accuracy(), predicted_classes),
    (lambda: M.BinaryAccuracy(threshold=0.4), labels_and_probs),
    (lambda: M.CategoricalAccuracy(), one_hot),
    (lambda: M.SparseCategoricalAccuracy(), classes),
    (lambda: M.TopKCategoricalAccuracy(k=2), one_hot),
    (lambda: M.SparseTopKCategoricalAccuracy(k=2), classes),
    (lambda: M.Precision(thresholds=[0.3, 0.6]), labels_and_probs),
    (lambda: M.Recall(class_id=None), labels_and_probs),
    (lambda: M.F1Score(), classes),
    (lambda: M.FBetaScore(average="weighted", beta=0.5, threshold=0.2), one_hot),
    (lambda: M.AUC(num_thresholds=50), labels_and_probs),
    (lambda: M.AUC(curve="PR", thresholds=[0.2, 0.4, 0.6]), labels_and_probs),
    (lambda: M.MeanAbsoluteError(), regression),
    (lambda: M.MeanSquaredError(), regression),
    (lambda: M.RootMeanSquaredError(), regression),
    (lambda: M.R2Score(class_aggregation="variance_weighted_average"), regression),
    (lambda: M.get("accuracy"), classes),
]
IDS = [type(make()).__name__ for make, _ in CASES]


def batch(data: Data, seed: int, n: int = 97) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true, y_pred = data(rng, n)
    return y_true, y_pred, rng.random(n)


@pytest.mark.parametrize(("make", "data"), CASES, ids=IDS)
def test_result_is_a_tensor_and_zero_before_any_update(make, data):
    m = make()
    r = m.result()
    assert isinstance(r, ember.Tensor) and r.dtype == ember.float32
    assert np.all(r.numpy() == 0)
    assert make().name == m.name


@pytest.mark.parametrize(("make", "data"), CASES, ids=IDS)
def test_empty_updates_change_nothing(make, data):
    y_true, y_pred, w = batch(data, seed=0)
    m = make()
    m.update_state(y_true[:0], y_pred[:0], w[:0])
    assert np.all(m.result().numpy() == 0)
    m.update_state(y_true, y_pred, w)
    before = m.result().numpy()
    m.update_state(y_true[:0], y_pred[:0])
    np.testing.assert_array_equal(m.result().numpy(), before)


@pytest.mark.parametrize(("make", "data"), CASES, ids=IDS)
def test_reset_state_forgets(make, data):
    first, second = batch(data, seed=1), batch(data, seed=2)
    m = make()
    m.update_state(*first)
    m.reset_state()
    np.testing.assert_array_equal(one_shot(m, *second), one_shot(make(), *second))


@pytest.mark.parametrize(("make", "data"), CASES, ids=IDS)
def test_call_accumulates_like_keras(make, data):
    first, second = batch(data, seed=3), batch(data, seed=4)
    m = make()
    m(*first)
    both = [np.concatenate(pair) for pair in zip(first, second)]
    np.testing.assert_allclose(m(*second).numpy(), one_shot(make(), *both), rtol=1e-6)


@pytest.mark.parametrize(("make", "data"), CASES, ids=IDS)
def test_merge_state_equals_one_metric_over_all_data(make, data):
    y_true, y_pred, w = batch(data, seed=5, n=300)
    shards = [make() for _ in range(3)]
    for k, m in enumerate(shards):
        feed(m, y_true[k::3], y_pred[k::3], w[k::3], seed=k)
    merged = make()
    merged.merge_state(shards)
    np.testing.assert_allclose(
        merged.result().numpy(), one_shot(make(), y_true, y_pred, w), rtol=1e-6
    )
    shards[0].merge_state(shards[1:])  # into a metric that already holds data
    np.testing.assert_allclose(shards[0].result().numpy(), merged.result().numpy(), rtol=1e-6)


@pytest.mark.parametrize(("make", "data"), CASES, ids=IDS)
def test_config_round_trip(make, data):
    m = make()
    config = m.get_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = type(m).from_config(config)
    assert rebuilt.get_config() == config
    again = M.deserialize(json.loads(json.dumps(M.serialize(m))))
    assert type(again) is type(m) and again.get_config() == config
    args = batch(data, seed=6)
    np.testing.assert_array_equal(one_shot(again, *args), one_shot(m, *args))


def test_merge_state_checks_what_it_merges():
    with pytest.raises(TypeError, match="can only merge metrics of type Precision"):
        M.Precision().merge_state([M.Recall()])
    with pytest.raises(ValueError, match="configs differ"):
        M.AUC(num_thresholds=10).merge_state([M.AUC(num_thresholds=20)])
    a, b = M.F1Score(), M.F1Score()
    a.update_state([0, 1], np.eye(2))
    b.update_state([0, 2], np.eye(3)[[0, 2]])
    before = a.result().numpy()
    with pytest.raises(ValueError, match=r"shape of 'tp' is \(2,\) in one metric and \(3,\)"):
        a.merge_state([M.F1Score(), b])
    with pytest.raises(ValueError, match=r"shape of 'tp' is \(2,\) in one metric and \(3,\)"):
        M.F1Score().merge_state([a, b])  # the others must agree among themselves too
    np.testing.assert_array_equal(a.result().numpy(), before)
    named = M.Precision(name="p1")
    named.merge_state(M.Precision(name="p2"))  # names may differ; a single metric is fine


def test_mean_and_sum():
    rng = np.random.default_rng(7)
    values, w = rng.normal(size=(211, 3)), rng.random(211)
    mean = stream(lambda: M.Mean(dtype="float64"), values, w)
    assert mean == pytest.approx(np.average(values.mean(axis=1), weights=w), rel=1e-12)
    total = stream(lambda: M.Sum(dtype="float64"), values, w)
    assert total == pytest.approx(np.sum(values * w[:, None]), rel=1e-12)
    full = stream(lambda: M.Mean(dtype="float64"), values, w[:, None] * np.ones(3))
    assert full == pytest.approx(mean, rel=1e-12)
    column = stream(lambda: M.Mean(dtype="float64"), values, w[:, None])
    assert column == pytest.approx(mean, rel=1e-12)
    m = M.Mean()
    m.update_state(4.0)
    m.update_state([[1.0, 2.0]], sample_weight=2.0)
    assert m.result().item() == pytest.approx(2.0)


def test_mean_metric_wrapper_runs_ember_functions():
    def squared_error(y_true: ember.Tensor, y_pred: ember.Tensor, scale: float = 1.0) -> Any:
        return scale * (y_true - y_pred) ** 2

    m = M.MeanMetricWrapper(squared_error, scale=2.0)
    y, p = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    m.update_state(y, ember.tensor(p, requires_grad=True), sample_weight=[1.0, 1.0, 2.0])
    assert m.name == "squared_error" and m.result().item() == pytest.approx(2.0)
    assert m.get_config() == {"name": "squared_error", "dtype": "float32", "scale": 2.0}
    with pytest.raises(TypeError, match="cannot be restored"):
        M.MeanMetricWrapper.from_config(m.get_config())
    with pytest.raises(ValueError, match="wraps another function"):
        other = M.MeanMetricWrapper(lambda a, b: a, name="squared_error", scale=2.0)
        m.merge_state([other])
    with pytest.raises(TypeError, match="needs a function"):
        M.MeanMetricWrapper(3)


def test_dtype_and_inputs():
    m = M.Mean(dtype=ember.float64)
    m.update_state(ember.tensor([1, 2], dtype=ember.int32))
    assert m.result().dtype == ember.float64 and m.get_config()["dtype"] == "float64"
    with pytest.raises(ValueError, match="must be floating point"):
        M.Mean(dtype="int64")
    with pytest.raises(TypeError, match="must hold real numbers"):
        M.Mean().update_state(["a", "b"])
    with pytest.raises(TypeError, match="y_true is None"):
        M.MeanSquaredError().update_state(None, [1.0])
    with pytest.raises(TypeError, match="name must be a string"):
        M.Mean(name=3)
    assert repr(M.BinaryAccuracy(threshold=0.3)) == (
        "BinaryAccuracy(name='binary_accuracy', dtype='float32', threshold=0.3)"
    )
