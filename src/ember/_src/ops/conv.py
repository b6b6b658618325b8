"""Convolution primitives: ``conv``, ``conv_transpose`` and ``conv_weight``, N-d and grouped.

The three ops are one family, closed under differentiation, so gradients of
any order are convolutions again:

* ``conv(x, w)``: cross-correlation of ``x`` (N, C, *X) with ``w``
  (O, C/groups, *K), as PyTorch's ``conv1d/2d/3d`` without bias;
* ``conv_transpose(y, w)``: its adjoint in ``x`` (the input gradient, and
  PyTorch's ``conv_transpose``); ``w`` keeps the conv layout (O, C/groups, *K);
* ``conv_weight(x, y)``: its adjoint in ``w`` (the weight gradient), shape
  (O, C/groups, *K) from an input and an output-shaped cotangent.

Padding is a (low, high) pair per spatial dimension, so asymmetric padding
(``'same'`` with an even kernel) needs no extra op. The forward passes call
the backend's kernels by name (``conv``, ``conv_transpose``, ``conv_weight``);
the NumPy kernels at the end of this file are im2col + GEMM. They were
measured against ``einsum``/``tensordot`` on sliding-window views, a
shift-and-accumulate loop over kernel offsets and one big GEMM, and use
whichever of two GEMM layouts (one small GEMM per sample, or one GEMM over the
whole batch with the batch innermost) is faster for the shape at hand
(``benchmarks/bench_conv.py``).
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ember._src.core.aval import AVal
from ember._src.core.backend import backend_of_array, register_kernel
from ember._src.core.tensor import Tensor
from ember._src.ops.registry import DTypeError, Op, apply, defop, op_error
from ember._src.ops.shape import getitem

Pads = tuple[tuple[int, int], ...]
Ints = tuple[int, ...]


# ----------------------------------------------------------------- geometry
def conv_out_size(n: int, k: int, s: int, lo: int, hi: int, d: int) -> int:
    """Output length of a convolution along one dimension."""
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def _check_attrs(stride: Ints, padding: Pads, dilation: Ints, groups: int, nd: int) -> None:
    if not (len(stride) == len(padding) == len(dilation) == nd):
        raise ValueError(
            f"stride {stride}, padding {padding} and dilation {dilation} must each have one "
            f"entry per spatial dimension ({nd})"
        )
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise ValueError(f"stride {stride} and dilation {dilation} must be positive")
    if any(lo < 0 or hi < 0 for lo, hi in padding):
        raise ValueError(f"padding {padding} must be non-negative")
    if groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups}")


def _conv_geometry(
    xs: Ints, ws: Ints, stride: Ints, padding: Pads, dilation: Ints, groups: int
) -> Ints:
    """The output shape of ``conv``; raises ValueError naming what does not fit."""
    if len(xs) < 3 or len(ws) != len(xs):
        raise ValueError(
            f"expected an input (N, C, *spatial) and a weight (O, C/groups, *kernel) with the "
            f"same number of dimensions (at least 3), got {len(xs)} and {len(ws)}"
        )
    nd = len(xs) - 2
    _check_attrs(stride, padding, dilation, groups, nd)
    n, c = xs[:2]
    o, cg = ws[:2]
    if o % groups:
        raise ValueError(f"out channels ({o}, weight dim 0) must be divisible by groups={groups}")
    if cg * groups != c:
        raise ValueError(
            f"groups={groups} and weight {list(ws)} expect the input to have {cg * groups} "
            f"channels (weight dim 1 x groups), but input {list(xs)} has {c} channels"
        )
    out = []
    for i in range(nd):
        x, k = xs[2 + i], ws[2 + i]
        (lo, hi), s, d = padding[i], stride[i], dilation[i]
        span = d * (k - 1) + 1
        if k < 1 or x + lo + hi < span:
            raise ValueError(
                f"spatial dimension {i}: the padded input ({x} + {lo} + {hi}) is smaller than "
                f"the dilated kernel ({span}); pad more or use a smaller kernel"
            )
        out.append(conv_out_size(x, k, s, lo, hi, d))
    return (n, o, *out)


def _transpose_geometry(
    ys: Ints, ws: Ints, stride: Ints, padding: Pads, dilation: Ints, groups: int, opad: Ints
) -> Ints:
    """The output shape of ``conv_transpose``; raises ValueError on a mismatch."""
    if len(ys) < 3 or len(ws) != len(ys):
        raise ValueError(
            f"expected an input (N, C_in, *spatial) and a weight (C_in, C_out/groups, *kernel) "
            f"with the same number of dimensions (at least 3), got {len(ys)} and {len(ws)}"
        )
    nd = len(ys) - 2
    _check_attrs(stride, padding, dilation, groups, nd)
    if len(opad) != nd or any(p < 0 for p in opad):
        raise ValueError(f"output_padding {opad} must be {nd} non-negative integers")
    n, c = ys[:2]
    if ws[0] != c:
        raise ValueError(
            f"weight {list(ws)} expects an input with {ws[0]} channels (weight dim 0), but "
            f"input {list(ys)} has {c} channels"
        )
    if c % groups:
        raise ValueError(f"input channels ({c}) must be divisible by groups={groups}")
    out = []
    for i in range(nd):
        (lo, hi), s, d, k = padding[i], stride[i], dilation[i], ws[2 + i]
        size = (ys[2 + i] - 1) * s - lo - hi + d * (k - 1) + 1 + opad[i]
        if size < 1:
            raise ValueError(f"spatial dimension {i}: the output size would be {size} (< 1)")
        out.append(size)
    return (n, ws[1] * groups, *out)


def _weight_geometry(
    xs: Ints, gs: Ints, stride: Ints, padding: Pads, dilation: Ints, groups: int, ks: Ints
) -> Ints:
    """The output shape of ``conv_weight``; raises ValueError on a mismatch."""
    if len(xs) < 3 or len(gs) != len(xs) or len(ks) != len(xs) - 2:
        raise ValueError(
            f"expected an input (N, C, *spatial), a cotangent (N, O, *out) and a kernel size "
            f"with one entry per spatial dimension, got {len(xs)}, {len(gs)} and {ks}"
        )
    nd = len(xs) - 2
    _check_attrs(stride, padding, dilation, groups, nd)
    (n, c), (n2, o) = xs[:2], gs[:2]
    if n != n2:
        raise ValueError(f"batch sizes differ: input {list(xs)} vs cotangent {list(gs)}")
    if c % groups or o % groups:
        raise ValueError(f"channels ({c} in, {o} out) must be divisible by groups={groups}")
    full = _conv_geometry(xs, (o, c // groups, *ks), stride, padding, dilation, groups)
    if any(g > f for g, f in zip(gs[2:], full[2:])):
        raise ValueError(f"cotangent {list(gs)} is larger than the convolution output {list(full)}")
    return (o, c // groups, *ks)


def _explained(name: str, args: Sequence[Any], fn: Any, *shape_args: Any) -> AVal:
    x, w = args
    if x.dtype is not w.dtype:
        raise op_error(
            name,
            args,
            "both operands must have the same dtype; convert one with .to(dtype)",
            DTypeError,
        )
    if not x.dtype.is_floating_point:
        raise op_error(name, args, f"needs floating point operands, got {x.dtype}", DTypeError)
    try:
        shape = fn(tuple(x.shape), tuple(w.shape), *shape_args)
    except ValueError as e:
        raise op_error(name, args, str(e)) from None
    return AVal(shape, x.dtype)


# ----------------------------------------------------------------- the primitives
def _forward(name: str) -> Any:
    def forward(xp: Any, a: Any, b: Any, **attrs: Any) -> Any:
        if a.dtype != b.dtype or a.dtype.kind != "f":
            raise TypeError(f"{name}: operands must share a floating dtype")  # infer words it
        return backend_of_array(a).kernel(name)(a, b, **attrs)

    return forward


def _remainder(xs: Ints, ys: Ints, ks: Ints, stride: Ints, padding: Pads, dilation: Ints) -> Ints:
    """``output_padding`` that makes ``conv_transpose`` of ``ys`` come back to ``xs``."""
    return tuple(
        x + lo + hi - d * (k - 1) - 1 - (y - 1) * s
        for x, y, k, s, (lo, hi), d in zip(xs, ys, ks, stride, padding, dilation)
    )


def _crop(t: Tensor, spatial: Ints) -> Tensor:
    """``t`` cut to ``spatial`` (a conv over a transposed conv's output can reach past it)."""
    if t.shape[2:] == tuple(spatial):
        return t
    return getitem(t, (slice(None), slice(None), *(slice(0, s) for s in spatial)))


def _conv_dx(g: Tensor, o: Any, x: Tensor, w: Tensor, **a: Any) -> Tensor:
    opad = _remainder(
        x.shape[2:], g.shape[2:], w.shape[2:], a["stride"], a["padding"], a["dilation"]
    )
    return apply(conv_transpose_op, g, w, output_padding=opad, **a)


def _conv_dw(g: Tensor, o: Any, x: Tensor, w: Tensor, **a: Any) -> Tensor:
    return apply(conv_weight_op, x, g, kernel_size=tuple(w.shape[2:]), **a)


conv_op: Op = defop(
    "conv",
    _forward("conv"),
    vjp=(_conv_dx, _conv_dw),
    infer=lambda x, w, **a: _explained("conv", (x, w), _conv_geometry, *_attrs(a)),
    kind="custom",
)


def _transpose_dx(
    g: Tensor, o: Any, y: Tensor, w: Tensor, output_padding: Ints, **a: Any
) -> Tensor:
    return _crop(apply(conv_op, g, w, **a), tuple(y.shape[2:]))


def _transpose_dw(
    g: Tensor, o: Any, y: Tensor, w: Tensor, output_padding: Ints, **a: Any
) -> Tensor:
    return apply(conv_weight_op, g, y, kernel_size=tuple(w.shape[2:]), **a)


conv_transpose_op: Op = defop(
    "conv_transpose",
    _forward("conv_transpose"),
    vjp=(_transpose_dx, _transpose_dw),
    infer=lambda y, w, output_padding, **a: _explained(
        "conv_transpose", (y, w), _transpose_geometry, *_attrs(a), output_padding
    ),
    kind="custom",
)


def _weight_dx(gw: Tensor, o: Any, x: Tensor, g: Tensor, kernel_size: Ints, **a: Any) -> Tensor:
    opad = _remainder(
        x.shape[2:], g.shape[2:], kernel_size, a["stride"], a["padding"], a["dilation"]
    )
    return apply(conv_transpose_op, g, gw, output_padding=opad, **a)


def _weight_dg(gw: Tensor, o: Any, x: Tensor, g: Tensor, kernel_size: Ints, **a: Any) -> Tensor:
    return _crop(apply(conv_op, x, gw, **a), tuple(g.shape[2:]))


conv_weight_op: Op = defop(
    "conv_weight",
    _forward("conv_weight"),
    vjp=(_weight_dx, _weight_dg),
    infer=lambda x, g, kernel_size, **a: _explained(
        "conv_weight", (x, g), _weight_geometry, *_attrs(a), kernel_size
    ),
    kind="custom",
)


def _attrs(a: dict[str, Any]) -> tuple[Any, ...]:
    return a["stride"], a["padding"], a["dilation"], a["groups"]


# ----------------------------------------------------------------- public functions
def ntuple(value: Any, n: int, name: str) -> Ints:
    """``value`` as ``n`` ints: an int is repeated, a sequence must have ``n`` entries."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(out) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    return out


def pad_pairs(padding: Any, n: int) -> Pads:
    """Padding as one (low, high) pair per spatial dimension.

    Accepts an int, ``n`` ints (symmetric), or ``n`` (low, high) pairs.
    """
    if (
        not isinstance(padding, (int, np.integer))
        and len(padding) == n
        and all(isinstance(p, (tuple, list)) for p in padding)
    ):
        pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    else:
        pairs = tuple((p, p) for p in ntuple(padding, n, "padding"))
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return pairs


def conv(
    input: Tensor,
    weight: Tensor,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """N-d cross-correlation (PyTorch's convolution) without bias.

    Args:
        input: (N, C, *spatial).
        weight: (O, C / groups, *kernel).
        stride: an int or one per spatial dimension.
        padding: an int, one per dimension, or one (low, high) pair per dimension.
        dilation: an int or one per spatial dimension.
        groups: split the channels into this many independent convolutions.

    Returns:
        (N, O, *out) with ``out = (n + low + high - dilation * (k - 1) - 1) // stride + 1``.

    Example:
        >>> import ember
        >>> from ember._src.ops.conv import conv
        >>> conv(ember.ones(1, 1, 4, 4), ember.ones(1, 1, 3, 3)).tolist()
        [[[[9.0, 9.0], [9.0, 9.0]]]]
    """
    nd = input.ndim - 2
    if nd < 1:
        raise op_error("conv", (input, weight), "input must be (N, C, *spatial)")
    return apply(
        conv_op,
        input,
        weight,
        stride=ntuple(stride, nd, "stride"),
        padding=pad_pairs(padding, nd),
        dilation=ntuple(dilation, nd, "dilation"),
        groups=int(groups),
    )


def conv_transpose(
    input: Tensor,
    weight: Tensor,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """N-d transposed convolution (the adjoint of :func:`conv` in its input), no bias.

    Args:
        input: (N, C_in, *spatial).
        weight: (C_in, C_out / groups, *kernel), PyTorch's layout.
        stride, padding, dilation, groups: as for :func:`conv`, whose adjoint this is.
        output_padding: extra size added at the high end of each output dimension.

    Returns:
        (N, C_out, *out) with
        ``out = (n - 1) * stride - low - high + dilation * (k - 1) + 1 + output_padding``.
    """
    nd = input.ndim - 2
    if nd < 1:
        raise op_error("conv_transpose", (input, weight), "input must be (N, C, *spatial)")
    return apply(
        conv_transpose_op,
        input,
        weight,
        stride=ntuple(stride, nd, "stride"),
        padding=pad_pairs(padding, nd),
        dilation=ntuple(dilation, nd, "dilation"),
        groups=int(groups),
        output_padding=ntuple(output_padding, nd, "output_padding"),
    )


# ----------------------------------------------------------------- NumPy kernels
# Fresh memory from the OS costs a page fault per 4 KiB page on first touch,
# and the kernels' temporaries (padded inputs, patch matrices, batch-last
# copies) are megabytes. Below about 1 MiB malloc's heap serves them without
# faults, and from 4 MiB NumPy asks for transparent huge pages (a fault per
# 2 MiB); in between, reusing per-thread buffers between calls took
# cnn_mnist's step in benchmarks/train_steps.py from 46 to 34 ms (eager) and
# 41 to 38 ms (compiled). Keeping larger ones too made it slower: malloc then
# never raises its mmap threshold and the other arrays fault instead. A
# kernel uses each named slot at most once at a time.
_SCRATCH = threading.local()
_SCRATCH_MIN, _SCRATCH_BYTES = 1 << 20, (1 << 22) - 1


def _scratch(slot: str, shape: Sequence[int], dtype: Any) -> np.ndarray:
    """An uninitialised array for a temporary of this thread's kernel, reused between calls."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    if not _SCRATCH_MIN <= size <= _SCRATCH_BYTES:
        return np.empty(shape, dtype)
    buf = _SCRATCH.__dict__.get(slot)
    if buf is None or buf.size < size:
        buf = _SCRATCH.__dict__[slot] = np.empty(size, np.uint8)
    return buf[:size].view(dtype).reshape(shape)


def _padded_scratch(x: np.ndarray, padding: Pads) -> np.ndarray:
    """``padded(x, padding)`` in the ``pad`` scratch buffer (``x`` itself when unpadded)."""
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    full = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
    out = _scratch("pad", x.shape[:2] + full, x.dtype)
    out.fill(0)
    inner = tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[2:], padding))
    out[(slice(None), slice(None), *inner)] = x
    return out


def padded(x: np.ndarray, padding: Pads, value: Any = 0) -> np.ndarray:
    """``x`` with its spatial dimensions padded by ``value`` (``x`` itself when unpadded)."""
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    shape = x.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
    out = np.full(shape, value, dtype=x.dtype) if value else np.zeros(shape, dtype=x.dtype)
    out[
        (slice(None), slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[2:], padding)))
    ] = x
    return out


def window_slices(
    ks: Ints, out: Ints, stride: Ints, dilation: Ints
) -> Iterator[tuple[Ints, tuple[slice, ...]]]:
    """Each kernel offset (row-major) with the slices of the padded input it meets.

    ``padded[slices]`` has shape (N, C, *out): the input element under that
    kernel offset for every output position.
    """
    for k in itertools.product(*(range(kk) for kk in ks)):
        yield (
            k,
            (
                slice(None),
                slice(None),
                *(
                    slice(ki * d, ki * d + (o - 1) * s + 1, s)
                    for ki, d, o, s in zip(k, dilation, out, stride)
                ),
            ),
        )


def _im2col(
    x: np.ndarray, ks: Ints, out: Ints, stride: Ints, padding: Pads, dilation: Ints
) -> np.ndarray:
    """Patches of ``x`` as an (N, C * prod(ks), prod(out)) array, kernel offsets before pixels.

    A strided view lays the windows out without copying; the reshape makes
    the one copy the GEMM needs, in the order that lets the product land
    directly in (N, O, *out) layout.
    """
    xp = _padded_scratch(x, padding)
    n, c = x.shape[:2]
    sp = xp.strides[2:]
    view = as_strided(
        xp,
        shape=(n, c, *ks, *out),
        strides=(
            *xp.strides[:2],
            *(st * d for st, d in zip(sp, dilation)),
            *(st * s for st, s in zip(sp, stride)),
        ),
        writeable=False,
    )
    cols = _scratch("cols", view.shape, x.dtype)
    np.copyto(cols, view)
    return cols.reshape(n, c * math.prod(ks), math.prod(out))


def _im2col_batch_last(
    x: np.ndarray, ks: Ints, out: Ints, stride: Ints, padding: Pads, dilation: Ints
) -> np.ndarray:
    """Patches of ``x`` as a (C * prod(ks), prod(out) * N) array, the batch innermost.

    The input is first copied batch-last, (C, *padded, N), so each patch row
    is a run of ``out[-1] * N`` contiguous values rather than ``out[-1]``.
    """
    n, c = x.shape[:2]
    xp = _batch_last(x, padding)
    sp = xp.strides[1:-1]
    view = as_strided(
        xp,
        shape=(c, *ks, *out, n),
        strides=(
            xp.strides[0],
            *(st * d for st, d in zip(sp, dilation)),
            *(st * s for st, s in zip(sp, stride)),
            xp.strides[-1],
        ),
        writeable=False,
    )
    cols = _scratch("cols", view.shape, x.dtype)
    np.copyto(cols, view)
    return cols.reshape(c * math.prod(ks), math.prod(out) * n)


def _batch_last(x: np.ndarray, padding: Pads) -> np.ndarray:
    """``x`` (N, C, *S) zero-padded and copied batch-last: (C, *padded S, N)."""
    full = [s + lo + hi for s, (lo, hi) in zip(x.shape[2:], padding)]
    buf = _scratch("pad", (x.shape[1], *full, x.shape[0]), x.dtype)
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return _to_batch_last(x, buf)
    buf.fill(0)
    inner = tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], padding))
    buf[(slice(None), *inner, slice(None))] = np.moveaxis(x, 0, -1)
    return buf


def _to_batch_last(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``a`` (N, *S) copied into the C-contiguous ``out`` (*S, N)."""
    if a.flags.c_contiguous and a.size:
        _transpose_into(a.reshape(a.shape[0], -1), out.reshape(-1, a.shape[0]))
    else:
        np.copyto(out, np.moveaxis(a, 0, -1))
    return out


def _transpose_into(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst[...] = src.T`` for C-contiguous 2-D arrays; small ones a block of rows at a time.

    NumPy's transposing copy walks one side with a long stride. For arrays that
    fit in cache, a few rows at a time are faster (the CNN digits step's batch
    moves, (64, 512) -> (512, 64): 83 -> 54 us, cache cold); for larger ones,
    read from memory, NumPy's own order is (0.73 vs 0.98 ms at (128, 6272)).
    """
    rows, cols = src.shape
    step = 16 if rows <= cols else 64
    if src.nbytes > 1 << 20 or step * cols < 4096:
        np.copyto(dst, src.T)
        return
    for i in range(0, rows, step):
        np.copyto(dst[:, i : i + step], src[i : i + step].T)


# Which GEMM layout a kernel uses, from measurements on the benchmark shapes
# (benchmarks/bench_conv.py). One (C*K, P*N) GEMM with the batch innermost
# beats N small (C*K, P) GEMMs when the patch dimension C*K is long, at the
# price of moving the batch axis of the operands; the forward pays that price
# on its output, so it switches only for small images.
_FORCE_LAYOUT: str | None = None  # "batch" or "sample": for tests and measurements


def _layout(kernel: str, pixels: int, patch: int) -> bool:
    """Whether ``kernel`` should use the batch-innermost layout."""
    if _FORCE_LAYOUT is not None:
        return _FORCE_LAYOUT == "batch"
    if kernel == "conv":
        return pixels < 64 and patch >= 32
    return patch >= 64


def _conv_cpu(
    x: np.ndarray,
    w: np.ndarray,
    *,
    stride: Ints,
    padding: Pads,
    dilation: Ints,
    groups: int,
    into: np.ndarray | None = None,
) -> np.ndarray:
    """``conv``; ``into``: a C-contiguous result-shaped array to write the result to."""
    shape = _conv_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    n, o, out = shape[0], shape[1], shape[2:]
    if _layout("conv", math.prod(out), x.shape[1] // groups * math.prod(w.shape[2:])):
        cols = _im2col_batch_last(x, w.shape[2:], out, stride, padding, dilation)
        y = np.matmul(
            w.reshape(groups, o // groups, -1),
            cols.reshape(groups, cols.shape[0] // groups, cols.shape[1]),
            out=_scratch("gemm", (groups, o // groups, cols.shape[1]), x.dtype),
        )
        return _batch_first(y.reshape(o, *out, n), into)
    cols = _im2col(x, w.shape[2:], out, stride, padding, dilation)
    p = cols.shape[-1]
    if groups == 1:
        y = np.matmul(w.reshape(o, -1), cols, out=_shaped(into, (n, o, p)))
    else:
        y = np.matmul(
            w.reshape(groups, o // groups, -1),
            cols.reshape(n, groups, cols.shape[1] // groups, p),
            out=_shaped(into, (n, groups, o // groups, p)),
        )
    return y.reshape(shape)


def _shaped(into: np.ndarray | None, shape: Ints) -> np.ndarray | None:
    return None if into is None else into.reshape(shape)


def _col2im(
    cols: np.ndarray,
    shape: Ints,
    ks: Ints,
    ins: Ints,
    stride: Ints,
    padding: Pads,
    dilation: Ints,
) -> np.ndarray:
    """Sum (N, C, *ks, *ins) patches back into an image of ``shape`` (the adjoint of im2col)."""
    n, c, out = shape[0], shape[1], shape[2:]
    # The buffer holds the padded image; every patch lies inside it.
    full = [
        max((i - 1) * s + d * (k - 1) + 1, lo + o)
        for i, s, d, k, (lo, _), o in zip(ins, stride, dilation, ks, padding, out)
    ]
    buf = np.zeros((n, c, *full), dtype=cols.dtype)
    for k, dst in window_slices(ks, ins, stride, dilation):
        src: tuple[Any, ...] = (slice(None), slice(None), *k)
        buf[dst] += cols[src]
    return buf[(slice(None), slice(None), *(slice(lo, lo + o) for (lo, _), o in zip(padding, out)))]


def _conv_transpose_cpu(
    y: np.ndarray,
    w: np.ndarray,
    *,
    stride: Ints,
    padding: Pads,
    dilation: Ints,
    groups: int,
    output_padding: Ints,
    into: np.ndarray | None = None,
) -> np.ndarray:
    """``conv_transpose``; ``into``: a C-contiguous result-shaped array to write the result to."""
    shape = _transpose_geometry(y.shape, w.shape, stride, padding, dilation, groups, output_padding)
    n, ins = y.shape[0], y.shape[2:]
    ks, co = w.shape[2:], shape[1]
    if _layout("conv_transpose", math.prod(ins), co // groups * math.prod(ks)):
        return _col2im_batch_last(y, w, shape, stride, padding, dilation, groups, into)
    if len(ins) > 1 and all(s == 1 for s in stride):
        result = _col2im_wide(y, w, shape, padding, dilation, groups)
    else:
        cols = _patch_product(y, w, groups).reshape(n, co, *ks, *ins)
        result = _col2im(cols, shape, ks, ins, stride, padding, dilation)
    if into is None:
        return result
    np.copyto(into, result)
    return into


def _patch_product(y: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """(N, C_out * prod(ks), P): every input position's contribution to each kernel offset."""
    n, ci = y.shape[:2]
    p = math.prod(y.shape[2:])
    if groups == 1:
        return np.matmul(w.reshape(ci, -1).T, y.reshape(n, ci, p))
    wg = w.reshape(groups, ci // groups, -1).transpose(0, 2, 1)
    cols = np.matmul(wg, y.reshape(n, groups, ci // groups, p))
    return cols.reshape(n, groups * cols.shape[2], p)


def _col2im_batch_last(
    y: np.ndarray, w: np.ndarray, shape: Ints, stride: Ints, padding: Pads, dilation: Ints,
    groups: int, into: np.ndarray | None,
) -> np.ndarray:  # fmt: skip
    """``conv_transpose`` with one GEMM over the batch and image, the batch innermost."""
    n, ci, ins, ks = y.shape[0], y.shape[1], y.shape[2:], w.shape[2:]
    co, out = shape[1], shape[2:]
    yt = _to_batch_last(y, _scratch("moved", (*y.shape[1:], n), y.dtype))
    yt = yt.reshape(groups, ci // groups, math.prod(ins) * n)
    wg = w.reshape(groups, ci // groups, -1).transpose(0, 2, 1)
    gemm = _scratch("gemm", (groups, wg.shape[1], yt.shape[2]), y.dtype)
    cols = np.matmul(wg, yt, out=gemm).reshape(co, *ks, *ins, n)
    full = [
        max((i - 1) * s + d * (k - 1) + 1, lo + o)
        for i, s, d, k, (lo, _), o in zip(ins, stride, dilation, ks, padding, out)
    ]
    buf = _scratch("acc", (co, *full, n), y.dtype)
    buf.fill(0)
    for k, dst in window_slices(ks, ins, stride, dilation):
        src: tuple[Any, ...] = (slice(None), *k)
        buf[(*dst[1:], slice(None))] += cols[src]
    crop = tuple(slice(lo, lo + o) for (lo, _), o in zip(padding, out))
    return _batch_first(buf[(slice(None), *crop, slice(None))], into)


def _batch_first(a: np.ndarray, into: np.ndarray | None = None) -> np.ndarray:
    """A (N, C, *S) copy of a batch-last (C, *S, N) array (which may be scratch), in ``into``
    or a new array."""
    n = a.shape[-1]
    out = np.empty((n, *a.shape[:-1]), dtype=a.dtype) if into is None else into
    if a.flags.c_contiguous and a.size:
        _transpose_into(a.reshape(-1, n), out.reshape(n, -1))
    else:
        np.copyto(out, np.moveaxis(a, -1, 0))
    return out


def _col2im_wide(
    y: np.ndarray, w: np.ndarray, shape: Ints, padding: Pads, dilation: Ints, groups: int
) -> np.ndarray:
    """``conv_transpose`` at stride 1, accumulating whole contiguous runs.

    The input is laid out on the rows of the (padded) output image, zeros in
    the columns beyond it, so that each kernel offset adds one contiguous
    slice of the flattened image instead of many short rows: fewer, longer
    NumPy loops (measured 1.2-1.6x faster on the benchmark shapes).
    """
    n, ins, ks = y.shape[0], y.shape[2:], w.shape[2:]
    co, out = shape[1], shape[2:]
    full = [o + lo + hi for o, (lo, hi) in zip(out, padding)]
    plane = [math.prod(full[i + 1 :]) for i in range(len(full))]
    wide = np.zeros((*y.shape[:3], *full[1:]), dtype=y.dtype)
    wide[(slice(None), slice(None), slice(None), *(slice(0, i) for i in ins[1:]))] = y
    run = ins[0] * plane[0]
    cols = _patch_product(wide, w, groups).reshape(n, co, math.prod(ks), run)
    # Junk columns are zero, so the runs may spill into the next row harmlessly.
    spill = sum((k - 1) * d * p for k, d, p in zip(ks[1:], dilation[1:], plane[1:]))
    buf = np.zeros((n, co, full[0] * plane[0] + spill), dtype=y.dtype)
    for j, k in enumerate(itertools.product(*(range(kk) for kk in ks))):
        off = sum(ki * d * p for ki, d, p in zip(k, dilation, plane))
        buf[:, :, off : off + run] += cols[:, :, j]
    image = buf[:, :, : full[0] * plane[0]].reshape(n, co, *full)
    return image[
        (slice(None), slice(None), *(slice(lo, lo + o) for o, (lo, _) in zip(out, padding)))
    ]


def _conv_weight_cpu(
    x: np.ndarray,
    g: np.ndarray,
    *,
    stride: Ints,
    padding: Pads,
    dilation: Ints,
    groups: int,
    kernel_size: Ints,
    into: np.ndarray | None = None,
) -> np.ndarray:
    """``conv_weight``; ``into``: a C-contiguous result-shaped array to write the result to."""
    shape = _weight_geometry(x.shape, g.shape, stride, padding, dilation, groups, kernel_size)
    n, o = g.shape[:2]
    out = g.shape[2:]
    if _layout("conv_weight", math.prod(out), x.shape[1] // groups * math.prod(kernel_size)):
        cols = _im2col_batch_last(x, kernel_size, out, stride, padding, dilation)
        gt = _to_batch_last(g, _scratch("moved", (*g.shape[1:], n), g.dtype))
        gt = gt.reshape(groups, o // groups, cols.shape[1])
        cg = cols.reshape(groups, cols.shape[0] // groups, cols.shape[1])
        dw = np.matmul(gt, cg.transpose(0, 2, 1), out=_shaped(into, (groups, o // groups, -1)))
        return dw.reshape(shape)
    cols = _im2col(x, kernel_size, out, stride, padding, dilation)
    p = cols.shape[-1]
    gm = g.reshape(n, groups, o // groups, p)
    cm = cols.reshape(n, groups, cols.shape[1] // groups, p)
    dw = np.matmul(gm, cm.transpose(0, 1, 3, 2)).sum(
        axis=0, out=_shaped(into, (groups, o // groups, -1))
    )
    return dw.reshape(shape)


register_kernel("cpu", "conv", _conv_cpu)
register_kernel("cpu", "conv_transpose", _conv_transpose_cpu)
register_kernel("cpu", "conv_weight", _conv_weight_cpu)
