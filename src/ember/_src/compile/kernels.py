"""Direct NumPy calls for the nodes that need no dtype handling, optionally with ``out=``.

``registry.compute`` casts operands, runs the op's forward and fixes the result
dtype; for most nodes of a float training step none of that is needed (every
array operand already has the result's dtype). Such a node is emitted as the
ufunc call itself (``np.add(v2, v3, out=s0)``), which skips ~1 us of dispatch
per node and, given a buffer by the memory plan, allocates nothing. The
emitted calls are the ones the ops' forwards make, so the values are
bitwise those of eager execution.

:func:`kernel_for` says whether a node has a direct form; CUDA and other
backends keep ``compute`` for every node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ember._src.core.backend import get_backend

from .graph import Const, Node, Var
from .passes import accumulate, registered, scatter_sum_op, vars_in

Bind = Callable[[str, Any], str]  # (prefix, value) -> a name in the generated code's namespace
Emit = Callable[[Node, list[str], "str | None", Bind], list[str]]


class Kernel(NamedTuple):
    """How to emit one node as NumPy calls.

    ``emit(node, operands, out, bind)`` returns statements that assign
    ``node.out.name``, writing into the buffer named ``out`` when it is given.
    ``inplace``: the buffer may be one of the operands (ufuncs read each
    element before writing it; NumPy copies when operands overlap otherwise).
    """

    emit: Emit
    inplace: bool


def _out(out: str | None) -> str:
    return f", out={out}" if out else ""


def _ufunc(name: str) -> Emit:
    def emit(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
        return [f"{node.out.name} = np.{name}({', '.join(ops)}{_out(out)})"]

    return emit


def _typed(value: float, dtype: np.dtype[Any], bind: Bind) -> str:
    return bind("k", dtype.type(value))


def _relu(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    zero = _typed(0, node.out.dtype, bind)
    return [f"{node.out.name} = np.maximum({ops[0]}, {zero}{_out(out)})"]


def _sigmoid(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    # The forward's multiply(tanh(a * 0.5) + 1, 0.5), through one buffer.
    v, half = node.out.name, _typed(0.5, node.out.dtype, bind)
    return [
        f"{v} = np.multiply({ops[0]}, {half}{_out(out)})",
        f"np.tanh({v}, out={v})",
        f"np.add({v}, 1, out={v})",
        f"np.multiply({v}, {half}, out={v})",
    ]


def _pow(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    b = node.args[1]
    if type(b) is Const and b.value == 2:  # the forward's fast paths
        return [f"{node.out.name} = np.square({ops[0]}{_out(out)})"]
    if type(b) is Const and b.value == 0.5:
        return [f"{node.out.name} = np.sqrt({ops[0]}{_out(out)})"]
    return [f"{node.out.name} = np.power({ops[0]}, {ops[1]}{_out(out)})"]


def _reciprocal(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    return [f"{node.out.name} = np.true_divide(1, {ops[0]}{_out(out)})"]


def _sum(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    dim, keep = node.attrs.get("dim"), bool(node.attrs.get("keepdim", False))
    axis = bind("axis", dim) if dim is not None else "None"
    return [f"{node.out.name} = np.sum({ops[0]}, axis={axis}, keepdims={keep}{_out(out)})"]


def _cast(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    if out is None:
        return [f"{node.out.name} = {ops[0]}.astype({bind('dtype', node.out.dtype)})"]
    return [f"np.copyto({out}, {ops[0]}, casting='unsafe')", f"{node.out.name} = {out}"]


def _clone(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    if out is None:
        return [f"{node.out.name} = {ops[0]}.copy()"]
    return [f"np.copyto({out}, {ops[0]})", f"{node.out.name} = {out}"]


def scatter_into(
    out: Any, shape: tuple[int, ...], base: Any, grads: tuple[Any, ...], indices: tuple[Any, ...]
) -> Any:
    """``scatter_sum`` into ``out`` (a new array when None)."""
    if out is None:
        out = np.zeros(shape, grads[0].dtype) if base is None else base.copy()
    elif base is None:
        out[...] = 0
    else:
        np.copyto(out, base)
    for g, index in zip(grads, indices):
        accumulate(out, g, index)
    return out


def matmul_into(out: Any, a: Any, b: Any) -> Any:
    """The matmul op's forward (one GEMM over the flattened rows of a C-contiguous
    ``(..., k) @ (k, n)``), writing into ``out`` unless it is None."""
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
        rows = a.reshape(-1, a.shape[-1])
        if out is None:
            return np.matmul(rows, b).reshape(*a.shape[:-1], b.shape[-1])
        np.matmul(rows, b, out=out.reshape(-1, b.shape[-1]))
        return out
    return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)


def _matmul(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    if node.args[0].ndim == 2 == node.args[1].ndim:  # type: ignore[union-attr]
        return [f"{node.out.name} = np.matmul({ops[0]}, {ops[1]}{_out(out)})"]
    return [f"{node.out.name} = {bind('matmul', matmul_into)}({out}, {ops[0]}, {ops[1]})"]


def _conv(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    # The CPU kernel itself, writing into the planned buffer (``into``) when there is one.
    fn = bind(node.op.name, get_backend("cpu").kernel(node.op.name))
    attrs = bind("attrs", node.attrs)
    return [f"{node.out.name} = {fn}({ops[0]}, {ops[1]}, into={out}, **{attrs})"]


def _scatter_sum(node: Node, ops: list[str], out: str | None, bind: Bind) -> list[str]:
    indices = node.attrs["indices"]
    idx = bind("indices", indices)
    held = list(vars_in(indices))
    if held:  # integer index tensors computed in the graph: filled in per call
        env = ", ".join(f"{v.name!r}: {v.name}" for v in held)
        idx = f"fill({idx}, {{{env}}})"
    base, grads = (ops[0], ops[1:]) if node.attrs["base"] else ("None", ops)
    call = f"{bind('scatter', scatter_into)}({out}, {bind('shape', node.out.shape)}, {base}"
    return [f"{node.out.name} = {call}, ({', '.join(grads)},), {idx})"]


_UFUNCS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "div": "true_divide",
    "maximum": "maximum", "minimum": "minimum", "atan2": "arctan2",
    "neg": "negative", "abs": "absolute", "exp": "exp", "log": "log", "log1p": "log1p",
    "expm1": "expm1", "sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan",
    "tanh": "tanh", "floor": "floor", "ceil": "ceil", "trunc": "trunc",
}  # fmt: skip
_COMPARE = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
            "gt": "greater", "ge": "greater_equal"}  # fmt: skip

ELEMENTWISE: dict[str, Kernel] = {name: Kernel(_ufunc(f), True) for name, f in _UFUNCS.items()}
ELEMENTWISE.update({name: Kernel(_ufunc(f), True) for name, f in _COMPARE.items()})
ELEMENTWISE.update(
    relu=Kernel(_relu, True),
    sigmoid=Kernel(_sigmoid, True),
    pow=Kernel(_pow, True),
    reciprocal=Kernel(_reciprocal, True),
)
_OTHER: dict[str, Kernel] = {
    "matmul": Kernel(_matmul, False),
    "sum": Kernel(_sum, False),
    "cast": Kernel(_cast, False),
    "clone": Kernel(_clone, True),
    "scatter_sum": Kernel(_scatter_sum, False),  # never over an operand: it zeroes first
    "conv": Kernel(_conv, False),
    "conv_transpose": Kernel(_conv, False),
    "conv_weight": Kernel(_conv, False),
}

# Ops known to return a new array (not a view of an operand) from ``compute``.
FRESH = frozenset(ELEMENTWISE) | frozenset(_OTHER) | frozenset({
    "sign", "round", "erf", "isnan", "isinf", "isfinite", "logical_not", "floor_divide",
    "remainder", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
    "bitwise_xor", "clamp", "where", "prod", "amax", "amin", "argmax", "argmin", "all",
    "any", "cumsum", "cumprod", "conv", "conv_transpose", "conv_weight", "max_pool",
    "max_pool_indices", "adaptive_max_pool_indices", "spatial_gather", "spatial_scatter_add",
    "sum_pool", "sum_pool_transpose", "index_scatter", "index_put", "cat", "pad_constant",
    "gather", "scatter_add", "scatter", "argsort",
})  # fmt: skip


def _float(d: np.dtype[Any]) -> bool:
    return d.kind == "f"


def _array(a: Var | Const) -> Any:
    """The operand's dtype if it is an array (a Var or an array constant), else None."""
    if type(a) is Var:
        return a.dtype
    v = a.value  # type: ignore[union-attr]
    return v.dtype if isinstance(v, np.ndarray) else None


def known(node: Node) -> bool:
    """Whether ``node``'s op is the registry's op of its name (or ``scatter_sum``): the
    tables here describe those, not an unrelated op that happens to share a name."""
    return registered(node) or node.op is scatter_sum_op


def fresh(node: Node) -> bool:
    """Whether ``node`` returns a new array, never a view of an operand."""
    return node.op.name in FRESH and known(node)


def kernel_for(node: Node) -> Kernel | None:
    """The direct form of ``node``, or None when it needs ``compute`` (casts, other ops)."""
    name, out = node.op.name, node.out.dtype
    if not known(node):
        return None
    if name == "scatter_sum":
        ok = _float(out) and all(type(a) is Var and a.dtype == out for a in node.args)
        return _OTHER[name] if ok else None
    if name in ("cast", "clone"):
        a = node.args[0]
        ok = type(a) is Var and a.dtype.kind in "biuf" and out.kind in "biuf"
        return _OTHER[name] if ok else None
    k = ELEMENTWISE.get(name)
    if k is None:
        k = _OTHER.get(name)
        if k is None or not _float(out):
            return None
        a = node.args[0]
        if type(a) is not Var or a.dtype != out:
            return None
        if name == "matmul" or name.startswith("conv"):
            b = node.args[1]
            ok = type(b) is Var and b.dtype == out and a.ndim >= 2 and b.ndim >= 2
            return k if ok else None
        return k
    # Elementwise: every array operand has the computing dtype (float), so nothing is cast.
    want = None if name in _COMPARE else out
    if want is not None and not _float(want):
        return None
    arrays = 0
    for a in node.args:
        d = _array(a)
        if d is not None:
            if want is None:
                want = d
            if d != want or not _float(d):
                return None
            arrays += 1
        elif type(a.value) not in (int, float):  # type: ignore[union-attr]
            return None  # bools, None, NumPy scalars: compute decides their promotion
    return k if arrays else None
