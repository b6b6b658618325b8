"""Lowering rules: one ember primitive -> ONNX nodes (the exporter's table).

Each rule ``rule(ctx, node, attrs) -> name`` reads a traced graph node (its
operands are ONNX value names via ``ctx``) and appends ONNX nodes with
``ctx.emit``; it returns the name of the value standing for ``node.out``.
``attrs`` are the node's attributes with sizes that follow a dynamic axis
replaced by :class:`Dim` (only the rules in ``SYMBOLIC_ATTRS`` accept those).

Dtypes: ember promotes mixed operands (PyTorch rules) inside each op while
ONNX wants operands of one type, so rules cast operands explicitly to the
dtype the op computes in. Primitives that have no lowering are listed in
``NOT_EXPORTABLE`` with the reason, and export fails naming them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ember._src.compile.graph import Const, Node, Var
from ember._src.core import dtype as dt
from ember._src.core.aval import AVal
from ember._src.ops.registry import compute_dtype

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


class OnnxExportError(ValueError):
    """A traced function that cannot be written as ONNX (the message names the op and why)."""


class Dim:
    """A size that follows a dynamic axis: ``a * symbol + c``."""

    __slots__ = ("a", "c", "symbol")

    def __init__(self, symbol: str, a: int, c: int) -> None:
        self.symbol, self.a, self.c = symbol, a, c

    def __repr__(self) -> str:
        s = self.symbol if self.a == 1 else f"{self.a}*{self.symbol}"
        return s if self.c == 0 else f"{s}{self.c:+d}"


Size = int | Dim


class Context:
    """What rules build with: the ONNX nodes and initializers so far, value names, helpers."""

    def __init__(self, onnx: Any, shapes: dict[int, tuple[Size, ...]]) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: dict[int, str] = {}  # id(Var) -> ONNX value name
        self.shapes = shapes  # id(Var) -> shape with Dims
        self.sources: dict[str, tuple[str, int]] = {}  # symbol -> (input name, axis)
        self._consts: dict[tuple[Any, ...], str] = {}
        self._count = 0
        self.node_name = "node"

    # ------------------------------------------------------------ names and nodes
    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def emit(self, op_type: str, inputs: Sequence[str], **attrs: Any) -> str:
        """Append one ONNX node; returns its output's name."""
        return self.emit_n(op_type, inputs, 1, **attrs)[0]

    def emit_n(self, op_type: str, inputs: Sequence[str], n_out: int, **attrs: Any) -> list[str]:
        """Append one ONNX node with ``n_out`` outputs; returns their names."""
        outs = [self.fresh(f"{self.node_name}/{op_type}") for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        name = self.fresh(f"{self.node_name}/{op_type}")
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs

    def name(self, v: Var) -> str:
        return self.names[id(v)]

    def shape(self, v: Var) -> tuple[Size, ...]:
        return self.shapes.get(id(v), v.shape)

    def const(self, value: Any, dtype: Any = None) -> str:
        """An initializer holding ``value`` (deduplicated by bytes)."""
        a = np.asarray(value, dtype=dtype)
        key = (a.dtype.str, a.shape, a.tobytes())
        hit = self._consts.get(key)
        if hit is None:
            hit = self.fresh("const")
            self.initializers.append(self.onnx.numpy_helper.from_array(a, hit))
            self._consts[key] = hit
        return hit

    def ints(self, values: Sequence[int]) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(len(values)))

    # ------------------------------------------------------------ dtypes
    def cast(self, name: str, have: np.dtype[Any], want: np.dtype[Any]) -> str:
        if np.dtype(have) == np.dtype(want):
            return name
        return self.emit("Cast", [name], to=tensor_type(self.onnx, want))

    def operand(self, arg: Var | Const, want: np.dtype[Any]) -> str:
        """An operand as an ONNX value of dtype ``want`` (a Python scalar becomes a constant)."""
        if isinstance(arg, Var):
            return self.cast(self.name(arg), arg.dtype, want)
        value = arg.value
        if isinstance(value, Dim):
            return self.cast(self.scalar_dim(value), np.dtype(np.int64), want)
        return self.const(np.asarray(value).astype(want))

    # ------------------------------------------------------------ sizes
    def scalar_dim(self, d: Dim) -> str:
        """A 0-d int64 value holding ``d`` at run time."""
        return self.emit("Squeeze", [self.dim(d), self.ints([0])])

    def dim(self, d: Size) -> str:
        """A 1-element int64 value holding size ``d`` (read from an input's shape if dynamic)."""
        if not isinstance(d, Dim):
            return self.ints([d])
        if d.symbol not in self.sources:
            raise OnnxExportError(
                "a size that depends on the dynamic axes other than as a * axis + c (a product "
                "of two dynamic axes, or a strided window over one) is needed here"
            )
        src, axis = self.sources[d.symbol]
        out = self.emit("Shape", [src], start=axis, end=axis + 1)
        if d.a != 1:
            out = self.emit("Mul", [out, self.ints([d.a])])
        if d.c != 0:
            out = self.emit("Add", [out, self.ints([d.c])])
        return out

    def shape_value(self, dims: Sequence[Size]) -> str:
        """A 1-D int64 value holding a shape, constant unless some size is dynamic."""
        if not any(isinstance(d, Dim) for d in dims):
            return self.ints([int(d) for d in dims if not isinstance(d, Dim)])
        parts: list[str] = []
        run: list[int] = []
        for d in dims:
            if isinstance(d, Dim):
                if run:
                    parts.append(self.ints(run))
                    run = []
                parts.append(self.dim(d))
            else:
                run.append(int(d))
        if run:
            parts.append(self.ints(run))
        return parts[0] if len(parts) == 1 else self.emit("Concat", parts, axis=0)

    def zeros(self, shape: str, dtype: np.dtype[Any]) -> str:
        """Zeros of a run-time shape (ConstantOfShape: onnxruntime's Expand mishandles 0 sizes)."""
        value = self.onnx.numpy_helper.from_array(np.zeros(1, dtype), "value")
        return self.emit("ConstantOfShape", [shape], value=value)

    def reshape(self, name: str, dims: Sequence[Size]) -> str:
        return self.emit("Reshape", [name, self.shape_value(dims)])


def tensor_type(onnx: Any, dtype: Any) -> int:
    return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


Rule = Callable[[Context, Node, dict[str, Any]], str]
RULES: dict[str, Rule] = {}
SYMBOLIC_ATTRS = {"reshape", "broadcast_to", "getitem", "index_put", "index_scatter"}

# Primitives with no lowering, and why (export raises naming the op and this reason).
NOT_EXPORTABLE: dict[str, str] = {
    "conv_weight": "it is the weight gradient of a convolution (a backward-only primitive)",
    "sum_pool_transpose": "it is the gradient of average pooling (a backward-only primitive)",
    "spatial_scatter_add": "it is the gradient of max pooling (a backward-only primitive)",
    "random": "it draws random numbers inside the model (dropout in training mode, ember.rand); "
    "export in eval mode, or pass the noise in as an input",
}


def rule(*names: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for n in names:
            RULES[n] = fn
        return fn

    return register


def _aval(a: Var | Const) -> Any:
    if isinstance(a, Var):
        return AVal(a.shape, dt.from_numpy_dtype(a.dtype))
    return a.value if not isinstance(a.value, Dim) else 1


def compute_np(args: Sequence[Var | Const]) -> np.dtype[Any]:
    """The dtype ember computes ``args`` in (PyTorch promotion)."""
    return np.dtype(compute_dtype([_aval(a) for a in args]).np)


# ================================================================= elementwise
_UNARY = {
    "neg": "Neg",
    "abs": "Abs",
    "sign": "Sign",
    "exp": "Exp",
    "log": "Log",
    "sqrt": "Sqrt",
    "sin": "Sin",
    "cos": "Cos",
    "tan": "Tan",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "relu": "Relu",
    "erf": "Erf",
    "reciprocal": "Reciprocal",
    "floor": "Floor",
    "ceil": "Ceil",
    "round": "Round",
}


def _unary(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    x = ctx.operand(node.args[0], node.out.dtype)
    kind = node.out.dtype.kind
    name = node.op.name
    if name in ("floor", "ceil", "round") and kind in "iub":
        return x  # integers are already whole
    if name == "relu" and kind == "b":
        return x
    if name == "abs" and kind in "ub":
        return x
    if name == "neg" and kind in "u":
        return ctx.emit("Sub", [ctx.const(np.zeros((), node.out.dtype)), x])
    return ctx.emit(_UNARY[name], [x])


for _n in _UNARY:
    RULES[_n] = _unary


@rule("log1p", "expm1")
def _log1p_expm1(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    x = ctx.operand(node.args[0], node.out.dtype)
    one = ctx.const(np.ones((), node.out.dtype))
    if node.op.name == "log1p":
        return ctx.emit("Log", [ctx.emit("Add", [x, one])])
    return ctx.emit("Sub", [ctx.emit("Exp", [x]), one])


@rule("trunc")
def _trunc(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    x = ctx.operand(node.args[0], node.out.dtype)
    if node.out.dtype.kind != "f":
        return x
    whole = ctx.emit("Floor", [ctx.emit("Abs", [x])])
    return ctx.emit("Mul", [ctx.emit("Sign", [x]), whole])


@rule("isnan", "isinf", "isfinite")
def _float_class(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a = node.args[0]
    assert isinstance(a, Var)
    x = ctx.name(a)
    if a.dtype.kind != "f":  # integers are finite, never NaN or infinite
        fill = node.op.name == "isfinite"
        return ctx.emit("Expand", [ctx.const(np.asarray(fill)), ctx.emit("Shape", [x])])
    if node.op.name == "isnan":
        return ctx.emit("IsNaN", [x])
    if node.op.name == "isinf":
        return ctx.emit("IsInf", [x])
    bad = ctx.emit("Or", [ctx.emit("IsNaN", [x]), ctx.emit("IsInf", [x])])
    return ctx.emit("Not", [bad])


_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "maximum": "Max", "minimum": "Min"}
_COMPARE = {
    "eq": "Equal",
    "lt": "Less",
    "le": "LessOrEqual",
    "gt": "Greater",
    "ge": "GreaterOrEqual",
}
_LOGICAL = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}
_BITWISE = {"bitwise_and": "BitwiseAnd", "bitwise_or": "BitwiseOr", "bitwise_xor": "BitwiseXor"}


def _pair(ctx: Context, node: Node, want: np.dtype[Any]) -> tuple[str, str]:
    return ctx.operand(node.args[0], want), ctx.operand(node.args[1], want)


@rule(*_BINARY)
def _binary(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    a, b = _pair(ctx, node, want)
    if want.kind == "b":  # PyTorch's bool arithmetic: add/max is or, mul/min is and
        op = {"add": "Or", "maximum": "Or", "mul": "And", "minimum": "And"}.get(node.op.name)
        if op is None:
            raise OnnxExportError(f"{node.op.name} of bool tensors has no ONNX lowering")
        return ctx.emit(op, [a, b])
    return ctx.emit(_BINARY[node.op.name], [a, b])


@rule("div")
def _div(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    return ctx.emit("Div", list(_pair(ctx, node, node.out.dtype)))


def _python_mod(ctx: Context, a: str, b: str, dtype: np.dtype[Any]) -> str:
    """``a - floor(a / b) * b``: the remainder with the divisor's sign (Python's %)."""
    if dtype.kind in "iu":
        return ctx.emit("Mod", [a, b], fmod=0)
    q = ctx.emit("Floor", [ctx.emit("Div", [a, b])])
    return ctx.emit("Sub", [a, ctx.emit("Mul", [q, b])])


@rule("remainder")
def _remainder(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a, b = _pair(ctx, node, node.out.dtype)
    return _python_mod(ctx, a, b, node.out.dtype)


@rule("floor_divide")
def _floor_divide(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    a, b = _pair(ctx, node, want)
    if want.kind == "f":
        return ctx.emit("Floor", [ctx.emit("Div", [a, b])])
    # Integer Div truncates; subtracting the Python remainder first makes it exact flooring.
    return ctx.emit("Div", [ctx.emit("Sub", [a, _python_mod(ctx, a, b, want)]), b])


@rule("pow")
def _pow(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    return ctx.emit("Pow", list(_pair(ctx, node, node.out.dtype)))


@rule("atan2")
def _atan2(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    y, x = _pair(ctx, node, want)
    zero = ctx.const(np.zeros((), want))
    base = ctx.emit("Atan", [ctx.emit("Div", [y, x])])
    # x < 0: shift by pi toward y's sign (y = +0 counts as positive, as in atan2).
    pi = np.asarray(math.pi, want)
    sign = ctx.emit("Where", [ctx.emit("Less", [y, zero]), ctx.const(-pi), ctx.const(pi)])
    shifted = ctx.emit("Where", [ctx.emit("Less", [x, zero]), ctx.emit("Add", [base, sign]), base])
    both_zero = ctx.emit("And", [ctx.emit("Equal", [x, zero]), ctx.emit("Equal", [y, zero])])
    return ctx.emit("Where", [both_zero, zero, shifted])


@rule(*_COMPARE, "ne")
def _compare(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = compute_np(node.args)
    a, b = _pair(ctx, node, want)
    if want.kind == "b" and node.op.name not in ("eq", "ne"):  # compare bools as integers
        a, b = ctx.cast(a, want, np.dtype(np.int32)), ctx.cast(b, want, np.dtype(np.int32))
    if node.op.name == "ne":
        return ctx.emit("Not", [ctx.emit("Equal", [a, b])])
    return ctx.emit(_COMPARE[node.op.name], [a, b])


@rule(*_LOGICAL)
def _logical(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a, b = (_truth(ctx, arg) for arg in node.args)
    return ctx.emit(_LOGICAL[node.op.name], [a, b])


def _truth(ctx: Context, arg: Var | Const) -> str:
    """An operand as bool: nonzero is true."""
    if isinstance(arg, Const):
        return ctx.const(np.asarray(bool(arg.value)))
    if arg.dtype.kind == "b":
        return ctx.name(arg)
    return ctx.emit("Not", [ctx.emit("Equal", [ctx.name(arg), ctx.const(np.zeros((), arg.dtype))])])


@rule("logical_not")
def _logical_not(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    return ctx.emit("Not", [_truth(ctx, node.args[0])])


@rule(*_BITWISE)
def _bitwise(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    a, b = _pair(ctx, node, want)
    if want.kind == "b":
        op = {"bitwise_and": "And", "bitwise_or": "Or", "bitwise_xor": "Xor"}[node.op.name]
        return ctx.emit(op, [a, b])
    return ctx.emit(_BITWISE[node.op.name], [a, b])


@rule("clamp")
def _clamp(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    out = ctx.operand(node.args[0], want)
    bounds = list(node.args[1:]) + [Const(attrs.get(k)) for k in ("min", "max") if k in attrs]
    for bound, op in zip(bounds, ("Max", "Min")):
        if isinstance(bound, Const) and bound.value is None:
            continue
        out = ctx.emit(op, [out, ctx.operand(bound, want)])
    return out


@rule("where")
def _where(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    c = _truth(ctx, node.args[0])
    return ctx.emit("Where", [c, ctx.operand(node.args[1], want), ctx.operand(node.args[2], want)])


# ================================================================= reductions
def _axes(dim: Any, ndim: int) -> list[int] | None:
    if dim is None:
        return None
    dims = [dim] if isinstance(dim, int) else list(dim)
    return [d % ndim if ndim else 0 for d in dims]


def _reduce(ctx: Context, op_type: str, x: str, ndim: int, dim: Any, keepdim: bool) -> str:
    axes = _axes(dim, ndim)
    if ndim == 0:
        return ctx.emit("Identity", [x])
    inputs = [x] if axes is None else [x, ctx.ints(axes)]
    return ctx.emit(op_type, inputs, keepdims=int(bool(keepdim)))


_REDUCE = {"sum": "ReduceSum", "prod": "ReduceProd", "amax": "ReduceMax", "amin": "ReduceMin"}


@rule(*_REDUCE)
def _reduction(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a = node.args[0]
    assert isinstance(a, Var)
    want = node.out.dtype
    x = ctx.operand(a, want)
    dim, keepdim = attrs.get("dim"), bool(attrs.get("keepdim", False))
    if want.kind == "b" and node.op.name in ("amax", "amin"):  # max of bools is any, min all
        return _any_all(ctx, a, "any" if node.op.name == "amax" else "all", dim, keepdim)
    return _reduce(ctx, _REDUCE[node.op.name], x, a.ndim, dim, keepdim)


def _any_all(ctx: Context, a: Var, which: str, dim: Any, keepdim: bool) -> str:
    truth = _truth(ctx, a)
    if which == "all":
        truth = ctx.emit("Not", [truth])
    ones = ctx.cast(truth, np.dtype(bool), np.dtype(np.int64))
    count = _reduce(ctx, "ReduceSum", ones, a.ndim, dim, keepdim)
    out = ctx.emit("Greater", [count, ctx.const(np.zeros((), np.int64))])
    return ctx.emit("Not", [out]) if which == "all" else out


@rule("all", "any")
def _all_any(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a = node.args[0]
    assert isinstance(a, Var)
    out = _any_all(ctx, a, node.op.name, attrs.get("dim"), attrs.get("keepdim", False))
    return ctx.cast(out, np.dtype(bool), node.out.dtype)


@rule("argmax", "argmin")
def _arg(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a = node.args[0]
    assert isinstance(a, Var)
    x = ctx.name(a)
    if a.dtype.kind == "b":
        x = ctx.cast(x, a.dtype, np.dtype(np.int32))
    op_type = "ArgMax" if node.op.name == "argmax" else "ArgMin"
    dim, keepdim = attrs.get("dim"), bool(attrs.get("keepdim", False))
    if isinstance(dim, (tuple, list)):
        dim = dim[0] if dim else None
    if dim is None or a.ndim == 0:
        flat = ctx.reshape(x, [-1])
        out = ctx.emit(op_type, [flat], axis=0, keepdims=0)
        return ctx.reshape(out, list(ctx.shape(node.out)))
    return ctx.emit(op_type, [x], axis=int(dim) % a.ndim, keepdims=int(keepdim))


@rule("cumsum")
def _cumsum(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a = node.args[0]
    assert isinstance(a, Var)
    x = ctx.operand(a, node.out.dtype)
    if a.ndim == 0:
        return ctx.emit("Identity", [x])
    axis = ctx.const(np.asarray(int(attrs["dim"]) % a.ndim, np.int64))
    return ctx.emit("CumSum", [x, axis])


@rule("cumprod")
def _cumprod(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    # ONNX has no CumProd: out[..., i] = prod over j of (x[..., j] if j <= i else 1), with the
    # (n, n) lower-triangle mask built at run time, so the axis may be dynamic.
    a = node.args[0]
    assert isinstance(a, Var)
    want = node.out.dtype
    x = ctx.operand(a, want)
    if a.ndim == 0:
        return ctx.emit("Identity", [x])
    axis = int(attrs["dim"]) % a.ndim
    last = list(range(a.ndim))
    last.append(last.pop(axis))
    moved = ctx.emit("Transpose", [x], perm=last)
    n = ctx.emit("Squeeze", [ctx.emit("Shape", [x], start=axis, end=axis + 1), ctx.ints([0])])
    zero, one = ctx.const(np.asarray(0, np.int64)), ctx.const(np.asarray(1, np.int64))
    r = ctx.emit("Range", [zero, n, one])
    j, i = ctx.emit("Unsqueeze", [r, ctx.ints([0])]), ctx.emit("Unsqueeze", [r, ctx.ints([1])])
    mask = ctx.emit("LessOrEqual", [j, i])
    rows = ctx.emit("Unsqueeze", [moved, ctx.ints([-2])])
    terms = ctx.emit("Where", [mask, rows, ctx.const(np.ones((), want))])
    prod = ctx.emit("ReduceProd", [terms, ctx.ints([-1])], keepdims=0)
    return ctx.emit("Transpose", [prod], perm=[int(i) for i in np.argsort(last)])


# ================================================================= shape and indexing
@rule("clone", "contiguous", "to_device")
def _identity(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    return ctx.emit("Identity", [ctx.operand(node.args[0], node.out.dtype)])


@rule("cast")
def _cast(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a = node.args[0]
    assert isinstance(a, Var)
    x = ctx.name(a)
    out = ctx.cast(x, a.dtype, node.out.dtype)
    return out if out != x else ctx.emit("Identity", [x])


@rule("reshape")
def _reshape(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    x = ctx.operand(node.args[0], node.out.dtype)
    dims = list(attrs["shape"])
    dynamic = [i for i, d in enumerate(dims) if isinstance(d, Dim)]
    # allowzero: a 0 in the target is a size, not "copy the input's"
    zero = int(any(not isinstance(d, Dim) and d == 0 for d in dims))
    if len(dynamic) == 1 and not zero:  # let ONNX infer the one dynamic size
        dims[dynamic[0]] = -1
    return ctx.emit("Reshape", [x, ctx.shape_value(dims)], allowzero=zero or None)


@rule("permute")
def _permute(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    if not attrs["dims"]:
        return ctx.emit("Identity", [ctx.operand(node.args[0], node.out.dtype)])
    x = ctx.operand(node.args[0], node.out.dtype)
    return ctx.emit("Transpose", [x], perm=[int(d) for d in attrs["dims"]])


@rule("broadcast_to")
def _broadcast_to(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    x = ctx.operand(node.args[0], node.out.dtype)
    shape = list(attrs["shape"])
    if 0 in shape and not any(isinstance(d, Dim) for d in shape):
        return ctx.const(np.zeros(shape, node.out.dtype))  # onnxruntime's Expand ignores a 0 size
    return ctx.emit("Expand", [x, ctx.shape_value(shape)])


@rule("cat")
def _cat(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    ndim = len(node.out.shape)
    inputs = [ctx.operand(a, want) for a in node.args]
    return ctx.emit("Concat", inputs, axis=int(attrs["dim"]) % max(ndim, 1))


@rule("pad_constant")
def _pad(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    x = ctx.operand(node.args[0], want)
    widths = [tuple(w) for w in attrs["widths"]]
    pads = [w[0] for w in widths] + [w[1] for w in widths]
    value = ctx.const(np.asarray(attrs.get("value", 0)).astype(want))
    return ctx.emit("Pad", [x, ctx.ints(pads), value], mode="constant")


def _index_value(ctx: Context, v: Any) -> tuple[str, tuple[Size, ...]]:
    """An integer index (a graph Var or a constant array) as an int64 ONNX value and its shape."""
    if isinstance(v, Var):
        return ctx.cast(ctx.name(v), v.dtype, np.dtype(np.int64)), ctx.shape(v)
    a = np.asarray(v)
    if a.dtype.kind == "b":
        raise AssertionError("boolean masks are converted before")
    return ctx.const(a.astype(np.int64)), a.shape


def _expand_index(index: tuple[Any, ...], ndim: int) -> list[Any]:
    """The index with Ellipsis spelled out, constant bool masks as integer arrays."""
    out: list[Any] = []
    used = sum(
        (np.asarray(v).ndim if isinstance(v, np.ndarray) and v.dtype.kind == "b" else 1)
        for v in index
        if v is not None and v is not Ellipsis
    )
    for v in index:
        if v is Ellipsis:
            out += [slice(None)] * (ndim - used)
        elif isinstance(v, np.ndarray) and v.dtype.kind == "b":
            if v.ndim == 0:
                raise OnnxExportError("getitem: indexing with a 0-d boolean has no ONNX lowering")
            out += list(np.nonzero(v))
        else:
            out.append(v)
    if not any(v is Ellipsis for v in index):
        out += [slice(None)] * (ndim - used)
    return out


def _slice_bounds(s: slice, n: Size) -> tuple[Any, Any, int]:
    step = 1 if s.step is None else int(s.step)
    start = s.start if s.start is not None else (0 if step > 0 else INT64_MAX)
    stop = s.stop if s.stop is not None else (INT64_MAX if step > 0 else INT64_MIN)
    return start, stop, step


@rule("getitem")
def _getitem(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a = node.args[0]
    assert isinstance(a, Var)
    return getitem(ctx, ctx.operand(a, node.out.dtype), ctx.shape(a), attrs["index"])


def getitem(ctx: Context, x: str, shape: Sequence[Size], index: tuple[Any, ...]) -> str:
    """NumPy indexing of the ONNX value ``x`` (of ``shape``): Slice, Gather and GatherND."""
    items = _expand_index(tuple(index), len(shape))
    basic = (slice, int, Dim)
    advanced = [i for i, v in enumerate(items) if not (v is None or isinstance(v, basic))]
    if advanced:  # ints next to arrays index like 0-d arrays (NumPy)
        if any(v is None for v in items):
            raise OnnxExportError("getitem: None mixed with array indices has no ONNX lowering")
        items = [np.asarray(v) if isinstance(v, int) else v for v in items]
        advanced = [i for i, v in enumerate(items) if not isinstance(v, slice)]
    # 1. the slices (and ints, as one-element slices squeezed afterwards) in one Slice
    starts, ends, axes, steps = [], [], [], []
    squeeze, axis = [], 0
    for v in items:
        if v is None:
            continue
        if isinstance(v, slice):
            if v != slice(None):
                lo, hi, st = _slice_bounds(v, shape[axis])
                starts.append(lo)
                ends.append(hi)
                steps.append(st)
                axes.append(axis)
        elif isinstance(v, (int, Dim)):
            starts.append(v)
            ends.append(INT64_MAX if isinstance(v, int) and v == -1 else _plus_one(v))
            steps.append(1)
            axes.append(axis)
            squeeze.append(axis)
        axis += 1
    if axes:
        x = ctx.emit(
            "Slice",
            [x, ctx.shape_value(starts), ctx.shape_value(ends), ctx.ints(axes), ctx.ints(steps)],
        )
    if advanced:
        return _advanced(ctx, x, items, advanced)
    if squeeze:
        x = ctx.emit("Squeeze", [x, ctx.ints(squeeze)])
    new_axes = []
    pos = 0
    for v in items:  # output position of each None
        if v is None:
            new_axes.append(pos)
            pos += 1
        elif isinstance(v, slice):
            pos += 1
    if new_axes:
        x = ctx.emit("Unsqueeze", [x, ctx.ints(new_axes)])
    if not axes and not squeeze and not new_axes:
        x = ctx.emit("Identity", [x])
    return x


def _plus_one(v: Size) -> Size:
    return v + 1 if isinstance(v, int) else Dim(v.symbol, v.a, v.c + 1)


def _advanced(ctx: Context, x: str, index: list[Any], advanced: list[int]) -> str:
    """Integer-array indexing (NumPy's rules) after the slices were applied."""
    if len(advanced) == 1:
        idx, _ = _index_value(ctx, index[advanced[0]])
        return ctx.emit("Gather", [x, idx], axis=advanced[0])
    values = [_index_value(ctx, index[i]) for i in advanced]
    shapes = [s for _, s in values]
    if any(isinstance(d, Dim) for s in shapes for d in s):
        raise OnnxExportError("getitem: several index arrays that follow a dynamic axis")
    common = np.broadcast_shapes(*[tuple(int(d) for d in s) for s in shapes])  # type: ignore[arg-type]
    target = ctx.ints(common)
    last = ctx.ints([-1])
    cols = [ctx.emit("Unsqueeze", [ctx.emit("Expand", [v, target]), last]) for v, _ in values]
    stacked = ctx.emit("Concat", cols, axis=-1)
    ndim = len(index)
    rest = [i for i in range(ndim) if i not in advanced]
    moved = ctx.emit("Transpose", [x], perm=advanced + rest)
    out = ctx.emit("GatherND", [moved, stacked])  # dims: broadcast index shape, then the rest
    adjacent = advanced == list(range(advanced[0], advanced[-1] + 1))
    if not adjacent or advanced[0] == 0:
        return out
    nb = len(common)
    before = list(range(nb, nb + advanced[0]))
    perm = before + list(range(nb)) + list(range(nb + advanced[0], nb + len(rest)))
    return ctx.emit("Transpose", [out], perm=perm)


def _positions(ctx: Context, shape: str, dims: Sequence[Size], index: tuple[Any, ...]) -> str:
    """The flat positions that ``index`` selects in an array of run-time ``shape`` (int64)."""
    n = ctx.emit("ReduceProd", [shape], keepdims=0)
    zero, one = ctx.const(np.asarray(0, np.int64)), ctx.const(np.asarray(1, np.int64))
    grid = ctx.emit("Reshape", [ctx.emit("Range", [zero, n, one]), shape])
    return getitem(ctx, grid, dims, index)


@rule("index_put")
def _index_put(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a, v = node.args[0], node.args[1]
    assert isinstance(a, Var)
    want = node.out.dtype
    x = ctx.operand(a, want)
    shape = ctx.emit("Shape", [x])
    pos = _positions(ctx, shape, ctx.shape(a), attrs["index"])
    values = ctx.emit("Expand", [ctx.operand(v, want), ctx.emit("Shape", [pos])])
    flat = ctx.reshape(x, [-1])
    out = ctx.emit(
        "ScatterElements", [flat, ctx.reshape(pos, [-1]), ctx.reshape(values, [-1])], axis=0
    )
    return ctx.emit("Reshape", [out, shape])


@rule("index_scatter")
def _index_scatter(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    dims = list(attrs["shape"])
    shape = ctx.shape_value(dims)
    pos = _positions(ctx, shape, dims, attrs["index"])
    zeros = ctx.reshape(ctx.zeros(shape, want), [-1])
    g = ctx.emit("Expand", [ctx.operand(node.args[0], want), ctx.emit("Shape", [pos])])
    flat_pos, flat_g = ctx.reshape(pos, [-1]), ctx.reshape(g, [-1])
    out = ctx.emit("ScatterElements", [zeros, flat_pos, flat_g], axis=0, reduction="add")
    return ctx.emit("Reshape", [out, shape])


def _gather_like(ctx: Context, node: Node, attrs: dict[str, Any]) -> tuple[str, str, int, bool]:
    a, index = node.args[0], node.args[1]
    assert isinstance(a, Var) and isinstance(index, Var)
    x = ctx.operand(a, node.out.dtype)
    idx = ctx.cast(ctx.name(index), index.dtype, np.dtype(np.int64))
    if a.ndim == 0:  # PyTorch takes dim 0 of a 0-d tensor: work on one-element vectors
        return ctx.reshape(x, [1]), ctx.reshape(idx, [1]), 0, True
    return x, idx, int(attrs["dim"]) % a.ndim, False


@rule("gather")
def _gather(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    x, idx, axis, scalar = _gather_like(ctx, node, attrs)
    out = ctx.emit("GatherElements", [x, idx], axis=axis)
    return ctx.reshape(out, []) if scalar else out


@rule("scatter", "scatter_add")
def _scatter(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    x, idx, axis, scalar = _gather_like(ctx, node, attrs)
    s = node.args[2]
    src = ctx.operand(s, node.out.dtype)
    if isinstance(s, Var) and s.ndim:
        # src may be larger than index: only its leading corner is used.
        src = ctx.reshape(src, [1]) if scalar else src
        n = max(s.ndim, 1)
        size = ctx.emit("Shape", [idx])
        src = ctx.emit("Slice", [src, ctx.ints([0] * n), size, ctx.ints(list(range(n)))])
    else:
        src = ctx.emit("Expand", [src, ctx.emit("Shape", [idx])])
    reduction = "add" if node.op.name == "scatter_add" else None
    out = ctx.emit("ScatterElements", [x, idx, src], axis=axis, reduction=reduction)
    return ctx.reshape(out, []) if scalar else out


@rule("argsort")
def _argsort(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    # Ranks from pairwise comparisons: exact stable order and NumPy's NaN placement (last
    # ascending, first descending), which TopK does not promise. O(n^2) in the sorted axis.
    a = node.args[0]
    assert isinstance(a, Var)
    if a.ndim == 0 or 0 in ctx.shape(a):  # (onnxruntime mis-shapes empty reductions)
        return ctx.const(np.zeros(a.shape, np.int64))
    x = ctx.name(a)
    if a.dtype.kind == "b":
        x = ctx.cast(x, a.dtype, np.dtype(np.int32))
    axis = int(attrs["dim"]) % a.ndim
    last = list(range(a.ndim))
    last.append(last.pop(axis))
    xt = ctx.emit("Transpose", [x], perm=last)
    xi = ctx.emit("Unsqueeze", [xt, ctx.ints([-1])])  # (..., n, 1): element i
    xj = ctx.emit("Unsqueeze", [xt, ctx.ints([-2])])  # (..., 1, n): element j
    n = ctx.emit("Squeeze", [ctx.emit("Shape", [x], start=axis, end=axis + 1), ctx.ints([0])])
    zero, one = ctx.const(np.asarray(0, np.int64)), ctx.const(np.asarray(1, np.int64))
    r = ctx.emit("Range", [zero, n, one])
    earlier = ctx.emit("Less", [r, ctx.emit("Unsqueeze", [r, ctx.ints([1])])])  # j < i
    descending = bool(attrs["descending"])
    before = ctx.emit("Greater" if descending else "Less", [xj, xi])
    tie = ctx.emit("Equal", [xj, xi])
    if a.dtype.kind == "f":
        nan_i, nan_j = ctx.emit("IsNaN", [xi]), ctx.emit("IsNaN", [xj])
        first, second = (nan_j, nan_i) if descending else (nan_i, nan_j)
        nan_order = ctx.emit("And", [first, ctx.emit("Not", [second])])
        before = ctx.emit("Or", [before, nan_order])
        tie = ctx.emit("Or", [tie, ctx.emit("And", [nan_i, nan_j])])
    before = ctx.emit("Or", [before, ctx.emit("And", [tie, earlier])])
    counts = ctx.cast(before, np.dtype(bool), np.dtype(np.int64))
    rank = ctx.emit("ReduceSum", [counts, ctx.ints([-1])], keepdims=0)
    zeros = ctx.zeros(ctx.emit("Shape", [rank]), np.dtype(np.int64))
    positions = ctx.emit("ScatterElements", [zeros, rank, ctx.emit("Add", [zeros, r])], axis=-1)
    return ctx.emit("Transpose", [positions], perm=[int(i) for i in np.argsort(last)])


# ================================================================= linear algebra
@rule("matmul")
def _matmul(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    return ctx.emit("MatMul", list(_pair(ctx, node, node.out.dtype)))


@rule("einsum")
def _einsum(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    want = node.out.dtype
    operands = [ctx.operand(a, want) for a in node.args]
    return ctx.emit("Einsum", operands, equation=attrs["equation"].replace(" ", ""))


# ================================================================= convolution and pooling
def _pads(padding: Sequence[tuple[int, int]]) -> list[int]:
    return [int(lo) for lo, _ in padding] + [int(hi) for _, hi in padding]


def _conv_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The ONNX attributes Conv and ConvTranspose share."""
    return {
        "strides": list(attrs["stride"]),
        "pads": _pads(attrs["padding"]),
        "dilations": list(attrs["dilation"]),
        "group": int(attrs["groups"]),
    }


@rule("conv")
def _conv(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    x, w = _pair(ctx, node, node.out.dtype)
    return ctx.emit("Conv", [x, w], **_conv_attrs(attrs))


@rule("conv_transpose")
def _conv_transpose(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    x, w = _pair(ctx, node, node.out.dtype)
    return ctx.emit(
        "ConvTranspose",
        [x, w],
        output_padding=list(attrs["output_padding"]),
        **_conv_attrs(attrs),
    )


def _window(attrs: dict[str, Any]) -> dict[str, Any]:
    return {
        "kernel_shape": list(attrs["kernel_size"]),
        "strides": list(attrs["stride"]),
        "pads": _pads(attrs["padding"]),
        "dilations": list(attrs["dilation"]),
    }


def _float_input(ctx: Context, node: Node, op: str) -> tuple[Var, str]:
    a = node.args[0]
    assert isinstance(a, Var)
    if a.dtype.kind != "f":
        raise OnnxExportError(f"{op} of {a.dtype.name} tensors has no ONNX lowering (floats only)")
    return a, ctx.name(a)


@rule("max_pool")
def _max_pool(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    _, x = _float_input(ctx, node, "max_pool")
    return ctx.emit("MaxPool", [x], **_window(attrs))


@rule("max_pool_indices")
def _max_pool_indices(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    _, x = _float_input(ctx, node, "max_pool_indices")
    _, idx = ctx.emit_n("MaxPool", [x], 2, **_window(attrs))
    # ONNX counts over the whole (N, C, *spatial) tensor; ember within one spatial plane.
    plane = ctx.emit("ReduceProd", [ctx.emit("Shape", [x], start=2)], keepdims=0)
    return ctx.emit("Mod", [idx, plane], fmod=0)


@rule("sum_pool")
def _sum_pool(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    _, x = _float_input(ctx, node, "sum_pool")
    avg = ctx.emit("AveragePool", [x], count_include_pad=1, **_window(attrs))
    k = math.prod(int(s) for s in attrs["kernel_size"])
    return ctx.emit("Mul", [avg, ctx.const(np.asarray(k, node.out.dtype))])


@rule("adaptive_max_pool_indices")
def _adaptive_max_pool_indices(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    # One ArgMax per output cell over its window (ONNX has no adaptive pooling).
    a, x = _float_input(ctx, node, "adaptive_max_pool_indices")
    spatial = [int(s) for s in a.shape[2:]]
    if any(isinstance(d, Dim) for d in ctx.shape(a)[2:]):
        raise OnnxExportError("adaptive_max_pool over dynamic spatial axes has no ONNX lowering")
    out_size = [int(s) for s in attrs["output_size"]]
    plane = [math.prod(spatial[i + 1 :]) for i in range(len(spatial))]
    cells = []
    for cell in np.ndindex(*out_size):
        lo = [(o * n) // m for o, n, m in zip(cell, spatial, out_size)]
        hi = [-((-(o + 1) * n) // m) for o, n, m in zip(cell, spatial, out_size)]
        axes = list(range(2, 2 + len(spatial)))
        win = ctx.emit("Slice", [x, ctx.ints(lo), ctx.ints(hi), ctx.ints(axes)])
        sizes = [h - l for l, h in zip(lo, hi)]
        flat = ctx.reshape(win, [0, 0, -1])
        arg = ctx.emit("ArgMax", [flat], axis=2, keepdims=1)  # first maximum, as ember
        # window-local flat index -> index in the whole plane
        pos = ""
        rem = arg
        for i in range(len(sizes)):
            inner = ctx.const(np.asarray(math.prod(sizes[i + 1 :]), np.int64))
            q = ctx.emit("Div", [rem, inner])
            rem = ctx.emit("Mod", [rem, inner], fmod=0)
            row = ctx.emit("Add", [q, ctx.const(np.asarray(lo[i], np.int64))])
            term = ctx.emit("Mul", [row, ctx.const(np.asarray(plane[i], np.int64))])
            pos = term if not pos else ctx.emit("Add", [pos, term])
        cells.append(pos)
    stacked = cells[0] if len(cells) == 1 else ctx.emit("Concat", cells, axis=2)
    return ctx.reshape(stacked, [0, 0, *out_size])


@rule("spatial_gather")
def _spatial_gather(ctx: Context, node: Node, attrs: dict[str, Any]) -> str:
    a, idx = node.args[0], node.args[1]
    assert isinstance(a, Var) and isinstance(idx, Var)
    flat_x = ctx.reshape(ctx.operand(a, node.out.dtype), [0, 0, -1])
    flat_i = ctx.reshape(ctx.name(idx), [0, 0, -1])
    out = ctx.emit("GatherElements", [flat_x, flat_i], axis=2)
    return ctx.emit("Reshape", [out, ctx.emit("Shape", [ctx.name(idx)])])
