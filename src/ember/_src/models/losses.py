"""Losses for ``Model.compile``: Keras's names, per-sample values, and ember.nn losses.

A loss here maps ``(y_true, y_pred)`` (Keras's order) to one value per sample, so the
trainer can weight samples before taking ``sum(w * loss) / batch_size`` as Keras does.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from ember._src.core.tensor import Tensor
from ember._src.nn import functional as F
from ember._src.nn.module import Module


def _per_sample(values: Tensor) -> Tensor:
    """Mean over every dimension but the batch dimension."""
    return values.reshape(values.shape[0], -1).mean(dim=1) if values.ndim > 1 else values


def _check_shapes(name: str, y_true: Tensor, y_pred: Tensor) -> None:
    if tuple(y_true.shape) != tuple(y_pred.shape):
        raise ValueError(
            f"{name}: y_true has shape {tuple(y_true.shape)} and y_pred has shape "
            f"{tuple(y_pred.shape)}; they must be equal"
        )


class Loss:
    """A named per-sample loss ``fn(y_true, y_pred) -> (batch,)``.

    Args:
        from_logits: cross-entropies only: ``y_pred`` holds logits, not probabilities.

    Example:
        >>> import ember
        >>> loss = SparseCategoricalCrossentropy(from_logits=True)
        >>> loss(ember.tensor([0, 1]), ember.tensor([[2.0, 0.0], [0.0, 2.0]])).shape
        (2,)
    """

    name = "loss"

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = from_logits

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true = _match(y_true, y_pred)
        _check_shapes(self.name, y_true, y_pred)
        return _per_sample((y_pred - y_true) ** 2)


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true = _match(y_true, y_pred)
        _check_shapes(self.name, y_true, y_pred)
        return _per_sample((y_pred - y_true).abs())


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true = _match(y_true, y_pred)
        _check_shapes(self.name, y_true, y_pred)
        if self.from_logits:
            values = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
        else:
            values = F.binary_cross_entropy(y_pred, y_true, reduction="none")
        return _per_sample(values)


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true = _match(y_true, y_pred)
        _check_shapes(self.name, y_true, y_pred)
        return -(y_true * _log_probs(y_pred, self.from_logits)).sum(dim=-1)


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        labels = y_true.long()
        if labels.ndim == y_pred.ndim:  # (n, 1) labels, as Keras allows
            labels = labels.squeeze(-1)
        if tuple(labels.shape) != tuple(y_pred.shape[:-1]):
            raise ValueError(
                f"{self.name}: labels of shape {tuple(y_true.shape)} don't match scores of "
                f"shape {tuple(y_pred.shape)}; expected labels of shape {tuple(y_pred.shape[:-1])}"
            )
        picked = _log_probs(y_pred, self.from_logits).gather(-1, labels.unsqueeze(-1))
        return -picked.squeeze(-1)


def _log_probs(y_pred: Tensor, from_logits: bool) -> Tensor:
    if from_logits:
        return F.log_softmax(y_pred, dim=-1)
    # Probabilities: renormalize and clip away from 0, as Keras does.
    probs = y_pred / y_pred.sum(dim=-1, keepdim=True)
    return probs.clamp(min=1e-7, max=1 - 1e-7).log()


def _match(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Cast targets to the prediction's dtype and drop/add a trailing 1 like Keras."""
    y_true = y_true.to(y_pred.dtype)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    return y_true


_NAMES: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "cce": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


class _ModuleLoss(Loss):
    """An ``ember.nn`` loss module (``input, target`` order), evaluated per sample."""

    def __init__(self, module: Module) -> None:
        super().__init__()
        self.module = module
        self.name = type(module).__name__

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        saved = self.module.reduction
        self.module.reduction = "none"
        try:
            values = self.module(y_pred, y_true)
        finally:
            self.module.reduction = saved
        return _per_sample(values)


class _FunctionLoss(Loss):
    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn
        self.name = getattr(fn, "__name__", "loss")

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        values = self.fn(y_true, y_pred)
        return _per_sample(values) if values.ndim else values.reshape(1).expand(y_pred.shape[0])


def get(identifier: Any) -> Loss:
    """Resolve what ``compile(loss=...)`` accepts into a per-sample :class:`Loss`.

    Accepts a name (``"mse"``, ``"sparse_categorical_crossentropy"``, ...), a
    :class:`Loss`, an ``ember.nn`` loss module (``nn.CrossEntropyLoss()``, called
    as ``module(y_pred, y_true)``) or a function ``fn(y_true, y_pred)``.

    Example:
        >>> get("mse")
        MeanSquaredError(from_logits=False)
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower())
        if cls is None:
            close = difflib.get_close_matches(identifier.lower(), _NAMES, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"unknown loss {identifier!r}.{hint} Known names: {', '.join(sorted(_NAMES))}; "
                "or pass a Loss, an ember.nn loss module or a function fn(y_true, y_pred)"
            )
        return cls()
    if isinstance(identifier, Module):
        if not hasattr(identifier, "reduction"):
            raise TypeError(
                f"{type(identifier).__name__} is not a loss module (it has no 'reduction'); "
                "pass a loss name, an ember.nn loss or a function fn(y_true, y_pred)"
            )
        return _ModuleLoss(identifier)
    if callable(identifier):
        return _FunctionLoss(identifier)
    raise TypeError(f"can't use {identifier!r} as a loss")


__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "get",
]
