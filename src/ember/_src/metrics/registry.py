"""Metrics by name: ``get`` for the strings of Keras's ``compile(metrics=[...])``, and configs."""

from __future__ import annotations

import difflib
from collections.abc import Callable
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

# String identifiers -> a factory taking the metric's name.
_F1 = lambda name: F1Score(average="macro", name=name)  # a scalar to log, also for binary data
NAMES: dict[str, Callable[[str], Metric]] = {
    "binary_accuracy": lambda name: BinaryAccuracy(name=name),
    "categorical_accuracy": lambda name: CategoricalAccuracy(name=name),
    "sparse_categorical_accuracy": lambda name: SparseCategoricalAccuracy(name=name),
    "top_k_categorical_accuracy": lambda name: TopKCategoricalAccuracy(name=name),
    "sparse_top_k_categorical_accuracy": lambda name: SparseTopKCategoricalAccuracy(name=name),
    "mae": lambda name: MeanAbsoluteError(name=name),
    "mean_absolute_error": lambda name: MeanAbsoluteError(name=name),
    "mse": lambda name: MeanSquaredError(name=name),
    "mean_squared_error": lambda name: MeanSquaredError(name=name),
    "rmse": lambda name: RootMeanSquaredError(name=name),
    "root_mean_squared_error": lambda name: RootMeanSquaredError(name=name),
    "auc": lambda name: AUC(name=name),
    "precision": lambda name: Precision(name=name),
    "recall": lambda name: Recall(name=name),
    "f1": _F1,
    "f1_score": _F1,
    "r2": lambda name: R2Score(name=name),
    "r2_score": lambda name: R2Score(name=name),
    "mean": lambda name: Mean(name=name),
    "sum": lambda name: Sum(name=name),
}
_ACCURACY = ("accuracy", "acc")

# Losses that decide what "accuracy" means, compared lower-case without underscores:
# Keras's names, PyTorch/ember's loss classes and functional names.
_LOSS_KINDS = {
    "binary": BinaryAccuracy,
    "sparse": SparseCategoricalAccuracy,
    "categorical": CategoricalAccuracy,
}
LOSSES: dict[str, str] = {
    **dict.fromkeys(
        (
            "binarycrossentropy",
            "bce",
            "binaryfocalcrossentropy",
            "bceloss",
            "bcewithlogitsloss",
            "binarycrossentropywithlogits",
        ),
        "binary",
    ),
    # Not CrossEntropyLoss: it also takes class probabilities, so the shapes decide.
    **dict.fromkeys(("sparsecategoricalcrossentropy", "nllloss", "nll"), "sparse"),
    **dict.fromkeys(
        ("categoricalcrossentropy", "cce", "categoricalfocalcrossentropy"), "categorical"
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
            kind = None if loss is None else LOSSES.get(_loss_key(loss))
            if kind is None:
                return _InferredAccuracy(name=identifier)
            return _LOSS_KINDS[kind](name=identifier)
        if key in NAMES:
            return NAMES[key](identifier)
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
