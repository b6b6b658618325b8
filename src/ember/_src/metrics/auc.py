"""Area under the ROC or precision-recall curve, from thresholded confusion counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember._src.metrics.base import Metric, State, divide
from ember._src.metrics.inputs import binary_labels, match_shapes, to_array, weights

_EPSILON = 1e-7
_CURVES = ("ROC", "PR")
_SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(Metric):
    """The area under the ROC or precision-recall curve, streamed over batches.

    As in Keras, each prediction is compared with ``num_thresholds`` fixed
    thresholds (``0 - 1e-7``, ``1/(T-1)``, …, ``(T-2)/(T-1)``, ``1 + 1e-7``) and
    only the weighted true/false positive/negative counts at those thresholds are
    kept, so memory does not grow with the data. The curve through those points
    is then integrated:

    * ROC (x: false positive rate, y: true positive rate): ``"interpolation"`` is
      the trapezoidal rule, ``"minoring"``/``"majoring"`` take the lower/upper
      y of each step;
    * PR (x: recall, y: precision): ``"interpolation"`` interpolates true and
      false positives linearly between thresholds and integrates the precision
      along that path exactly (Davis & Goadrich, 2006); ``"minoring"``/
      ``"majoring"`` as for ROC, with precision 0 where nothing is predicted.

    Predictions between two thresholds are indistinguishable, so the ROC area
    equals scikit-learn's ``roc_auc_score`` when every distinct score falls in its
    own bin, and is within half the fraction of positive/negative pairs that share
    a bin otherwise. PR interpolation is not average precision: scikit-learn's
    ``average_precision_score`` is a right-step sum, which lies between
    ``"minoring"`` and ``"majoring"``. With no positives (ROC: or no negatives) the
    area is 0, not NaN.

    Args:
        num_thresholds: how many thresholds (> 1); more is finer and slower.
        curve: "ROC" or "PR".
        summation_method: "interpolation", "minoring" or "majoring".
        thresholds: explicit thresholds in [0, 1] instead of evenly spaced ones
            (the two end points are added; ``num_thresholds`` becomes ``len + 2``).
        multi_label: with ``(n, labels)`` inputs, one curve per label and the mean
            of their areas; False pools every element into one curve.
        from_logits: ``y_pred`` are logits; a sigmoid is applied first. Otherwise
            ``y_pred`` must lie in [0, 1].

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.AUC(num_thresholds=3)
        >>> m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
        >>> m.result()  # thresholds [-1e-7, 0.5, 1+1e-7]: TPR [1, 0.5, 0], FPR [1, 0, 0]
        tensor(0.7500)
    """

    _default_name = "auc"

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: Any = None,
        thresholds: list[float] | None = None,
        multi_label: bool = False,
        from_logits: bool = False,
    ) -> None:
        if str(curve).upper() not in _CURVES:
            raise ValueError(f"curve must be one of {_CURVES}, got {curve!r}")
        if summation_method not in _SUMMATIONS:
            raise ValueError(
                f"summation_method must be one of {_SUMMATIONS}, got {summation_method!r}"
            )
        if thresholds is not None:
            inner = np.sort(np.asarray(thresholds, np.float64).reshape(-1))
            if not np.all((inner >= 0) & (inner <= 1)):
                raise ValueError(f"thresholds must lie in [0, 1], got {thresholds!r}")
            num_thresholds = inner.size + 2
        else:
            if isinstance(num_thresholds, bool) or int(num_thresholds) != num_thresholds:
                raise ValueError(f"num_thresholds must be an integer, got {num_thresholds!r}")
            if num_thresholds < 2:
                raise ValueError(f"num_thresholds must be > 1, got {num_thresholds}")
            inner = np.arange(1, num_thresholds - 1) / (num_thresholds - 1)
        self.num_thresholds = int(num_thresholds)
        self.curve, self.summation_method = str(curve).upper(), summation_method
        self.multi_label, self.from_logits = bool(multi_label), bool(from_logits)
        self._explicit = thresholds is not None
        self._thresholds = np.concatenate([[-_EPSILON], inner, [1 + _EPSILON]])
        super().__init__(name=name, dtype=dtype)

    @property
    def thresholds(self) -> list[float]:
        """The thresholds predictions are compared with, ascending."""
        return self._thresholds.tolist()

    def _empty_state(self) -> State:
        # Weighted positives/negatives per bin: bin k holds the predictions above
        # exactly the k lowest thresholds. Rows are labels (multi_label), else one row.
        return {"pos": None, "neg": None}

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Count one batch: binary labels, scores, optional per-sample weights."""
        yt = to_array(self._owner, "y_true", y_true)
        yp = to_array(self._owner, "y_pred", y_pred).astype(np.float64)
        yt, yp = match_shapes(self._owner, yt, yp)
        labels = binary_labels(self._owner, yt)
        w = weights(self._owner, sample_weight, yt.shape)
        if self.from_logits:
            yp = 0.5 * (1.0 + np.tanh(0.5 * yp))  # the sigmoid, without overflow
        inside = (yp >= 0) & (yp <= 1)
        if not np.all(inside):
            hint = (
                "logits must not be NaN" if self.from_logits else "pass from_logits=True for logits"
            )
            raise ValueError(
                f"{self._owner}: y_pred must be probabilities in [0, 1], found "
                f"{yp[~inside][:3].tolist()}; {hint}"
            )
        if self.multi_label:
            if yt.ndim != 2:
                raise ValueError(
                    f"{self._owner}: multi_label=True needs inputs of shape (n, labels), got "
                    f"{yt.shape}"
                )
            rows = yt.shape[1]
            known = self._state["pos"]
            if known is not None and known.shape[0] != rows:
                raise ValueError(
                    f"{self._owner}: inputs have {rows} labels but earlier batches had "
                    f"{known.shape[0]}"
                )
            row = np.broadcast_to(np.arange(rows), yt.shape)
        else:
            rows, row = 1, np.zeros(yt.shape, np.int64)
        nbins = self.num_thresholds + 1
        index = (row * nbins + np.searchsorted(self._thresholds, yp, side="left")).reshape(-1)
        size = rows * nbins
        pos = np.bincount(index, (labels * w).reshape(-1), minlength=size).reshape(rows, nbins)
        neg = np.bincount(index, ((1 - labels) * w).reshape(-1), minlength=size)
        for key, value in (("pos", pos), ("neg", neg.reshape(rows, nbins))):
            ours = self._state[key]
            self._state[key] = value if ours is None else ours + value

    def _compute(self) -> Any:
        if self._state["pos"] is None:
            return 0.0
        # Counts at each threshold: a bin above threshold j is any bin k > j.
        tp = np.cumsum(self._state["pos"][:, ::-1], axis=1)[:, ::-1][:, 1:]
        fp = np.cumsum(self._state["neg"][:, ::-1], axis=1)[:, ::-1][:, 1:]
        fn = self._state["pos"].sum(axis=1, keepdims=True) - tp
        tn = self._state["neg"].sum(axis=1, keepdims=True) - fp
        if self.curve == "PR" and self.summation_method == "interpolation":
            areas = _interpolated_pr_area(tp, fp, fn)
        else:
            if self.curve == "ROC":
                x, y = divide(fp, fp + tn), divide(tp, tp + fn)
            else:
                x, y = divide(tp, tp + fn), divide(tp, tp + fp)
            left, right = y[:, :-1], y[:, 1:]
            if self.summation_method == "interpolation":
                heights = (left + right) / 2
            elif self.summation_method == "minoring":
                heights = np.minimum(left, right)
            else:
                heights = np.maximum(left, right)
            areas = np.sum((x[:, :-1] - x[:, 1:]) * heights, axis=1)
        return areas.mean()

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "thresholds": self.thresholds[1:-1] if self._explicit else None,
            "multi_label": self.multi_label,
            "from_logits": self.from_logits,
        }


def _interpolated_pr_area(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """∫ precision d(recall) with tp linear in p = tp + fp between thresholds.

    On a segment ``tp = slope·p + intercept``, precision is ``slope + intercept/p``
    and recall ``tp/P``, so the segment's area is
    ``slope·(Δtp + intercept·ln(p_hi/p_lo)) / P``. Where the lower end predicts
    nothing (``p_lo = 0``) the precision is taken as constant, ``slope``.
    """
    p = tp + fp
    dtp, dp = tp[:, :-1] - tp[:, 1:], p[:, :-1] - p[:, 1:]
    slope = divide(dtp, dp)
    intercept = tp[:, 1:] - slope * p[:, 1:]
    both = (p[:, :-1] > 0) & (p[:, 1:] > 0)
    log_ratio = np.log(divide(p[:, :-1], p[:, 1:]), where=both, out=np.zeros(both.shape))
    positives = tp[:, 0] + fn[:, 0]
    return divide(np.sum(slope * (dtp + intercept * log_ratio), axis=1), positives)
