"""Turning what users pass to ``update_state`` into checked float64 NumPy arrays.

Metrics run on the host: every input is copied to NumPy once, and the checks here
raise errors that name the metric, the argument and its shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember._src.core.tensor import Tensor


def to_array(owner: str, what: str, x: Any) -> np.ndarray:
    """``x`` (a Tensor, NumPy array, list or number) as a NumPy array of numbers."""
    if x is None:
        raise TypeError(f"{owner}: {what} is None; pass a Tensor, NumPy array or list")
    a = x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if a.dtype.kind == "V" and a.dtype.itemsize == 2:  # bfloat16 from ml_dtypes
        a = a.astype(np.float32)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{owner}: {what} must hold real numbers or booleans, got an array of dtype {a.dtype}"
        )
    return a


def match_shapes(owner: str, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, ...]:
    """``y_true`` and ``y_pred`` with equal shapes, a trailing 1 on either dropped.

    Nothing else broadcasts: ``(n,)`` against ``(n, 1)`` is fine, ``(n,)`` against
    ``(n, 3)`` is an error rather than an ``(n, n)`` comparison.
    """
    if y_true.shape == y_pred.shape:
        return y_true, y_pred
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_pred = y_pred[..., 0]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{owner}: y_true has shape {y_true.shape} and y_pred has shape {y_pred.shape}; "
            "they must be equal (a trailing dimension of size 1 on either is ignored)"
        )
    return y_true, y_pred


def weights(owner: str, sample_weight: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``sample_weight`` broadcast to ``shape`` (all ones when it is None).

    Weights line up with the leading dimensions: one per sample ``(n,)``, one per
    element, or anything between, with 1s broadcasting; a trailing 1 beyond the
    values' rank is dropped (``(n, 1)`` weights for ``(n,)`` values).
    """
    if sample_weight is None:
        return np.ones(shape)
    w = to_array(owner, "sample_weight", sample_weight).astype(np.float64)
    if w.ndim == len(shape) + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim > len(shape) or any(a not in (1, b) for a, b in zip(w.shape, shape)):
        raise ValueError(
            f"{owner}: sample_weight has shape {w.shape} but the values it weights have shape "
            f"{shape}; pass a scalar, one weight per sample {shape[:1]}, or weights of shape "
            f"{shape}"
        )
    return np.broadcast_to(w.reshape(w.shape + (1,) * (len(shape) - w.ndim)), shape)


def binary_labels(owner: str, y_true: np.ndarray) -> np.ndarray:
    """``y_true`` as float 0/1 labels; any other value is an error."""
    y = y_true.astype(np.float64)
    if not np.all((y == 0) | (y == 1)):
        bad = y[(y != 0) & (y != 1)][:3]
        raise ValueError(
            f"{owner}: y_true must hold binary labels 0 or 1 (or booleans), found {bad.tolist()}"
        )
    return y


def class_scores(owner: str, y_pred: np.ndarray) -> np.ndarray:
    """``y_pred`` whose last axis holds one score per class."""
    if y_pred.ndim == 0 or y_pred.shape[-1] == 0:
        raise ValueError(
            f"{owner}: y_pred has shape {y_pred.shape}; its last dimension must hold one "
            "score per class"
        )
    return y_pred.astype(np.float64, copy=False)


def sparse_labels(owner: str, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Integer class labels for scores ``y_pred`` of shape ``(..., num_classes)``.

    ``y_true`` has shape ``y_pred.shape[:-1]``, optionally with a trailing 1, and
    holds whole numbers in ``[0, num_classes)``.
    """
    batch = y_pred.shape[:-1]
    if y_true.shape == (*batch, 1):
        y_true = y_true[..., 0]
    if y_true.shape != batch:
        raise ValueError(
            f"{owner}: y_true has shape {y_true.shape} and y_pred has shape {y_pred.shape}; "
            f"integer labels need shape {batch} (or {(*batch, 1)}) for these scores"
        )
    num_classes = y_pred.shape[-1]
    bad = (np.floor(y_true) != y_true) | (y_true < 0) | (y_true >= num_classes)  # NaN too
    if bad.any():
        raise ValueError(
            f"{owner}: y_true must hold integer class labels in [0, {num_classes}) for "
            f"y_pred with {num_classes} classes, found {y_true[bad][:3].tolist()}"
        )
    return y_true.astype(np.int64)
