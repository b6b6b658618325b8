"""Regression metrics: mean absolute/squared error, its root, and R²."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ember._src.metrics.base import MeanOfValues, Metric, State, divide
from ember._src.metrics.inputs import match_shapes, to_array, weights


def _errors(owner: str, y_true: Any, y_pred: Any) -> np.ndarray:
    yt = to_array(owner, "y_true", y_true)
    yp = to_array(owner, "y_pred", y_pred)
    yt, yp = match_shapes(owner, yt, yp)
    return yp.astype(np.float64) - yt.astype(np.float64)


class MeanAbsoluteError(MeanOfValues):
    """The weighted mean of ``|y_pred - y_true|`` over every element.

    With ``(n, outputs)`` inputs and per-sample weights this is scikit-learn's
    ``mean_absolute_error`` (uniform average over outputs).

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.MeanAbsoluteError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> m.result()
        tensor(0.2500)
    """

    _default_name = "mean_absolute_error"

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return np.abs(_errors(self._owner, y_true, y_pred))


class MeanSquaredError(MeanOfValues):
    """The weighted mean of ``(y_pred - y_true)²`` over every element.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.MeanSquaredError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> m.result()
        tensor(0.2500)
    """

    _default_name = "mean_squared_error"

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return np.square(_errors(self._owner, y_true, y_pred))


class RootMeanSquaredError(MeanSquaredError):
    """The square root of the weighted mean squared error over everything seen.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.RootMeanSquaredError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    _default_name = "root_mean_squared_error"

    def _compute(self) -> Any:
        return np.sqrt(super()._compute())


_AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")


class R2Score(Metric):
    """The coefficient of determination, streamed without keeping the samples.

    Per output it keeps the total weight, the weighted mean of ``y_true``, the
    weighted sum of squared deviations from that mean (combined across batches
    with Chan et al.'s parallel update, which stays exact where "sum of squares
    minus square of sums" would cancel) and the weighted sum of squared errors.
    ``R² = 1 - SSE / SST`` per output; an output whose targets are constant scores
    1 if predicted exactly and 0 otherwise (scikit-learn's ``force_finite``).

    Args:
        class_aggregation: None (one score per output), "uniform_average" or
            "variance_weighted_average" (weighted by each output's SST).
        num_regressors: for the adjusted R², the number of independent variables
            (0: plain R²). With ``n`` samples it is
            ``1 - (1 - R²)(n - 1)/(n - num_regressors - 1)``; when
            ``n <= num_regressors + 1`` it falls back to the plain R² with a warning.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.R2Score()
        >>> m.update_state([[1.0], [4.0], [3.0]], [[2.0], [4.0], [4.0]])
        >>> m.result()
        tensor(0.5714)
    """

    _default_name = "r2_score"

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        if class_aggregation not in _AGGREGATIONS:
            raise ValueError(
                f"class_aggregation must be one of {_AGGREGATIONS}, got {class_aggregation!r}"
            )
        if isinstance(num_regressors, bool) or int(num_regressors) != num_regressors:
            raise ValueError(f"num_regressors must be an integer >= 0, got {num_regressors!r}")
        if num_regressors < 0:
            raise ValueError(f"num_regressors must be an integer >= 0, got {num_regressors!r}")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        super().__init__(name=name, dtype=dtype)

    def _empty_state(self) -> State:
        # Per output (sized by the first batch): total weight, weighted mean of
        # y_true, weighted squared deviations from it, weighted squared errors;
        # and the number of samples, for the adjusted score.
        return {"weight": None, "mean": None, "sst": None, "sse": None, "samples": np.zeros(())}

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulate one batch of targets and predictions, ``(n,)`` or ``(n, outputs)``."""
        yt = to_array(self._owner, "y_true", y_true)
        yp = to_array(self._owner, "y_pred", y_pred)
        yt, yp = match_shapes(self._owner, yt, yp)
        if yt.ndim not in (1, 2):
            raise ValueError(
                f"{self._owner}: inputs must have shape (n,) or (n, outputs), got {yt.shape}"
            )
        if yt.ndim == 1:
            yt, yp = yt[:, None], yp[:, None]
        yt, yp = yt.astype(np.float64), yp.astype(np.float64)
        w = weights(self._owner, sample_weight, yt.shape)
        if yt.shape[0] == 0:
            return
        known = self._state["weight"]
        if known is not None and known.shape[0] != yt.shape[1]:
            raise ValueError(
                f"{self._owner}: inputs have {yt.shape[1]} outputs but earlier batches had "
                f"{known.shape[0]}"
            )
        weight = w.sum(axis=0)
        mean = divide((w * yt).sum(axis=0), weight)
        batch = {
            "weight": weight,
            "mean": mean,
            "sst": (w * np.square(yt - mean)).sum(axis=0),
            "sse": (w * np.square(yp - yt)).sum(axis=0),
            "samples": np.asarray(float(yt.shape[0])),
        }
        self._state = _combine(self._state, batch) if known is not None else batch

    def _merge(self, other: Metric) -> None:
        if other._state["weight"] is None:
            return
        if self._state["weight"] is None:
            self._state = {k: np.array(v) for k, v in other._state.items()}
        else:
            self._state = _combine(self._state, other._state)

    def _compute(self) -> Any:
        s = self._state
        if s["weight"] is None:
            return np.zeros(0) if self.class_aggregation is None else 0.0
        sse, sst = s["sse"], s["sst"]
        score = np.where(sst > 0, 1 - divide(sse, sst), np.where(sse == 0, 1.0, 0.0))
        if self.class_aggregation == "uniform_average":
            score = score.mean()
        elif self.class_aggregation == "variance_weighted_average":
            score = divide(np.sum(sst * score), np.sum(sst)) if np.sum(sst) > 0 else score.mean()
        if self.num_regressors:
            n, p = float(s["samples"]), self.num_regressors
            if n - p - 1 <= 0:
                warnings.warn(
                    f"{self._owner}: adjusted R² needs more samples ({n:.0f}) than "
                    f"num_regressors + 1 ({p + 1}); returning the plain R²",
                    RuntimeWarning,
                    stacklevel=3,
                )
            else:
                score = 1 - (1 - score) * (n - 1) / (n - p - 1)
        return score

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }


def _combine(a: State, b: State) -> State:
    """Pool two (weight, mean, sst, sse) summaries (Chan, Golub & LeVeque's update)."""
    weight = a["weight"] + b["weight"]
    delta = b["mean"] - a["mean"]
    share = divide(b["weight"], weight)
    return {
        "weight": weight,
        "mean": a["mean"] + delta * share,
        "sst": a["sst"] + b["sst"] + np.square(delta) * a["weight"] * share,
        "sse": a["sse"] + b["sse"],
        "samples": a["samples"] + b["samples"],
    }
