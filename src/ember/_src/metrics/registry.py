"""Metrics by name: ``get`` for the strings of Keras's ``compile(metrics=[...])``, and configs."""

from __future__ import annotations

import difflib
from typing import Any, overload

from ember._src.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    _InferredAccuracy,
)
from ember._src.metrics.auc import AUC
from ember._src.metrics.base import Mean, MeanMetricWrapper, Metric, Sum
from ember._src.metrics.confusion import Precision, Recall
from ember._src.metrics.f_score import F1Score, FBetaScore
from ember._src.metrics.regression import (
    MeanAbsoluteError,
    MeanSquaredError,
    R2Score,
    RootMeanSquaredError,
)

CLASSES: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        _InferredAccuracy,
        Precision,
        Recall,
        FBetaScore,
        F1Score,
        AUC,
        MeanAbsoluteError,
        MeanSquaredError,
        RootMeanSquaredError,
        R2Score,
        Mean,
        Sum,
    )
}

# Keras's metric names. A metric made from a name is logged under that name.
NAMES: dict[str, type[Metric]] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "rmse": RootMeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError,
    "auc": AUC,
    "precision": Precision,
    "recall": Recall,
    "f1": F1Score,
    "f1_score": F1Score,
    "r2": R2Score,
    "r2_score": R2Score,
    "mean": Mean,
    "sum": Sum,
}
# A name must give one number to log: F1 averages its classes (one column: binary F1).
_NAME_ARGS: dict[type[Metric], dict[str, Any]] = {F1Score: {"average": "macro"}}
_ACCURACY = ("accuracy", "acc")

# Losses that decide what "accuracy" means, compared lower-case without underscores:
# Keras's names, PyTorch/ember's loss classes and functional names. Not
# CrossEntropyLoss: it takes class indices or probabilities, so the shapes decide.
LOSSES: dict[str, type[Metric]] = {
    **dict.fromkeys(
        (
            "binarycrossentropy",
            "bce",
            "binaryfocalcrossentropy",
            "bceloss",
            "bcewithlogitsloss",
            "binarycrossentropywithlogits",
        ),
        BinaryAccuracy,
    ),
    **dict.fromkeys(("sparsecategoricalcrossentropy", "nllloss", "nll"), SparseCategoricalAccuracy),
    **dict.fromkeys(
        ("categoricalcrossentropy", "cce", "categoricalfocalcrossentropy"), CategoricalAccuracy
    ),
}


def _loss_key(loss: Any) -> str:
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None)
    return (name or type(loss).__name__).lower().replace("_", "")


@overload
def get(identifier: None, loss: Any = None) -> None: ...
@overload
def get(identifier: Any, loss: Any = None) -> Metric: ...
def get(identifier: Any, loss: Any = None) -> Metric | None:
    """Resolve a metric from a name, class, instance, config dict or function.

    * a ``Metric`` is returned as it is, a ``Metric`` subclass is instantiated;
    * a string is a Keras metric name (table in docs/metrics.md) and becomes the
      metric's ``name``;
    * ``"accuracy"``/``"acc"`` follow the loss, like multi-backend Keras 2: a binary
      cross-entropy gives ``BinaryAccuracy``, a sparse categorical one (or
      ``NLLLoss``, which takes class indices) ``SparseCategoricalAccuracy``, a
      categorical one ``CategoricalAccuracy``.
      Any other loss, or none, gives an accuracy that picks its kind from the
      first batch's shapes, as Keras 3 does;
    * a ``{"class_name": ..., "config": ...}`` dict is ``deserialize``\\ d;
    * any other callable ``fn(y_true, y_pred)`` is wrapped in ``MeanMetricWrapper``;
    * None gives None.

    Args:
        identifier: what to resolve.
        loss: the model's loss, as a name, a loss object or a function; only read
            for "accuracy".

    Returns:
        A new metric (or ``identifier`` itself when it already is one).

    Example:
        >>> import ember.metrics
        >>> ember.metrics.get("acc", loss="sparse_categorical_crossentropy")
        SparseCategoricalAccuracy(name='acc', dtype='float32')
        >>> ember.metrics.get("mae").name
        'mae'
    """
    if identifier is None or isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _ACCURACY:
            cls = None if loss is None else LOSSES.get(_loss_key(loss))
            return (cls or _InferredAccuracy)(name=identifier)
        if key in NAMES:
            return NAMES[key](name=identifier, **_NAME_ARGS.get(NAMES[key], {}))
        if identifier in CLASSES and not identifier.startswith("_"):
            return CLASSES[identifier]()
        known = sorted([*_ACCURACY, *NAMES, *(c for c in CLASSES if not c.startswith("_"))])
        close = difflib.get_close_matches(identifier, known, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown metric {identifier!r}{hint} Known names: {', '.join(known)}")
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(
        "a metric is a name, a Metric instance or class, a config dict or a function "
        f"fn(y_true, y_pred); got {type(identifier).__name__}"
    )


def serialize(metric: Metric) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}``, JSON-serializable, for ``deserialize``.

    Example:
        >>> import ember.metrics
        >>> ember.metrics.serialize(ember.metrics.AUC(curve="PR"))["config"]["curve"]
        'PR'
    """
    if not isinstance(metric, Metric):
        raise TypeError(f"serialize expects a Metric, got {type(metric).__name__}")
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, type] | None = None) -> Metric:
    """A new metric from ``serialize``'s output; only built-in or listed classes resolve.

    Args:
        config: ``{"class_name": ..., "config": {...}}``.
        custom_objects: extra ``{class_name: class}`` to resolve (your own metrics).
    """
    if not isinstance(config, dict) or set(config) != {"class_name", "config"}:
        raise ValueError(
            f"a metric config is a dict with keys 'class_name' and 'config', got {config!r}"
        )
    classes: dict[str, type] = {**CLASSES, **(custom_objects or {})}
    cls = classes.get(config["class_name"])
    if cls is None or not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise ValueError(
            f"unknown metric class {config['class_name']!r}; pass your own classes in "
            "custom_objects={'Name': Name}"
        )
    return cls.from_config(dict(config["config"]))
