"""The op table: one declarative record per op, read by ``test_ops.py``.

Each :class:`OpInfo` names an ember callable, an independent NumPy reference,
the PyTorch equivalent, the dtypes to run, per-dtype tolerances, whether the
op is differentiable (once, twice) and a sample generator. Samples cover 0-d,
empty, broadcasting and non-contiguous (transposed or strided) inputs where
the op takes them. In a sample, NumPy arrays become ember / torch tensors
(keeping their strides); everything else is passed through unchanged.

Adding an op means adding one record here: ``test_every_primitive_is_tested``
fails for a registered primitive that no record reaches.
"""

from __future__ import annotations

import itertools
import math
import operator
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ember
from ember._src.ops import registry


class _LazyTorch:
    """``torch``, imported on first attribute access (the table loads without it)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (doctest collection) must not import torch
            raise AttributeError(name)
        import torch as real

        return getattr(real, name)


torch: Any = _LazyTorch()

FLOATS = ("float32", "float64")
# (rtol, atol) for forward comparisons; integer and bool results must match exactly.
TOL: dict[str, tuple[float, float]] = {
    "float32": (1e-5, 1e-6),
    "float64": (1e-10, 1e-12),
}


@dataclass(frozen=True)
class Sample:
    """Arguments for one call: ``op(*args, **kwargs)``.

    ``fd`` is False where the op is not smooth at the sample (ties, kinks),
    so finite differences cannot judge the gradient; the forward and the
    PyTorch comparison still run. ``torch`` / ``torch_grad`` are False where
    PyTorch cannot run the sample (or its backward).
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    desc: str = ""
    fd: bool = True
    torch: bool = True  # compare with PyTorch (False where PyTorch lacks the feature)
    torch_grad: bool = True

    def __repr__(self) -> str:
        def show(a: Any) -> str:
            if isinstance(a, np.ndarray):
                layout = "" if a.flags.c_contiguous or a.size <= 1 else ",strided"
                return f"{a.dtype}{list(a.shape)}{layout}"
            if isinstance(a, tuple):
                return "(" + ", ".join(show(v) for v in a) + ")"
            return repr(a)

        parts = [show(a) for a in self.args] + [f"{k}={show(v)}" for k, v in self.kwargs.items()]
        return f"Sample({', '.join(parts)}){' # ' + self.desc if self.desc else ''}"


def S(
    *args: Any,
    desc: str = "",
    fd: bool = True,
    torch: bool = True,
    torch_grad: bool = True,
    **kwargs: Any,
) -> Sample:
    return Sample(tuple(args), kwargs, desc, fd, torch, torch_grad)


class Maker:
    """Makes sample arrays in one dtype from a seeded generator.

    Floats are drawn in float64 and rounded, so float32 and float64 samples
    hold the same values. ``T=True`` gives a transposed (non-contiguous) array
    of the requested shape.
    """

    def __init__(self, dtype: str, seed: int) -> None:
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)

    @property
    def is_float(self) -> bool:
        return self.dtype.kind == "f"

    def _layout(self, draw: Callable[[tuple[int, ...]], np.ndarray], shape: Any, T: bool) -> Any:
        shape = tuple(shape)
        if T:
            return np.ascontiguousarray(draw(shape[::-1])).T
        return np.asarray(draw(shape))  # 0-d draws come back as NumPy scalars

    def uniform(self, shape: Any, low: float = -2.0, high: float = 2.0, T: bool = False) -> Any:
        def draw(s: tuple[int, ...]) -> np.ndarray:
            if self.dtype.kind == "b":
                return self.rng.random(s) < 0.5
            if self.dtype.kind in "iu":
                lo, hi = math.floor(low), math.ceil(high)
                return self.rng.integers(lo, hi + 1, s).astype(self.dtype)
            return np.asarray(self.rng.uniform(low, high, s)).astype(self.dtype)

        return self._layout(draw, shape, T)

    def away(self, shape: Any, low: float = 0.25, high: float = 2.0, T: bool = False) -> Any:
        """Values with ``low <= |x| <= high``: away from a kink or pole at zero."""

        def draw(s: tuple[int, ...]) -> np.ndarray:
            sign = np.where(self.rng.random(s) < 0.5, -1, 1)
            if self.dtype.kind in "iu":
                mag = self.rng.integers(max(1, math.ceil(low)), math.floor(high) + 1, s)
                return np.asarray(sign * mag).astype(self.dtype)
            return np.asarray(sign * self.rng.uniform(low, high, s)).astype(self.dtype)

        return self._layout(draw, shape, T)

    def pos(self, shape: Any, low: float = 0.5, high: float = 2.0, T: bool = False) -> Any:
        return self.uniform(shape, low, high, T)

    def distinct(self, shape: Any, T: bool = False) -> Any:
        """Distinct values (no ties) at least 0.25 apart, in random order."""

        def draw(s: tuple[int, ...]) -> np.ndarray:
            n = math.prod(s)
            if self.dtype.kind in "iu":
                vals = self.rng.permutation(n) - n // 2
            else:
                vals = (self.rng.permutation(n) - n / 2) * 0.5 + self.rng.uniform(0, 0.2, n)
            return np.asarray(vals).reshape(s).astype(self.dtype)

        return self._layout(draw, shape, T)

    def ints(self, shape: Any, high: int, low: int = 0) -> np.ndarray:
        """int64 indices in ``[low, high)``."""
        return self.rng.integers(low, high, tuple(shape)).astype(np.int64)

    def mask(self, shape: Any) -> np.ndarray:
        return np.asarray(self.rng.random(tuple(shape)) < 0.5)

    def perm_index(self, shape: Any, n: int, dim: int) -> np.ndarray:
        """int64 index of ``shape`` whose entries along ``dim`` are distinct values < n."""
        shape = tuple(shape)
        moved = shape[:dim] + shape[dim + 1 :] + (shape[dim],)
        out = np.empty(moved, dtype=np.int64)
        for pos in np.ndindex(*moved[:-1]):
            out[pos] = self.rng.permutation(n)[: shape[dim]]
        return np.moveaxis(out, -1, dim)


@dataclass(frozen=True)
class OpInfo:
    """One op: ember callable, NumPy reference, PyTorch equivalent, samples, tolerances.

    ``torch`` is a callable on torch tensors, the name of a ``torch`` function,
    or None (no PyTorch counterpart). ``inplace`` is a callable that applies the
    in-place variant to its first argument and returns it.
    """

    name: str
    op: Callable[..., Any]
    ref: Callable[..., Any]
    samples: Callable[[Maker], Iterator[Sample]]
    dtypes: tuple[str, ...] = FLOATS
    grad: bool = True
    gradgrad: bool = True
    torch: Callable[..., Any] | str | None = None
    torch_grad: bool = True
    tol: dict[str, tuple[float, float]] = field(default_factory=dict)
    torch_tol: dict[str, tuple[float, float]] = field(default_factory=dict)  # default: tol
    grad_tol: tuple[float, float] = (1e-5, 1e-3)  # gradcheck (atol, rtol)
    inplace: Callable[..., Any] | None = None

    def tolerance(self, dtype: str) -> tuple[float, float]:
        if dtype in self.tol:
            return self.tol[dtype]
        return TOL.get(dtype, (0.0, 0.0))

    def torch_tolerance(self, dtype: str) -> tuple[float, float]:
        return self.torch_tol.get(dtype) or self.tolerance(dtype)

    def torch_fn(self) -> Callable[..., Any] | None:
        if isinstance(self.torch, str):
            return getattr(torch, self.torch)  # type: ignore[no-any-return]
        return self.torch

    def make_samples(self, dtype: str) -> list[Sample]:
        return list(self.samples(Maker(dtype, zlib.crc32(self.name.encode()))))


def method(name: str) -> Callable[..., Any]:
    """``x.<name>(*rest, **kwargs)``: the in-place (or plain) method of the first argument."""
    return lambda x, *rest, **kw: getattr(x, name)(*rest, **kw)


# ================================================================= sample generators
def unary_samples(draw: str = "uniform", **bounds: float) -> Callable[[Maker], Iterator[Sample]]:
    def samples(m: Maker) -> Iterator[Sample]:
        d = getattr(m, draw)
        yield S(d((2, 3), **bounds))
        yield S(d((), **bounds), desc="0-d")
        yield S(d((3, 4), T=True, **bounds), desc="transposed")
        yield S(d((2, 3, 2), **bounds)[:, ::2], desc="strided")
        yield S(d((0, 3), **bounds), desc="empty")

    return samples


def binary_samples(
    a: str = "uniform",
    b: str = "uniform",
    a_bounds: dict[str, float] | None = None,
    b_bounds: dict[str, float] | None = None,
    scalar: float | None = 1.5,
) -> Callable[[Maker], Iterator[Sample]]:
    def samples(m: Maker) -> Iterator[Sample]:
        def x(shape: Any, T: bool = False) -> Any:
            return getattr(m, a)(shape, T=T, **(a_bounds or {}))

        def y(shape: Any, T: bool = False) -> Any:
            return getattr(m, b)(shape, T=T, **(b_bounds or {}))

        yield S(x((2, 3)), y((2, 3)))
        yield S(x((2, 3)), y((3,)), desc="broadcast rhs")
        yield S(x((4, 1)), y((2, 1, 3)), desc="broadcast both")
        yield S(x(()), y((2, 3)), desc="0-d lhs")
        yield S(x((2, 3)), y(()), desc="0-d rhs")
        yield S(x(()), y(()), desc="0-d both")
        yield S(x((3, 2), T=True), y((3, 2)), desc="transposed lhs")
        yield S(x((2, 3)), y((2, 3))[:, ::-1], desc="negative strides rhs")
        yield S(x((0, 3)), y((3,)), desc="empty")
        if scalar is not None:
            s = scalar if m.is_float else round(scalar + 0.5)
            yield S(x((2, 3)), s, desc="python scalar rhs")

    return samples


def reduce_samples(
    draw: str = "uniform", empty: bool = True, **bounds: float
) -> Callable[[Maker], Iterator[Sample]]:
    def samples(m: Maker) -> Iterator[Sample]:
        d = getattr(m, draw)
        yield S(d((3, 4), **bounds), desc="all dims")
        yield S(d((3, 4), **bounds), dim=0)
        yield S(d((3, 4), **bounds), dim=-1, keepdim=True)
        yield S(d((2, 3, 2), **bounds), dim=(0, 2))
        yield S(d((2, 3, 2), **bounds), dim=(-1, 0), keepdim=True)
        yield S(d((4, 3), T=True, **bounds), dim=1, desc="transposed")
        yield S(d((), **bounds), desc="0-d")
        yield S(d((), **bounds), dim=0, desc="0-d with dim")
        if empty:
            yield S(d((0, 3), **bounds), dim=0, desc="empty, reduce the empty dim")
            yield S(d((0, 3), **bounds), dim=1, desc="empty result")

    return samples


# ================================================================= NumPy references
def _axis(a: np.ndarray, dim: Any) -> Any:
    if dim is None or a.ndim == 0:
        return None
    return dim


def np_reduce(fn: Callable[..., Any]) -> Callable[..., Any]:
    def ref(a: np.ndarray, dim: Any = None, keepdim: bool = False) -> Any:
        return fn(a, axis=_axis(a, dim), keepdims=keepdim)

    return ref


_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf_ref(a: np.ndarray) -> np.ndarray:
    return np.asarray(_erf(a)).astype(a.dtype)


def sigmoid_ref(a: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype)


def softplus_ref(a: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    z = a * beta
    with np.errstate(over="ignore"):
        soft = np.log1p(np.exp(-np.abs(z))) / beta + np.maximum(z, 0) / beta
    return np.where(z > threshold, a, soft).astype(a.dtype)


def gelu_ref(a: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a**3)))
    return 0.5 * a * (1 + erf_ref(a / math.sqrt(2)))


def mean_ref(a: np.ndarray, dim: Any = None, keepdim: bool = False) -> Any:
    axis = _axis(a, dim)
    n = a.size if axis is None else math.prod(a.shape[d] for d in np.atleast_1d(axis))
    total = np.sum(a, axis=axis, keepdims=keepdim)
    with np.errstate(invalid="ignore"):
        return (total / n if n else total * np.nan).astype(a.dtype)


def var_ref(a: np.ndarray, dim: Any = None, correction: int = 1, keepdim: bool = False) -> Any:
    return np.var(a, axis=_axis(a, dim), ddof=correction, keepdims=keepdim)


def logsumexp_ref(a: np.ndarray, dim: Any, keepdim: bool = False) -> Any:
    axis = _axis(a, dim)
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdim else np.squeeze(out, axis=axis)


def norm_ref(a: np.ndarray, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Any:
    axis = _axis(a, dim)
    x = np.abs(a)
    if p in ("fro", 2):
        out = np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdim))
    elif p == math.inf:
        out = np.max(x, axis=axis, keepdims=keepdim)
    elif p == -math.inf:
        out = np.min(x, axis=axis, keepdims=keepdim)
    elif p == 0:
        out = np.sum(x != 0, axis=axis, keepdims=keepdim)
    else:
        out = np.sum(x**p, axis=axis, keepdims=keepdim) ** (1 / p)
    return np.asarray(out).astype(a.dtype)


def max_dim_ref(fn: str) -> Callable[..., Any]:
    def ref(a: np.ndarray, dim: int, keepdim: bool = False) -> Any:
        values = getattr(np, fn)(a, axis=dim, keepdims=keepdim)
        idx = getattr(np, "arg" + fn)(a, axis=dim, keepdims=keepdim)
        return values, idx.astype(np.int64)

    return ref


def arg_ref(fn: str) -> Callable[..., Any]:
    def ref(a: np.ndarray, dim: int | None = None, keepdim: bool = False) -> Any:
        if dim is None:
            out = getattr(np, fn)(a)
            return np.reshape(out, (1,) * a.ndim if keepdim else ()).astype(np.int64)
        return getattr(np, fn)(a, axis=dim if a.ndim else None, keepdims=keepdim).astype(np.int64)

    return ref


def scan_ref(fn: str) -> Callable[..., Any]:
    def ref(a: np.ndarray, dim: int) -> Any:
        if a.ndim == 0:
            return getattr(np, fn)(a.reshape(1)).reshape(())
        return getattr(np, fn)(a, axis=dim)

    return ref


def gather_ref(a: np.ndarray, index: np.ndarray, dim: int) -> np.ndarray:
    out = np.empty(index.shape, dtype=a.dtype)
    for pos in np.ndindex(*index.shape):
        src = list(pos)
        src[dim] = index[pos]
        out[pos] = a[tuple(src)]
    return out


def scatter_ref(add: bool) -> Callable[..., Any]:
    def ref(a: np.ndarray, index: np.ndarray, src: Any, dim: int) -> np.ndarray:
        out = a.copy()
        for pos in np.ndindex(*index.shape):
            dst = list(pos)
            dst[dim] = index[pos]
            v = src[pos] if isinstance(src, np.ndarray) else src
            out[tuple(dst)] = out[tuple(dst)] + v if add else v
        return out

    return ref


def pad_ref(a: np.ndarray, pad: tuple[int, ...], mode: str = "constant", value: float = 0.0) -> Any:
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    np_mode = {"replicate": "edge", "circular": "wrap"}.get(mode, mode)
    if mode == "constant":
        return np.pad(a, widths, mode="constant", constant_values=value)
    return np.pad(a, widths, mode=np_mode)


def einsum_ref(*xs: np.ndarray, equation: str) -> np.ndarray:
    return np.einsum(equation, *xs)


def softmax_ref(a: np.ndarray, dim: int) -> np.ndarray:
    z = a - np.max(a, axis=_axis(a, dim), keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=_axis(a, dim), keepdims=True)


def log_softmax_ref(a: np.ndarray, dim: int) -> np.ndarray:
    z = a - np.max(a, axis=_axis(a, dim), keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=_axis(a, dim), keepdims=True))


def setitem_ref(a: np.ndarray, v: Any, index: Any) -> np.ndarray:
    out = a.copy()
    out[index] = v
    return out


def _order(row: np.ndarray, descending: bool) -> list[int]:
    """A stable sort of one row; NaN counts as the largest value (PyTorch's order)."""

    def key(i: int) -> tuple[bool, Any]:
        v = row[i]
        nan = bool(row.dtype.kind == "f" and np.isnan(v))
        return (not nan, 0 if nan else -v) if descending else (nan, 0 if nan else v)

    return sorted(range(len(row)), key=key)


def sort_ref(a: np.ndarray, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    if a.ndim == 0:
        return a, np.zeros((), np.int64)
    moved = np.moveaxis(a, dim, -1)
    idx = np.empty(moved.shape, np.int64)
    for pos in np.ndindex(*moved.shape[:-1]):
        idx[pos] = _order(moved[pos], descending)
    idx = np.moveaxis(idx, -1, dim)
    return np.take_along_axis(a, idx, axis=dim), idx


def topk_ref(a: np.ndarray, k: int, dim: int = -1, largest: bool = True) -> Any:
    if a.ndim == 0:  # PyTorch: the scalar itself, index 0
        return a, np.zeros((), np.int64)
    idx = np.take(sort_ref(a, dim, largest)[1], np.arange(k), axis=dim)
    return np.take_along_axis(a, idx, axis=dim), idx


def take_along_dim_ref(a: np.ndarray, idx: np.ndarray, dim: int | None = None) -> np.ndarray:
    if dim is None:
        return a.reshape(-1)[idx.reshape(-1)]
    return np.take_along_axis(a, idx, axis=dim)


def where_ref(cond: np.ndarray, a: Any, b: Any) -> np.ndarray:
    out = np.where(cond, a, b)
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        return out.astype(np.float32)  # two Python floats give the default dtype
    return out


def split_ref(a: np.ndarray, sections: Any, dim: int = 0) -> tuple[np.ndarray, ...]:
    if isinstance(sections, int):
        cuts = list(range(sections, a.shape[dim], sections))
    else:
        cuts = list(np.cumsum(sections)[:-1])
    return tuple(np.split(a, cuts, axis=dim))


def chunk_ref(a: np.ndarray, chunks: int, dim: int = 0) -> tuple[np.ndarray, ...]:
    if a.shape[dim] == 0:
        return tuple(a.copy() for _ in range(chunks))
    return split_ref(a, math.ceil(a.shape[dim] / chunks), dim)


def flatten_ref(a: np.ndarray, start_dim: int = 0, end_dim: int = -1) -> np.ndarray:
    if a.ndim == 0:
        return a.reshape(1)
    s, e = start_dim % a.ndim, end_dim % a.ndim
    return a.reshape((*a.shape[:s], math.prod(a.shape[s : e + 1]), *a.shape[e + 1 :]))


def squeeze_ref(a: np.ndarray, dim: Any = None) -> np.ndarray:
    if dim is None or a.ndim == 0:
        return np.squeeze(a)
    dims = (dim,) if isinstance(dim, int) else dim
    return np.squeeze(a, axis=tuple(d for d in dims if a.shape[d] == 1))


def expand_ref(a: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    lead = len(sizes) - a.ndim
    shape = tuple(a.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return np.broadcast_to(a, shape)


def tri_mask_ref(lower: bool) -> Callable[..., Any]:
    def ref(a: np.ndarray, diagonal: int = 0) -> np.ndarray:
        return (np.tril if lower else np.triu)(a, diagonal)

    return ref


# ================================================================= ember / torch adapters
def to_ember_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(to_ember_index(v) for v in index)
    if isinstance(index, np.ndarray):
        return ember.from_numpy(index.copy())
    return index


def to_torch_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(to_torch_index(v) for v in index)
    if isinstance(index, np.ndarray):
        return torch.from_numpy(index.copy())
    return index


def torch_setitem(x: Any, v: Any, index: Any) -> Any:
    out = x.clone()
    out[to_torch_index(index)] = v
    return out


def ember_setitem(x: Any, v: Any, index: Any) -> Any:
    x[to_ember_index(index)] = v
    return x


def to_device(x: Any) -> Any:
    # The to_device primitive is only reached through ember.Tensor.to between two
    # different devices; without a GPU it is applied directly, CPU to CPU.
    return registry.apply(registry.REGISTRY["to_device"], x, device="cpu")


def torch_scalar(y: Any, like: Any) -> Any:
    """A Python number as a 0-d tensor, for torch functions that take only tensors."""
    return y if hasattr(y, "dtype") else torch.tensor(y, dtype=like.dtype)


def torch_multi_dim(fn: Any, x: Any, dim: Any, keepdim: bool) -> Any:
    """Apply a torch reduction that takes one dim at a time over a tuple of dims."""
    if dim is None:
        out = fn(x)
        return out.reshape((1,) * x.ndim) if keepdim else out
    if isinstance(dim, int):
        return fn(x, dim, keepdim)
    for d in sorted((d % max(x.ndim, 1) for d in dim), reverse=True):
        x = fn(x, d, keepdim)
    return x


def tdtype(name: str) -> Any:
    return getattr(torch, name)


# ================================================================= the table
UNARY: list[OpInfo] = [
    OpInfo(
        "neg",
        ember.neg,
        np.negative,
        unary_samples(),
        torch="neg",
        dtypes=(*FLOATS, "int64"),
        inplace=method("neg_"),
    ),
    OpInfo(
        "abs",
        ember.abs,
        np.abs,
        unary_samples("away"),
        torch="abs",
        dtypes=(*FLOATS, "int64"),
        inplace=method("abs_"),
    ),
    OpInfo(
        "sign",
        ember.sign,
        lambda a: a.copy() if a.dtype == bool else np.sign(a),  # NumPy has no bool sign
        unary_samples("away"),
        torch="sign",
        dtypes=(*FLOATS, "int64", "bool"),
    ),
    OpInfo("exp", ember.exp, np.exp, unary_samples(), torch="exp", inplace=method("exp_")),
    OpInfo("log", ember.log, np.log, unary_samples("pos"), torch="log", inplace=method("log_")),
    OpInfo("log1p", ember.log1p, np.log1p, unary_samples(low=-0.5, high=2.0), torch="log1p"),
    OpInfo("expm1", ember.expm1, np.expm1, unary_samples(), torch="expm1"),
    OpInfo(
        "sqrt", ember.sqrt, np.sqrt, unary_samples("pos"), torch="sqrt", inplace=method("sqrt_")
    ),
    OpInfo("rsqrt", ember.rsqrt, lambda a: 1 / np.sqrt(a), unary_samples("pos"), torch="rsqrt"),
    OpInfo("sin", ember.sin, np.sin, unary_samples(), torch="sin", inplace=method("sin_")),
    OpInfo("cos", ember.cos, np.cos, unary_samples(), torch="cos", inplace=method("cos_")),
    OpInfo(
        "tan",
        ember.tan,
        np.tan,
        unary_samples(low=-1.2, high=1.2),
        torch="tan",
        tol={"float32": (1e-5, 1e-5)},
    ),
    OpInfo("tanh", ember.tanh, np.tanh, unary_samples(), torch="tanh", inplace=method("tanh_")),
    OpInfo(
        "sigmoid",
        ember.sigmoid,
        sigmoid_ref,
        unary_samples(low=-6, high=6),
        torch="sigmoid",
        inplace=method("sigmoid_"),
    ),
    OpInfo(
        "sigmoid_extreme",
        ember.sigmoid,
        sigmoid_ref,
        lambda m: iter([S(np.array([-200.0, -30.0, 0.0, 30.0, 200.0], m.dtype))]),
        torch="sigmoid",
    ),
    OpInfo(
        "relu",
        ember.relu,
        lambda a: np.maximum(a, 0).astype(a.dtype),
        unary_samples("away"),
        torch="relu",
        dtypes=(*FLOATS, "int64"),
        inplace=method("relu_"),
    ),
    # PyTorch refuses relu on bool; ember keeps the dtype its shape rule promises.
    OpInfo("relu_bool", ember.relu, np.copy, unary_samples(), dtypes=("bool",), grad=False),
    OpInfo("erf", ember.erf, erf_ref, unary_samples(), torch="erf"),
    OpInfo(
        "reciprocal",
        ember.reciprocal,
        lambda a: 1 / a,
        unary_samples("away"),
        torch="reciprocal",
        inplace=method("reciprocal_"),
    ),
    OpInfo(
        "square",
        ember.square,
        np.square,
        unary_samples(),
        torch="square",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "floor", ember.floor, np.floor, unary_samples(), torch="floor", inplace=method("floor_")
    ),
    OpInfo("ceil", ember.ceil, np.ceil, unary_samples(), torch="ceil", inplace=method("ceil_")),
    OpInfo(
        "round",
        ember.round,
        np.round,
        unary_samples(low=-4, high=4),
        torch="round",
        inplace=method("round_"),
    ),
    OpInfo(
        "round_half_even",
        ember.round,
        np.round,
        lambda m: iter([S(np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], m.dtype))]),
        torch="round",
        grad=False,
    ),
    OpInfo(
        "trunc", ember.trunc, np.trunc, unary_samples(), torch="trunc", inplace=method("trunc_")
    ),
    OpInfo(
        "gelu",
        ember.gelu,
        gelu_ref,
        unary_samples(low=-3, high=3),
        torch=lambda x: torch.nn.functional.gelu(x),
    ),
    OpInfo(
        "gelu_tanh",
        lambda x: ember.gelu(x, approximate="tanh"),
        lambda a: gelu_ref(a, "tanh"),
        unary_samples(low=-3, high=3),
        torch=lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    ),
    OpInfo(
        "silu",
        ember.silu,
        lambda a: a * sigmoid_ref(a),
        unary_samples(low=-4, high=4),
        torch=lambda x: torch.nn.functional.silu(x),
    ),
    OpInfo(
        "softplus",
        ember.softplus,
        softplus_ref,
        lambda m: iter(
            [
                *unary_samples(low=-4, high=4)(m),
                S(m.uniform((2, 3), -3, 3), beta=2.0, threshold=1.0, desc="beta, threshold"),
                S(np.array([-100.0, -30.0, 25.0, 100.0], m.dtype), desc="large |x|"),
            ]
        ),
        torch=lambda x, **kw: torch.nn.functional.softplus(x, **kw),
    ),
    OpInfo(
        "logical_not",
        ember.logical_not,
        np.logical_not,
        unary_samples(),
        dtypes=("bool", "float32", "int64"),
        grad=False,
        torch="logical_not",
    ),
]


def special_values(m: Maker) -> Iterator[Sample]:
    vals = np.array([0.0, -1.5, np.inf, -np.inf, np.nan, 3.0], dtype=m.dtype)
    yield S(vals)
    yield S(vals.reshape(2, 3).T, desc="transposed")
    yield S(np.array(np.nan, m.dtype), desc="0-d")
    yield S(np.zeros((0,), m.dtype), desc="empty")


PREDICATES: list[OpInfo] = [
    OpInfo(n, getattr(ember, n), getattr(np, n), special_values, grad=False, torch=n)
    for n in ("isnan", "isfinite", "isinf")
]


def _clamp_samples(m: Maker) -> Iterator[Sample]:
    # Values stay 0.1 away from the bounds so that finite differences see a smooth op.
    x = m.uniform((2, 3), -2, 2)
    x = np.where(np.abs(x + 0.5) < 0.1, x + 0.3, x)
    x = np.where(np.abs(x - 0.75) < 0.1, x + 0.3, x).astype(m.dtype)
    yield S(x, min=-0.5, max=0.75)
    yield S(x, min=-0.5, desc="min only")
    yield S(x, max=0.75, desc="max only")
    yield S(np.asfortranarray(x), min=-0.5, max=0.75, desc="transposed")
    yield S(np.array(0.3, m.dtype), min=-0.5, max=0.75, desc="0-d")
    yield S(np.zeros((0, 2), m.dtype), min=0.0, desc="empty")


def _clamp_ref(a: np.ndarray, min: Any = None, max: Any = None) -> np.ndarray:
    out = a if min is None else np.maximum(a, min)
    return out if max is None else np.minimum(out, max)


def _clamp_tensor_samples(m: Maker) -> Iterator[Sample]:
    x = m.distinct((2, 3))
    lo = (x.min(axis=0) + 0.1).astype(m.dtype)  # some clamped, none tied
    hi = np.array(x.max() - 0.1, m.dtype)
    yield S(x, lo, hi, desc="tensor bounds, broadcast")
    yield S(x, lo, None, desc="tensor min")


def _where_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.mask((2, 3)), m.uniform((2, 3)), m.uniform((2, 3)))
    yield S(m.mask((3,)), m.uniform((2, 1)), m.uniform(()), desc="broadcast all three")
    yield S(m.mask((3, 2)).T, m.uniform((2, 3), T=True), m.uniform((2, 3)), desc="transposed")
    yield S(m.mask((2, 3)), m.uniform((2, 3)), 0.5, desc="python scalar other")
    yield S(m.mask((2, 3)), 1.0, 0.0, desc="two python scalars")
    yield S(m.mask(()), m.uniform(()), m.uniform(()), desc="0-d")
    yield S(m.mask((0, 2)), m.uniform((0, 2)), m.uniform((2,)), desc="empty")


def _pow_samples(m: Maker) -> Iterator[Sample]:
    yield from binary_samples("pos", "uniform", b_bounds={"low": -2.0, "high": 2.0})(m)
    yield S(m.uniform((2, 3)), 2, desc="negative base, integer exponent")
    yield S(m.uniform((2, 3)), 3.0, desc="negative base, float integral exponent")
    yield S(m.pos((2, 3)), 0.5, desc="square root")
    yield S(m.away((2, 3)), -1, desc="negative exponent")
    yield S(np.array([0.0, 1.5, -2.0], m.dtype), 0, desc="zero exponent, zero base")
    yield S(
        np.array([0.0, 0.0, 2.0], m.dtype),
        np.array([0.0, 2.0, 0.0], m.dtype),
        desc="zero base and exponent tensors",
        fd=False,
    )


def _with_ties(m: Maker) -> Iterator[Sample]:
    a = np.array([[1.0, 2.0, 3.0], [4.0, -1.0, 0.5]], m.dtype)
    b = np.array([[1.0, 0.0, 3.0], [5.0, -1.0, 0.25]], m.dtype)
    yield S(a, b, desc="ties share the gradient", fd=False)


def _minmax_samples(m: Maker) -> Iterator[Sample]:
    yield from binary_samples("distinct", "distinct")(m)
    yield from _with_ties(m)


def _compare_samples(m: Maker) -> Iterator[Sample]:
    yield from binary_samples(a_bounds={"low": -2, "high": 2}, b_bounds={"low": -2, "high": 2})(m)
    ints = np.array([[0, 1, 2], [2, 1, 0]]).astype(m.dtype)
    yield S(ints, ints[::-1], desc="ties")
    yield S(ints, 1, desc="ties with a python scalar")


def _remainder_samples(m: Maker) -> Iterator[Sample]:
    yield from binary_samples("uniform", "away", a_bounds={"low": -5, "high": 5})(m)
    yield S(
        np.array([-7, -3, 3, 7]).astype(m.dtype),
        np.array([2, -2, 2, -2]).astype(m.dtype),
        desc="signs follow the divisor",
        fd=False,
    )


def _logical_samples(m: Maker) -> Iterator[Sample]:
    yield from binary_samples(scalar=None)(m)
    z = np.array([0, 1, 0, 1]).astype(m.dtype)
    yield S(z, np.array([0, 0, 1, 1]).astype(m.dtype), desc="truth table")


def _scalar_lhs(draw: str = "uniform") -> Any:
    def samples(m: Maker) -> Iterator[Sample]:
        yield S(getattr(m, draw)((2, 3)))
        yield S(getattr(m, draw)(()), desc="0-d")
        yield S(getattr(m, draw)((3, 2), T=True), desc="transposed")

    return samples


BINARY: list[OpInfo] = [
    OpInfo(
        "add",
        ember.add,
        np.add,
        binary_samples(),
        torch="add",
        dtypes=(*FLOATS, "int64"),
        inplace=method("add_"),
    ),
    OpInfo(
        "add_alpha",
        lambda x, y, alpha: ember.add(x, y, alpha=alpha),
        lambda a, b, alpha: a + alpha * b,
        lambda m: iter([S(m.uniform((2, 3)), m.uniform((3,)), alpha=2)]),
        torch=lambda x, y, alpha: torch.add(x, y, alpha=alpha),
        inplace=lambda x, y, alpha: x.add_(y, alpha=alpha),
    ),
    OpInfo(
        "sub",
        ember.sub,
        np.subtract,
        binary_samples(),
        torch="sub",
        dtypes=(*FLOATS, "int64"),
        inplace=method("sub_"),
    ),
    OpInfo(
        "sub_alpha",
        lambda x, y, alpha: ember.sub(x, y, alpha=alpha),
        lambda a, b, alpha: a - alpha * b,
        lambda m: iter([S(m.uniform((2, 3)), m.uniform(()), alpha=0.5)]),
        torch=lambda x, y, alpha: torch.sub(x, y, alpha=alpha),
    ),
    OpInfo(
        "mul",
        ember.mul,
        np.multiply,
        binary_samples(),
        torch="mul",
        dtypes=(*FLOATS, "int64", "bool"),
        inplace=method("mul_"),
    ),
    OpInfo(
        "div",
        ember.div,
        np.true_divide,
        binary_samples("uniform", "away"),
        torch="div",
        inplace=method("div_"),
    ),
    OpInfo(
        "div_rounding",
        ember.div,
        lambda a, b, rounding_mode: (
            np.trunc(a / b) if rounding_mode == "trunc" else np.floor_divide(a, b)
        ),
        lambda m: iter(
            [
                S(m.uniform((2, 3), -5, 5), m.away((3,)), rounding_mode="trunc"),
                S(m.uniform((2, 3), -5, 5), m.away((3,)), rounding_mode="floor"),
            ]
        ),
        torch="div",
        torch_grad=False,
    ),
    OpInfo(
        "floor_divide",
        ember.floor_divide,
        np.floor_divide,
        binary_samples("uniform", "away", a_bounds={"low": -5, "high": 5}),
        dtypes=(*FLOATS, "int64"),
        torch="floor_divide",
        torch_grad=False,
        inplace=method("floor_divide_"),
    ),
    OpInfo(
        "remainder",
        ember.remainder,
        np.remainder,
        _remainder_samples,
        dtypes=(*FLOATS, "int64"),
        torch="remainder",
        torch_grad=False,  # PyTorch has no derivative for remainder
        inplace=method("remainder_"),
    ),
    OpInfo("pow", ember.pow, np.power, _pow_samples, torch="pow", inplace=method("pow_")),
    OpInfo(
        "atan2",
        ember.atan2,
        np.arctan2,
        lambda m: iter(
            [
                *binary_samples("away", "away")(m),
                S(
                    np.array([0.0, 1.0], m.dtype),
                    np.array([0.0, 0.0], m.dtype),
                    desc="origin",
                    fd=False,
                ),
            ]
        ),
        torch=lambda x, y: torch.atan2(x, torch_scalar(y, x)),
    ),
    OpInfo(
        "maximum",
        ember.maximum,
        np.maximum,
        _minmax_samples,
        torch=lambda x, y: torch.maximum(x, torch_scalar(y, x)),
        dtypes=(*FLOATS, "int64"),
        inplace=method("maximum_"),
    ),
    OpInfo(
        "minimum",
        ember.minimum,
        np.minimum,
        _minmax_samples,
        torch=lambda x, y: torch.minimum(x, torch_scalar(y, x)),
        dtypes=(*FLOATS, "int64"),
        inplace=method("minimum_"),
    ),
    OpInfo(
        "max_binary",
        ember.max,
        np.maximum,
        lambda m: (s for s in _minmax_samples(m) if isinstance(s.args[1], np.ndarray)),
        torch="max",
    ),
    OpInfo(
        "min_binary",
        ember.min,
        np.minimum,
        lambda m: (s for s in _minmax_samples(m) if isinstance(s.args[1], np.ndarray)),
        torch="min",
    ),
    OpInfo(
        "clamp", ember.clamp, _clamp_ref, _clamp_samples, torch="clamp", inplace=method("clamp_")
    ),
    OpInfo("clamp_tensor", ember.clamp, _clamp_ref, _clamp_tensor_samples, torch="clamp"),
    OpInfo("where", ember.where, where_ref, _where_samples, torch="where"),
    *[
        OpInfo(
            n,
            getattr(ember, n),
            getattr(np, f),
            _compare_samples,
            grad=False,
            torch=n,
            dtypes=(*FLOATS, "int64"),
        )
        for n, f in (
            ("eq", "equal"),
            ("ne", "not_equal"),
            ("lt", "less"),
            ("le", "less_equal"),
            ("gt", "greater"),
            ("ge", "greater_equal"),
        )
    ],
    *[
        OpInfo(
            n,
            getattr(ember, n),
            getattr(np, n),
            _logical_samples,
            grad=False,
            torch=n,
            dtypes=("bool", "float32", "int64"),
        )
        for n in ("logical_and", "logical_or", "logical_xor")
    ],
    *[
        OpInfo(n, fn, ref, _logical_samples, grad=False, torch=fn, dtypes=("bool", "int64"))
        for n, fn, ref in (
            ("bitwise_and", lambda x, y: x & y, np.bitwise_and),
            ("bitwise_or", lambda x, y: x | y, np.bitwise_or),
            ("bitwise_xor", lambda x, y: x ^ y, np.bitwise_xor),
        )
    ],
    OpInfo(
        "invert",
        lambda x: ~x,
        np.invert,
        unary_samples(),
        grad=False,
        torch=lambda x: ~x,
        dtypes=("bool", "int64"),
    ),
    # The operators and their augmented (in-place) forms: x + y and x += y.
    *[
        OpInfo(
            f"operator_{name}",
            getattr(operator, name),
            ref,
            samples,
            torch=getattr(operator, name),
            dtypes=dtypes,
            inplace=getattr(operator, "i" + name),
        )
        for name, ref, samples, dtypes in (
            ("add", np.add, binary_samples(), (*FLOATS, "int64")),
            ("sub", np.subtract, binary_samples(), (*FLOATS, "int64")),
            ("mul", np.multiply, binary_samples(), (*FLOATS, "int64")),
            ("truediv", np.true_divide, binary_samples("uniform", "away"), FLOATS),
            ("pow", np.power, binary_samples("pos", "uniform"), FLOATS),
        )
    ],
    # Python scalars on the left go through the reflected operators.
    OpInfo("radd", lambda x: 2.5 + x, lambda a: 2.5 + a, _scalar_lhs(), torch=lambda x: 2.5 + x),
    OpInfo("rsub", lambda x: 2.5 - x, lambda a: 2.5 - a, _scalar_lhs(), torch=lambda x: 2.5 - x),
    OpInfo("rmul", lambda x: 2.5 * x, lambda a: 2.5 * a, _scalar_lhs(), torch=lambda x: 2.5 * x),
    OpInfo(
        "rtruediv",
        lambda x: 2.5 / x,
        lambda a: 2.5 / a,
        _scalar_lhs("away"),
        torch=lambda x: 2.5 / x,
    ),
    OpInfo("rpow", lambda x: 2.0**x, lambda a: 2.0**a, _scalar_lhs(), torch=lambda x: 2.0**x),
    OpInfo(
        "rfloordiv",
        lambda x: 5.0 // x,
        lambda a: 5.0 // a,
        _scalar_lhs("away"),
        torch=lambda x: 5.0 // x,
        torch_grad=False,
    ),
    OpInfo(
        "rmod",
        lambda x: 5.0 % x,
        lambda a: 5.0 % a,
        _scalar_lhs("away"),
        torch=lambda x: 5.0 % x,
        torch_grad=False,
    ),
]


# ----------------------------------------------------------------- reductions
def _prod_samples(m: Maker) -> Iterator[Sample]:
    yield from reduce_samples("away", low=0.5, high=1.5)(m)
    yield S(np.array([[0.0, 2.0, 3.0], [1.5, 0.5, -2.0]], m.dtype), dim=1, desc="one zero")
    yield S(np.array([[0.0, 2.0, 0.0], [1.5, 0.0, -2.0]], m.dtype), desc="two zeros")


def _extreme_samples(m: Maker) -> Iterator[Sample]:
    yield from reduce_samples("distinct", empty=False)(m)
    yield S(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], m.dtype), dim=1, desc="ties", fd=False)
    yield S(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], m.dtype), desc="ties", fd=False)


def _max_dim_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.distinct((3, 4)), dim=1)
    yield S(m.distinct((3, 4)), dim=0, keepdim=True)
    yield S(m.distinct((2, 3, 2)), dim=-2)
    yield S(m.distinct((4, 3), T=True), dim=0, desc="transposed")
    yield S(m.distinct(()), dim=0, desc="0-d")


def _arg_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.distinct((3, 4)))
    yield S(m.distinct((3, 4)), dim=1)
    yield S(m.distinct((3, 4)), dim=0, keepdim=True)
    yield S(m.distinct((3, 4)), keepdim=True, desc="flattened, keepdim")
    yield S(m.distinct((4, 3), T=True), dim=-1, desc="transposed")
    yield S(m.distinct(()), desc="0-d")


def _var_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 4)))
    yield S(m.uniform((3, 4)), dim=1)
    yield S(m.uniform((3, 4)), dim=0, correction=0, keepdim=True)
    yield S(m.uniform((2, 3, 4)), dim=(0, 2), correction=2)
    yield S(m.uniform((4, 3), T=True), dim=-1, desc="transposed")
    yield S(np.ones((2, 3), m.dtype), dim=1, desc="constant rows: std's subgradient 0", fd=False)


def _logsumexp_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 4)), dim=1)
    yield S(m.uniform((3, 4)), dim=(0, 1), keepdim=True)
    yield S(m.uniform((2, 3, 2)), dim=-1)
    yield S(m.uniform((4, 3), T=True), dim=0, desc="transposed")
    yield S(m.uniform(()), dim=0, desc="0-d")
    yield S(m.uniform((2, 3), 500, 600), dim=1, desc="large: no overflow")


def _norm_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.away((3, 4)))
    yield S(m.away((3, 4)), dim=1)
    yield S(m.away((3, 4)), p=1, dim=0, keepdim=True)
    yield S(m.distinct((3, 4)), p=math.inf, dim=1)
    yield S(m.distinct((3, 4)), p=-math.inf)
    yield S(m.away((3, 4)), p=3, dim=(0, 1))
    yield S(m.away((2, 3)), p=0, dim=1)
    yield S(m.away((4, 3), T=True), dim=0, desc="transposed")
    zeros = np.zeros((2, 3), m.dtype)
    zeros[1] = m.away((3,))
    # Not differentiable at 0; PyTorch's subgradient there is 0.
    yield S(zeros, dim=1, desc="a zero row", fd=False)
    yield S(zeros, p=3, dim=1, desc="a zero row, p=3", fd=False)


def _bool_reduce_samples(m: Maker) -> Iterator[Sample]:
    yield from reduce_samples()(m)
    yield S(np.ones((2, 3), m.dtype), dim=1, desc="all true")
    yield S(np.zeros((2, 3), m.dtype), desc="all false")


def _scan_samples(draw: str = "uniform", **bounds: float) -> Any:
    def samples(m: Maker) -> Iterator[Sample]:
        d = getattr(m, draw)
        yield S(d((3, 4), **bounds), dim=1)
        yield S(d((3, 4), **bounds), dim=0)
        yield S(d((2, 3, 2), **bounds), dim=-2)
        yield S(d((4, 3), T=True, **bounds), dim=1, desc="transposed")
        yield S(d((), **bounds), dim=0, desc="0-d")
        yield S(d((0, 3), **bounds), dim=0, desc="empty")

    return samples


def _torch_norm(x: Any, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Any:
    return torch.linalg.vector_norm(x, 2 if p == "fro" else p, dim=dim, keepdim=keepdim)


REDUCTIONS: list[OpInfo] = [
    OpInfo(
        "sum",
        ember.sum,
        np_reduce(np.sum),
        reduce_samples(),
        torch="sum",
        dtypes=(*FLOATS, "int32", "int64", "bool"),
    ),
    OpInfo("mean", ember.mean, mean_ref, reduce_samples(), torch="mean"),
    OpInfo(
        "prod",
        ember.prod,
        np_reduce(np.prod),
        _prod_samples,
        torch=lambda x, dim=None, keepdim=False: torch_multi_dim(torch.prod, x, dim, keepdim),
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "amax",
        ember.amax,
        np_reduce(np.max),
        _extreme_samples,
        torch="amax",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "amin",
        ember.amin,
        np_reduce(np.min),
        _extreme_samples,
        torch="amin",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "max_all",
        ember.max,
        np.max,
        lambda m: iter([S(m.distinct((3, 4))), S(m.distinct(())), S(m.distinct((4, 3), T=True))]),
        torch="max",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "min_all",
        ember.min,
        np.min,
        lambda m: iter([S(m.distinct((3, 4))), S(m.distinct(()))]),
        torch="min",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "max_dim",
        ember.max,
        max_dim_ref("max"),
        _max_dim_samples,
        torch="max",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "min_dim",
        ember.min,
        max_dim_ref("min"),
        _max_dim_samples,
        torch="min",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "argmax",
        ember.argmax,
        arg_ref("argmax"),
        _arg_samples,
        grad=False,
        torch="argmax",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "argmin",
        ember.argmin,
        arg_ref("argmin"),
        _arg_samples,
        grad=False,
        torch="argmin",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo("var", ember.var, var_ref, _var_samples, torch="var"),
    OpInfo(
        "std",
        ember.std,
        lambda a, dim=None, correction=1, keepdim=False: np.sqrt(
            var_ref(a, dim, correction, keepdim)
        ),
        _var_samples,
        torch="std",
    ),
    OpInfo("logsumexp", ember.logsumexp, logsumexp_ref, _logsumexp_samples, torch="logsumexp"),
    OpInfo("norm", ember.norm, norm_ref, _norm_samples, torch=_torch_norm),
    OpInfo(
        "all",
        ember.all,
        np_reduce(np.all),
        _bool_reduce_samples,
        grad=False,
        torch="all",
        dtypes=("bool", "float32", "int64"),
    ),
    OpInfo(
        "any",
        ember.any,
        np_reduce(np.any),
        _bool_reduce_samples,
        grad=False,
        torch="any",
        dtypes=("bool", "float32", "int64"),
    ),
    OpInfo(
        "cumsum",
        ember.cumsum,
        scan_ref("cumsum"),
        _scan_samples(),
        torch="cumsum",
        dtypes=(*FLOATS, "int32", "int64"),
    ),
    OpInfo(
        "cumprod",
        ember.cumprod,
        scan_ref("cumprod"),
        lambda m: iter(
            [
                *_scan_samples("away", high=1.5)(m),
                S(
                    np.array([[2.0, 0.0, 3.0, -1.5], [0.5, 1.5, 0.0, 0.0]], m.dtype),
                    dim=1,
                    desc="zeros",
                ),
                S(
                    np.array([[0.0, 2.0], [1.5, 0.0], [0.0, 0.0]], m.dtype),
                    dim=0,
                    desc="zeros along dim 0",
                ),
            ]
        ),
        torch="cumprod",
        dtypes=(*FLOATS, "int64"),
    ),
]


# ----------------------------------------------------------------- shape ops
def _reshape_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), (3, 2))
    yield S(m.uniform((2, 3)), (6,))
    yield S(m.uniform((6,)), (2, -1), desc="inferred dim")
    yield S(m.uniform((2, 3)), (2, 3), desc="same shape")
    yield S(m.uniform(()), (1, 1), desc="0-d")
    yield S(m.uniform((1,)), (), desc="to 0-d")
    yield S(m.uniform((0, 3)), (3, 0, 1), desc="empty")
    yield S(m.uniform((3, 2), T=True), (6,), desc="transposed: a copy")


def _permute_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3, 4)), (2, 0, 1))
    yield S(m.uniform((2, 3, 4)), (-1, 0, 1), desc="negative dims")
    yield S(m.uniform((3, 2), T=True), (1, 0), desc="transposed")
    yield S(m.uniform(()), (), desc="0-d")
    yield S(m.uniform((0, 2)), (1, 0), desc="empty")


def _transpose_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), 0, 1)
    yield S(m.uniform((2, 3, 4)), -1, 0)
    yield S(m.uniform((2, 3, 4)), 1, 1, desc="same dim")
    yield S(m.uniform((3,)), 0, -1, desc="1-d")
    yield S(m.uniform((4, 3), T=True), 0, 1, desc="transposed")


def _expand_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 1)), (3, 4))
    yield S(m.uniform((3,)), (2, 3))
    yield S(m.uniform((1, 3)), (2, -1, 3), desc="-1 keeps a dim")
    yield S(m.uniform(()), (2, 2), desc="0-d")
    yield S(m.uniform((1, 3)), (0, 3), desc="empty")
    yield S(m.uniform((1, 2), T=True), (3, 1, 2), desc="transposed")


def _squeeze_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((1, 3, 1)))
    yield S(m.uniform((1, 3, 1)), dim=0)
    yield S(m.uniform((1, 3, 1)), dim=-1)
    yield S(m.uniform((1, 3, 1)), dim=1, desc="not size 1: unchanged")
    yield S(m.uniform((1, 3, 1)), dim=(0, 2), desc="tuple of dims")
    yield S(m.uniform(()), desc="0-d")
    yield S(m.uniform((1, 0)), desc="empty")


def _unsqueeze_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), 0)
    yield S(m.uniform((2, 3)), 2)
    yield S(m.uniform((2, 3)), -1)
    yield S(m.uniform((2, 3)), -3)
    yield S(m.uniform(()), 0, desc="0-d")
    yield S(m.uniform((3, 2), T=True), 1, desc="transposed")


def _flatten_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3, 2)))
    yield S(m.uniform((2, 3, 2)), start_dim=1)
    yield S(m.uniform((2, 3, 2)), start_dim=0, end_dim=-2)
    yield S(m.uniform(()), desc="0-d")
    yield S(m.uniform((2, 0, 3)), start_dim=1, desc="empty")
    yield S(m.uniform((2, 3), T=True), desc="transposed")


def _unflatten_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 6)), 1, (2, 3))
    yield S(m.uniform((6, 2)), 0, (3, -1))
    yield S(m.uniform((2, 6)), -1, (6,))
    yield S(m.uniform((6, 2), T=True), 0, (2, 3), desc="transposed")


def _cat_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), m.uniform((1, 3)))
    yield S(m.uniform((2, 3)), m.uniform((2, 1)), m.uniform((2, 2)), dim=1)
    yield S(m.uniform((2, 3)), m.uniform((2, 2)), dim=-1)
    yield S(m.uniform((2, 3), T=True), m.uniform((2, 2)), dim=1, desc="transposed")
    yield S(m.uniform((0, 3)), m.uniform((2, 3)), desc="empty piece")
    yield S(m.uniform((0,)), m.uniform((2, 3)), desc="legacy empty 1-d piece")
    yield S(m.uniform((2, 3)), desc="one tensor")


def _cat_mixed(m: Maker) -> Iterator[Sample]:
    # Each input's gradient comes back in that input's dtype, as in PyTorch.
    yield S(m.uniform((2, 3)), m.uniform((1, 3)).astype(np.float64), desc="promotes")


def _stack_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), m.uniform((2, 3)))
    yield S(m.uniform((2, 3)), m.uniform((2, 3)), m.uniform((2, 3)), dim=-1)
    yield S(m.uniform((2, 3)), m.uniform((2, 3), T=True), dim=1, desc="transposed")
    yield S(m.uniform(()), m.uniform(()), desc="0-d")
    yield S(m.uniform((0, 2)), m.uniform((0, 2)), dim=1, desc="empty")
    yield S(m.uniform((2,)), desc="one tensor")


def _split_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((5, 2)), 2)
    yield S(m.uniform((5, 2)), [1, 4])
    yield S(m.uniform((2, 5)), 3, dim=1)
    yield S(m.uniform((2, 5)), [2, 0, 3], dim=-1, desc="an empty section")
    yield S(m.uniform((5, 2), T=True), 2, dim=1, desc="transposed")


def _chunk_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((5, 2)), 2)
    yield S(m.uniform((5, 2)), 3)
    yield S(m.uniform((2, 6)), 3, dim=1)
    yield S(m.uniform((2, 6)), 4, dim=-1, desc="fewer chunks than asked")
    yield S(m.uniform((5, 2), T=True), 2, dim=1, desc="transposed")
    yield S(m.uniform((2, 0)), 3, dim=1, desc="empty dim: chunks empty pieces")


def _pad_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), (1, 2))
    yield S(m.uniform((2, 3)), (1, 0, 0, 2), value=1.5)
    yield S(m.uniform((2, 3, 2)), (0, 1, 1, 1, 2, 0), desc="three dims")
    yield S(m.uniform((3, 2), T=True), (2, 1), desc="transposed")
    yield S(m.uniform((0, 2)), (1, 1), desc="empty")
    yield S(m.uniform((2, 5)), (2, 3), mode="reflect")
    yield S(m.uniform((2, 3, 4)), (1, 2, 2, 1), mode="reflect", desc="two dims")
    yield S(m.uniform((2, 3)), (2, 1), mode="replicate")
    yield S(m.uniform((2, 3, 4)), (1, 3, 2, 0), mode="replicate", desc="two dims")
    yield S(m.uniform((2, 4), T=True), (1, 2), mode="replicate", desc="transposed")
    yield S(m.uniform((2, 3)), (1, 2), mode="circular")


def _flip_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), 0)
    yield S(m.uniform((2, 3, 2)), (0, 2))
    yield S(m.uniform((2, 3)), (-1,))
    yield S(m.uniform((3, 2), T=True), (0, 1), desc="transposed")
    yield S(m.uniform(()), (), desc="0-d")
    yield S(m.uniform((0, 2)), 1, desc="empty")


def _roll_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), 1, 1)
    yield S(m.uniform((2, 3)), (1, -2), (0, 1))
    yield S(m.uniform((2, 3)), 4, desc="flattened")
    yield S(m.uniform((3, 2), T=True), -1, 0, desc="transposed")
    yield S(m.uniform((0, 2)), 1, 1, desc="empty")


def _repeat_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), (2, 1))
    yield S(m.uniform((2, 3)), (1, 2, 2), desc="new leading dim")
    yield S(m.uniform(()), (3,), desc="0-d")
    yield S(m.uniform((3, 2), T=True), (1, 2), desc="transposed")
    yield S(m.uniform((0, 2)), (2, 2), desc="empty")
    yield S(m.uniform((2,)), (0,), desc="zero repeats")


def _tile_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), (2, 1))
    yield S(m.uniform((2, 3)), (2,), desc="short dims")
    yield S(m.uniform((2,)), (2, 2), desc="long dims")
    yield S(m.uniform((3, 2), T=True), (1, 2), desc="transposed")


def _gather_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 4)), m.ints((3, 2), 4), 1)
    yield S(m.uniform((3, 4)), m.ints((2, 4), 3), 0)
    yield S(m.uniform((3, 4)), m.ints((2, 5), 4), -1, desc="index smaller and larger")
    yield S(m.uniform((2, 3, 2)), m.ints((2, 3, 2), 3), 1, desc="repeated indices")
    yield S(m.uniform((4, 3), T=True), m.ints((3, 3), 3), 1, desc="transposed")
    yield S(m.uniform((3, 4)), np.zeros((0, 4), np.int64), 0, desc="empty index")


def _scatter_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 4)), m.perm_index((3, 2), 4, 1), m.uniform((3, 2)), 1)
    yield S(m.uniform((3, 4)), m.perm_index((2, 4), 3, 0), m.uniform((2, 4)), 0)
    yield S(
        m.uniform((3, 4)),
        m.perm_index((2, 2), 4, 1),
        m.uniform((3, 3)),
        -1,
        desc="src larger than index",
        torch_grad=False,  # PyTorch's backward returns a gradient of the index's shape
    )
    yield S(
        m.uniform((4, 3), T=True),
        m.perm_index((3, 2), 3, 1),
        m.uniform((3, 2)),
        1,
        desc="transposed",
    )
    yield S(m.uniform((3, 4)), m.perm_index((3, 2), 4, 1), 0.5, 1, desc="scalar value")


def _scatter_add_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 4)), m.ints((3, 5), 4), m.uniform((3, 5)), 1, desc="repeats")
    yield S(m.uniform((3, 4)), m.ints((2, 4), 3), m.uniform((2, 4)), 0)
    yield S(
        m.uniform((3, 4)),
        m.ints((2, 2), 4),
        m.uniform((3, 3)),
        -1,
        desc="src larger than index",
        torch_grad=False,  # PyTorch's backward returns a gradient of the index's shape
    )
    yield S(
        m.uniform((4, 3), T=True),
        m.ints((3, 2), 3),
        m.uniform((3, 2), T=True),
        1,
        desc="transposed",
    )


def _index_select_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 4)), 0, np.array([2, 0, 2]))
    yield S(m.uniform((3, 4)), -1, np.array([3, 1]))
    yield S(m.uniform((3, 4)), 1, np.array(2), desc="0-d index")
    yield S(m.uniform((3, 4)), 0, np.zeros((0,), np.int64), desc="empty index")
    yield S(m.uniform((4, 3), T=True), 1, np.array([0, 2, 2]), desc="transposed")
    yield S(m.uniform(()), 0, np.array([0]), desc="0-d input")


def _masked_fill_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), m.mask((2, 3)), 0.5)
    yield S(m.uniform((2, 3)), m.mask((3,)), -1.0, desc="broadcast mask")
    yield S(m.uniform((3, 2), T=True), m.mask((3, 2)), 2.0, desc="transposed")
    yield S(m.uniform((2, 3)), m.mask((2, 3)), m.uniform(()), desc="0-d tensor value")
    yield S(m.uniform(()), np.array(True), 1.0, desc="0-d")
    yield S(m.uniform((0, 3)), m.mask((0, 3)), 1.0, desc="empty")


def _masked_select_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), m.mask((2, 3)))
    yield S(m.uniform((2, 3)), m.mask((3,)), desc="broadcast mask")
    yield S(m.uniform((3,)), m.mask((2, 3)), desc="broadcast input")
    yield S(m.uniform((3, 2), T=True), m.mask((3, 2)), desc="transposed")
    yield S(m.uniform((2, 3)), np.zeros((2, 3), bool), desc="nothing selected")


def _take_along_dim_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 4)), m.ints((3, 2), 4), 1)
    yield S(m.uniform((3, 4)), m.ints((2, 4), 3), 0)
    yield S(m.uniform((3, 4)), m.ints((1, 2), 4), -1, desc="broadcast index")
    yield S(m.uniform((3, 4)), m.ints((5,), 12), desc="flattened")
    yield S(m.uniform((4, 3), T=True), m.ints((4, 2), 3), 1, desc="transposed")


def _tri_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 4)))
    yield S(m.uniform((3, 4)), diagonal=1)
    yield S(m.uniform((4, 3)), diagonal=-1)
    yield S(m.uniform((2, 3, 3)), desc="batched")
    yield S(m.uniform((3, 3), T=True), diagonal=-2, desc="transposed")
    yield S(m.uniform((0, 3)), desc="empty")


def _one_hot_samples(m: Maker) -> Iterator[Sample]:
    yield S(np.array([0, 2, 1, 2]))
    yield S(np.array([[0, 2], [3, 1]]), 5, desc="num_classes")
    yield S(np.array(1), 3, desc="0-d")
    yield S(np.zeros((0,), np.int64), 4, desc="empty")


def _sort_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.distinct((3, 4)))
    yield S(m.distinct((3, 4)), 0)
    yield S(m.distinct((3, 4)), -1, True, desc="descending")
    yield S(m.distinct((2, 3, 2)), 1)
    yield S(m.distinct((4, 3), T=True), 1, desc="transposed")
    yield S(m.distinct(()), desc="0-d")
    yield S(m.uniform((0, 3)), desc="empty")
    ties = np.array([[2, 1, 2, 1, 3], [0, 0, 1, 0, 1]]).astype(m.dtype)
    yield S(ties, stable=True, desc="ties, stable", fd=False)
    yield S(ties, descending=True, stable=True, desc="ties, stable, descending", fd=False)
    if m.is_float:
        nans = np.array([[1.0, np.nan, 3.0, 3.0, np.inf, -1.0, np.nan]], m.dtype)
        yield S(nans, stable=True, desc="NaN sorts last", fd=False)
        yield S(nans, descending=True, stable=True, desc="NaN sorts first", fd=False)


def _topk_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.distinct((3, 4)), 2)
    yield S(m.distinct((3, 4)), 1, 0)
    yield S(m.distinct((3, 4)), 3, -1, False, desc="smallest")
    yield S(m.distinct((4, 3), T=True), 2, 1, desc="transposed")
    yield S(m.distinct((3, 4)), 0, desc="k=0")
    yield S(m.distinct(()), 1, desc="0-d")
    if m.is_float:
        nans = np.array([[1.0, np.nan, 3.0, np.inf, -1.0]], m.dtype)
        yield S(nans, 2, desc="NaN is the largest", fd=False)


def _getitem_samples(m: Maker) -> Iterator[Sample]:
    x = m.uniform((3, 4, 2))
    yield S(x, 1, desc="int")
    yield S(x, -1, desc="negative int")
    yield S(x, (1, 2), desc="two ints")
    yield S(x, slice(1, 3), desc="slice")
    yield S(x, (slice(None), slice(None, None, 2)), desc="stepped slice")
    yield S(x, (slice(None, None, -1), 0), desc="negative step", torch=False)
    yield S(x, (Ellipsis, 0), desc="Ellipsis")
    yield S(x, (None, 1), desc="None")
    yield S(x, (0, None, slice(1, 3), Ellipsis), desc="mixed basic")
    yield S(x, slice(2, 2), desc="empty slice")
    yield S(x, np.array([0, 2, 2]), desc="int array with repeats")
    yield S(x, (slice(None), np.array([[0, 1], [3, 3]])), desc="2-d int array")
    yield S(x, (np.array([0, 2]), np.array([1, 3])), desc="paired int arrays")
    yield S(x, (np.array([0, 1]), slice(None), np.array([1, 0])), desc="split advanced")
    yield S(x, (Ellipsis, np.array([1, 0, 1])), desc="Ellipsis and int array")
    yield S(x, x > 0, desc="full bool mask")
    yield S(x, np.array([True, False, True]), desc="bool mask on dim 0")
    yield S(x, (slice(None), m.mask((4,))), desc="bool mask on dim 1")
    yield S(x, np.zeros((3, 4, 2), bool), desc="all-false mask")
    yield S(m.uniform((4, 3), T=True), (slice(1, None), np.array([2, 0])), desc="transposed")
    yield S(m.uniform(()), (), desc="0-d, empty tuple")
    yield S(m.uniform(()), None, desc="0-d, None")
    yield S(m.uniform(()), Ellipsis, desc="0-d, Ellipsis")


def _setitem_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((3, 4)), m.uniform((4,)), 1, desc="row")
    yield S(m.uniform((3, 4)), 0.5, (slice(None), 2), desc="python scalar")
    yield S(m.uniform((3, 4)), m.uniform(()), (slice(0, 2), slice(1, 3)), desc="0-d value")
    yield S(
        m.uniform((3, 4)),
        m.uniform((2, 1)),
        (slice(0, 2), slice(1, None, 2)),
        desc="broadcast value",
    )
    yield S(m.uniform((3, 4)), m.uniform((2, 4)), np.array([2, 0]), desc="int array")
    yield S(
        m.uniform((3, 4)),
        m.uniform((2,)),
        (np.array([0, 2]), np.array([3, 1])),
        desc="paired int arrays",
    )
    x = m.uniform((3, 4))
    yield S(x, -1.0, x > 0.5, desc="bool mask, scalar")
    yield S(m.uniform((4, 3), T=True), m.uniform((4,)), (Ellipsis, 1), desc="transposed")
    yield S(m.uniform(()), 2.0, (), desc="0-d")


SHAPE: list[OpInfo] = [
    OpInfo("reshape", ember.reshape, np.reshape, _reshape_samples, torch="reshape"),
    OpInfo(
        "view",
        lambda x, shape: x.view(*shape),
        np.reshape,
        lambda m: (s for s in _reshape_samples(m) if "copy" not in s.desc),
        torch=lambda x, shape: x.view(shape),
    ),
    OpInfo(
        "permute",
        lambda x, dims: ember.permute(x, *dims),
        np.transpose,
        _permute_samples,
        torch=lambda x, dims: x.permute(dims),
    ),
    OpInfo("transpose", ember.transpose, np.swapaxes, _transpose_samples, torch="transpose"),
    OpInfo(
        "T",
        lambda x: x.T,
        np.transpose,
        lambda m: iter(
            [
                S(m.uniform((2, 3))),
                S(m.uniform((3, 2), T=True)),
                S(m.uniform((2, 3, 4)), desc="3-d"),
            ]
        ),
        torch=lambda x: x.permute(*reversed(range(x.ndim))),
    ),
    OpInfo(
        "t",
        ember.t,
        np.transpose,
        lambda m: iter([S(m.uniform((2, 3))), S(m.uniform((3,))), S(m.uniform(()))]),
        torch="t",
    ),
    OpInfo(
        "mT",
        lambda x: x.mT,
        lambda a: np.swapaxes(a, -1, -2),
        lambda m: iter(
            [S(m.uniform((2, 3))), S(m.uniform((2, 3, 4))), S(m.uniform((4, 3, 2), T=True))]
        ),
        torch=lambda x: x.mT,
    ),
    OpInfo(
        "movedim",
        ember.movedim,
        np.moveaxis,
        lambda m: iter([S(m.uniform((2, 3, 4)), 0, -1), S(m.uniform((2, 3, 4)), (0, 1), (2, 0))]),
        torch="movedim",
    ),
    OpInfo(
        "expand",
        lambda x, sizes: x.expand(*sizes),
        expand_ref,
        _expand_samples,
        torch=lambda x, sizes: x.expand(*sizes),
    ),
    OpInfo(
        "broadcast_to",
        ember.broadcast_to,
        np.broadcast_to,
        lambda m: (s for s in _expand_samples(m) if -1 not in s.args[1]),
        torch="broadcast_to",
    ),
    OpInfo(
        "expand_as",
        ember.expand_as,
        lambda a, b: np.broadcast_to(a, b.shape),
        lambda m: iter([S(m.uniform((3, 1)), m.uniform((2, 3, 4)))]),
        torch=lambda x, y: x.expand_as(y),
    ),
    OpInfo("squeeze", ember.squeeze, squeeze_ref, _squeeze_samples, torch="squeeze"),
    OpInfo("unsqueeze", ember.unsqueeze, np.expand_dims, _unsqueeze_samples, torch="unsqueeze"),
    OpInfo("flatten", ember.flatten, flatten_ref, _flatten_samples, torch="flatten"),
    OpInfo(
        "unflatten",
        ember.unflatten,
        lambda a, dim, sizes: a.reshape(
            a.shape[: dim % a.ndim] + tuple(sizes) + a.shape[dim % a.ndim + 1 :]
        ),
        _unflatten_samples,
        torch="unflatten",
    ),
    OpInfo(
        "cat",
        lambda *xs, dim=0: ember.cat(xs, dim),
        lambda *xs, dim=0: np.concatenate([x for x in xs if x.shape != (0,)] or xs, axis=dim),
        _cat_samples,
        torch=lambda *xs, dim=0: torch.cat(xs, dim),
    ),
    OpInfo(
        "cat_promote",
        lambda *xs, dim=0: ember.cat(xs, dim),
        lambda *xs, dim=0: np.concatenate(xs, axis=dim),
        _cat_mixed,
        dtypes=("float32",),
        torch=lambda *xs, dim=0: torch.cat(xs, dim),
    ),
    OpInfo(
        "stack",
        lambda *xs, dim=0: ember.stack(xs, dim),
        lambda *xs, dim=0: np.stack(xs, axis=dim),
        _stack_samples,
        torch=lambda *xs, dim=0: torch.stack(xs, dim),
    ),
    OpInfo("split", ember.split, split_ref, _split_samples, torch="split"),
    OpInfo(
        "chunk",
        ember.chunk,
        chunk_ref,
        _chunk_samples,
        torch="chunk",
    ),
    OpInfo(
        "unbind",
        ember.unbind,
        lambda a, dim=0: tuple(np.moveaxis(a, dim, 0)),
        lambda m: iter([S(m.uniform((3, 2))), S(m.uniform((2, 3)), 1)]),
        torch="unbind",
    ),
    OpInfo(
        "narrow",
        ember.narrow,
        lambda a, dim, start, length: np.take(a, np.arange(start, start + length), axis=dim),
        lambda m: iter(
            [
                S(m.uniform((4, 3)), 0, 1, 2),
                S(m.uniform((4, 3)), -1, 0, 3),
                S(m.uniform((4, 3)), 0, -2, 2, desc="negative start"),
                S(m.uniform((4, 3)), 1, 3, 0, desc="empty at the end"),
            ]
        ),
        torch="narrow",
    ),
    OpInfo(
        "pad",
        ember.pad,
        pad_ref,
        _pad_samples,
        torch=lambda x, pad, mode="constant", value=None: torch.nn.functional.pad(
            x, pad, mode, value
        ),
    ),
    OpInfo(
        "flip",
        ember.flip,
        lambda a, dims: np.flip(a, dims),
        _flip_samples,
        torch=lambda x, dims: torch.flip(x, (dims,) if isinstance(dims, int) else dims),
    ),
    OpInfo(
        "roll",
        ember.roll,
        lambda a, shifts, dims=None: np.roll(a, shifts, dims),
        _roll_samples,
        torch="roll",
    ),
    OpInfo(
        "repeat",
        lambda x, sizes: x.repeat(*sizes),
        lambda a, sizes: np.tile(a, sizes),
        _repeat_samples,
        torch=lambda x, sizes: x.repeat(*sizes),
    ),
    OpInfo("tile", ember.tile, np.tile, _tile_samples, torch="tile"),
    OpInfo(
        "gather",
        lambda x, index, dim: ember.gather(x, dim, index),
        gather_ref,
        _gather_samples,
        torch=lambda x, index, dim: torch.gather(x, dim, index),
    ),
    OpInfo(
        "scatter",
        lambda x, index, src, dim: ember.scatter(x, dim, index, src),
        scatter_ref(add=False),
        _scatter_samples,
        torch=lambda x, index, src, dim: torch.scatter(x, dim, index, src),
        inplace=lambda x, index, src, dim: x.scatter_(dim, index, src),
    ),
    OpInfo(
        "scatter_add",
        lambda x, index, src, dim: ember.scatter_add(x, dim, index, src),
        scatter_ref(add=True),
        _scatter_add_samples,
        torch=lambda x, index, src, dim: torch.scatter_add(x, dim, index, src),
        inplace=lambda x, index, src, dim: x.scatter_add_(dim, index, src),
    ),
    OpInfo(
        "index_select",
        ember.index_select,
        lambda a, dim, index: a.copy() if a.ndim == 0 else np.take(a, index.reshape(-1), dim),
        _index_select_samples,
        torch="index_select",
    ),
    OpInfo(
        "masked_fill",
        ember.masked_fill,
        lambda a, mask, value: np.where(mask, value, a).astype(a.dtype),
        _masked_fill_samples,
        torch="masked_fill",
        inplace=method("masked_fill_"),
    ),
    OpInfo(
        "masked_select",
        ember.masked_select,
        lambda a, mask: np.broadcast_to(a, np.broadcast_shapes(a.shape, mask.shape))[
            np.broadcast_to(mask, np.broadcast_shapes(a.shape, mask.shape))
        ],
        _masked_select_samples,
        torch="masked_select",
    ),
    OpInfo(
        "take_along_dim",
        ember.take_along_dim,
        take_along_dim_ref,
        _take_along_dim_samples,
        torch="take_along_dim",
    ),
    OpInfo(
        "tril",
        ember.tril,
        tri_mask_ref(True),
        _tri_samples,
        torch="tril",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "triu",
        ember.triu,
        tri_mask_ref(False),
        _tri_samples,
        torch="triu",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo(
        "one_hot",
        ember.one_hot,
        lambda a, num_classes=-1: np.eye(
            num_classes if num_classes >= 0 else int(a.max()) + 1, dtype=np.int64
        )[a],
        _one_hot_samples,
        dtypes=("int64",),
        grad=False,
        torch=lambda x, num_classes=-1: torch.nn.functional.one_hot(x, num_classes),
    ),
    OpInfo("sort", ember.sort, sort_ref, _sort_samples, torch="sort", dtypes=(*FLOATS, "int64")),
    OpInfo(
        "argsort",
        ember.argsort,
        lambda a, dim=-1, descending=False, stable=False: sort_ref(a, dim, descending)[1],
        _sort_samples,
        grad=False,
        torch="argsort",
        dtypes=(*FLOATS, "int64"),
    ),
    OpInfo("topk", ember.topk, topk_ref, _topk_samples, torch="topk", dtypes=(*FLOATS, "int64")),
    OpInfo(
        "getitem",
        lambda x, index: x[to_ember_index(index)],
        lambda a, index: a[index],
        _getitem_samples,
        torch=lambda x, index: x[to_torch_index(index)],
    ),
    OpInfo(
        "getitem_list",
        lambda x, index: x[index],
        lambda a, index: a[index],
        lambda m: iter([S(m.uniform((3, 2)), [2, 0]), S(m.uniform((3, 2)), [True, False, True])]),
        torch=lambda x, index: x[index],
    ),
    OpInfo(
        "setitem",
        lambda x, v, index: x.index_put(to_ember_index(index), v),
        setitem_ref,
        _setitem_samples,
        torch=torch_setitem,
        inplace=ember_setitem,
    ),
    OpInfo(
        "to",
        lambda x, dtype: x.to(dtype),
        lambda a, dtype: a.astype(dtype),
        lambda m: iter(
            [
                S(m.uniform((2, 3)), "float64"),
                # float32 output: too coarse for float64 finite differences
                S(m.uniform((2, 3)), "float32", fd=False),
                S(m.uniform((2, 3), -5, 5), "int64"),
                S(m.uniform((2, 3)), "bool"),
                S(m.uniform(()), "float64", desc="0-d"),
            ]
        ),
        torch=lambda x, dtype: x.to(tdtype(dtype)),
    ),
    OpInfo("clone", ember.clone, np.copy, unary_samples(), torch="clone"),
    OpInfo(
        "contiguous",
        lambda x: x.contiguous(),
        lambda a: np.array(a, order="C"),
        unary_samples(),
        torch=lambda x: x.contiguous(),
    ),
    OpInfo("to_device", to_device, np.asarray, unary_samples(), torch=lambda x: x.to("cpu")),
]


# ----------------------------------------------------------------- linear algebra
def _matmul_samples(m: Maker) -> Iterator[Sample]:
    u = m.uniform
    yield S(u((2, 3)), u((3, 4)), desc="2-d @ 2-d")
    yield S(u((3,)), u((3,)), desc="1-d @ 1-d")
    yield S(u((3,)), u((3, 2)), desc="1-d @ 2-d")
    yield S(u((2, 3)), u((3,)), desc="2-d @ 1-d")
    yield S(u((2, 2, 3)), u((3, 2)), desc="batched @ 2-d")
    yield S(u((2, 1, 2, 3)), u((3, 3, 2)), desc="broadcast batch")
    yield S(u((3,)), u((2, 3, 2)), desc="1-d @ batched")
    yield S(u((2, 2, 3)), u((3,)), desc="batched @ 1-d")
    yield S(u((2, 3), T=True), u((3, 4), T=True), desc="transposed")
    yield S(u((0, 3)), u((3, 2)), desc="empty rows")
    yield S(u((2, 0)), u((0, 3)), desc="empty inner dim")


def _einsum_samples(m: Maker) -> Iterator[Sample]:
    u = m.uniform
    yield S(u((2, 3)), u((3, 4)), equation="ij,jk->ik")
    yield S(u((2, 2, 3)), u((2, 3, 2)), equation="bij,bjk->bik")
    yield S(u((2, 3)), equation="ij->j")
    yield S(u((2, 3)), equation="ij->")
    yield S(u((2, 3)), equation="ij->ji")
    yield S(u((3,)), u((3,)), equation="i,i->")
    yield S(u((3,)), u((2,)), equation="i,j->ij")
    yield S(u((2, 3)), u((3,)), equation="ij,j")
    yield S(u((2, 3, 2)), u((2, 4)), equation="...j,jk->...k", desc="ellipsis")
    yield S(u((2, 3)), u((3, 2)), u((2, 2)), equation="ij,jk,kl->il", desc="three operands")
    yield S(u((3, 2), T=True), u((3, 2)), equation="ij,ij->i", desc="transposed")
    yield S(u((3, 3)), equation="ii->i", desc="diagonal")
    yield S(u((3, 3)), equation="ii", desc="trace")
    yield S(u((0, 3)), u((3, 2)), equation="ij,jk->ik", desc="empty")
    yield S(u(()), u((3,)), equation=",i->i", desc="0-d operand")


LINALG: list[OpInfo] = [
    OpInfo(
        "matmul",
        ember.matmul,
        np.matmul,
        _matmul_samples,
        torch="matmul",
        tol={"float32": (1e-5, 1e-5)},
    ),
    OpInfo(
        "matmul_operator",
        lambda x, y: x @ y,
        np.matmul,
        lambda m: iter([S(m.uniform((2, 3)), m.uniform((3, 2)))]),
        torch=lambda x, y: x @ y,
    ),
    OpInfo(
        "mm",
        ember.mm,
        np.matmul,
        lambda m: iter(
            [
                S(m.uniform((2, 3)), m.uniform((3, 4))),
                S(m.uniform((2, 3), T=True), m.uniform((3, 2))),
            ]
        ),
        torch="mm",
    ),
    OpInfo(
        "bmm",
        ember.bmm,
        np.matmul,
        lambda m: iter(
            [
                S(m.uniform((2, 2, 3)), m.uniform((2, 3, 2))),
                S(m.uniform((2, 2, 3), T=True), m.uniform((2, 3, 1))),
            ]
        ),
        torch="bmm",
    ),
    OpInfo(
        "dot",
        ember.dot,
        np.dot,
        lambda m: iter(
            [
                S(m.uniform((4,)), m.uniform((4,))),
                S(m.uniform((4, 2))[:, 0], m.uniform((4,)), desc="strided"),
                S(m.uniform((0,)), m.uniform((0,)), desc="empty"),
            ]
        ),
        torch="dot",
    ),
    OpInfo(
        "outer",
        ember.outer,
        np.outer,
        lambda m: iter(
            [S(m.uniform((3,)), m.uniform((2,))), S(m.uniform((0,)), m.uniform((2,)), desc="empty")]
        ),
        torch="outer",
    ),
    OpInfo(
        "einsum",
        lambda *xs, equation: ember.einsum(equation, *xs),
        einsum_ref,
        _einsum_samples,
        torch=lambda *xs, equation: torch.einsum(equation, *xs),
        tol={"float32": (1e-5, 1e-5)},
    ),
]


# ----------------------------------------------------------------- softmax
def _softmax_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3)), 1)
    yield S(m.uniform((2, 3)), 0)
    yield S(m.uniform((2, 3, 2)), -2)
    yield S(m.uniform((4, 3), T=True), -1, desc="transposed")
    yield S(m.uniform(()), 0, desc="0-d")
    yield S(m.uniform((0, 3)), 1, desc="empty")
    yield S(m.uniform((2, 3), 900, 1000), 1, desc="large: no overflow")


def _half_ref(ref: Callable[..., Any]) -> Callable[..., Any]:
    """A float32 reference rounded once to the input's half-precision dtype."""
    return lambda a, dim: ref(a.astype(np.float32), dim).astype(a.dtype)


ACTIVATION: list[OpInfo] = [
    OpInfo("softmax", ember.softmax, softmax_ref, _softmax_samples, torch="softmax"),
    OpInfo(
        "log_softmax", ember.log_softmax, log_softmax_ref, _softmax_samples, torch="log_softmax"
    ),
    OpInfo(
        "softmax_dtype",
        lambda x, dim: ember.softmax(x, dim, dtype=ember.float64),
        lambda a, dim: softmax_ref(a.astype(np.float64), dim),
        lambda m: iter([S(m.uniform((2, 3)), 1)]),
        dtypes=("float32",),
        torch=lambda x, dim: torch.softmax(x, dim, dtype=torch.float64),
    ),
    *[
        OpInfo(
            f"{name}_float16",
            getattr(ember, name),
            _half_ref(ref),
            lambda m: (s for s in _softmax_samples(m) if "large" not in s.desc),
            dtypes=("float16",),
            grad=False,
            torch=name,
            tol={"float16": (1e-3, 1e-4)},  # one float16 ulp
            torch_tol={"float16": (4e-3, 1e-3)},  # PyTorch's log_softmax is a few ulps off
        )
        for name, ref in (("softmax", softmax_ref), ("log_softmax", log_softmax_ref))
    ],
]


# ----------------------------------------------------------------- convolution and pooling
# The functions live in ember.nn (PyTorch's torch.nn.functional); their primitives
# (conv, conv_transpose, conv_weight and the pooling kernels) live in ember._src.ops.
def _nd(v: Any, n: int) -> tuple[int, ...]:
    return (v,) * n if isinstance(v, int) else tuple(v)


def conv_ref(
    x: np.ndarray,
    w: np.ndarray,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> np.ndarray:
    """Cross-correlation, one output element at a time, accumulated in float64."""
    nd = w.ndim - 2
    s, p, d = _nd(stride, nd), _nd(padding, nd), _nd(dilation, nd)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), *[(q, q) for q in p]])
    k = w.shape[2:]
    size = [(xp.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(nd)]
    out = np.zeros((x.shape[0], w.shape[0], *size))
    cin, cout = w.shape[1], w.shape[0] // groups
    for n, o in np.ndindex(x.shape[0], w.shape[0]):
        c = (o // cout) * cin
        for pos in np.ndindex(*size):
            win = tuple(
                slice(pos[i] * s[i], pos[i] * s[i] + d[i] * (k[i] - 1) + 1, d[i]) for i in range(nd)
            )
            out[(n, o, *pos)] = np.sum(xp[(n, slice(c, c + cin), *win)] * w[o])
    if bias is not None:
        out += bias.reshape(-1, *[1] * nd)
    return out.astype(x.dtype)


def conv_transpose_ref(
    x: np.ndarray,
    w: np.ndarray,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> np.ndarray:
    """Scatter every input element times its kernel into the output, then crop the padding."""
    nd = w.ndim - 2
    s, p, d = _nd(stride, nd), _nd(padding, nd), _nd(dilation, nd)
    op = _nd(output_padding, nd)
    k = w.shape[2:]
    full = [(x.shape[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 + op[i] for i in range(nd)]
    cin, cout = x.shape[1] // groups, w.shape[1]
    out = np.zeros((x.shape[0], cout * groups, *full))
    for n, c in np.ndindex(*x.shape[:2]):
        g = c // cin
        for pos in np.ndindex(*x.shape[2:]):
            win = tuple(
                slice(pos[i] * s[i], pos[i] * s[i] + d[i] * (k[i] - 1) + 1, d[i]) for i in range(nd)
            )
            out[(n, slice(g * cout, (g + 1) * cout), *win)] += x[(n, c, *pos)] * w[c]
    out = out[(slice(None), slice(None), *[slice(p[i], full[i] - p[i]) for i in range(nd)])]
    if bias is not None:
        out += bias.reshape(-1, *[1] * nd)
    return out.astype(x.dtype)


def _pool_windows(
    x: np.ndarray, kernel: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool
) -> Iterator[tuple[tuple[int, ...], list[tuple[int, ...]], int]]:
    """(output position, input positions inside the input, positions inside input + padding)."""
    nd = x.ndim - 2
    k, p, d = _nd(kernel, nd), _nd(padding, nd), _nd(dilation, nd)
    s = k if stride is None else _nd(stride, nd)
    size = []
    for i in range(nd):
        span = x.shape[2 + i] + 2 * p[i] - d[i] * (k[i] - 1) - 1
        o = (-(-span // s[i]) if ceil_mode else span // s[i]) + 1
        if ceil_mode and (o - 1) * s[i] >= x.shape[2 + i] + p[i]:
            o -= 1  # the last window must start inside the input or its left padding
        size.append(o)
    for pos in np.ndindex(*size):
        taps = [
            range(pos[i] * s[i] - p[i], pos[i] * s[i] - p[i] + d[i] * (k[i] - 1) + 1, d[i])
            for i in range(nd)
        ]
        inside = [
            t
            for t in itertools.product(*taps)
            if all(0 <= t[i] < x.shape[2 + i] for i in range(nd))
        ]
        padded = math.prod(
            len([v for v in taps[i] if v < x.shape[2 + i] + p[i]]) for i in range(nd)
        )
        yield pos, inside, padded


def max_pool_ref(
    x: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    wins = list(_pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode))
    size = tuple(np.max([w[0] for w in wins], axis=0) + 1) if wins else ()
    out = np.zeros((*x.shape[:2], *size), x.dtype)
    idx = np.zeros(out.shape, np.int64)
    for n, c in np.ndindex(*x.shape[:2]):
        for pos, inside, _ in wins:
            vals = [x[(n, c, *t)] for t in inside]
            best = int(np.argmax(vals))  # the first maximum
            out[(n, c, *pos)] = vals[best]
            idx[(n, c, *pos)] = np.ravel_multi_index(inside[best], x.shape[2:])
    return (out, idx) if return_indices else out


def avg_pool_ref(
    x: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    wins = list(_pool_windows(x, kernel_size, stride, padding, 1, ceil_mode))
    size = tuple(np.max([w[0] for w in wins], axis=0) + 1)
    out = np.zeros((*x.shape[:2], *size), x.dtype)
    for n, c in np.ndindex(*x.shape[:2]):
        for pos, inside, padded in wins:
            total = sum(float(x[(n, c, *t)]) for t in inside)
            out[(n, c, *pos)] = total / (padded if count_include_pad else len(inside))
    return out


def adaptive_pool_ref(reduce: Callable[..., Any]) -> Any:
    def ref(x: np.ndarray, output_size: Any, return_indices: bool = False) -> Any:
        size = _nd(output_size, 2)
        out = np.zeros((*x.shape[:2], *size), x.dtype)
        idx = np.zeros(out.shape, np.int64)
        h, w = x.shape[2:]
        for i, j in np.ndindex(*size):
            r = slice(i * h // size[0], -(-(i + 1) * h // size[0]))
            c = slice(j * w // size[1], -(-(j + 1) * w // size[1]))
            win = x[:, :, r, c].reshape(*x.shape[:2], -1)
            out[:, :, i, j] = reduce(win, axis=-1)
            first = np.argmax(win, axis=-1)  # only read for max pooling
            width = c.stop - c.start
            idx[:, :, i, j] = (r.start + first // width) * w + c.start + first % width
        return (out, idx) if return_indices else out

    return ref


def _conv_samples(nd: int) -> Callable[[Maker], Iterator[Sample]]:
    def samples(m: Maker) -> Iterator[Sample]:
        sp = (5,) * nd
        k = (3,) * nd
        yield S(m.uniform((2, 3, *sp)), m.uniform((4, 3, *k)), m.uniform((4,)))
        yield S(m.uniform((1, 2, *sp)), m.uniform((2, 2, *k)), None, 2, 1, desc="stride, pad")
        yield S(m.uniform((1, 2, *sp)), m.uniform((3, 2, *(2,) * nd)), dilation=2, desc="dilation")
        yield S(m.uniform((1, 4, *sp)), m.uniform((2, 2, *k)), groups=2, desc="groups")
        yield S(
            m.uniform((1, 2, *sp), T=True).copy(order="K"),
            m.uniform((2, 2, *k)),
            padding=1,
            desc="transposed input",
        )
        small = (3,) * nd
        yield S(m.uniform((1, 1, *small)), m.uniform((2, 1, *(2,) * nd)), desc="small")

    return samples


def _conv_transpose_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 3, 3, 3)), m.uniform((3, 2, 2, 2)), m.uniform((2,)))
    yield S(
        m.uniform((1, 2, 3, 2)),
        m.uniform((2, 2, 3, 3)),
        None,
        2,
        1,
        1,
        desc="stride, padding, output_padding",
    )
    yield S(m.uniform((1, 4, 2, 3)), m.uniform((4, 1, 2, 2)), groups=2, desc="groups")
    yield S(m.uniform((1, 2, 3, 3)), m.uniform((2, 1, 2, 2)), dilation=2, desc="dilation")


def _max_pool2d_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.distinct((2, 2, 4, 4)), 2)
    yield S(m.distinct((1, 2, 5, 5)), 3, 2, 1, desc="stride, padding")
    yield S(m.distinct((1, 1, 5, 6)), (2, 3), 2, ceil_mode=True, desc="ceil_mode")
    yield S(m.distinct((1, 1, 6, 6)), 2, 1, dilation=2, desc="dilation")
    yield S(m.distinct((1, 2, 4, 4)), 2, return_indices=True, desc="indices")
    yield S(m.distinct((1, 2, 4, 4), T=True), 2, desc="transposed")
    ties = np.ones((1, 1, 4, 4), m.dtype)
    yield S(ties, 2, 1, return_indices=True, desc="ties: the first maximum", fd=False)


def _avg_pool2d_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.uniform((2, 2, 4, 4)), 2)
    yield S(m.uniform((1, 2, 5, 5)), 3, 2, 1, desc="stride, padding")
    yield S(m.uniform((1, 2, 5, 5)), 3, 2, 1, count_include_pad=False, desc="exclude padding")
    yield S(m.uniform((1, 1, 5, 6)), (2, 3), 2, ceil_mode=True, desc="ceil_mode")
    yield S(m.uniform((1, 1, 5, 6)), 3, 2, 1, True, False, desc="ceil_mode, exclude padding")


def _adaptive_samples(m: Maker) -> Iterator[Sample]:
    yield S(m.distinct((2, 2, 4, 4)), 2)
    yield S(m.distinct((1, 2, 5, 7)), (3, 2), desc="uneven windows")
    yield S(m.distinct((1, 1, 3, 3)), (4, 5), desc="overlapping windows")


def _nn(module: str, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(f"ember._src.nn.{module}"), name)(*args, **kwargs)

    return call


def _tf(name: str) -> Callable[..., Any]:
    return lambda *args, **kwargs: getattr(torch.nn.functional, name)(*args, **kwargs)


CONV_POOL: list[OpInfo] = [
    OpInfo(
        "conv1d",
        _nn("conv", "conv1d"),
        conv_ref,
        _conv_samples(1),
        torch=_tf("conv1d"),
        tol={"float32": (1e-5, 1e-5)},
    ),
    OpInfo(
        "conv2d",
        _nn("conv", "conv2d"),
        conv_ref,
        _conv_samples(2),
        torch=_tf("conv2d"),
        tol={"float32": (1e-5, 1e-5)},
    ),
    OpInfo(
        "conv_transpose2d",
        _nn("conv", "conv_transpose2d"),
        conv_transpose_ref,
        _conv_transpose_samples,
        torch=_tf("conv_transpose2d"),
        tol={"float32": (1e-5, 1e-5)},
    ),
    OpInfo(
        "max_pool2d",
        _nn("pooling", "max_pool2d"),
        max_pool_ref,
        _max_pool2d_samples,
        torch=_tf("max_pool2d"),
    ),
    OpInfo(
        "max_pool1d",
        _nn("pooling", "max_pool1d"),
        max_pool_ref,
        lambda m: iter(
            [S(m.distinct((2, 2, 7)), 3, 2, 1), S(m.distinct((1, 2, 6)), 2, return_indices=True)]
        ),
        torch=_tf("max_pool1d"),
    ),
    OpInfo(
        "avg_pool2d",
        _nn("pooling", "avg_pool2d"),
        avg_pool_ref,
        _avg_pool2d_samples,
        torch=_tf("avg_pool2d"),
    ),
    OpInfo(
        "adaptive_max_pool2d",
        _nn("pooling", "adaptive_max_pool2d"),
        adaptive_pool_ref(np.max),
        lambda m: iter(
            [
                *_adaptive_samples(m),
                S(m.distinct((1, 2, 5, 5)), (2, 3), return_indices=True, desc="indices"),
            ]
        ),
        torch=_tf("adaptive_max_pool2d"),
    ),
    OpInfo(
        "adaptive_avg_pool2d",
        _nn("pooling", "adaptive_avg_pool2d"),
        adaptive_pool_ref(np.mean),
        _adaptive_samples,
        torch=_tf("adaptive_avg_pool2d"),
    ),
]

OPS: list[OpInfo] = [
    *UNARY,
    *PREDICATES,
    *BINARY,
    *REDUCTIONS,
    *SHAPE,
    *LINALG,
    *ACTIVATION,
    *CONV_POOL,
]
OPS_BY_NAME: dict[str, OpInfo] = {info.name: info for info in OPS}
assert len(OPS_BY_NAME) == len(OPS), "op table names must be unique"
