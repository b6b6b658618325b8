"""The compiler's IR: symbolic values, graph nodes, and the graph's printer.

A :class:`Var` stands in for a backend array while ``ember.compile`` traces:
it has the attributes the core reads without touching data (``shape``,
``dtype`` as a NumPy dtype, ``ndim``, ``size``), so a Tensor whose ``_data`` is
a Var flows through ``apply`` and the tape unchanged. Reading its values
(``item``, ``numpy``, ``bool``, ``float``, ``tolist``, ``__index__``) raises
:class:`TracerError` naming the user's line.

A :class:`Graph` is SSA: inputs (the call's tensors, then the captured
tensors), one :class:`Node` ``(op, args, attrs) -> Var`` per op application,
and outputs. Non-tensor operands are :class:`Const`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember._src.core.backend import _BY_ARRAY_TYPE, CPU
from ember._src.ops.registry import _PKG_DIR, Op, TracerError, user_frame


class _Flags:
    """What the core asks of ``array.flags``: a Var is treated as fresh, writeable memory."""

    writeable = True
    c_contiguous = True


class StandIn:
    """What the core reads of an array without its data: ``shape``, ``dtype``, ``ndim``,
    ``size``, ``itemsize``, ``flags``. The base of :class:`Var` and of the symbolic API's
    ``Symbol``; subclasses set ``shape``, ``dtype`` and ``name``."""

    __slots__ = ()

    shape: tuple[Any, ...]
    dtype: np.dtype[Any]
    name: str
    flags = _Flags()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def type(self) -> str:
        """``float64[4, 3]``."""
        return f"{self.dtype.name}{list(self.shape)}"


class Var(StandIn):
    """A symbolic array: shape and NumPy dtype, no data."""

    __slots__ = ("dtype", "name", "shape")

    base = None  # fresh memory: never a view of another array

    def __init__(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self.name = name
        self.shape = shape
        self.dtype = dtype

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise data_access_error()

    def __float__(self) -> float:
        raise data_access_error()

    def __int__(self) -> int:
        raise data_access_error()

    def __index__(self) -> int:
        raise data_access_error()

    def __repr__(self) -> str:
        return f"<Var {self.name}: {self.type}>"


# Tensors made around a Var without a backend (detach, the backward engine) are on the CPU;
# tracing runs on the CPU backend only for now.
_BY_ARRAY_TYPE[Var] = CPU


class Const:
    """A non-tensor operand: a Python scalar, None, or what the op was given."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return _show(self.value)


class Node:
    """One op application: ``out = op(*args, **attrs)``."""

    __slots__ = ("args", "attrs", "op", "out")

    def __init__(self, op: Op, args: Sequence[Var | Const], attrs: dict[str, Any], out: Var):
        self.op = op
        self.args = tuple(args)
        self.attrs = attrs
        self.out = out

    def __str__(self) -> str:
        parts = [a.name if isinstance(a, Var) else _show(a.value) for a in self.args]
        parts += [f"{k}={_show(v)}" for k, v in self.attrs.items()]
        return f"{self.out.name}: {self.out.type} = {self.op.name}({', '.join(parts)})"


class Graph:
    """A traced function: inputs, straight-line nodes, outputs.

    ``inputs`` are the call's tensors in order; ``captures`` the tensors from
    outside the function (parameters, constants) that the runner reads from
    their Tensor objects on every call.
    """

    def __init__(self, name: str = "fn") -> None:
        self.name = name
        self.inputs: list[Var] = []
        self.captures: list[Var] = []
        self.nodes: list[Node] = []
        self.outputs: list[Var] = []
        self._count = 0

    def var(self, prefix: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Var:
        v = Var(f"{prefix}{self._count}", shape, dtype)
        self._count += 1
        return v

    def add_input(self, shape: tuple[int, ...], dtype: np.dtype[Any], captured: bool) -> Var:
        v = self.var("c" if captured else "x", shape, dtype)
        (self.captures if captured else self.inputs).append(v)
        return v

    def add(
        self,
        op: Op,
        args: Sequence[Var | Const],
        attrs: dict[str, Any],
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
    ) -> Var:
        out = self.var("v", shape, dtype)
        self.nodes.append(Node(op, args, attrs, out))
        return out

    def __str__(self) -> str:
        ins = ", ".join(f"{v.name}: {v.type}" for v in self.inputs)
        lines = [f"graph {self.name}({ins})"]
        if self.captures:
            lines.append("  captured: " + ", ".join(f"{v.name}: {v.type}" for v in self.captures))
        lines += [f"  {n}" for n in self.nodes]
        lines.append("  return " + ", ".join(v.name for v in self.outputs))
        return "\n".join(lines)

    __repr__ = __str__


def _show(v: Any) -> str:
    """An attribute or constant as the printer shows it (arrays by type, not values)."""
    if isinstance(v, np.ndarray):
        return f"array<{v.dtype.name}{list(v.shape)}>"
    if isinstance(v, tuple):
        inner = ", ".join(_show(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, Var):
        return v.name
    return repr(v)


_WHAT = {
    "item": "Tensor.item()",
    "tolist": "Tensor.tolist()",
    "numpy": "Tensor.numpy()",
    "__bool__": "bool(tensor) (an `if` or `while` on a tensor)",
    "__float__": "float(tensor)",
    "__int__": "int(tensor)",
    "__index__": "using a tensor as a Python int (__index__)",
    "__array__": "converting a tensor to a NumPy array",
    "__repr__": "printing a tensor",
    "__iter__": "iterating over a tensor",
}


def data_access_error() -> TracerError:
    """The error for traced code that reads a tensor's values: what did it, where, the fix."""
    what = "reading a tensor's values"
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        what = _WHAT.get(f.f_code.co_name, what)  # the outermost ember frame names the access
        f = f.f_back  # type: ignore[assignment]
    return TracerError(
        f"{what} needs the tensor's value, which ember.compile does not have while it traces "
        f"(it traces with shapes and dtypes only)\n  at {user_frame()}\n"
        "  fix: keep value-dependent Python (an `if` on a tensor, .item(), printing values) "
        "outside the compiled function, or express it with tensor ops such as "
        "ember.where(condition, a, b), or ember.cond(pred, true_fn, false_fn, *operands) "
        "for a branch"
    )
