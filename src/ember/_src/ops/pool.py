"""Pooling primitives, N-d over the trailing (spatial) dimensions of (N, C, *spatial).

* ``max_pool(x)``: window maxima; its gradient routes to the first maximal
  element of each window (PyTorch's choice on ties) through
  ``max_pool_indices`` and ``spatial_scatter_add``.
* ``max_pool_indices(x, values)``: where each window's maximum sits, as a
  flat index into the spatial plane (PyTorch's ``return_indices`` format).
* ``adaptive_max_pool_indices(x)``: the same for adaptive windows.
* ``spatial_gather(x, indices)`` / ``spatial_scatter_add(g, indices)``: read
  and scatter-add at flat spatial indices; each is the other's adjoint.
* ``sum_pool(x)`` / ``sum_pool_transpose(g)``: window sums and their adjoint,
  from which average pooling is a division.

Padding is a (low, high) pair per spatial dimension; ``ceil_mode``'s extra
windows are high padding. Max pooling pads with the dtype's lowest value,
sum pooling with zeros. Kernels are registered per backend by name.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core.aval import AVal
from ember._src.core.backend import backend_of_array, register_kernel
from ember._src.core.tensor import Tensor
from ember._src.ops.conv import (
    Ints,
    Pads,
    _scratch,
    _transpose_into,
    conv_out_size,
    padded,
    window_slices,
)
from ember._src.ops.registry import DTypeError, Op, apply, defop, op_error


# ----------------------------------------------------------------- geometry
def _pool_geometry(
    xs: Ints, kernel_size: Ints, stride: Ints, padding: Pads, dilation: Ints
) -> Ints:
    """The output shape of a pooling window sweep; raises ValueError naming the problem."""
    nd = len(kernel_size)
    if len(xs) != nd + 2:
        raise ValueError(
            f"expected an input (N, C, *spatial) with {nd} spatial dimensions, got {len(xs)} dims"
        )
    if not (len(stride) == len(padding) == len(dilation) == nd):
        raise ValueError(
            f"kernel_size {kernel_size}, stride {stride}, padding {padding} and dilation "
            f"{dilation} must each have one entry per spatial dimension"
        )
    if (
        any(k < 1 for k in kernel_size)
        or any(s < 1 for s in stride)
        or any(d < 1 for d in dilation)
    ):
        raise ValueError(
            f"kernel_size {kernel_size}, stride {stride} and dilation {dilation} must be positive"
        )
    out = []
    for i in range(nd):
        n, k, s, (lo, hi), d = xs[2 + i], kernel_size[i], stride[i], padding[i], dilation[i]
        size = conv_out_size(n, k, s, lo, hi, d)
        if size < 1:
            raise ValueError(
                f"spatial dimension {i}: input size {n} with padding ({lo}, {hi}) is too small "
                f"for a window of {d * (k - 1) + 1}; the output would be empty"
            )
        out.append(size)
    return (*xs[:2], *out)


def _explain(name: str, args: tuple[Any, ...], fn: Any, *rest: Any, floating: bool = True) -> Ints:
    x = args[0]
    if floating and not x.dtype.is_floating_point:
        raise op_error(name, args, f"needs a floating point input, got {x.dtype}", DTypeError)
    if x.dtype is dt.bool_:
        raise op_error(name, args, "is not defined for bool tensors", DTypeError)
    try:
        return tuple(fn(tuple(x.shape), *rest))
    except ValueError as e:
        raise op_error(name, args, str(e)) from None


def _kernel(name: str, kinds: str = "fiu") -> Any:
    """The forward: a dtype check (the shape rule words the error), then the named kernel."""

    def forward(xp: Any, *arrays: Any, **attrs: Any) -> Any:
        if arrays[0].dtype.kind not in kinds or any(a.dtype != "int64" for a in arrays[1:]):
            raise TypeError(f"{name}: unsupported dtypes")
        return backend_of_array(arrays[0]).kernel(name)(*arrays, **attrs)

    return forward


def _window_attrs(a: dict[str, Any]) -> tuple[Any, ...]:
    return a["kernel_size"], a["stride"], a["padding"], a["dilation"]


# ----------------------------------------------------------------- max pooling
def _max_pool_rule(g: Tensor, out: Any, x: Tensor, **a: Any) -> Tensor:
    # The indices are found again from the input rather than saved with the
    # output, so in-place ops on the pooled output (relu_) stay legal.
    idx = apply(max_pool_indices_op, x, **a)
    return apply(spatial_scatter_add_op, g, idx, shape=tuple(x.shape[2:]))


def _window_infer(name: str, out_dtype: Any = None, floating: bool = False) -> Any:
    def infer(x: Any, **a: Any) -> AVal:
        shape = _explain(name, (x,), _pool_geometry, *_window_attrs(a), floating=floating)
        return AVal(shape, out_dtype or x.dtype)

    return infer


max_pool_op: Op = defop(
    "max_pool",
    _kernel("max_pool"),
    vjp=(_max_pool_rule,),
    infer=_window_infer("max_pool"),
    kind="custom",
)
max_pool_indices_op: Op = defop(
    "max_pool_indices",
    _kernel("max_pool_indices"),
    infer=_window_infer("max_pool_indices", dt.int64),
    kind="custom",
)


def _adaptive_geometry(xs: Ints, output_size: Ints) -> Ints:
    nd = len(output_size)
    if len(xs) != nd + 2:
        raise ValueError(
            f"expected an input (N, C, *spatial) with {nd} spatial dimensions, got {len(xs)} dims"
        )
    if any(o < 1 for o in output_size):
        raise ValueError(f"output_size {output_size} must be positive")
    if any(n < 1 for n in xs[2:]):
        raise ValueError(f"spatial dimensions {xs[2:]} must be non-empty")
    return (*xs[:2], *output_size)


adaptive_max_pool_indices_op: Op = defop(
    "adaptive_max_pool_indices",
    _kernel("adaptive_max_pool_indices"),
    infer=lambda x, output_size: AVal(
        _explain(
            "adaptive_max_pool_indices", (x,), _adaptive_geometry, output_size, floating=False
        ),
        dt.int64,
    ),
    kind="custom",
)


# ----------------------------------------------------------------- gather / scatter-add
def _gather_infer(x: Any, idx: Any) -> AVal:
    if idx.dtype is not dt.int64:
        raise op_error("spatial_gather", (x, idx), "indices must be int64", DTypeError)
    if len(x.shape) < 2 or tuple(idx.shape[:2]) != tuple(x.shape[:2]):
        raise op_error(
            "spatial_gather",
            (x, idx),
            "input (N, C, *spatial) and indices (N, C, *out) must share their first two dimensions",
        )
    return AVal(tuple(idx.shape), x.dtype)


spatial_gather_op: Op = defop(
    "spatial_gather",
    _kernel("spatial_gather", "fiub"),
    vjp=(lambda g, o, x, idx: apply(spatial_scatter_add_op, g, idx, shape=tuple(x.shape[2:])),),
    infer=_gather_infer,
    kind="custom",
)


def _scatter_infer(g: Any, idx: Any, shape: Ints) -> AVal:
    if idx.dtype is not dt.int64:
        raise op_error("spatial_scatter_add", (g, idx), "indices must be int64", DTypeError)
    if tuple(idx.shape) != tuple(g.shape) or len(g.shape) < 2:
        raise op_error(
            "spatial_scatter_add",
            (g, idx),
            "values and indices must have the same shape (N, C, *out)",
        )
    return AVal((*g.shape[:2], *shape), g.dtype)


spatial_scatter_add_op: Op = defop(
    "spatial_scatter_add",
    _kernel("spatial_scatter_add", "fiub"),
    vjp=(lambda gg, o, g, idx, shape: apply(spatial_gather_op, gg, idx),),
    infer=_scatter_infer,
    kind="custom",
)


# ----------------------------------------------------------------- sum pooling
sum_pool_op: Op = defop(
    "sum_pool",
    _kernel("sum_pool", "f"),
    vjp=(lambda g, o, x, **a: apply(sum_pool_transpose_op, g, shape=tuple(x.shape[2:]), **a),),
    infer=_window_infer("sum_pool", floating=True),
    kind="custom",
    save_inputs=False,
)


def _sum_pool_transpose_infer(g: Any, shape: Ints, **a: Any) -> AVal:
    if not g.dtype.is_floating_point:
        raise op_error(
            "sum_pool_transpose", (g,), f"needs a floating point input, got {g.dtype}", DTypeError
        )
    x = (*g.shape[:2], *shape)
    try:
        want = _pool_geometry(x, *_window_attrs(a))
    except ValueError as e:
        raise op_error("sum_pool_transpose", (g,), str(e)) from None
    if want != tuple(g.shape):
        raise op_error(
            "sum_pool_transpose",
            (g,),
            f"sum_pool of an input {list(x)} gives {list(want)}, not the cotangent's shape",
        )
    return AVal(x, g.dtype)


sum_pool_transpose_op: Op = defop(
    "sum_pool_transpose",
    _kernel("sum_pool_transpose", "f"),
    vjp=(lambda gg, o, g, shape, **a: apply(sum_pool_op, gg, **a),),
    infer=_sum_pool_transpose_infer,
    kind="custom",
    save_inputs=False,
)


# ----------------------------------------------------------------- NumPy kernels
def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _views(
    x: np.ndarray, fill: Any, kernel_size: Ints, stride: Ints, padding: Pads, dilation: Ints
) -> tuple[Ints, list[np.ndarray]]:
    """The output shape and, per kernel offset, the (N, C, *out) view of the padded input."""
    shape = _pool_geometry(x.shape, kernel_size, stride, padding, dilation)
    xp = padded(x, padding, fill)
    return shape, [xp[sl] for _, sl in window_slices(kernel_size, shape[2:], stride, dilation)]


def _maximum(views: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    if len(views) == 1:
        return views[0].copy()
    best = np.maximum(views[0], views[1], out=out)
    for v in views[2:]:
        np.maximum(best, v, out=best)  # propagates NaN, as PyTorch does
    return best


def _max_pool_cpu(x: np.ndarray, **a: Any) -> np.ndarray:
    return _maximum(_views(x, _lowest(x.dtype), **a)[1])


def _max_pool_indices_cpu(
    x: np.ndarray, *, kernel_size: Ints, stride: Ints, padding: Pads, dilation: Ints
) -> np.ndarray:
    if _batch_inner(x, _pool_geometry(x.shape, kernel_size, stride, padding, dilation), padding):
        return _indices_batch_inner(x, kernel_size, stride, dilation)
    shape, views = _views(x, _lowest(x.dtype), kernel_size, stride, padding, dilation)
    best = _maximum(views, _scratch("best", shape, x.dtype) if len(views) > 1 else None)
    arg = _first_max(views, best)
    offsets, base = _window_offsets(
        x.shape[2:], kernel_size, stride, tuple(map(tuple, padding)), dilation
    )
    # In place on the output: an index array per step costs more than the arithmetic.
    idx = arg.astype(np.int64)
    np.take(offsets, idx, out=idx, mode="clip")
    idx += base
    if any(lo or hi for lo, hi in padding):
        low = best == _lowest(x.dtype)
        if low.any():  # a window of lowest values may have picked padding: take its first
            _first_inside(idx, low, arg, x.shape, kernel_size, stride, padding, dilation)
    return idx


@functools.lru_cache(maxsize=64)
def _window_offsets(
    spatial: Ints, kernel_size: Ints, stride: Ints, padding: Pads, dilation: Ints
) -> tuple[np.ndarray, np.ndarray]:
    """Flat offsets of the kernel positions, and each window's flat start (read-only)."""
    out = _pool_geometry((1, 1, *spatial), kernel_size, stride, padding, dilation)[2:]
    plane = [math.prod(spatial[i + 1 :]) for i in range(len(spatial))]
    offsets = np.zeros(math.prod(kernel_size), dtype=np.int64)
    for k, (off, _) in enumerate(window_slices(kernel_size, out, stride, dilation)):
        offsets[k] = sum(o * d * p for o, d, p in zip(off, dilation, plane))
    base = np.zeros(out, dtype=np.int64)
    for i, (o, s, (lo, _)) in enumerate(zip(out, stride, padding)):
        ax = [1] * len(spatial)
        ax[i] = o
        base = base + ((np.arange(o) * s - lo) * plane[i]).reshape(ax)
    offsets.flags.writeable = base.flags.writeable = False
    return offsets, base


def _batch_inner(x: np.ndarray, shape: Ints, padding: Pads) -> bool:
    """Whether ``_indices_batch_inner`` suits: small images, short output rows, no padding.

    Each pass over a window view costs NumPy a loop per output row; with rows
    of 2-4 elements that dominates, and moving the batch innermost pays off
    (the CNN digits step: 180 -> 140 us at (64, 16, 8, 8), 165 -> 80 us at
    (64, 32, 4, 4)). For 28x28 images it was several times slower.
    """
    nc = x.shape[0] * x.shape[1]
    return (
        shape[-1] < 8
        and nc >= 64
        and x.nbytes <= 1 << 20
        and x.flags.c_contiguous
        and not any(lo or hi for lo, hi in padding)
    )


def _indices_batch_inner(
    x: np.ndarray, kernel_size: Ints, stride: Ints, dilation: Ints
) -> np.ndarray:
    """``max_pool_indices`` (no padding) computed on a (*spatial, N * C) copy of ``x``."""
    shape = _pool_geometry(x.shape, kernel_size, stride, ((0, 0),) * (x.ndim - 2), dilation)
    nc, spatial = x.shape[0] * x.shape[1], x.shape[2:]
    moved = np.empty((*spatial, nc), x.dtype)
    _transpose_into(x.reshape(nc, -1), moved.reshape(-1, nc))
    views = [
        moved[(*sl[2:], slice(None))]
        for _, sl in window_slices(kernel_size, shape[2:], stride, dilation)
    ]
    best = _maximum(views)
    arg = _first_max(views, best)
    offsets, base = _window_offsets(
        spatial, kernel_size, stride, ((0, 0),) * len(spatial), dilation
    )
    idx = arg.astype(np.int64)
    np.take(offsets, idx, out=idx, mode="clip")
    idx += base[..., None]
    out = np.empty(shape, np.int64)
    _transpose_into(idx.reshape(-1, nc), out.reshape(nc, -1))
    return out


def _first_max(views: list[np.ndarray], best: np.ndarray) -> np.ndarray:
    """Per window, the first offset whose element is the maximum (or the first NaN).

    The first match's offset is the number of leading offsets that miss, so it
    is a sum of running products of "misses" masks: three cheap passes per
    offset instead of a masked write (several times slower in NumPy).
    """
    dtype = np.int8 if len(views) < 128 else np.int32
    run = np.not_equal(views[0], best, out=_scratch("run", best.shape, bool))
    arg = _scratch("arg", best.shape, dtype)
    np.copyto(arg, run)
    miss = _scratch("miss", best.shape, bool)
    for v in views[1:-1]:
        np.not_equal(v, best, out=miss)
        run &= miss
        arg += run
    if best.dtype.kind == "f":
        nan = best != best
        if nan.any():  # NaN maxima: point at the first NaN in the window
            run = views[0] == views[0]
            first = run.astype(dtype)
            for v in views[1:-1]:
                np.equal(v, v, out=miss)
                run &= miss
                first += run
            np.copyto(arg, first, where=nan)
    return arg


def _first_inside(
    idx: np.ndarray,
    low: np.ndarray,
    arg: np.ndarray,
    xs: Ints,
    kernel_size: Ints,
    stride: Ints,
    padding: Pads,
    dilation: Ints,
) -> None:
    """Re-point windows whose pick lies in the padding at their first real element."""
    where = np.nonzero(low)
    ks = np.unravel_index(arg[where].astype(np.int64), kernel_size)
    spatial = xs[2:]
    inside = np.ones(len(where[0]), dtype=bool)
    firsts = []
    for i, n in enumerate(spatial):
        start = where[2 + i] * stride[i] - padding[i][0]
        pos = start + ks[i] * dilation[i]
        inside &= (pos >= 0) & (pos < n)
        skip = np.maximum(0, -start + dilation[i] - 1) // dilation[i]
        firsts.append(np.minimum(start + skip * dilation[i], n - 1))
    flat = np.ravel_multi_index(tuple(firsts), spatial)
    sel = tuple(w[~inside] for w in where)
    idx[sel] = flat[~inside]


def _adaptive_tables(n: int, out: int) -> np.ndarray:
    """(out, longest window) input positions of adaptive windows, padded with the last one."""
    o = np.arange(out)
    start = (o * n) // out
    end = -((-(o + 1) * n) // out)
    length = int((end - start).max())
    return np.minimum(start[:, None] + np.arange(length), (end - 1)[:, None])


def _adaptive_max_pool_indices_cpu(x: np.ndarray, *, output_size: Ints) -> np.ndarray:
    shape = _adaptive_geometry(x.shape, output_size)
    spatial = x.shape[2:]
    tables = [_adaptive_tables(n, o) for n, o in zip(spatial, output_size)]
    nd = len(spatial)
    plane = [math.prod(spatial[i + 1 :]) for i in range(nd)]
    # Flat positions per (output position, window offset); repeated positions
    # come after their first appearance, so "first maximum" is PyTorch's.
    flats = []
    for offset in np.ndindex(*(t.shape[1] for t in tables)):
        f = np.zeros(output_size, dtype=np.int64)
        for i, (t, l) in enumerate(zip(tables, offset)):
            ax = [1] * nd
            ax[i] = output_size[i]
            f = f + (t[:, l] * plane[i]).reshape(ax)
        flats.append(f)
    xf = x.reshape(*x.shape[:2], math.prod(spatial))
    views = [xf[..., f] for f in flats]
    best = _maximum(views)
    idx = np.broadcast_to(flats[0], shape).copy()
    found = views[0] == best
    for v, f in zip(views[1:], flats[1:]):
        hit = v == best
        hit &= ~found
        found |= hit
        idx += hit * (f - flats[0])
    if not found.all():  # NaN maxima: point at the first NaN in the window
        for v, f in zip(views, flats):
            hit = (v != v) & ~found
            found |= hit
            idx += hit * (f - flats[0])
    return idx


def _flat_index(idx: np.ndarray, plane: int) -> np.ndarray:
    """Indices into the flattened (N * C * plane) array, in a scratch buffer."""
    rows = np.arange(idx.shape[0] * idx.shape[1], dtype=np.int64) * plane
    flat = _scratch("flat", (rows.size, math.prod(idx.shape[2:])), np.int64)
    return np.add(idx.reshape(flat.shape), rows[:, None], out=flat)


def _spatial_gather_cpu(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    if x.ndim < 2 or x.shape[:2] != idx.shape[:2]:
        raise ValueError("spatial_gather: leading dimensions differ")  # infer words it
    plane = math.prod(x.shape[2:])
    return np.take(x.reshape(-1), _flat_index(idx, plane)).reshape(idx.shape)


def _spatial_scatter_add_cpu(g: np.ndarray, idx: np.ndarray, shape: Ints) -> np.ndarray:
    if g.ndim < 2 or g.shape != idx.shape:
        raise ValueError("spatial_scatter_add: values and indices differ in shape")
    plane = math.prod(shape)
    out = np.zeros(g.shape[0] * g.shape[1] * plane, dtype=g.dtype)
    np.add.at(out, _flat_index(idx, plane).reshape(-1), g.reshape(-1))
    return out.reshape(*g.shape[:2], *shape)


def _sum_pool_cpu(x: np.ndarray, **a: Any) -> np.ndarray:
    _, views = _views(x, 0, **a)
    if len(views) == 1:
        return views[0].copy()
    out = views[0] + views[1]
    for v in views[2:]:
        out += v
    return out


def _sum_pool_transpose_cpu(
    g: np.ndarray,
    shape: Ints,
    *,
    kernel_size: Ints,
    stride: Ints,
    padding: Pads,
    dilation: Ints,
) -> np.ndarray:
    if _pool_geometry((*g.shape[:2], *shape), kernel_size, stride, padding, dilation) != g.shape:
        raise ValueError("sum_pool_transpose: the cotangent does not fit")  # infer words it
    full = [n + lo + hi for n, (lo, hi) in zip(shape, padding)]
    buf = np.zeros((*g.shape[:2], *full), dtype=g.dtype)
    for _, sl in window_slices(kernel_size, g.shape[2:], stride, dilation):
        buf[sl] += g
    crop = tuple(slice(lo, lo + n) for n, (lo, _) in zip(shape, padding))
    return buf[(slice(None), slice(None), *crop)]


register_kernel("cpu", "max_pool", _max_pool_cpu)
register_kernel("cpu", "max_pool_indices", _max_pool_indices_cpu)
register_kernel("cpu", "adaptive_max_pool_indices", _adaptive_max_pool_indices_cpu)
register_kernel("cpu", "spatial_gather", _spatial_gather_cpu)
register_kernel("cpu", "spatial_scatter_add", _spatial_scatter_add_cpu)
register_kernel("cpu", "sum_pool", _sum_pool_cpu)
register_kernel("cpu", "sum_pool_transpose", _sum_pool_transpose_cpu)
