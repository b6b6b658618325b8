"""Shape and indexing primitives, and the composites built on them.

Primitives: reshape, permute, broadcast_to, getitem, index_put, index_scatter
(the adjoint of getitem), cat, pad_constant, gather, scatter, scatter_add,
argsort. Everything else here (squeeze, stack, split, flip, roll, repeat,
tril, sort, topk, …) is a short function of those.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core.autograd import IndexGrad, is_grad_enabled
from ember._src.core.aval import AVal
from ember._src.core.tensor import Tensor
from ember._src.ops import elementwise as E
from ember._src.ops.registry import (
    DTypeError,
    Op,
    apply,
    defop,
    is_tracing,
    op_error,
    share_version,
)

# ----------------------------------------------------------------- reshape


def _resolve_shape(name: str, a: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    n = math.prod(a.shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1 or builtins.any(s < -1 for s in shape):
        raise op_error(name, (a,), f"invalid shape {shape}: at most one -1, no other negatives")
    if neg:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or n % known:
            raise op_error(name, (a,), f"shape {shape} is invalid for input of size {n}")
        shape = tuple(n // known if s == -1 else s for s in shape)
    if math.prod(shape) != n:
        raise op_error(name, (a,), f"shape {shape} is invalid for input of size {n}")
    return shape


reshape_op = defop(
    "reshape",
    lambda xp, a, shape: a.reshape(shape),
    vjp=(lambda g, o, a, shape: g.reshape(a.shape),),
    shape=lambda a, shape: _resolve_shape("reshape", a, shape),
    kind="same",
    save_inputs=False,
    view=True,
)


def _shape_arg(shape: Any) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(_size(s) for s in shape)


def _size(s: Any) -> int:
    # An int (or int subclass, such as a placeholder's variable dimension) is kept as it is.
    return s if isinstance(s, int) and type(s) is not bool else int(s)


def reshape(input: Tensor, *shape: Any) -> Tensor:
    """The same data with a new shape (one dimension may be -1).

    Example:
        >>> import ember
        >>> ember.arange(6).reshape(2, -1).shape
        (2, 3)
    """
    target = _shape_arg(shape)
    if target == input.shape:
        return input
    return apply(reshape_op, input, shape=_resolve_shape("reshape", input, target))


view = reshape


def _permute_shape(a: Any, dims: tuple[int, ...]) -> tuple[int, ...]:
    if sorted(dims) != list(range(len(a.shape))):
        raise op_error("permute", (a,), f"dims {dims} is not a permutation of {len(a.shape)} dims")
    return tuple(a.shape[d] for d in dims)


permute_op = defop(
    "permute",
    lambda xp, a, dims: a.transpose(dims),
    vjp=(lambda g, o, a, dims: g.permute(*np.argsort(dims).tolist()),),
    shape=_permute_shape,
    kind="same",
    save_inputs=False,
    view=True,
)


def permute(input: Tensor, *dims: Any) -> Tensor:
    """Reorder dimensions: ``x.permute(2, 0, 1)``."""
    d = _shape_arg(dims)
    n = input.ndim
    d = tuple(i % n if -n <= i < n else i for i in d) if n else d
    return apply(permute_op, input, dims=d)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    n = input.ndim
    if n < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    dims = list(range(n))
    a, b = _norm_dim(dim0, n, "transpose", input), _norm_dim(dim1, n, "transpose", input)
    dims[a], dims[b] = dims[b], dims[a]
    return apply(permute_op, input, dims=tuple(dims))


def t(input: Tensor) -> Tensor:
    """Transpose a tensor of at most 2 dimensions."""
    if input.ndim > 2:
        raise op_error("t", (input,), "t() expects a tensor with <= 2 dims; use .mT or permute")
    return transpose(input, 0, -1) if input.ndim == 2 else input


def _norm_dim(d: int, n: int, name: str, *args: Any) -> int:
    m = builtins.max(n, 1)
    if not isinstance(d, (int, np.integer)) or not -m <= d < m:
        raise op_error(
            name, args, f"dimension {d} out of range (expected in [{-m}, {m - 1}])", IndexError
        )
    return int(d) % m


def _broadcast_shape(a: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    src = tuple(a.shape)
    lead = len(shape) - len(src)
    ok = lead >= 0 and builtins.all(s == t or s == 1 for s, t in zip(src, shape[lead:]))
    if not ok:
        raise op_error(
            "broadcast_to",
            (a,),
            f"cannot expand shape {src} to {shape}: each dimension must match or be 1",
        )
    return shape


broadcast_to_op = defop(
    "broadcast_to",
    lambda xp, a, shape: xp.broadcast_to(a, shape),
    vjp=(lambda g, o, a, shape: E.sum_to(g, tuple(a.shape)),),
    shape=_broadcast_shape,
    kind="same",
    save_inputs=False,
    view=True,
)


def broadcast_to(input: Tensor, shape: Any) -> Tensor:
    """A read-only broadcast view of ``input`` with ``shape``."""
    shape = tuple(_size(s) for s in shape)
    if shape == input.shape:
        return input
    return apply(broadcast_to_op, input, shape=shape)


def expand(input: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to ``sizes``; -1 keeps a dimension."""
    s = _shape_arg(sizes)
    lead = len(s) - input.ndim
    if lead < 0:
        raise op_error("expand", (input,), f"cannot expand to fewer dims: {s}")
    full = tuple(input.shape[i - lead] if v == -1 and i >= lead else v for i, v in enumerate(s))
    return broadcast_to(input, full)


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return broadcast_to(input, other.shape)


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Drop size-1 dimensions (all, or those in ``dim``)."""
    if dim is None:
        dims = {i for i, s in enumerate(input.shape) if s == 1}
    else:
        ds = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = {_norm_dim(d, input.ndim, "squeeze", input) for d in ds}
        dims = {d for d in dims if input.ndim and input.shape[d] == 1}
    return reshape(input, tuple(s for i, s in enumerate(input.shape) if i not in dims))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dimension at ``dim``."""
    d = _norm_dim(dim, input.ndim + 1, "unsqueeze", input)
    s = list(input.shape)
    s.insert(d, 1)
    return reshape(input, tuple(s))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim..end_dim`` into one."""
    if input.ndim == 0:
        return reshape(input, (1,))
    a = _norm_dim(start_dim, input.ndim, "flatten", input)
    b = _norm_dim(end_dim, input.ndim, "flatten", input)
    if a > b:
        raise op_error("flatten", (input,), "start_dim cannot come after end_dim")
    s = input.shape
    return reshape(input, (*s[:a], math.prod(s[a : b + 1]), *s[b + 1 :]))


def unflatten(input: Tensor, dim: int, sizes: Any) -> Tensor:
    """Split dimension ``dim`` into ``sizes`` (one may be -1)."""
    d = _norm_dim(dim, input.ndim, "unflatten", input)
    s = input.shape
    return reshape(input, s[:d] + tuple(sizes) + s[d + 1 :])


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    n = input.ndim
    src = [_norm_dim(s, n, "movedim", input) for s in src]
    dst = [_norm_dim(s, n, "movedim", input) for s in dst]
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, *order)


# ----------------------------------------------------------------- indexing
def _to_index_array(v: Any) -> Any:
    if isinstance(v, Tensor):
        if v.dtype.category == dt.FLOAT:
            raise IndexError(
                f"tensors used as indices must be long, int or bool tensors, got {v.dtype}"
            )
        return v._data
    if isinstance(v, (list, np.ndarray)):
        arr = np.asarray(v)
        if arr.dtype.kind not in "biu":
            raise IndexError("index lists must hold integers or bools")
        return arr
    return v


def norm_index(index: Any) -> tuple[Any, ...]:
    """An index as a tuple of ints, slices, None, Ellipsis and backend arrays."""
    if not isinstance(index, tuple):
        index = (index,)
    out: list[Any] = []
    for v in index:
        if isinstance(v, (bool, np.bool_)):
            out.append(np.asarray(v))
        elif isinstance(v, (int, np.integer)):
            out.append(int(v))
        elif (
            isinstance(v, Tensor)
            and v.ndim == 0
            and v.dtype.category == dt.INT
            and not is_tracing()  # traced: a 0-d index array, which indexes like the int
        ):
            out.append(int(v.item()))
        elif v is None or v is Ellipsis or isinstance(v, slice):
            out.append(v)
        else:
            out.append(_to_index_array(v))
    return tuple(out)


def is_basic(index: tuple[Any, ...]) -> bool:
    return builtins.all(v is None or v is Ellipsis or isinstance(v, (int, slice)) for v in index)


def _getitem_shape(a: Any, index: tuple[Any, ...]) -> tuple[int, ...]:
    probe = np.broadcast_to(np.empty((), dtype=bool), tuple(a.shape))
    try:
        return tuple(probe[_host(index)].shape)
    except IndexError as e:
        raise op_error("getitem", (a,), f"{e}", IndexError) from None


def _host(index: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(np.asarray(v) if hasattr(v, "__cuda_array_interface__") else v for v in index)


def _scatter_into(xp: Any, g: Any, shape: tuple[int, ...], index: tuple[Any, ...]) -> Any:
    z = xp.zeros(shape, dtype=g.dtype)
    if builtins.any(hasattr(v, "dtype") and v.dtype.kind in "iu" for v in index):
        xp.add.at(z, index, g)  # integer indices may repeat: accumulate
    else:
        z[index] = g
    return z


def _getitem_rule(g: Tensor, o: Any, a: Any, index: tuple[Any, ...]) -> Any:
    # create_graph, ember.compile tracing, or a symbolic gradient (ember.placeholder): the
    # scatter must be an op on the tape / graph
    if is_grad_enabled() or is_tracing() or not isinstance(g._data, g._backend.array_type):
        return index_scatter(g, tuple(a.shape), index)
    return IndexGrad(tuple(a.shape), index, g)  # summed sparsely by the engine


getitem_op = defop(
    "getitem",
    lambda xp, a, index: a[index],
    vjp=(_getitem_rule,),
    shape=_getitem_shape,
    kind="same",
    save_inputs=False,
)
index_scatter_op = defop(
    "index_scatter",
    lambda xp, g, shape, index: _scatter_into(xp, g, shape, index),
    vjp=(lambda gg, o, g, shape, index: apply(getitem_op, gg, index=index),),
    shape=lambda g, shape, index: shape,
    kind="same",
    save_inputs=False,
)


def index_scatter(g: Tensor, shape: tuple[int, ...], index: tuple[Any, ...]) -> Tensor:
    """Zeros of ``shape`` with ``g`` added at ``index`` (the adjoint of ``x[index]``)."""
    return apply(index_scatter_op, g, shape=shape, index=index)


def getitem(input: Tensor, index: Any) -> Tensor:
    """``input[index]`` with ints, slices, None, Ellipsis, bool masks and integer arrays."""
    idx = norm_index(index)
    out = apply(getitem_op, input, index=idx)
    if is_basic(idx):  # a view: in-place writes to either are seen by saved-value checks
        share_version(out, input)
    return out


def _index_put_forward(xp: Any, a: Any, v: Any, index: tuple[Any, ...]) -> Any:
    out = a.copy()
    out[index] = v
    return out


def _index_put_shape(a: Any, v: Any, index: tuple[Any, ...]) -> tuple[int, ...]:
    target = _getitem_shape(a, index)
    vs = tuple(v.shape) if isinstance(v, (Tensor, AVal)) else ()
    try:
        np.broadcast_shapes(vs, target)
    except ValueError:
        raise op_error(
            "index_put",
            (a, v),
            f"cannot assign a value of shape {vs} to a selection of shape {target}",
        ) from None
    return tuple(a.shape)


index_put_op: Op = defop(
    "index_put",
    _index_put_forward,
    vjp=(
        lambda g, o, a, v, index: apply(index_put_op, g, 0.0, index=index),
        lambda g, o, a, v, index: E.sum_to(apply(getitem_op, g, index=index), tuple(v.shape)),
    ),
    infer=lambda a, v, index: AVal(_index_put_shape(a, v, index), a.dtype),
    kind="custom",
    save_inputs=False,
)


def index_put(input: Tensor, index: Any, value: Any) -> Tensor:
    """Out-of-place ``input[index] = value`` (differentiable in both)."""
    if isinstance(value, Tensor) and value.dtype is not input.dtype:
        value = value.to(input.dtype)
    return apply(index_put_op, input, value, index=norm_index(index))


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """Select entries along ``dim`` with a 1-D integer index."""
    d = _norm_dim(dim, input.ndim, "index_select", input, index)
    if index.ndim > 1:
        raise op_error("index_select", (input, index), "index must be 0-d or 1-d")
    if input.ndim == 0:  # a scalar takes exactly one index, 0
        if index.numel() != 1:
            raise op_error("index_select", (input, index), "a 0-d input takes a single index")
        return getitem(reshape(input, (1,)), index.reshape(())).reshape(())
    return getitem(input, (slice(None),) * d + (index.reshape(-1),))


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    """Fill ``value`` where ``mask`` is true."""
    if mask.dtype is not dt.bool_:
        raise op_error("masked_fill", (input, mask), "mask must be a bool tensor", DTypeError)
    if isinstance(value, Tensor):
        value = value.to(input.dtype)
    out = E.where(mask, value, input)
    return out if out.dtype is input.dtype else out.to(input.dtype)


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """1-D tensor of the elements where ``mask`` (broadcast) is true."""
    shape = E.broadcast_shapes(input, mask, name="masked_select")
    return getitem(broadcast_to(input, shape), broadcast_to(mask, shape))


# ----------------------------------------------------------------- cat / stack / split
def _cat_shape(*xs: Any, dim: int) -> tuple[int, ...]:
    ref = tuple(xs[0].shape)
    for x in xs[1:]:
        s = tuple(x.shape)
        if len(s) != len(ref) or builtins.any(
            a != b for i, (a, b) in enumerate(zip(s, ref)) if i != dim
        ):
            raise op_error(
                "cat", xs, f"sizes must match except in dimension {dim}; got {ref} and {s}"
            )
    return (*ref[:dim], builtins.sum(x.shape[dim] for x in xs), *ref[dim + 1 :])


def _cat_rule(i: int, g: Tensor, o: Any, *xs: Any, dim: int) -> Tensor:
    start = builtins.sum(x.shape[dim] for x in xs[:i])
    return narrow(g, dim, start, xs[i].shape[dim])


cat_op = defop(
    "cat",
    lambda xp, *xs, dim: xp.concatenate(xs, axis=dim),
    vjp=(_cat_rule,),
    shape=_cat_shape,
    save_inputs=False,
    variadic=True,
)


def cat(tensors: Any, dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension (dtypes promote)."""
    ts = list(tensors)
    if not ts:
        raise ValueError("cat expects a non-empty list of tensors")
    ts = [x for x in ts if not (x.ndim == 1 and x.shape[0] == 0)] or ts[:1]  # legacy empty
    d = _norm_dim(dim, ts[0].ndim, "cat", *ts)
    if len(ts) == 1:
        return ts[0]
    return apply(cat_op, *ts, dim=d)


concat = concatenate = cat


def stack(tensors: Any, dim: int = 0) -> Tensor:
    """Join tensors of equal shape along a new dimension."""
    ts = list(tensors)
    if not ts:
        raise ValueError("stack expects a non-empty list of tensors")
    for x in ts[1:]:
        if x.shape != ts[0].shape:
            raise op_error("stack", ts, "stack expects each tensor to be equal size")
    d = _norm_dim(dim, ts[0].ndim + 1, "stack", *ts)
    if len(ts) == 1:
        return unsqueeze(ts[0], d)
    return apply(cat_op, *[unsqueeze(x, d) for x in ts], dim=d)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """The slice ``start:start+length`` along ``dim`` (a view); a negative start counts from
    the end."""
    d = _norm_dim(dim, input.ndim, "narrow", input)
    n = input.shape[d]
    if not -n <= start <= n:
        problem = f"start {start} out of range for a dimension of size {n}"
        raise op_error("narrow", (input,), problem, IndexError)
    if start < 0:
        start += n
    if length < 0 or start + length > n:
        raise op_error(
            "narrow", (input,), f"start ({start}) + length ({length}) exceeds dimension size {n}"
        )
    return getitem(input, (slice(None),) * d + (slice(start, start + length),))


def split(input: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into chunks of a size, or of the listed sizes, along ``dim``."""
    d = _norm_dim(dim, input.ndim, "split", input)
    n = input.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise op_error(
                "split", (input,), f"split sizes {sizes} do not add up to dimension {d} ({n})"
            )
    out, start = [], 0
    for s in sizes:
        out.append(narrow(input, d, start, s))
        start += s
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into ``chunks`` nearly equal pieces along ``dim``."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = _norm_dim(dim, input.ndim, "chunk", input)
    if input.shape[d] == 0:  # PyTorch gives ``chunks`` empty pieces
        return split(input, [0] * chunks, d)
    return split(input, -(-input.shape[d] // chunks), d)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    d = _norm_dim(dim, input.ndim, "unbind", input)
    return tuple(getitem(input, (slice(None),) * d + (i,)) for i in range(input.shape[d]))


# ----------------------------------------------------------------- pad / flip / roll / repeat
def _pad_shape(a: Any, widths: tuple[tuple[int, int], ...], value: Any = 0) -> tuple[int, ...]:
    return tuple(s + lo + hi for s, (lo, hi) in zip(a.shape, widths))


def _pad_rule(g: Tensor, o: Any, a: Any, widths: Any, value: Any = 0) -> Tensor:
    return getitem(g, tuple(slice(lo, lo + s) for s, (lo, hi) in zip(a.shape, widths)))


pad_constant_op = defop(
    "pad_constant",
    lambda xp, a, widths, value=0: xp.pad(a, widths, mode="constant", constant_values=value),
    vjp=(_pad_rule,),
    shape=_pad_shape,
    kind="same",
    save_inputs=False,
)


def pad(input: Tensor, pad: Any, mode: str = "constant", value: Any = 0.0) -> Tensor:
    """Pad the last dimensions: ``pad=(left, right, top, bottom, …)`` as in PyTorch.

    ``mode`` is 'constant', 'reflect' or 'replicate' (also 'circular').
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise op_error("pad", (input,), f"pad {pad} must have an even length of at most 2 * ndim")
    if builtins.any(p < 0 for p in pad):
        raise op_error("pad", (input,), f"negative padding {pad} is not supported; use narrow")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        return apply(pad_constant_op, input, widths=tuple(widths), value=value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(
            f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}"
        )
    out = input
    for d, (lo, hi) in enumerate(widths):
        if lo == hi == 0:
            continue
        n = input.shape[d]
        pos = np.arange(-lo, n + hi)
        if mode == "replicate":
            idx = np.clip(pos, 0, n - 1)
        elif mode == "circular":
            idx = pos % n
        else:
            if lo >= n or hi >= n:
                raise op_error(
                    "pad", (input,), f"reflect padding ({lo}, {hi}) must be < dimension size {n}"
                )
            period = 2 * (n - 1) if n > 1 else 1
            m = np.abs(pos) % period
            idx = np.where(m >= n, period - m, m)
        out = getitem(out, (slice(None),) * d + (idx,))
    return out


def flip(input: Tensor, dims: Any) -> Tensor:
    """Reverse the order of elements along ``dims``."""
    ds = (dims,) if isinstance(dims, int) else tuple(dims)
    idx = [slice(None)] * builtins.max(input.ndim, 1)  # a 0-d tensor flips along "dim 0"
    for d in ds:
        idx[_norm_dim(d, input.ndim, "flip", input)] = slice(None, None, -1)
    return getitem(input, tuple(idx[: input.ndim]))


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Rotate elements along ``dims`` by ``shifts`` (the flattened tensor when dims is None)."""
    if dims is None:
        return roll(flatten(input), shifts, 0).reshape(input.shape)
    sh = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    ds = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(sh) != len(ds):
        raise ValueError(f"roll: shifts {sh} and dims {ds} must have the same length")
    out = input
    for s, d in zip(sh, ds):
        d = _norm_dim(d, input.ndim, "roll", input)
        n = input.shape[d]
        if n:
            out = getitem(out, (slice(None),) * d + ((np.arange(n) - s) % n,))
    return out


def repeat(input: Tensor, *sizes: Any) -> Tensor:
    """Tile the tensor ``sizes[i]`` times along each dimension (PyTorch's ``repeat``)."""
    reps = _shape_arg(sizes)
    if len(reps) < input.ndim:
        raise op_error(
            "repeat", (input,), f"number of repeat dims {len(reps)} < tensor dims {input.ndim}"
        )
    src = (1,) * (len(reps) - input.ndim) + input.shape
    inter = []
    for s in src:
        inter += [1, s]
    x = reshape(input, tuple(inter))
    big = []
    for r, s in zip(reps, src):
        big += [r, s]
    x = broadcast_to(x, tuple(big))
    return reshape(x, tuple(r * s for r, s in zip(reps, src)))


def tile(input: Tensor, dims: Any) -> Tensor:
    """Like ``repeat``, padding ``dims`` with leading 1s when it is short."""
    d = tuple(dims)
    d = (1,) * (input.ndim - len(d)) + d
    return repeat(input, d)


def _tri_mask(input: Tensor, diagonal: int, lower: bool) -> Tensor:
    if input.ndim < 2:
        raise op_error("tril" if lower else "triu", (input,), "needs at least 2 dims")
    rows, cols = input.shape[-2:]
    mask = np.tri(rows, cols, diagonal, dtype=bool)
    if not lower:
        mask = ~np.tri(rows, cols, diagonal - 1, dtype=bool)
    return Tensor._wrap(input._backend.asarray(mask))


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """Lower triangle of the last two dims; the rest zero."""
    return E.where(_tri_mask(input, diagonal, True), input, 0).to(input.dtype)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """Upper triangle of the last two dims; the rest zero."""
    return E.where(_tri_mask(input, diagonal, False), input, 0).to(input.dtype)


# ----------------------------------------------------------------- gather / scatter
def _index_grid(xp: Any, index: Any, dim: int) -> tuple[Any, ...]:
    """Full integer index addressing ``out[i][index[i]]`` along ``dim``."""
    grids = list(xp.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


def _check_gather(name: str, a: Any, index: Any, dim: int, *more: Any) -> None:
    if index.dtype.category != dt.INT:
        raise op_error(name, (a, index, *more), "index must be an integer tensor", DTypeError)
    if len(index.shape) != len(a.shape):
        raise op_error(name, (a, index, *more), "index must have as many dimensions as the input")
    for d, (i, s) in enumerate(zip(index.shape, a.shape)):
        if d != dim and i > s:
            raise op_error(
                name,
                (a, index, *more),
                f"index size {i} exceeds the input's size {s} in dimension {d}",
            )


def _as_vectors_if_0d(forward: Any) -> Any:
    """Run a gather/scatter forward on 1-element vectors when the input is 0-d.

    A 0-d tensor has no dimension to index along, but PyTorch accepts dim 0 there.
    """

    def run(xp: Any, a: Any, index: Any, *rest: Any, dim: int) -> Any:
        if a.ndim:
            return forward(xp, a, index, *rest, dim=dim)
        rest = tuple(r.reshape(1) if hasattr(r, "ndim") else r for r in rest)
        return forward(xp, a.reshape(1), index.reshape(1), *rest, dim=0).reshape(index.shape)

    return run


def _gather_forward(xp: Any, a: Any, index: Any, dim: int) -> Any:
    return a[_index_grid(xp, index, dim)]


def _gather_infer(a: Any, index: Any, dim: int) -> AVal:
    _check_gather("gather", a, index, dim)
    return AVal(tuple(index.shape), a.dtype)


gather_op = defop(
    "gather",
    _as_vectors_if_0d(_gather_forward),
    vjp=(
        lambda g, o, a, index, dim: scatter_add(
            Tensor._wrap(g._backend.xp.zeros(a.shape, dtype=g._data.dtype)), dim, index, g
        ),
    ),
    infer=lambda a, index, dim: _gather_infer(a, index, dim),
    kind="custom",
)


def _scatter_add_forward(xp: Any, a: Any, index: Any, src: Any, dim: int) -> Any:
    out = a.copy()
    sl = tuple(slice(0, s) for s in index.shape)
    xp.add.at(out, _index_grid(xp, index, dim), src[sl])
    return out


def _scatter_forward(xp: Any, a: Any, index: Any, src: Any, dim: int) -> Any:
    out = a.copy()
    if hasattr(src, "shape") and src.ndim:
        src = src[tuple(slice(0, s) for s in index.shape)]
    out[_index_grid(xp, index, dim)] = src
    return out


def _scatter_infer(a: Any, index: Any, src: Any, dim: int) -> AVal:
    _check_gather("scatter", a, index, dim)
    return AVal(tuple(a.shape), a.dtype)


def _src_grad(g: Tensor, src: Any, index: Tensor, dim: int) -> Tensor:
    got = gather(g, dim, index)
    if tuple(src.shape) == got.shape:
        return got
    return pad(
        got, [p for d in reversed(range(got.ndim)) for p in (0, src.shape[d] - got.shape[d])]
    )


scatter_add_op = defop(
    "scatter_add",
    _as_vectors_if_0d(_scatter_add_forward),
    vjp=(
        lambda g, o, a, index, src, dim: g,
        lambda g, o, *a, **k: None,
        lambda g, o, a, index, src, dim: _src_grad(g, src, index, dim),
    ),
    infer=_scatter_infer,
    kind="custom",
    save_inputs=True,
)
scatter_op = defop(
    "scatter",
    _as_vectors_if_0d(_scatter_forward),
    vjp=(
        lambda g, o, a, index, src, dim: scatter(g, dim, index, 0.0),
        lambda g, o, *a, **k: None,
        lambda g, o, a, index, src, dim: _src_grad(g, src, index, dim),
    ),
    infer=_scatter_infer,
    kind="custom",
)


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j] = input[i][index[i][j]]`` along ``dim`` (PyTorch's ``gather``)."""
    d = _norm_dim(dim, input.ndim, "gather", input, index)
    return apply(gather_op, input, index, dim=d)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """Out-of-place ``input.scatter_add_(dim, index, src)``: sums at repeated indices."""
    d = _norm_dim(dim, input.ndim, "scatter_add", input, index, src)
    return apply(scatter_add_op, input, index, src.to(input.dtype), dim=d)


def scatter(
    input: Tensor, dim: int, index: Tensor, src: Any = None, *, value: Any = None
) -> Tensor:
    """Out-of-place ``input.scatter_(dim, index, src)``; ``src`` may be a scalar ``value``."""
    if src is None:
        src = value
    d = _norm_dim(dim, input.ndim, "scatter", input, index)
    if isinstance(src, Tensor):
        src = src.to(input.dtype)
    return apply(scatter_op, input, index, src, dim=d)


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """Pick values along ``dim`` at ``indices`` (broadcasting the other dims)."""
    if dim is None:
        return gather(flatten(input), 0, flatten(indices))
    d = _norm_dim(dim, input.ndim, "take_along_dim", input, indices)
    if input.ndim != indices.ndim:
        raise op_error(
            "take_along_dim", (input, indices), "input and indices must have the same ndim"
        )
    if input.ndim == 0:  # nothing to broadcast
        return gather(input, d, indices)
    a_shape = list(input.shape)
    i_shape = list(indices.shape)
    a_shape[d] = i_shape[d] = 1
    common = list(np.broadcast_shapes(tuple(a_shape), tuple(i_shape)))
    ca, ci = list(common), list(common)
    ca[d], ci[d] = input.shape[d], indices.shape[d]
    return gather(broadcast_to(input, tuple(ca)), d, broadcast_to(indices, tuple(ci)))


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding of class indices along a new last dimension."""
    if tensor.dtype.category != dt.INT:
        raise op_error("one_hot", (tensor,), "one_hot needs an integer tensor", DTypeError)
    if num_classes < 0:
        num_classes = int(tensor.max().item()) + 1 if tensor.numel() else 0
    elif (
        tensor.numel()
        and not is_tracing()  # ember.compile has no values to check
        and (int(tensor.max().item()) >= num_classes or int(tensor.min().item()) < 0)
    ):
        raise op_error("one_hot", (tensor,), f"class values must be in [0, {num_classes})")
    classes = Tensor._wrap(tensor._backend.xp.arange(num_classes, dtype="int64"))
    return E.eq(unsqueeze(tensor, -1), classes).to(dt.int64)


# ----------------------------------------------------------------- sorting
def _argsort_forward(xp: Any, a: Any, dim: int, descending: bool, stable: bool) -> Any:
    if descending:
        return _desc(xp, a, dim)
    return xp.argsort(a, axis=dim, kind="stable" if stable else "quicksort").astype("int64")


def _desc(xp: Any, a: Any, dim: int) -> Any:
    if a.dtype.kind == "b":
        a = a.astype("int8")
    if a.dtype.kind == "u":
        a = a.astype("int64")
    idx = xp.argsort(-a, axis=dim, kind="stable")
    if a.dtype.kind in "fV":  # NaN sorts as the largest value, first when descending
        nan_last = ~xp.isnan(xp.take_along_axis(a, idx, axis=dim))
        idx = xp.take_along_axis(idx, xp.argsort(nan_last, axis=dim, kind="stable"), axis=dim)
    return idx.astype("int64")


argsort_op = defop(
    "argsort",
    _argsort_forward,
    infer=lambda a, dim, descending, stable: AVal(tuple(a.shape), dt.int64),
    kind="custom",
)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """Indices that sort ``input`` along ``dim``."""
    if input.ndim == 0:
        return Tensor._wrap(input._backend.xp.zeros((), dtype="int64"))
    d = _norm_dim(dim, input.ndim, "argsort", input)
    return apply(argsort_op, input, dim=d, descending=bool(descending), stable=bool(stable))


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """(values, indices) of ``input`` sorted along ``dim``."""
    from ember._src.ops.reduce import values_indices

    idx = argsort(input, dim, descending, stable)
    if input.ndim == 0:
        return values_indices(input, idx)
    return values_indices(take_along_dim(input, idx, dim), idx)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """(values, indices) of the ``k`` largest (or smallest) entries along ``dim``."""
    from ember._src.ops.reduce import values_indices

    d = _norm_dim(dim, input.ndim, "topk", input)
    if not 0 <= k <= (input.shape[d] if input.ndim else 1):
        raise op_error("topk", (input,), f"k={k} is out of range for dimension {d}")
    if input.ndim == 0:  # as PyTorch: the scalar itself, index 0
        return sort(input)
    idx = narrow(argsort(input, d, descending=largest, stable=True), d, 0, k)
    return values_indices(take_along_dim(input, idx, d), idx)


# ----------------------------------------------------------------- copies and casts
def _cast_infer(a: Any, dtype: Any) -> AVal:
    return AVal(tuple(a.shape), dtype)


cast_op = defop(
    "cast",
    lambda xp, a, dtype: a.astype(dtype.np),
    vjp=(lambda g, o, a, dtype: g.to(a.dtype),),
    infer=_cast_infer,
    kind="custom",
    save_inputs=False,
)
clone_op = defop(
    "clone",
    lambda xp, a: a.copy(),
    vjp=(lambda g, o, a: g,),
    shape=lambda a: tuple(a.shape),
    kind="same",
    save_inputs=False,
)
contiguous_op = defop(
    "contiguous",
    lambda xp, a: xp.ascontiguousarray(a),
    vjp=(lambda g, o, a: g,),
    shape=lambda a: tuple(a.shape),
    kind="same",
    save_inputs=False,
)


def cast(input: Tensor, dtype: Any) -> Tensor:
    d = dt.to_dtype(dtype)
    if d is input.dtype:
        return input
    return apply(cast_op, input, dtype=d)


def clone(input: Tensor) -> Tensor:
    """A copy with its own memory; gradients flow through."""
    return apply(clone_op, input)


def contiguous(input: Tensor) -> Tensor:
    if input._data.flags.c_contiguous:
        return input
    return apply(contiguous_op, input)
