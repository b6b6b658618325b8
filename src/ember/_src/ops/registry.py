"""The op registry: every primitive is one :class:`Op` record, run by :func:`apply`.

A record holds the three things every face of ember reads:

* ``forward(xp, *arrays, **attrs)``: the computation on backend arrays;
* ``vjp``: one gradient rule per differentiable input,
  ``rule(g, out, *inputs, **attrs) -> Tensor``, written in ember ops;
* ``needs`` (optional): for each rule, the inputs it reads; a node then keeps
  only the inputs that the rules it will run need (the rest as AVals), so an
  input no live rule reads can be freed or modified in place;
* a shape rule: ``shape(*avals, **attrs) -> tuple`` for elementwise-style ops
  (the dtype follows from ``kind``), or a full ``infer(*avals, **attrs) -> AVal``.

``kind`` names the dtype rule: ``same`` keeps the input dtype, ``promote``
promotes the operands (PyTorch rules), ``float`` promotes then turns integers
into the default float, ``bool`` gives bool, ``custom`` leaves dtypes to the op.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ember._src.core import autograd
from ember._src.core import dtype as dt
from ember._src.core.autograd import Node
from ember._src.core.aval import AVal
from ember._src.core.backend import _BY_ARRAY_TYPE
from ember._src.core.tensor import Tensor

Rule = Callable[..., Any]

REGISTRY: dict[str, Op] = {}

_grad_mode = autograd._mode
_TENSOR = Tensor
_NDARRAY = np.ndarray
_ARRAY_TYPES = _BY_ARRAY_TYPE  # every registered backend's array type

# Set by ember.compile while it traces: ``hook(op, args, attrs, first) -> Tensor``
# returns the symbolic output instead of computing (ops never import compile).
_trace_hook: Callable[[Op, tuple[Any, ...], dict[str, Any], Tensor], Tensor] | None = None
# The tracer itself while ember.compile traces: in-place methods hand it their updates
# (``lift`` / ``rebind``) instead of writing memory.
_tracer: Any = None


# Set by ember.placeholder once a symbolic tensor exists: ``hook(op, args, attrs)`` records
# the op and returns its symbolic output when an operand is symbolic, else None. Checked only
# on the paths that call ``compute`` (a symbolic operand never takes the inline fast path).
_symbolic_hook: Callable[[Op, tuple[Any, ...], dict[str, Any]], Tensor | None] | None = None


def is_tracing() -> bool:
    """Whether ``ember.compile`` is tracing (ops record graph nodes, not values)."""
    return _trace_hook is not None


class TracerError(RuntimeError):
    """Code traced by ``ember.compile`` needs something only a real run has (a value)."""


class ShapeError(ValueError):
    """Operands whose shapes an op cannot take."""


class DTypeError(TypeError):
    """Operands whose dtypes an op cannot take."""


class Op:
    """One primitive: forward on arrays, gradient rules in ember ops, a shape rule."""

    __slots__ = (
        "effectful",
        "fast_pair",
        "forward",
        "infer_rule",
        "kind",
        "name",
        "needs",
        "passthrough",
        "promote_from",
        "save_inputs",
        "save_output",
        "shape_rule",
        "variadic",
        "view",
        "vjp",
    )

    def __init__(
        self,
        name: str,
        forward: Callable[..., Any],
        *,
        vjp: Sequence[Rule] | None = None,
        shape: Callable[..., tuple[int, ...]] | None = None,
        infer: Callable[..., AVal] | None = None,
        kind: str = "promote",
        promote_from: int = 0,
        save_inputs: bool = True,
        save_output: bool = False,
        needs: Sequence[Sequence[int]] | None = None,
        view: bool = False,
        variadic: bool = False,
        effectful: bool = False,
    ) -> None:
        if (shape is None) == (infer is None):
            raise ValueError(f"op {name}: give exactly one of shape= or infer=")
        if kind not in ("same", "promote", "float", "bool", "custom"):
            raise ValueError(f"op {name}: unknown kind {kind!r}")
        if infer is not None and kind != "custom":
            raise ValueError(f"op {name}: infer= is for kind='custom' ops")
        self.name = name
        self.forward = forward
        self.vjp = tuple(vjp) if vjp is not None else None
        self.shape_rule = shape
        self.infer_rule = infer
        self.kind = kind
        self.promote_from = promote_from
        self.save_inputs = save_inputs
        self.save_output = save_output
        self.needs = None if needs is None else tuple(frozenset(n) for n in needs)
        if self.needs is not None and (not save_inputs or len(self.needs) != len(self.vjp or ())):
            raise ValueError(f"op {name}: needs= lists the inputs each gradient rule reads")
        self.view = view
        self.variadic = variadic
        # A node of this op has an effect beyond its output (a random draw advances a
        # generator): compiler passes must not remove, merge or fold it.
        self.effectful = effectful
        # Dispatch shortcuts, decided once per op instead of on every call.
        self.passthrough = kind in ("custom", "same")
        self.fast_pair = not self.passthrough and promote_from == 0

    def rule(self, i: int) -> Rule:
        """The gradient rule for input ``i``."""
        assert self.vjp is not None
        if self.variadic:
            return functools.partial(self.vjp[0], i)
        return self.vjp[i]

    def infer(self, *args: Any, **attrs: Any) -> AVal:
        """The output's shape and dtype from the inputs' (AVals or Python scalars)."""
        if self.infer_rule is not None:
            return self.infer_rule(*args, **attrs)
        assert self.shape_rule is not None
        shape = self.shape_rule(*args, **attrs)
        return AVal(tuple(shape), self._result_dtype(args))

    def _result_dtype(self, args: Sequence[Any]) -> dt.dtype:
        if self.kind == "bool":
            return dt.bool_
        if self.kind == "same":
            return args[0].dtype
        d = compute_dtype(args[self.promote_from :])
        if self.kind == "float" and d.category != dt.FLOAT:
            return dt.get_default_dtype()
        return d

    def __repr__(self) -> str:
        return f"<ember op {self.name}>"


def register(op: Op) -> Op:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name!r} is already registered")
    REGISTRY[op.name] = op
    return op


def defop(name: str, forward: Callable[..., Any], **kw: Any) -> Op:
    """Create and register an op record."""
    return register(Op(name, forward, **kw))


def compute_dtype(args: Sequence[Any]) -> dt.dtype:
    """PyTorch promotion over tensors/avals and Python scalars."""
    dims: list[dt.dtype] = []
    zero: list[dt.dtype] = []
    scalars: list[Any] = []
    for a in args:
        if isinstance(a, (Tensor, AVal)):
            (dims if a.ndim else zero).append(a.dtype)
        elif a is not None:
            scalars.append(a)
    return dt.result_type(dims, zero, scalars)


def apply(op: Op, *args: Any, **attrs: Any) -> Tensor:
    """Run ``op`` eagerly on Tensors / Python scalars and record it on the tape."""
    first = args[0]
    if type(first) is not _TENSOR and not isinstance(first, _TENSOR):
        first = None
        for a in args:
            if isinstance(a, _TENSOR):
                first = a
                break
        if first is None:
            raise TypeError(f"{op.name}: expected at least one Tensor argument")
    if _trace_hook is not None:  # ember.compile is tracing: a graph node, not a computation
        t = _trace_hook(op, args, attrs, first)
        out = t._data
    else:
        backend = first._backend
        if len(args) == 2 and op.fast_pair:
            a, b = args
            a = a._data if isinstance(a, _TENSOR) else a
            b = b._data if isinstance(b, _TENSOR) else b
            ta, tb = type(a) is _NDARRAY, type(b) is _NDARRAY
            # The hottest cases inline (compute would not cast them): two arrays of one
            # dtype that the op computes in, or a float array and a Python number.
            if (
                (ta and tb and a.dtype is b.dtype and (op.kind != "float" or a.dtype.kind == "f"))
                or (ta and type(b) in _FAST_SCALARS and a.dtype.kind == "f")
                or (tb and type(a) in _FAST_SCALARS and b.dtype.kind == "f")
            ):
                try:
                    out = op.forward(backend.xp, a, b, **attrs)
                except (ValueError, TypeError, IndexError) as e:
                    raise _explain(op, args, attrs, e) from None
                if type(out) is not _NDARRAY and not isinstance(out, backend.array_type):
                    out = backend.xp.asarray(out)
            else:
                if _symbolic_hook is not None:  # a placeholder exists: is an operand symbolic?
                    sym = _symbolic_hook(op, args, attrs)
                    if sym is not None:
                        return sym
                out = compute(op, backend, (a, b), attrs)
        else:
            if _symbolic_hook is not None:  # a placeholder exists: is an operand symbolic?
                sym = _symbolic_hook(op, args, attrs)
                if sym is not None:
                    return sym
            out = compute(
                op, backend, [a._data if isinstance(a, _TENSOR) else a for a in args], attrs
            )
        # An op's output normally stays on its inputs' backend; a transfer's does not.
        t = Tensor._wrap(out, None, False, backend if type(out) is backend.array_type else None)
    if op.view:
        share_version(t, first)
    vjp = op.vjp
    if vjp is None or not _grad_mode.enabled:
        return t
    needed = False
    edges: list[Any] = []
    for a in args if op.variadic else args[: len(vjp)]:
        if isinstance(a, _TENSOR) and a._requires_grad:
            needed = True
            edges.append(a._node if a._node is not None else a)
        else:
            edges.append(None)
    if not needed or out.dtype.kind not in _GRAD_KINDS:
        return t
    t._requires_grad = True
    if not op.save_inputs:
        inputs = _avals(args)
        versions = None
    elif op.needs is None:
        inputs = args
        versions = tuple(a._version[0] if isinstance(a, _TENSOR) else 0 for a in args)
    else:
        keep: frozenset[int] = frozenset()
        for i, edge in enumerate(edges):
            if edge is not None:
                keep = keep | op.needs[i]
        inputs, versions = _keep(args, keep)
    t._node = Node(
        op,
        attrs,
        inputs,
        tuple(edges),
        out if op.save_output else None,
        t._version if op.save_output else None,
        versions,
    )
    return t


_GRAD_KINDS = "fcV"  # float, complex, and ml_dtypes' bfloat16
_FAST_SCALARS = (float, int)


def _wrap_int(value: int, np_dtype: Any) -> Any:
    """A Python int in the integer dtype, wrapping around like PyTorch's integer arithmetic."""
    info = np.iinfo(np_dtype)
    if info.min <= value <= info.max:
        return value
    return np.asarray(value % (1 << 64), dtype=np.uint64).astype(np_dtype)


def share_version(view: Tensor, base: Tensor) -> None:
    """Make ``view`` share ``base``'s version counter and mark the memory as aliased."""
    view._version = base._version
    base._version[1] = 1


def compute(op: Op, backend: Any, operands: Sequence[Any], attrs: dict[str, Any]) -> Any:
    """The array computation of one op application, without the tape.

    ``operands`` are backend arrays and Python scalars: they are cast to the
    dtype the op computes in, the forward runs, and the result gets the dtype
    the op promises. Eager :func:`apply` and code generated by ``ember.compile``
    both run ops through here, so they cannot differ in promotion.
    """
    want = None
    if op.passthrough:
        arrays = operands
    elif len(operands) == 2 and op.fast_pair:
        arrays, want = _cast_pair(op, operands[0], operands[1])
    else:
        arrays, want = _cast_operands(op, operands)
    try:
        out = op.forward(backend.xp, *arrays, **attrs)
    except (ValueError, TypeError, IndexError) as e:
        raise _explain(op, operands, attrs, e) from None
    if type(out) is not _NDARRAY and not isinstance(out, backend.array_type):
        out = backend.xp.asarray(out)
    if want is not None and op.kind != "bool" and out.dtype != want:
        out = out.astype(want)
    return out


def _is_array(a: Any) -> bool:
    return isinstance(a, _NDARRAY) or type(a) in _ARRAY_TYPES


def _cast_pair(op: Op, a: Any, b: Any) -> tuple[Sequence[Any], Any]:
    """Fast path of :func:`_cast_operands` for the common binary cases."""
    ta, tb = type(a) is _NDARRAY, type(b) is _NDARRAY
    if ta and tb:
        da, db = a.dtype, b.dtype
        if (da is db or da == db) and (op.kind != "float" or da.kind == "f"):
            return (a, b), None
    elif ta and type(b) in _FAST_SCALARS:
        if a.dtype.kind == "f":
            return (a, b), None
    elif tb and type(a) in _FAST_SCALARS and b.dtype.kind == "f":
        return (a, b), None
    return _cast_operands(op, (a, b))


def _keep(args: Sequence[Any], keep: frozenset[int]) -> tuple[tuple[Any, ...], tuple[int, ...]]:
    """Inputs with those not in ``keep`` reduced to AVals, and the kept ones' versions."""
    inputs, versions = [], []
    for i, a in enumerate(args):
        if isinstance(a, _TENSOR):
            if i in keep:
                inputs.append(a)
                versions.append(a._version[0])
                continue
            d = a._data
            a = AVal(d.shape, _dtype_of(d.dtype))
        inputs.append(a)
        versions.append(0)
    return tuple(inputs), tuple(versions)


def _avals(args: Sequence[Any]) -> tuple[Any, ...]:
    """Tensors and backend arrays as AVals; anything else as it is."""
    out = []
    for a in args:
        if isinstance(a, _TENSOR):
            d = a._data
            out.append(AVal(d.shape, _dtype_of(d.dtype)))
        elif _is_array(a):
            out.append(AVal(a.shape, _dtype_of(a.dtype)))
        else:
            out.append(a)
    return tuple(out)


_dtype_of = dt.from_numpy_dtype


def _operand_dtype(operands: Sequence[Any]) -> dt.dtype:
    """:func:`compute_dtype` for backend arrays and Python scalars."""
    dims: list[dt.dtype] = []
    zero: list[dt.dtype] = []
    scalars: list[Any] = []
    for a in operands:
        if _is_array(a):
            (dims if a.ndim else zero).append(_dtype_of(a.dtype))
        elif a is not None:
            scalars.append(a)
    return dt.result_type(dims, zero, scalars)


def _cast_operands(op: Op, operands: Sequence[Any]) -> tuple[list[Any], Any]:
    """The operands cast to the dtype the op computes in, and that dtype."""
    arrays: list[Any] = []
    target = None
    mixed = False
    start = op.promote_from
    for a in operands[start:]:
        if _is_array(a):
            d = a.dtype
            if target is None:
                target = d
            elif d != target:
                mixed = True
        elif a is not None:
            mixed = True  # a Python scalar: may change the category
    if mixed or target is None:
        want = _operand_dtype(operands[start:])
    else:
        want = dt.from_numpy_dtype(target)
    if op.kind == "float" and want.category != dt.FLOAT:
        want = dt.get_default_dtype()
    np_want = want.np
    for i, a in enumerate(operands):
        if _is_array(a):
            if i >= start and a.dtype != np_want:
                a = a.astype(np_want)
            arrays.append(a)
        elif isinstance(a, np.generic):  # a NumPy scalar acts as the Python scalar it holds
            arrays.append(a.item())
        elif type(a) is int and np_want.kind in "iu":
            arrays.append(_wrap_int(a, np_want))
        else:
            arrays.append(a)
    return arrays, np_want


# --------------------------------------------------------------------- errors
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def user_frame() -> str:
    """``file:line: source`` of the innermost caller outside ember, for error messages."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG_DIR):
        f = f.f_back  # type: ignore[assignment]
    if f is None:
        return "<unknown>"
    import linecache

    line = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
    where = f"{f.f_code.co_filename}:{f.f_lineno}"
    return f"{where}: {line}" if line else where


def describe(args: Sequence[Any]) -> str:
    parts = []
    for a in _avals(args):
        if isinstance(a, (Tensor, AVal)):
            parts.append(f"{a.dtype.name}{list(a.shape)}")
        elif a is not None:
            parts.append(repr(a) if not isinstance(a, np.ndarray) else f"array{list(a.shape)}")
    return ", ".join(parts)


def op_error(op_name: str, args: Sequence[Any], problem: str, cls: type = ShapeError) -> Exception:
    """An error naming the op, every operand's shape and dtype and the user's line."""
    return cls(f"{op_name}({describe(args)}): {problem}\n  at {user_frame()}")


def _explain(op: Op, args: Sequence[Any], attrs: dict[str, Any], err: Exception) -> Exception:
    try:
        op.infer(*_avals(args), **attrs)
    except (ShapeError, DTypeError) as e:
        return e
    except Exception:  # the shape rule itself could not judge: report the backend's error
        pass
    cls = type(err) if type(err) in (ValueError, TypeError, IndexError) else ValueError
    detail = f"; attributes {attrs}" if attrs else ""
    return op_error(op.name, args, f"{err}{detail}", cls)
