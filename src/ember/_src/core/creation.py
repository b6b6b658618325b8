"""Tensor factories: tensor, from_numpy, zeros, arange, rand, … and their ``*_like`` forms."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core import random as rnd
from ember._src.core.backend import Backend, get_backend
from ember._src.core.tensor import Tensor


def _backend(dev: Any) -> Backend:
    return get_backend("cpu" if dev is None else dev)


def _shape(size: tuple[Any, ...]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
            raise ValueError(f"sizes must be non-negative integers, got {size}")
        out.append(int(s))
    return tuple(out)


# Set by ember.compile while it traces: random draws become graph nodes drawn on every run,
# and tensors made during the trace are reported (their in-place updates are not state).
_trace_random: Callable[..., Tensor] | None = None
_trace_created: Callable[[Tensor], None] | None = None


def _finish(arr: Any, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(arr)
    if _trace_created is not None:
        _trace_created(t)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(data: Any) -> dt.dtype:
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        if isinstance(data, (np.ndarray, np.generic)):
            return dt.from_numpy_dtype(arr.dtype)
        return dt.get_default_dtype()
    if arr.dtype.kind in "iu":
        if isinstance(data, (np.ndarray, np.generic)):
            return dt.from_numpy_dtype(arr.dtype)
        return dt.int64
    if arr.dtype.kind == "b":
        return dt.bool_
    if arr.dtype == object:
        raise TypeError(
            "could not infer a dtype: data must be numbers, (nested) lists of numbers or arrays"
        )
    return dt.from_numpy_dtype(arr.dtype)


def _host_data(data: Any) -> Any:
    if isinstance(data, Tensor):
        return data._backend.to_numpy(data._data)
    if isinstance(data, (list, tuple)):
        return [_host_data(d) for d in data]
    return data


def tensor(
    data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists, arrays).

    Python floats become the default float dtype, ints int64, bools bool; NumPy
    arrays keep their dtype.

    Example:
        >>> import ember
        >>> ember.tensor([[1, 2], [3, 4]]).dtype
        ember.int64
    """
    data = _host_data(data)
    d = dt.to_dtype(dtype) if dtype is not None else _infer_dtype(data)
    arr = np.array(data, dtype=d.np)
    b = _backend(device)
    return _finish(b.asarray(arr) if b.name != "cpu" else arr, requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor`` but shares memory with a NumPy array or Tensor when it can."""
    if isinstance(data, Tensor):
        out = data if dtype is None else data.to(dtype)
        return out if device is None else out.to(device)
    if isinstance(data, np.ndarray) and device in (None, "cpu"):
        d = dt.to_dtype(dtype) if dtype is not None else dt.from_numpy_dtype(data.dtype)
        return Tensor._wrap(data if data.dtype == d.np else data.astype(d.np))
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (zero-copy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    dt.from_numpy_dtype(array.dtype)  # rejects unsupported dtypes with a clear error
    return Tensor._wrap(array)


def _factory(
    fill: Any, size: tuple[Any, ...], dtype: Any, device: Any, requires_grad: bool
) -> Tensor:
    d = dt.to_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    b = _backend(device)
    return _finish(fill(b.xp, _shape(size), d.np), requires_grad)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    return _factory(lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _factory(lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """An uninitialized tensor."""
    return _factory(lambda xp, s, d: xp.empty(s, d), size, dtype, device, requires_grad)


def full(
    size: Any,
    fill_value: Any,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor filled with ``fill_value`` (dtype inferred from it, as in PyTorch)."""
    if dtype is None:
        dtype = dt.result_type([], [], [fill_value])
    return _factory(
        lambda xp, s, d: xp.full(s, fill_value, d), (tuple(size),), dtype, device, requires_grad
    )


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``.

    Example:
        >>> import ember
        >>> ember.arange(3)
        tensor([0, 1, 2])
    """
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        dtype = dt.result_type([], [], [start, end, step])
    d = dt.to_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    b = _backend(device)
    arr = (b.xp.arange(n, dtype="float64") * step + start).astype(d.np)
    return _finish(arr, requires_grad)


def linspace(
    start: float,
    end: float,
    steps: int,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    d = dt.to_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    b = _backend(device)
    return _finish(b.xp.linspace(start, end, steps).astype(d.np), requires_grad)


def eye(
    n: int,
    m: int | None = None,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """An ``n x m`` identity matrix."""
    d = dt.to_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    return _finish(_backend(device).xp.eye(n, m, dtype=d.np), requires_grad)


def _random(
    draw: Any,
    size: tuple[Any, ...],
    dtype: Any,
    device: Any,
    requires_grad: bool,
    generator: rnd.Generator | None,
) -> Tensor:
    d = dt.to_dtype(dtype) if dtype is not None else dt.get_default_dtype()
    g = generator if generator is not None else rnd.default_generator
    if _trace_random is not None:
        return _trace_random(draw, _shape(size), d, device, requires_grad, g)
    host = np.asarray(draw(g.numpy, _shape(size))).astype(d.np, copy=False)
    b = _backend(device)
    return _finish(b.asarray(host) if b.name != "cpu" else host, requires_grad)


def rand(
    *size: Any,
    generator: rnd.Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform samples from [0, 1)."""
    return _random(lambda r, s: r.random(s), size, dtype, device, requires_grad, generator)


def randn(
    *size: Any,
    generator: rnd.Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples."""
    return _random(lambda r, s: r.standard_normal(s), size, dtype, device, requires_grad, generator)


def randint(
    low: int,
    high: int | None = None,
    size: Any = (),
    *,
    generator: rnd.Generator | None = None,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """Integers uniformly from [low, high) (``randint(high, size)`` also works)."""
    if high is None or isinstance(high, (tuple, list)):
        if isinstance(high, (tuple, list)):
            size = high
        low, high = 0, low
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be less than high ({high})")
    return _random(
        lambda r, s: r.integers(low, high, s),
        (tuple(size),),
        dtype or dt.int64,
        device,
        False,
        generator,
    )


def normal(
    mean: float = 0.0,
    std: float = 1.0,
    size: Any = (),
    *,
    generator: rnd.Generator | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Normal samples with the given ``mean`` and ``std``."""
    if std < 0:
        raise ValueError(f"normal: std must be non-negative, got {std}")
    return _random(
        lambda r, s: r.normal(mean, std, s),
        (tuple(size),),
        dtype,
        device,
        requires_grad,
        generator,
    )


def _like(t: Tensor, dtype: Any, device: Any) -> dict[str, Any]:
    return {
        "dtype": dtype if dtype is not None else t.dtype,
        "device": device if device is not None else t.device,
    }


def zeros_like(
    input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    return zeros(input.shape, requires_grad=requires_grad, **_like(input, dtype, device))


def ones_like(
    input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    return ones(input.shape, requires_grad=requires_grad, **_like(input, dtype, device))


def empty_like(
    input: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    return empty(input.shape, requires_grad=requires_grad, **_like(input, dtype, device))


def full_like(
    input: Tensor,
    fill_value: Any,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    return full(input.shape, fill_value, requires_grad=requires_grad, **_like(input, dtype, device))


def rand_like(
    input: Tensor, *, dtype: Any = None, device: Any = None, generator: rnd.Generator | None = None
) -> Tensor:
    return rand(input.shape, generator=generator, **_like(input, dtype, device))


def randn_like(
    input: Tensor, *, dtype: Any = None, device: Any = None, generator: rnd.Generator | None = None
) -> Tensor:
    return randn(input.shape, generator=generator, **_like(input, dtype, device))


def randint_like(
    input: Tensor, low: int, high: int | None = None, *, dtype: Any = None, device: Any = None
) -> Tensor:
    return randint(low, high, input.shape, **_like(input, dtype, device))
