"""Attach op functions to :class:`Tensor` as methods, operators and in-place variants.

In-place ops (``x.add_(y)``, ``x[i] = v``, ``x += y``) compute the result with
the out-of-place op and write it into ``x``'s memory, bumping ``x``'s version
counter; with grad enabled, ``x`` then takes the result's place on the tape.
Saved-value checks in backward use the version counter to catch a tensor that
was modified after an op saved it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ember._src.core import autograd
from ember._src.core import dtype as dt
from ember._src.core.backend import _FACTORIES as _DEVICE_TYPES
from ember._src.core.backend import backend_of_array, device, get_backend
from ember._src.core.backend import device as _Device
from ember._src.core.creation import full_like, zeros_like
from ember._src.core.tensor import Tensor
from ember._src.ops import activation as A
from ember._src.ops import elementwise as E
from ember._src.ops import linalg as L
from ember._src.ops import reduce as R
from ember._src.ops import registry
from ember._src.ops import shape as S
from ember._src.ops.registry import apply, defop

_mode = autograd._mode


# ----------------------------------------------------------------- device transfer
def _to_device_forward(xp: Any, a: Any, device: str) -> Any:
    target = get_backend(device)
    host = backend_of_array(a).to_numpy(a) if target.name == "cpu" else a
    return target.asarray(host)


to_device_op = defop(
    "to_device",
    _to_device_forward,
    vjp=(lambda g, o, a, device: _transfer(g, _device_of(a)),),
    shape=lambda a, device: tuple(a.shape),
    kind="same",
)


def _device_of(a: Any) -> str:
    return str(a.device) if isinstance(a, Tensor) else "cpu"


def _transfer(t: Tensor, dev: Any) -> Tensor:
    d = device(dev)
    if d.type == t._backend.name:
        return t
    return apply(to_device_op, t, device=d.type)


def to(
    self: Tensor,
    *args: Any,
    dtype: Any = None,
    device: Any = None,
    copy: bool = False,
    non_blocking: bool = False,
) -> Tensor:
    """Convert dtype and/or device: ``x.to(ember.float64)``, ``x.to('cuda')``, ``x.to(other)``."""
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, _Device) or (isinstance(a, str) and a.split(":")[0] in _DEVICE_TYPES):
            device = a
        else:
            dtype = a
    out = self
    if device is not None:
        out = _transfer(out, device)
    if dtype is not None:
        out = S.cast(out, dtype)
    if copy and out is self:
        out = S.clone(self)
    return out


# ----------------------------------------------------------------- in-place machinery
_OUT_KERNELS = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "true_divide"}


def _check_leaf(self: Tensor, what: str) -> None:
    if self._node is None and self._requires_grad and _mode.enabled:
        raise RuntimeError(
            f"a leaf tensor that requires grad is being used in an in-place operation ({what}); "
            "wrap the update in `with ember.no_grad():` or use the out-of-place op"
        )


def _check_view(self: Tensor, what: str) -> None:
    """Recording an in-place op on aliased memory would leave the other alias's history
    stale (wrong gradients), so it is refused; PyTorch rewrites the base's history."""
    if self._version[1]:
        raise RuntimeError(
            f"{what}: this tensor shares memory with a view (reshape, permute, expand, slicing) "
            "and an in-place op on it cannot be differentiated in ember; use the out-of-place "
            "op (e.g. `y = x * 2` instead of `x.mul_(2)`), clone() first, or build the result "
            "with ember.cat / index_put"
        )


def _commit(self: Tensor, out: Tensor, what: str) -> Tensor:
    """Write ``out`` into ``self``'s memory and give ``self`` ``out``'s place on the tape."""
    if out.shape != self.shape:
        raise RuntimeError(
            f"{what}: the result of shape {tuple(out.shape)} does not fit in place into a "
            f"tensor of shape {tuple(self.shape)}; use the out-of-place op"
        )
    if out.dtype is not self.dtype and not _can_cast(out.dtype, self.dtype):
        raise RuntimeError(
            f"{what}: result type {out.dtype} can't be cast to the desired output type "
            f"{self.dtype}; use the out-of-place op"
        )
    tracer = registry._tracer
    if tracer is not None:  # ember.compile: self now holds the new value (functionalization)
        tracer.rebind(self, out, what)
    else:
        _write(self, out, what)
    self._version[0] += 1
    if out._requires_grad:
        self._node = out._node
        self._requires_grad = True
    return self


def _write(self: Tensor, out: Tensor, what: str) -> None:
    try:
        self._data[...] = out._data
    except ValueError as e:
        if not self._data.flags.writeable:
            raise RuntimeError(f"{what}: {_READ_ONLY}") from None
        raise RuntimeError(f"{what}: {e}") from None


def _can_cast(src: dt.dtype, dst: dt.dtype) -> bool:
    return src.category <= dst.category


def _inplace(name: str, fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    kernel = _OUT_KERNELS.get(name)

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        _check_leaf(self, name + "_")
        recording = _mode.enabled and (
            self._requires_grad or any(isinstance(a, Tensor) and a._requires_grad for a in args)
        )
        tracer = registry._tracer
        if tracer is not None:  # ember.compile: computed out of place, then rebound
            tracer.lift(self)
            if recording:
                _check_view(self, name + "_")
                old = Tensor._wrap(self._data, self._node, self._requires_grad, self._backend)
                return _commit(self, fn(old, *args, **kwargs), name + "_")
            return _commit(self, fn(self, *args, **kwargs), name + "_")
        if not recording:
            if kernel is not None and not kwargs and len(args) == 1:
                other = args[0]
                mine = self._data
                if isinstance(other, Tensor):
                    odata, fast = other._data, other._data.dtype == mine.dtype
                else:
                    odata = other
                    fast = type(other) in (int, float) and mine.dtype.kind == "f"
                if fast and mine.flags.writeable:
                    try:
                        getattr(self._backend.xp, kernel)(mine, odata, out=mine)
                    except (ValueError, TypeError):
                        pass  # e.g. not broadcastable in place: the slow path explains
                    else:
                        self._version[0] += 1
                        return self
            return _commit(self, fn(self.detach(), *args, **kwargs), name + "_")
        _check_view(self, name + "_")
        # Record against a snapshot of the old value: self's memory is about to change.
        old = Tensor._wrap(self._data.copy(), self._node, self._requires_grad)
        return _commit(self, fn(old, *args, **kwargs), name + "_")

    method.__name__ = name + "_"
    method.__doc__ = f"In-place {name}."
    return method


def _setitem(self: Tensor, index: Any, value: Any) -> None:
    _check_leaf(self, "__setitem__")
    recording = _mode.enabled and (
        self._requires_grad or (isinstance(value, Tensor) and value._requires_grad)
    )
    tracer = registry._tracer
    if tracer is not None:  # ember.compile: an index_put, then rebound
        tracer.lift(self)
        if recording:
            _check_view(self, "__setitem__")
        old = Tensor._wrap(self._data, self._node, self._requires_grad, self._backend)
        _commit(self, S.index_put(old, index, value), "__setitem__")
        return
    if not recording:
        idx = S.norm_index(index)
        v = value._data if isinstance(value, Tensor) else value
        try:
            self._data[idx] = v
        except ValueError as e:
            if not self._data.flags.writeable:
                raise RuntimeError(f"__setitem__: {_READ_ONLY}") from None
            raise ValueError(f"__setitem__ on a tensor of shape {self.shape}: {e}") from None
        self._version[0] += 1
        return
    _check_view(self, "__setitem__")
    old = Tensor._wrap(self._data.copy(), self._node, self._requires_grad)
    _commit(self, S.index_put(old, index, value), "__setitem__")


_READ_ONLY = (
    "this tensor's memory is read-only (a broadcast view from expand/broadcast_to, or a "
    "read-only array given to from_numpy/from_dlpack); clone() it before modifying it in place"
)


def _overwrite(
    self: Tensor, what: str, write: Callable[[Any], None], value: Callable[[], Tensor]
) -> Tensor:
    """Write new values that do not depend on the old ones (zero_, fill_, uniform_, …).

    ``write(array)`` writes them into memory; ``value()`` returns them as a tensor of
    self's shape, for ``ember.compile`` to rebind self to. On the tape the tensor becomes
    a constant: no gradient flows to its history, as PyTorch's Fill/Zero backward gives
    zero."""
    _check_leaf(self, what)
    recording = _mode.enabled and self._requires_grad
    if recording:
        _check_view(self, what)
    tracer = registry._tracer
    if tracer is not None:
        with autograd.no_grad():
            tracer.rebind(self, value(), what)
    else:
        if not self._data.flags.writeable:
            raise RuntimeError(f"{what}: {_READ_ONLY}")
        with autograd.no_grad():
            write(self._data)
    self._version[0] += 1
    if recording:
        self._node = None
        self._requires_grad = False
    return self


def _zero_(self: Tensor) -> Tensor:
    def write(a: Any) -> None:
        a[...] = 0

    return _overwrite(self, "zero_", write, lambda: zeros_like(self))


def _fill_(self: Tensor, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        value = value.item()

    def write(a: Any) -> None:
        a[...] = value

    return _overwrite(self, "fill_", write, lambda: full_like(self, value))


def _copy_(self: Tensor, src: Tensor) -> Tensor:
    """Copy ``src`` (broadcast, cast, any device) into self."""
    return _inplace("copy", lambda x, s: S.clone(S.broadcast_to(_match(s, x), x.shape)))(self, src)


def _match(src: Any, like: Tensor) -> Tensor:
    if not isinstance(src, Tensor):
        raise TypeError(f"copy_ expects a Tensor, got {type(src).__name__}")
    return to(src, like.dtype, like.device)


def _uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Tensor:
    from ember._src.core.creation import rand

    r = rand(self.shape, dtype=self.dtype, device=self.device, generator=generator)

    def write(arr: Any) -> None:
        arr[...] = (r * (b - a) + a)._data

    return _overwrite(self, "uniform_", write, lambda: r * (b - a) + a)


def _normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Tensor:
    from ember._src.core.creation import randn

    r = randn(self.shape, dtype=self.dtype, device=self.device, generator=generator)

    def write(arr: Any) -> None:
        arr[...] = (r * std + mean)._data

    return _overwrite(self, "normal_", write, lambda: r * std + mean)


# ----------------------------------------------------------------- method table
def _rev(fn: Callable[[Any, Any], Tensor]) -> Callable[[Tensor, Any], Tensor]:
    return lambda self, other: fn(other, self)


def _binop(op: Any) -> Callable[[Tensor, Any], Tensor]:
    """An operator method that goes straight to the dispatcher (the hottest path)."""

    def method(self: Tensor, other: Any) -> Tensor:
        return apply(op, self, other)

    return method


def _rbinop(op: Any) -> Callable[[Tensor, Any], Tensor]:
    def method(self: Tensor, other: Any) -> Tensor:
        return apply(op, other, self)

    return method


def _invert(self: Tensor) -> Tensor:
    if self.dtype is dt.bool_:
        return E.logical_not(self)
    if not self.dtype.category == dt.INT:
        raise TypeError(f"~ (bitwise not) needs an integer or bool tensor, got {self.dtype}")
    return -self - 1


def _type_as(self: Tensor, other: Tensor) -> Tensor:
    return S.cast(self, other.dtype)


def _cast_to(d: dt.dtype) -> Callable[[Tensor], Tensor]:
    return lambda self: S.cast(self, d)


def _reshape_method(self: Tensor, *shape: Any) -> Tensor:
    return S.reshape(self, *shape)


METHODS: dict[str, Any] = {
    # elementwise
    "add": E.add,
    "sub": E.sub,
    "mul": E.mul,
    "div": E.div,
    "true_divide": E.div,
    "pow": E.pow,
    "floor_divide": E.floor_divide,
    "remainder": E.remainder,
    "neg": E.neg,
    "abs": E.abs,
    "sign": E.sign,
    "exp": E.exp,
    "log": E.log,
    "log1p": E.log1p,
    "expm1": E.expm1,
    "sqrt": E.sqrt,
    "rsqrt": E.rsqrt,
    "sin": E.sin,
    "cos": E.cos,
    "tan": E.tan,
    "tanh": E.tanh,
    "sigmoid": E.sigmoid,
    "relu": E.relu,
    "erf": E.erf,
    "clamp": E.clamp,
    "clip": E.clamp,
    "minimum": E.minimum,
    "maximum": E.maximum,
    "square": E.square,
    "reciprocal": E.reciprocal,
    "floor": E.floor,
    "ceil": E.ceil,
    "round": E.round,
    "trunc": E.trunc,
    "atan2": E.atan2,
    "eq": E.eq,
    "ne": E.ne,
    "lt": E.lt,
    "le": E.le,
    "gt": E.gt,
    "ge": E.ge,
    "logical_and": E.logical_and,
    "logical_or": E.logical_or,
    "logical_xor": E.logical_xor,
    "logical_not": E.logical_not,
    "isnan": E.isnan,
    "isinf": E.isinf,
    "isfinite": E.isfinite,
    "where": lambda self, condition, other: E.where(condition, self, other),
    "gelu": A.gelu,
    "silu": A.silu,
    "softplus": A.softplus,
    "softmax": A.softmax,
    "log_softmax": A.log_softmax,
    # reductions
    "sum": R.sum,
    "mean": R.mean,
    "prod": R.prod,
    "max": R.max,
    "min": R.min,
    "amax": R.amax,
    "amin": R.amin,
    "argmax": R.argmax,
    "argmin": R.argmin,
    "var": R.var,
    "std": R.std,
    "logsumexp": R.logsumexp,
    "norm": R.norm,
    "all": R.all,
    "any": R.any,
    "cumsum": R.cumsum,
    "cumprod": R.cumprod,
    # shape and indexing
    "reshape": _reshape_method,
    "view": _reshape_method,
    "permute": S.permute,
    "transpose": S.transpose,
    "t": S.t,
    "expand": S.expand,
    "expand_as": S.expand_as,
    "broadcast_to": S.broadcast_to,
    "squeeze": S.squeeze,
    "unsqueeze": S.unsqueeze,
    "flatten": S.flatten,
    "unflatten": S.unflatten,
    "movedim": S.movedim,
    "flip": S.flip,
    "roll": S.roll,
    "repeat": S.repeat,
    "tile": S.tile,
    "gather": S.gather,
    "scatter": S.scatter,
    "scatter_add": S.scatter_add,
    "index_select": S.index_select,
    "masked_fill": S.masked_fill,
    "masked_select": S.masked_select,
    "take_along_dim": S.take_along_dim,
    "tril": S.tril,
    "triu": S.triu,
    "sort": S.sort,
    "argsort": S.argsort,
    "topk": S.topk,
    "split": S.split,
    "chunk": S.chunk,
    "narrow": S.narrow,
    "unbind": S.unbind,
    "index_put": S.index_put,
    "clone": S.clone,
    "contiguous": S.contiguous,
    "view_as": lambda s, o: S.reshape(s, o.shape),
    "reshape_as": lambda s, o: S.reshape(s, o.shape),
    # linear algebra
    "matmul": L.matmul,
    "mm": L.mm,
    "bmm": L.bmm,
    "dot": L.dot,
    "outer": L.outer,
    # conversion
    "to": to,
    "type_as": _type_as,
    "float": _cast_to(dt.float32),
    "double": _cast_to(dt.float64),
    "half": _cast_to(dt.float16),
    "long": _cast_to(dt.int64),
    "int": _cast_to(dt.int32),
    "short": _cast_to(dt.int16),
    "bool": _cast_to(dt.bool_),
    "byte": _cast_to(dt.uint8),
    "cpu": lambda self: to(self, "cpu"),
    "cuda": lambda self, device="cuda": to(self, device),
    # operators
    "__add__": _binop(E.add_op),
    "__radd__": _rbinop(E.add_op),
    "__sub__": _binop(E.sub_op),
    "__rsub__": _rbinop(E.sub_op),
    "__mul__": _binop(E.mul_op),
    "__rmul__": _rbinop(E.mul_op),
    "__truediv__": _binop(E.div_op),
    "__rtruediv__": _rbinop(E.div_op),
    "__floordiv__": E.floor_divide,
    "__rfloordiv__": _rev(E.floor_divide),
    "__mod__": E.remainder,
    "__rmod__": _rev(E.remainder),
    "__pow__": _binop(E.pow_op),
    "__rpow__": _rbinop(E.pow_op),
    "__matmul__": _binop(L.matmul_op),
    "__rmatmul__": _rbinop(L.matmul_op),
    "__neg__": E.neg,
    "__pos__": lambda self: self,
    "__abs__": E.abs,
    "__invert__": _invert,
    "__and__": E.bitwise_and,
    "__or__": E.bitwise_or,
    "__xor__": E.bitwise_xor,
    "__rand__": _rev(E.bitwise_and),
    "__ror__": _rev(E.bitwise_or),
    "__eq__": E.eq,
    "__ne__": E.ne,
    "__lt__": E.lt,
    "__le__": E.le,
    "__gt__": E.gt,
    "__ge__": E.ge,
    "__getitem__": S.getitem,
    "__setitem__": _setitem,
    # in-place
    "zero_": _zero_,
    "fill_": _fill_,
    "copy_": _copy_,
    "uniform_": _uniform_,
    "normal_": _normal_,
}

_INPLACE = {
    "add": E.add,
    "sub": E.sub,
    "mul": E.mul,
    "div": E.div,
    "pow": E.pow,
    "neg": E.neg,
    "abs": E.abs,
    "exp": E.exp,
    "log": E.log,
    "sqrt": E.sqrt,
    "sin": E.sin,
    "cos": E.cos,
    "tanh": E.tanh,
    "sigmoid": E.sigmoid,
    "relu": E.relu,
    "clamp": E.clamp,
    "clip": E.clamp,
    "floor": E.floor,
    "ceil": E.ceil,
    "round": E.round,
    "trunc": E.trunc,
    "reciprocal": E.reciprocal,
    "remainder": E.remainder,
    "floor_divide": E.floor_divide,
    "masked_fill": S.masked_fill,
    "scatter": S.scatter,
    "scatter_add": S.scatter_add,
    "index_put": S.index_put,
    "maximum": E.maximum,
    "minimum": E.minimum,
}
for _name, _fn in _INPLACE.items():
    METHODS[_name + "_"] = _inplace(_name, _fn)
for _dunder, _name in (
    ("__iadd__", "add"),
    ("__isub__", "sub"),
    ("__imul__", "mul"),
    ("__itruediv__", "div"),
    ("__ipow__", "pow"),
):
    METHODS[_dunder] = METHODS[_name + "_"]


def _install() -> None:
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
    Tensor.T = property(  # type: ignore[attr-defined]
        lambda self: S.permute(self, *reversed(range(self.ndim)))
    )
    Tensor.mT = property(lambda self: S.transpose(self, -2, -1))  # type: ignore[attr-defined]


_install()
