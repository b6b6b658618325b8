"""Reductions and scans: sum, prod, amax/amin, argmax/argmin, all/any, cumsum/cumprod.

``mean``, ``var``, ``std``, ``logsumexp``, ``norm`` and ``max``/``min`` with
indices are composites of these primitives.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any

from ember._src.core import dtype as dt
from ember._src.core.aval import AVal
from ember._src.core.tensor import Tensor
from ember._src.ops import elementwise as E
from ember._src.ops import shape as S
from ember._src.ops.registry import DTypeError, ShapeError, apply, defop, op_error

values_indices = namedtuple("values_indices", ["values", "indices"])


def norm_dims(dim: Any, ndim: int, name: str, args: Any = ()) -> tuple[int, ...] | None:
    """Normalize ``dim`` (None, int or a sequence of ints) to sorted non-negative axes."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    n = builtins.max(ndim, 1)
    out = []
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool):
            raise TypeError(f"{name}: dim must be an int or a tuple of ints, got {dim!r}")
        if not -n <= d < n:
            raise op_error(
                name,
                args,
                f"dimension {d} out of range for a {ndim}-d tensor "
                f"(expected a dim in [{-n}, {n - 1}])",
                ShapeError,
            )
        out.append(d % n)
    if len(set(out)) != len(out):
        raise op_error(name, args, f"dim {dim!r} names a dimension twice", ShapeError)
    return tuple(sorted(out)) if ndim else ()


def _reduced_shape(shape: tuple[int, ...], dim: tuple[int, ...] | None, keepdim: bool) -> tuple:
    if dim is None:
        return tuple(1 for _ in shape) if keepdim else ()
    if keepdim:
        return tuple(1 if i in dim else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dim)


def _int_to_long(d: dt.dtype) -> dt.dtype:
    return dt.int64 if d.category != dt.FLOAT else d


def _reduce_infer(result_dtype: Any) -> Any:
    def infer(a: AVal, dim: Any = None, keepdim: bool = False) -> AVal:
        return AVal(_reduced_shape(tuple(a.shape), dim, keepdim), result_dtype(a.dtype))

    return infer


def expand_back(g: Tensor, shape: tuple[int, ...], dim: Any, keepdim: bool) -> Tensor:
    """Broadcast a reduction's gradient back to the input's shape."""
    if not keepdim:
        g = g.reshape(_reduced_shape(shape, dim, True))
    return S.broadcast_to(g, shape)


def _axis(dim: Any) -> Any:
    return dim if dim is None else tuple(dim)


sum_op = defop(
    "sum",
    lambda xp, a, dim=None, keepdim=False: a.sum(axis=dim, keepdims=keepdim, dtype=_acc(a)),
    vjp=(lambda g, o, a, dim=None, keepdim=False: expand_back(g, a.shape, dim, keepdim),),
    infer=_reduce_infer(_int_to_long),
    kind="custom",
    save_inputs=False,
)


def _acc(a: Any) -> Any:
    return _INT64 if a.dtype.kind in "biu" else None


_INT64 = dt.int64.np


def _prod_rule(g: Tensor, o: Tensor, a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    # d prod / d a_i is the product of the others, computed without dividing by zero.
    zero = a == 0
    ones = E.where(zero, 1, a)
    p = prod(ones, dim, keepdim=True) if dim is not None else prod(ones).reshape((1,) * a.ndim)
    nz = sum(zero, dim, keepdim=True) if dim is not None else sum(zero).reshape((1,) * a.ndim)
    grad = E.where(nz == 0, p / ones, E.where(E.logical_and(zero, nz == 1), p, 0))
    return expand_back(g, a.shape, dim, keepdim) * grad


prod_op = defop(
    "prod",
    lambda xp, a, dim=None, keepdim=False: a.prod(axis=dim, keepdims=keepdim, dtype=_acc(a)),
    vjp=(_prod_rule,),
    infer=_reduce_infer(_int_to_long),
    kind="custom",
)


def _extreme_rule(
    g: Tensor, o: Tensor, a: Tensor, dim: Any = None, keepdim: bool = False
) -> Tensor:
    # Ties share the gradient equally, as PyTorch's amax/amin do.
    hit = a == expand_back(o, a.shape, dim, keepdim)
    count = hit.sum(dim=dim, keepdim=True) if dim is not None else hit.sum()
    return E.where(hit, expand_back(g, a.shape, dim, keepdim) / count, 0)


def _check_nonempty(name: str) -> Any:
    def infer(a: AVal, dim: Any = None, keepdim: bool = False) -> AVal:
        axes = range(len(a.shape)) if dim is None else dim
        if builtins.any(a.shape[d] == 0 for d in axes) if a.shape else False:
            raise op_error(
                name, (a,), "cannot reduce over a zero-size dimension (no identity)", ShapeError
            )
        return AVal(_reduced_shape(tuple(a.shape), dim, keepdim), _result(name, a.dtype))

    return infer


def _result(name: str, d: dt.dtype) -> dt.dtype:
    return dt.int64 if name.startswith("arg") else d


amax_op = defop(
    "amax",
    lambda xp, a, dim=None, keepdim=False: xp.amax(a, axis=_axis(dim), keepdims=keepdim),
    vjp=(_extreme_rule,),
    infer=_check_nonempty("amax"),
    kind="custom",
    save_output=True,
)
amin_op = defop(
    "amin",
    lambda xp, a, dim=None, keepdim=False: xp.amin(a, axis=_axis(dim), keepdims=keepdim),
    vjp=(_extreme_rule,),
    infer=_check_nonempty("amin"),
    kind="custom",
    save_output=True,
)


def _arg_forward(fn: str) -> Any:
    def forward(xp: Any, a: Any, dim: Any = None, keepdim: bool = False) -> Any:
        if not dim:  # None, or () for a 0-d input: the flattened tensor
            r = getattr(xp, fn)(a.reshape(-1))
            return xp.asarray(r, dtype="int64").reshape((1,) * a.ndim if keepdim else ())
        return getattr(xp, fn)(a, axis=dim[0], keepdims=keepdim).astype("int64")

    return forward


argmax_op = defop("argmax", _arg_forward("argmax"), infer=_check_nonempty("argmax"), kind="custom")
argmin_op = defop("argmin", _arg_forward("argmin"), infer=_check_nonempty("argmin"), kind="custom")
all_op = defop(
    "all",
    lambda xp, a, dim=None, keepdim=False: xp.all(a, axis=_axis(dim), keepdims=keepdim),
    infer=_reduce_infer(lambda d: dt.bool_),
    kind="custom",
)
any_op = defop(
    "any",
    lambda xp, a, dim=None, keepdim=False: xp.any(a, axis=_axis(dim), keepdims=keepdim),
    infer=_reduce_infer(lambda d: dt.bool_),
    kind="custom",
)


def _scan_infer(a: AVal, dim: int) -> AVal:
    return AVal(tuple(a.shape), _int_to_long(a.dtype))


def _rev_cumsum(g: Tensor, dim: int) -> Tensor:
    return S.flip(cumsum(S.flip(g, dim), dim), dim)


# NumPy scans turn a 0-d input into shape (1,); the reshape keeps the input's shape.
cumsum_op = defop(
    "cumsum",
    lambda xp, a, dim: xp.cumsum(a, axis=dim, dtype=_acc(a)).reshape(a.shape),
    vjp=(lambda g, o, a, dim: _rev_cumsum(g, dim),),
    infer=_scan_infer,
    kind="custom",
    save_inputs=False,
)


def _cumprod_rule(g: Tensor, o: Tensor, a: Tensor, dim: int) -> Tensor:
    # d out_j / d a_i = prod_{k <= j, k != i} a_k. Before the first zero along dim that is
    # out_j / a_i; after it, zero; at it, the products that skip the zero itself.
    if a.ndim == 0 or a.numel() == 0:  # nothing to multiply: the gradient passes through
        return g
    n = a.shape[dim]
    shape = [n if d == dim else 1 for d in range(a.ndim)]
    pos = Tensor._wrap(a._backend.xp.arange(n)).reshape(shape)
    zero = a == 0
    first = E.where(any(zero, dim, keepdim=True), argmax(zero, dim, keepdim=True), n)
    before = pos < first
    plain = _rev_cumsum(g * o, dim) / E.where(before, a, 1)
    lead = prod(E.where(before, a, 1), dim, keepdim=True)  # prod_{k < first} a_k
    segment = cumprod(E.where(pos > first, a, 1), dim)  # prod_{first < k <= j} a_k
    at_zero = lead * sum(E.where(pos >= first, g * segment, 0), dim, keepdim=True)
    return E.where(before, plain, E.where(pos == first, at_zero, 0))


cumprod_op = defop(
    "cumprod",
    lambda xp, a, dim: xp.cumprod(a, axis=dim, dtype=_acc(a)).reshape(a.shape),
    vjp=(_cumprod_rule,),
    infer=_scan_infer,
    kind="custom",
    save_output=True,
)


# ----------------------------------------------------------------- public functions
def _reduce(op: Any, input: Tensor, dim: Any, keepdim: bool) -> Tensor:
    dims = norm_dims(dim, input.ndim, op.name, (input,))
    return apply(op, input, dim=dims, keepdim=bool(keepdim))


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum over ``dim`` (all dims by default); integers and bools sum to int64.

    Example:
        >>> import ember
        >>> ember.tensor([[1, 2], [3, 4]]).sum(dim=0)
        tensor([4, 6])
    """
    if dtype is not None:
        input = input.to(dtype)
    return _reduce(sum_op, input, dim, keepdim)


def prod(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Product over ``dim`` (all dims by default)."""
    if dtype is not None:
        input = input.to(dtype)
    return _reduce(prod_op, input, dim, keepdim)


def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Mean over ``dim``; needs a floating dtype, as in PyTorch."""
    if dtype is not None:
        input = input.to(dtype)
    if not input.dtype.is_floating_point:
        raise op_error(
            "mean",
            (input,),
            "mean needs a floating point input; convert first with .float() or pass dtype=",
            DTypeError,
        )
    dims = norm_dims(dim, input.ndim, "mean", (input,))
    n = _count(input.shape, dims)
    return (
        _reduce(sum_op, input, dims, keepdim) / n
        if n
        else _reduce(sum_op, input, dims, keepdim) * float("nan")
    )


def _count(shape: tuple[int, ...], dims: tuple[int, ...] | None) -> int:
    n = 1
    for i, s in enumerate(shape):
        if dims is None or i in dims:
            n *= s
    return n


def amax(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (all dims when empty); ties share the gradient."""
    return _reduce(amax_op, input, None if dim == () else dim, keepdim)


def amin(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Minimum over ``dim`` (all dims when empty); ties share the gradient."""
    return _reduce(amin_op, input, None if dim == () else dim, keepdim)


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the maximum (of the flattened tensor when ``dim`` is None)."""
    return _reduce(argmax_op, input, dim, keepdim)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the minimum (of the flattened tensor when ``dim`` is None)."""
    return _reduce(argmin_op, input, dim, keepdim)


def _extreme(arg_op: Any, val_op: Any, pair: Any, input: Tensor, dim: Any, keepdim: bool) -> Any:
    if isinstance(dim, Tensor):  # max(a, b): elementwise
        return pair(input, dim)
    if dim is None:
        return _reduce(val_op, input, None, False)
    idx = _reduce(arg_op, input, dim, True)
    values = S.take_along_dim(input, idx, dim)
    if not keepdim:
        values, idx = values.squeeze(dim), idx.squeeze(dim)
    return values_indices(values, idx)


def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """``max(x)``: the maximum; ``max(x, dim)``: (values, indices); ``max(x, y)``: elementwise.

    Example:
        >>> import ember
        >>> ember.tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1).indices
        tensor([1, 0])
    """
    return _extreme(argmax_op, amax_op, E.maximum, input, dim, keepdim)


def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """``min(x)``: the minimum; ``min(x, dim)``: (values, indices); ``min(x, y)``: elementwise."""
    return _extreme(argmin_op, amin_op, E.minimum, input, dim, keepdim)


def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Whether every element (along ``dim``) is true."""
    return _reduce(all_op, input, dim, keepdim)


def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Whether any element (along ``dim``) is true."""
    return _reduce(any_op, input, dim, keepdim)


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Cumulative sum along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    (d,) = norm_dims(dim, input.ndim, "cumsum", (input,)) or (0,)
    return apply(cumsum_op, input, dim=d if input.ndim else 0)


def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Cumulative product along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    (d,) = norm_dims(dim, input.ndim, "cumprod", (input,)) or (0,)
    return apply(cumprod_op, input, dim=d if input.ndim else 0)


def var(
    input: Tensor,
    dim: Any = None,
    *,
    correction: int | float | None = None,
    keepdim: bool = False,
    unbiased: bool | None = None,
) -> Tensor:
    """Variance over ``dim`` with ``correction`` (1 by default: Bessel's correction)."""
    if correction is None:
        correction = 1 if unbiased is None else int(unbiased)
    dims = norm_dims(dim, input.ndim, "var", (input,))
    n = _count(input.shape, dims)
    d = input - mean(input, dims, keepdim=True)
    return sum(d * d, dims, keepdim) / builtins.max(n - correction, 0)


def std(
    input: Tensor,
    dim: Any = None,
    *,
    correction: int | float | None = None,
    keepdim: bool = False,
    unbiased: bool | None = None,
) -> Tensor:
    """Standard deviation over ``dim`` with ``correction`` (1 by default)."""
    return _root(var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased), 0.5)


def _root(s: Tensor, k: float) -> Tensor:
    """``s ** k`` with a zero gradient where ``s`` is 0, as PyTorch gives norm and std."""
    at_zero = s == 0
    safe = E.where(at_zero, 1.0, s)
    return E.where(at_zero, 0.0, E.sqrt(safe) if k == 0.5 else safe**k)


def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``dim``, computed without overflow."""
    dims = norm_dims(dim, input.ndim, "logsumexp", (input,))
    m = (
        amax(input.detach(), dims, keepdim=True)
        if input.numel()
        else input.detach().sum(dims, True)
    )
    m = E.where(E.isfinite(m), m, 0)
    out = E.log(sum(E.exp(input - m), dims, keepdim=True)) + m
    return out if keepdim else out.reshape(_reduced_shape(input.shape, dims, False))


def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
    """Vector p-norm over ``dim`` (2-norm / Frobenius by default; inf, -inf, 0 too)."""
    dims = norm_dims(dim, input.ndim, "norm", (input,))
    if p in ("fro", 2, 2.0):
        return _root(sum(input * input, dims, keepdim), 0.5)
    a = E.abs(input)
    if p == float("inf"):
        return amax(a, () if dims is None else dims, keepdim)
    if p == float("-inf"):
        return amin(a, () if dims is None else dims, keepdim)
    if p == 0:
        return sum((a != 0).to(input.dtype), dims, keepdim)
    if p == 1:
        return sum(a, dims, keepdim)
    if isinstance(p, (int, float)):
        return _root(sum(a**p, dims, keepdim), 1.0 / p)
    raise ValueError(f"norm: unsupported p={p!r}; use a number, inf, -inf or 'fro'")
