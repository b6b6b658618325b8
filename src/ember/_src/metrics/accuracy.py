"""Accuracy metrics: exact match, binary, categorical, sparse categorical and top-k."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember._src.metrics.base import MeanOfValues, Metric, State
from ember._src.metrics.inputs import class_scores, match_shapes, sparse_labels, to_array


class Accuracy(MeanOfValues):
    """How often ``y_pred`` equals ``y_true`` exactly, element by element.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.Accuracy()
        >>> m.update_state([1, 2, 3, 4], [0, 2, 3, 4])
        >>> m.result()
        tensor(0.7500)
        >>> m.reset_state()
        >>> m.update_state([1, 2, 3, 4], [0, 2, 3, 4], sample_weight=[1, 1, 0, 0])
        >>> m.result()
        tensor(0.5000)
    """

    _default_name = "accuracy"

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        yt = to_array(self._owner, "y_true", y_true)
        yp = to_array(self._owner, "y_pred", y_pred)
        yt, yp = match_shapes(self._owner, yt, yp)
        return (yt == yp).astype(np.float64)


class BinaryAccuracy(MeanOfValues):
    """How often ``y_pred > threshold`` equals the binary label ``y_true``.

    Args:
        threshold: predictions strictly above it count as 1 (use 0 for logits).

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.BinaryAccuracy()
        >>> m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
        >>> m.result()
        tensor(0.7500)
    """

    _default_name = "binary_accuracy"

    def __init__(self, name: str | None = None, dtype: Any = None, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)
        super().__init__(name=name, dtype=dtype)

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        yt = to_array(self._owner, "y_true", y_true)
        yp = to_array(self._owner, "y_pred", y_pred)
        yt, yp = match_shapes(self._owner, yt, yp)
        return (yt.astype(np.float64) == (yp > self.threshold)).astype(np.float64)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(MeanOfValues):
    """How often the argmax of ``y_pred`` is the argmax of the one-hot ``y_true``.

    ``y_pred`` may be probabilities or logits (the argmax is the same). Ties in
    ``y_pred`` go to the first class, as ``argmax`` does.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.CategoricalAccuracy()
        >>> m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    _default_name = "categorical_accuracy"

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        yt = to_array(self._owner, "y_true", y_true)
        yp = class_scores(self._owner, to_array(self._owner, "y_pred", y_pred))
        if yt.shape != yp.shape:
            raise ValueError(
                f"{self._owner}: y_true has shape {yt.shape} and y_pred has shape {yp.shape}; "
                "one-hot y_true must have y_pred's shape (for integer labels use "
                "SparseCategoricalAccuracy)"
            )
        return (np.argmax(yt, axis=-1) == np.argmax(yp, axis=-1)).astype(np.float64)


class SparseCategoricalAccuracy(MeanOfValues):
    """How often the argmax of ``y_pred`` is the integer label ``y_true``.

    ``y_pred`` has shape ``(..., num_classes)`` (logits or probabilities) and
    ``y_true`` shape ``(...)`` or ``(..., 1)``.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.SparseCategoricalAccuracy()
        >>> m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    _default_name = "sparse_categorical_accuracy"

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        yp = class_scores(self._owner, to_array(self._owner, "y_pred", y_pred))
        labels = sparse_labels(self._owner, to_array(self._owner, "y_true", y_true), yp)
        return (labels == np.argmax(yp, axis=-1)).astype(np.float64)


def _in_top_k(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Whether each label's score is among the ``k`` largest of its row.

    Ties count in the label's favour (fewer than ``k`` scores strictly above
    it), as TensorFlow's ``in_top_k``; a non-finite label score is a miss.
    """
    target = np.take_along_axis(scores, labels[..., None], axis=-1)
    above = np.sum(scores > target, axis=-1)
    return ((above < k) & np.isfinite(target[..., 0])).astype(np.float64)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


class TopKCategoricalAccuracy(MeanOfValues):
    """How often the one-hot target class is among the ``k`` highest scores.

    Args:
        k: how many of the top scores count as a hit.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.TopKCategoricalAccuracy(k=1)
        >>> m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    _default_name = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None) -> None:
        self.k = _check_k(k)
        super().__init__(name=name, dtype=dtype)

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        yt = to_array(self._owner, "y_true", y_true)
        yp = class_scores(self._owner, to_array(self._owner, "y_pred", y_pred))
        if yt.shape != yp.shape:
            raise ValueError(
                f"{self._owner}: y_true has shape {yt.shape} and y_pred has shape {yp.shape}; "
                "one-hot y_true must have y_pred's shape (for integer labels use "
                "SparseTopKCategoricalAccuracy)"
            )
        return _in_top_k(yp, np.argmax(yt, axis=-1), self.k)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(MeanOfValues):
    """How often the integer label ``y_true`` is among the ``k`` highest scores.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.SparseTopKCategoricalAccuracy(k=1)
        >>> m.update_state([2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    _default_name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None) -> None:
        self.k = _check_k(k)
        super().__init__(name=name, dtype=dtype)

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        yp = class_scores(self._owner, to_array(self._owner, "y_pred", y_pred))
        labels = sparse_labels(self._owner, to_array(self._owner, "y_true", y_true), yp)
        return _in_top_k(yp, labels, self.k)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


_KINDS: dict[str, type[MeanOfValues]] = {
    "binary": BinaryAccuracy,
    "categorical": CategoricalAccuracy,
    "sparse_categorical": SparseCategoricalAccuracy,
}


def kind_from_shapes(y_true_shape: tuple[int, ...], y_pred_shape: tuple[int, ...]) -> str:
    """Keras 3's rule for "accuracy" without a telling loss, from the first batch's shapes.

    A last dimension of 1 in ``y_pred`` means binary; ``y_true`` of lower rank, or
    with last dimension 1 against several classes, means sparse; else
    categorical. One difference: a 1-D ``y_pred`` is taken as ``(n, 1)`` (binary),
    where Keras would take the whole batch as one sample's class scores.
    """
    if len(y_pred_shape) <= 1 or y_pred_shape[-1] == 1:
        return "binary"
    if len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1:] == (1,)):
        return "sparse_categorical"
    return "categorical"


class _InferredAccuracy(Metric):
    """``get("accuracy")`` when no loss decides: the kind comes from the first batch's shapes.

    Once the first (non-empty) batch has picked binary, categorical or sparse
    categorical accuracy, the choice stays, across ``reset_state`` too.
    """

    _default_name = "accuracy"

    def __init__(self, name: str | None = None, dtype: Any = None, kind: str | None = None) -> None:
        if kind is not None and kind not in _KINDS:
            raise ValueError(f"kind must be None or one of {sorted(_KINDS)}, got {kind!r}")
        self.kind = kind
        super().__init__(name=name, dtype=dtype)
        self._inner: Metric | None = None if kind is None else self._build(kind)

    def _build(self, kind: str) -> Metric:
        return _KINDS[kind](name=self.name, dtype=self.dtype)

    def _empty_state(self) -> State:
        return {}

    def reset_state(self) -> None:
        if self._inner is not None:
            self._inner.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if self._inner is None:
            yt = to_array(self._owner, "y_true", y_true)
            yp = to_array(self._owner, "y_pred", y_pred)
            if yp.size == 0:
                return
            kind = kind_from_shapes(yt.shape, yp.shape)
            inner = self._build(kind)
            inner.update_state(yt, yp, sample_weight)
            self._inner, self.kind = inner, kind
            return
        self._inner.update_state(y_true, y_pred, sample_weight)

    def _compute(self) -> Any:
        return 0.0 if self._inner is None else self._inner._compute()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind}

    def _check_mergeable(self, other: Any) -> None:
        # The kinds may differ in the configs while one is undecided; _signature checks them.
        if type(other) is not type(self) or other.dtype != self.dtype:
            super()._check_mergeable(other)

    def _signature(self) -> dict[str, Any]:
        return {} if self.kind is None else {"the kind": self.kind}

    def _merge(self, other: Metric) -> None:
        assert isinstance(other, _InferredAccuracy)
        if other._inner is None:
            return
        if self._inner is None:
            self.kind = other.kind
            self._inner = self._build(other.kind)  # type: ignore[arg-type]
        self._inner.merge_state([other._inner])
