"""get(), serialize() and deserialize(): metrics by name, loss-dependent accuracy, configs."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.metrics as M

NAMES = {
    "binary_accuracy": M.BinaryAccuracy,
    "categorical_accuracy": M.CategoricalAccuracy,
    "sparse_categorical_accuracy": M.SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": M.TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": M.SparseTopKCategoricalAccuracy,
    "mae": M.MeanAbsoluteError,
    "mean_absolute_error": M.MeanAbsoluteError,
    "mse": M.MeanSquaredError,
    "mean_squared_error": M.MeanSquaredError,
    "rmse": M.RootMeanSquaredError,
    "root_mean_squared_error": M.RootMeanSquaredError,
    "auc": M.AUC,
    "precision": M.Precision,
    "recall": M.Recall,
    "f1": M.F1Score,
    "f1_score": M.F1Score,
    "r2": M.R2Score,
    "r2_score": M.R2Score,
    "mean": M.Mean,
    "sum": M.Sum,
}


@pytest.mark.parametrize("name", NAMES)
def test_names(name):
    m = M.get(name)
    assert type(m) is NAMES[name] and m.name == name  # logged under the name asked for
    assert M.get(name.upper()).name == name.upper()


def test_f1_by_name_is_a_macro_average():
    assert M.get("f1").average == "macro"


ACCURACY_BY_LOSS = [
    ("binary_crossentropy", M.BinaryAccuracy),
    ("bce", M.BinaryAccuracy),
    (ember.nn.BCELoss(), M.BinaryAccuracy),
    (ember.nn.BCEWithLogitsLoss, M.BinaryAccuracy),
    (ember.nn.functional.binary_cross_entropy_with_logits, M.BinaryAccuracy),
    ("sparse_categorical_crossentropy", M.SparseCategoricalAccuracy),
    (ember.nn.NLLLoss(), M.SparseCategoricalAccuracy),
    ("categorical_crossentropy", M.CategoricalAccuracy),
    ("CategoricalCrossentropy", M.CategoricalAccuracy),
]


@pytest.mark.parametrize(("loss", "cls"), ACCURACY_BY_LOSS, ids=lambda x: str(x)[:40])
@pytest.mark.parametrize("name", ["accuracy", "acc"])
def test_accuracy_follows_the_loss(loss, cls, name):
    m = M.get(name, loss=loss)
    assert type(m) is cls and m.name == name


SHAPES = [
    ((8,), (8,), "binary"),  # 1-D predictions: one probability per sample
    ((8, 1), (8, 1), "binary"),
    ((8,), (8, 3), "sparse_categorical"),
    ((8, 1), (8, 3), "sparse_categorical"),
    ((8, 3), (8, 3), "categorical"),
]


@pytest.mark.parametrize(("true_shape", "pred_shape", "kind"), SHAPES)
@pytest.mark.parametrize("loss", [None, "mse", ember.nn.CrossEntropyLoss()])
def test_accuracy_without_a_telling_loss_follows_the_batch(true_shape, pred_shape, kind, loss):
    m = M.get("accuracy", loss=loss)
    assert m.kind is None and m.result().item() == 0.0
    m.update_state(np.zeros((0, *true_shape[1:])), np.zeros((0, *pred_shape[1:])))
    assert m.kind is None  # an empty batch decides nothing
    rng = np.random.default_rng(0)
    if kind == "binary":
        y, p = rng.integers(0, 2, true_shape), rng.random(pred_shape)
        ref = M.BinaryAccuracy()
    elif kind == "sparse_categorical":
        y, p = rng.integers(0, 3, true_shape), rng.random(pred_shape)
        ref = M.SparseCategoricalAccuracy()
    else:
        y, p = np.eye(3)[rng.integers(0, 3, 8)], rng.random(pred_shape)
        ref = M.CategoricalAccuracy()
    m.update_state(y, p)
    ref.update_state(y, p)
    assert m.kind == kind and m.result().item() == ref.result().item()
    m.reset_state()
    assert m.kind == kind and m.result().item() == 0.0
    config = M.serialize(m)
    assert M.deserialize(config).kind == kind


def test_inferred_accuracy_merges():
    a, b, c = M.get("acc"), M.get("acc"), M.get("acc")
    a.update_state([1, 0], [[0.9], [0.8]])
    b.update_state([1], [[0.7]])
    c.merge_state([a, b])
    assert c.kind == "binary" and c.result().item() == pytest.approx(2 / 3)
    d = M.get("acc")
    d.update_state([0, 1], [[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValueError, match="the kind is binary in one metric and sparse_categorical"):
        c.merge_state([d])
    with pytest.raises(ValueError, match="the kind is binary in one metric and sparse_categorical"):
        M.get("acc").merge_state([a, d])


def test_other_identifiers():
    auc = M.AUC()
    assert M.get(auc) is auc and M.get(None) is None
    assert type(M.get(M.Recall)) is M.Recall
    assert type(M.get("BinaryAccuracy")) is M.BinaryAccuracy
    assert M.get({"class_name": "AUC", "config": {"curve": "PR"}}).curve == "PR"

    def hits(y_true, y_pred):
        return y_true == y_pred

    wrapped = M.get(hits)
    assert isinstance(wrapped, M.MeanMetricWrapper) and wrapped.name == "hits"
    assert wrapped([1, 2, 3], [1, 2, 0]).item() == pytest.approx(2 / 3)


def test_unknown_names_suggest_close_ones():
    with pytest.raises(ValueError, match=r"unknown metric 'accuracyy'; did you mean 'accuracy'"):
        M.get("accuracyy")
    with pytest.raises(ValueError, match="Known names: .*r2_score"):
        M.get("fancy")
    with pytest.raises(TypeError, match="a metric is a name"):
        M.get(3)


def test_deserialize_resolves_only_known_classes():
    class Custom(M.Mean):
        pass

    config = M.serialize(Custom(name="c"))
    assert config == {"class_name": "Custom", "config": {"name": "c", "dtype": "float32"}}
    with pytest.raises(ValueError, match="unknown metric class 'Custom'.*custom_objects"):
        M.deserialize(config)
    assert type(M.deserialize(config, custom_objects={"Custom": Custom})) is Custom
    with pytest.raises(ValueError, match="unknown metric class 'dict'"):
        M.deserialize({"class_name": "dict", "config": {}}, custom_objects={"dict": dict})
    with pytest.raises(ValueError, match="keys 'class_name' and 'config'"):
        M.deserialize({"class_name": "AUC"})
    with pytest.raises(TypeError, match="expects a Metric"):
        M.serialize("auc")
