"""Precision and recall from thresholded confusion counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember._src.metrics.base import Metric, State, divide
from ember._src.metrics.inputs import binary_labels, match_shapes, to_array, weights


class _ThresholdedCounts(Metric):
    """Weighted true/false positives and false negatives at one or more thresholds.

    Every element of ``y_true``/``y_pred`` is one binary decision (multi-label
    inputs are pooled, i.e. micro-averaged); ``class_id`` keeps one column of the
    last axis instead.
    """

    def __init__(
        self,
        thresholds: float | list[float] | None = None,
        *,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        t = 0.5 if thresholds is None else thresholds
        self._scalar = np.ndim(t) == 0
        self.thresholds = np.atleast_1d(np.asarray(t, np.float64))
        if self.thresholds.ndim != 1 or self.thresholds.size == 0:
            raise ValueError(f"thresholds must be a number or a list of numbers, got {t!r}")
        if not np.all(np.isfinite(self.thresholds)):
            raise ValueError(f"thresholds must be finite, got {t!r}")
        if class_id is not None and (isinstance(class_id, bool) or int(class_id) != class_id):
            raise ValueError(f"class_id must be an integer or None, got {class_id!r}")
        self.class_id = None if class_id is None else int(class_id)
        super().__init__(name=name, dtype=dtype)

    def _empty_state(self) -> State:
        n = self.thresholds.size
        return {"tp": np.zeros(n), "fp": np.zeros(n), "fn": np.zeros(n)}

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Count one batch: binary labels, scores, optional per-sample weights."""
        yt = to_array(self._owner, "y_true", y_true)
        yp = to_array(self._owner, "y_pred", y_pred)
        yt, yp = match_shapes(self._owner, yt, yp)
        w = weights(self._owner, sample_weight, yt.shape)
        if self.class_id is not None:
            if yt.ndim == 0 or not 0 <= self.class_id < yt.shape[-1]:
                raise ValueError(
                    f"{self._owner}: class_id={self.class_id} is out of range for inputs of "
                    f"shape {yt.shape} (classes on the last axis)"
                )
            yt, yp, w = yt[..., self.class_id], yp[..., self.class_id], w[..., self.class_id]
        labels = binary_labels(self._owner, yt)
        pos, neg = (labels * w).reshape(-1), ((1.0 - labels) * w).reshape(-1)
        predicted = yp.reshape(-1, 1).astype(np.float64) > self.thresholds
        tp, fp = pos @ predicted, neg @ predicted
        self._state["tp"] = self._state["tp"] + tp
        self._state["fp"] = self._state["fp"] + fp
        self._state["fn"] = self._state["fn"] + (pos.sum() - tp)

    def _shaped(self, values: np.ndarray) -> np.ndarray:
        return values[0] if self._scalar else values

    def get_config(self) -> dict[str, Any]:
        t = self.thresholds.tolist()
        return {
            **super().get_config(),
            "thresholds": t[0] if self._scalar else t,
            "class_id": self.class_id,
        }


class Precision(_ThresholdedCounts):
    """The weighted fraction of predicted positives (``y_pred > threshold``) that are positive.

    0 (not NaN) while nothing has been predicted positive, as in Keras.

    Args:
        thresholds: one threshold (default 0.5) or a list; a list gives one result per threshold.
        class_id: the column of the last axis to score; None pools every element.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.Precision()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> m.result()
        tensor(0.6667)
    """

    _default_name = "precision"

    def _compute(self) -> Any:
        s = self._state
        return self._shaped(divide(s["tp"], s["tp"] + s["fp"]))


class Recall(_ThresholdedCounts):
    """The weighted fraction of positives that are predicted positive (``y_pred > threshold``).

    0 (not NaN) while no positive has been seen, as in Keras.

    Args:
        thresholds: one threshold (default 0.5) or a list; a list gives one result per threshold.
        class_id: the column of the last axis to score; None pools every element.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.Recall()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> m.result()
        tensor(0.6667)
    """

    _default_name = "recall"

    def _compute(self) -> Any:
        s = self._state
        return self._shaped(divide(s["tp"], s["tp"] + s["fn"]))
