"""F-beta and F1 scores per class, with Keras's averages."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember._src.metrics.base import Metric, State, divide
from ember._src.metrics.inputs import binary_labels, sparse_labels, to_array, weights

_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(Metric):
    """The F-beta score, per class or averaged, from streamed confusion counts.

    Inputs: ``y_pred`` of shape ``(n, num_classes)`` (scores), with ``y_true``
    either multi-hot of the same shape or integer labels of shape ``(n,)`` /
    ``(n, 1)``; a 1-D ``y_pred`` is one binary column. Leading dimensions beyond
    the first are more samples.

    Which predictions count as positive:

    * ``threshold=None`` with several classes: the argmax of each row (exactly one
      class per sample, the first on ties);
    * ``threshold=None`` with one column (binary): ``y_pred > 0.5``;
    * ``threshold=t``: every score above ``t`` (multi-label).

    Per class, ``F = (1 + beta²)·tp / ((1 + beta²)·tp + beta²·fn + fp)``, 0 when the
    class was neither present nor predicted. ``average``: None gives one score per
    class, ``"micro"`` pools the counts of all classes, ``"macro"`` is the
    unweighted mean of the class scores and ``"weighted"`` weighs them by their
    (sample-weighted) support. Every class counts in the averages, also one absent
    from the data so far (scikit-learn: pass ``labels=range(num_classes)``).

    Args:
        average: None, "micro", "macro" or "weighted".
        beta: the weight of recall against precision (> 0).
        threshold: None (argmax) or a number (see above).

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.FBetaScore(beta=2.0, average="micro")
        >>> scores = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0, 0, 1]]
        >>> m.update_state([0, 1, 2, 2], scores)
        >>> m.result()
        tensor(0.7500)
    """

    _default_name = "fbeta_score"

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        if average not in _AVERAGES:
            raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
        if not beta > 0:
            raise ValueError(f"beta must be positive, got {beta!r}")
        self.average, self.beta = average, float(beta)
        self.threshold = None if threshold is None else float(threshold)
        super().__init__(name=name, dtype=dtype)

    def _empty_state(self) -> State:
        return {"tp": None, "fp": None, "fn": None}  # sized by the first batch

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Count one batch: labels (multi-hot or integer), scores, optional per-sample weights."""
        yt, pred, w = self._decisions(y_true, y_pred, sample_weight)
        if pred.shape[0] == 0:
            return
        known = self._state["tp"]
        if known is not None and known.shape[0] != pred.shape[1]:
            raise ValueError(
                f"{self._owner}: y_pred has {pred.shape[1]} classes but earlier batches had "
                f"{known.shape[0]}"
            )
        tp = w @ (yt * pred)
        counts = {"tp": tp, "fp": w @ pred - tp, "fn": w @ yt - tp}
        for key, value in counts.items():
            ours = self._state[key]
            self._state[key] = value if ours is None else ours + value

    def _decisions(
        self, y_true: Any, y_pred: Any, sample_weight: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Multi-hot labels, 0/1 decisions (both ``(samples, classes)``) and weights."""
        yt = to_array(self._owner, "y_true", y_true)
        yp = to_array(self._owner, "y_pred", y_pred).astype(np.float64)
        if yp.ndim == 0:
            raise ValueError(f"{self._owner}: y_pred must have a batch dimension, got a scalar")
        scores = yp[:, None] if yp.ndim == 1 else yp
        batch, num_classes = scores.shape[:-1], scores.shape[-1]
        if num_classes > 1 and yt.shape in (batch, (*batch, 1)):
            labels = sparse_labels(self._owner, yt, scores)
            onehot = np.eye(num_classes)[labels]
        elif yt.shape in (scores.shape, batch):
            onehot = binary_labels(self._owner, yt).reshape(scores.shape)
        else:
            raise ValueError(
                f"{self._owner}: y_true has shape {yt.shape} and y_pred has shape {yp.shape}; "
                f"y_true must be multi-hot of shape {scores.shape} or integer labels of shape "
                f"{batch}"
            )
        w = weights(self._owner, sample_weight, batch).reshape(-1)
        scores = scores.reshape(-1, num_classes)
        if self.threshold is not None:
            pred = scores > self.threshold
        elif num_classes == 1:
            pred = scores > 0.5
        else:
            pred = np.zeros(scores.shape, bool)
            pred[np.arange(scores.shape[0]), np.argmax(scores, axis=-1)] = True
        return onehot.reshape(-1, num_classes), pred.astype(np.float64), w

    def _compute(self) -> Any:
        tp, fp, fn = self._state["tp"], self._state["fp"], self._state["fn"]
        if tp is None:
            return np.zeros(0) if self.average is None else 0.0
        if self.average == "micro":
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        b2 = self.beta**2
        score = divide((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp)
        if self.average == "macro":
            return score.mean()
        if self.average == "weighted":
            support = tp + fn
            return divide(np.sum(support * score), np.sum(support))
        return score

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


class F1Score(FBetaScore):
    """The F1 score (``FBetaScore`` with ``beta=1``): per class or averaged.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.F1Score(average="macro")
        >>> scores = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0, 0, 1]]
        >>> m.update_state([0, 1, 2, 2], scores)
        >>> m.result()
        tensor(0.7778)
        >>> binary = ember.metrics.F1Score(threshold=0.5, average="micro")
        >>> binary.update_state([1, 0, 1, 1], [0.9, 0.6, 0.4, 0.8])
        >>> binary.result()
        tensor(0.6667)
    """

    _default_name = "f1_score"

    def __init__(
        self,
        average: str | None = None,
        threshold: float | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config
