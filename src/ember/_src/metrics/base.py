"""The Metric base class and the weighted reductions the other metrics build on."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core.autograd import no_grad
from ember._src.core.creation import as_tensor, tensor
from ember._src.core.tensor import Tensor
from ember._src.metrics.inputs import to_array, weights

State = dict[str, Any]  # name -> float64 array, or None until the first update sizes it


def divide(a: Any, b: Any) -> np.ndarray:
    """``a / b`` elementwise, 0 where ``b`` is 0 (Keras's ``divide_no_nan``)."""
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return np.divide(a, b, out=np.zeros(a.shape), where=b != 0)


class Metric:
    """A streaming metric: ``update_state`` per batch, ``result`` at any time.

    State lives on the host as float64 NumPy arrays, so a metric costs nothing
    on the autograd tape and accumulates without float32 round-off. Subclasses
    define ``_empty_state``, ``update_state`` and ``_compute``; states that add
    up merge by addition.

    Args:
        name: the name the metric is logged under (default: the class's Keras name).
        dtype: the floating dtype of ``result()`` (default: ember's default dtype).
    """

    _default_name = "metric"

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.name = self._default_name if name is None else name
        self.dtype = dt.get_default_dtype() if dtype is None else dt.to_dtype(dtype)
        if not self.dtype.is_floating_point:
            raise ValueError(f"a metric's dtype must be floating point, got {self.dtype}")
        self._state: State = self._empty_state()

    # ----------------------------------------------------------------- subclass hooks
    def _empty_state(self) -> State:
        raise NotImplementedError

    def _compute(self) -> Any:
        raise NotImplementedError

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        """Accumulate one batch."""
        raise NotImplementedError

    # ----------------------------------------------------------------- public API
    def result(self) -> Tensor:
        """The metric over everything accumulated since the last reset."""
        return tensor(np.asarray(self._compute(), np.float64), dtype=self.dtype)

    def reset_state(self) -> None:
        """Forget everything accumulated (call at the start of each epoch)."""
        self._state = self._empty_state()

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        """``update_state(*args, **kwargs)``, then ``result()`` (it accumulates, as in Keras)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def merge_state(self, metrics: Metric | Iterable[Metric]) -> None:
        """Add the state of other metrics of the same class and config into this one.

        Useful to combine metrics computed on shards of the data, e.g. one per worker.
        """
        others = [metrics] if isinstance(metrics, Metric) else list(metrics)
        for other in others:
            self._check_mergeable(other)
        seen: dict[str, Any] = {}
        for metric in (self, *others):
            for key, value in metric._signature().items():
                if seen.setdefault(key, value) != value:
                    raise ValueError(
                        f"{self._owner}.merge_state: {key} is {seen[key]} in one metric and "
                        f"{value} in another (different numbers of classes?)"
                    )
        for other in others:
            self._merge(other)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serializable: ``type(m)(**m.get_config())``."""
        return {"name": self.name, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        """A new metric (with empty state) from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # ----------------------------------------------------------------- helpers
    @property
    def _owner(self) -> str:
        """How error messages name this metric."""
        kind = type(self).__name__
        return kind if self.name == self._default_name else f"{kind} {self.name!r}"

    def _check_mergeable(self, other: Any) -> None:
        if type(other) is not type(self):
            raise TypeError(
                f"{self._owner}.merge_state: can only merge metrics of type "
                f"{type(self).__name__}, got {type(other).__name__}"
            )
        mine, theirs = self.get_config(), other.get_config()
        mine.pop("name"), theirs.pop("name")
        if mine != theirs:
            raise ValueError(
                f"{self._owner}.merge_state: configs differ ({mine} vs {theirs}); only "
                "metrics built with the same arguments can be merged"
            )

    def _signature(self) -> dict[str, Any]:
        """What must agree between merged metrics beyond their config: state shapes."""
        return {f"the shape of {k!r}": np.shape(v) for k, v in self._state.items() if v is not None}

    def _merge(self, other: Metric) -> None:
        for key, value in other._state.items():
            if value is None:
                continue
            ours = self._state[key]
            self._state[key] = np.array(value) if ours is None else ours + value


class _WeightedMean(Metric):
    """Σ w·v / Σ w over everything seen, with ``w`` the broadcast sample weights."""

    def _empty_state(self) -> State:
        return {"total": np.zeros(()), "count": np.zeros(())}

    def _add(self, values: np.ndarray, sample_weight: Any) -> None:
        w = weights(self._owner, sample_weight, values.shape)
        total, count = np.sum(w * values), np.sum(w)
        self._state["total"] = self._state["total"] + total
        self._state["count"] = self._state["count"] + count

    def _compute(self) -> Any:
        return divide(self._state["total"], self._state["count"])


class Mean(_WeightedMean):
    """The (weighted) mean of all values seen.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.Mean()
        >>> m.update_state([1.0, 3.0, 5.0, 7.0])
        >>> m.result()
        tensor(4.)
        >>> m.update_state([10.0, 20.0], sample_weight=[1.0, 0.0])
        >>> m.result()
        tensor(5.2000)
    """

    _default_name = "mean"

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Add ``values`` (any shape), each weighted by ``sample_weight`` (broadcast)."""
        self._add(to_array(self._owner, "values", values).astype(np.float64), sample_weight)


class Sum(Metric):
    """The (weighted) sum of all values seen.

    Example:
        >>> import ember.metrics
        >>> m = ember.metrics.Sum()
        >>> m.update_state([1.0, 3.0, 5.0, 7.0], sample_weight=[1.0, 0.0, 0.0, 1.0])
        >>> m.result()
        tensor(8.)
    """

    _default_name = "sum"

    def _empty_state(self) -> State:
        return {"total": np.zeros(())}

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Add ``values`` (any shape), each weighted by ``sample_weight`` (broadcast)."""
        v = to_array(self._owner, "values", values).astype(np.float64)
        self._state["total"] = self._state["total"] + np.sum(
            weights(self._owner, sample_weight, v.shape) * v
        )

    def _compute(self) -> Any:
        return self._state["total"]


class MeanOfValues(_WeightedMean):
    """Base of metrics that average a value per element of ``(y_true, y_pred)``.

    Subclasses define ``_values(y_true, y_pred)``: the per-element (or per-sample)
    values as a float64 array, whose leading dimensions the sample weights follow.
    """

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulate one batch: targets, predictions and optional per-sample weights."""
        self._add(self._values(y_true, y_pred), sample_weight)

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        raise NotImplementedError


class MeanMetricWrapper(MeanOfValues):
    """The weighted mean of ``fn(y_true, y_pred)`` over all batches.

    ``fn`` receives ember Tensors (under ``no_grad``) and returns one value per
    sample or per element, as a Tensor or array. Keyword arguments are passed on
    to ``fn``.

    Example:
        >>> import ember, ember.metrics
        >>> def abs_error(y_true, y_pred):
        ...     return ember.abs(y_true - y_pred)
        >>> m = ember.metrics.MeanMetricWrapper(abs_error)
        >>> m.update_state([1.0, 2.0], [1.5, 2.0])
        >>> m.name, m.result()
        ('abs_error', tensor(0.2500))
    """

    def __init__(
        self, fn: Callable[..., Any], name: str | None = None, dtype: Any = None, **kwargs: Any
    ) -> None:
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper needs a function, got {type(fn).__name__}")
        self._fn, self._fn_kwargs = fn, kwargs
        super().__init__(
            name=getattr(fn, "__name__", "mean") if name is None else name, dtype=dtype
        )

    def _values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        yt = as_tensor(to_array(self._owner, "y_true", y_true))
        yp = as_tensor(to_array(self._owner, "y_pred", y_pred))
        with no_grad():
            out = self._fn(yt, yp, **self._fn_kwargs)
        return to_array(self._owner, f"the output of {self.name}", out).astype(np.float64)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._fn_kwargs}

    def _check_mergeable(self, other: Any) -> None:
        super()._check_mergeable(other)
        if other._fn is not self._fn:
            raise ValueError(f"{self._owner}.merge_state: the other metric wraps another function")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        raise TypeError(
            "a MeanMetricWrapper's function cannot be restored from a config (configs hold no "
            "code); build it again with MeanMetricWrapper(fn, **config)"
        )
