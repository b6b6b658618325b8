"""ONNX operators written with ember ops: one handler per ONNX op type.

A handler takes the node (its attributes and the opset it was exported at) and the
node's inputs as ember Tensors (None for an omitted optional input) and returns a
Tensor or a tuple of Tensors. Handlers read each op's opset semantics from the ONNX
operator specs: attributes that moved to inputs (axes, pads, split, …) are read from
wherever the node's opset puts them.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ember
from ember._src.core import dtype as dt
from ember._src.core.tensor import Tensor
from ember._src.ops.conv import conv, conv_transpose
from ember._src.ops.pool import max_pool_indices_op, max_pool_op, sum_pool_op
from ember._src.ops.registry import apply
from ember._src.ops.shape import getitem, index_put

# ONNX TensorProto.DataType codes ember can hold.
ONNX_DTYPES: dict[int, dt.dtype] = {
    1: dt.float32,
    2: dt.uint8,
    3: dt.int8,
    5: dt.int16,
    6: dt.int32,
    7: dt.int64,
    9: dt.bool_,
    10: dt.float16,
    11: dt.float64,
}
if dt.bfloat16 is not None:
    ONNX_DTYPES[16] = dt.bfloat16


class OnnxImportError(ValueError):
    """An ONNX model ember cannot load or run, with the reason and the node involved."""


@dataclass
class Node:
    """What a handler needs of an ONNX node."""

    op_type: str
    name: str
    opset: int
    attrs: dict[str, Any] = field(default_factory=dict)
    n_outputs: int = 1

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def error(self, message: str) -> OnnxImportError:
        return OnnxImportError(
            f"ONNX {self.op_type} node {self.name!r} (opset {self.opset}): {message}"
        )


Handler = Callable[..., Any]
OPS: dict[str, Handler] = {}


def onnx_op(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            OPS[name] = fn
        return fn

    return register


def ints(t: Tensor | None) -> list[int]:
    """A 1-D (or 0-D) integer tensor as Python ints."""
    if t is None:
        return []
    return [int(v) for v in np.asarray(t.numpy()).reshape(-1)]


def scalar(t: Tensor) -> Any:
    return np.asarray(t.numpy()).reshape(-1)[0].item()


def const(value: Any, like: Tensor) -> Tensor:
    return ember.tensor(np.asarray(value), dtype=like.dtype)


def _axis(axis: int, ndim: int) -> int:
    return axis + ndim if axis < 0 else axis


# ----------------------------------------------------------------- elementwise
def _same_dtype(fn: Callable[[Tensor, Tensor], Tensor]) -> Handler:
    def handler(n: Node, a: Tensor, b: Tensor) -> Tensor:
        out = fn(a, b)
        return out if out.dtype == a.dtype else out.to(a.dtype)

    return handler


onnx_op("Add")(_same_dtype(ember.add))
onnx_op("Sub")(_same_dtype(ember.sub))
onnx_op("Mul")(_same_dtype(ember.mul))


@onnx_op("Div")
def _div(n: Node, a: Tensor, b: Tensor) -> Tensor:
    if a.dtype.is_floating_point:
        return ember.div(a, b)
    # Integer division truncates toward zero.
    return ember.trunc(ember.div(a.to(ember.float64), b.to(ember.float64))).to(a.dtype)


@onnx_op("Pow")
def _pow(n: Node, a: Tensor, b: Tensor) -> Tensor:
    if not a.dtype.is_floating_point:
        return ember.pow(a.to(ember.float64), b.to(ember.float64)).to(a.dtype)
    return ember.pow(a, b.to(a.dtype))


@onnx_op("Mod")
def _mod(n: Node, a: Tensor, b: Tensor) -> Tensor:
    if n.attr("fmod", 0):
        r = a - ember.trunc(ember.div(a.to(ember.float64), b.to(ember.float64))).to(a.dtype) * b
        return r.to(a.dtype)
    return ember.remainder(a, b)


def _variadic(fn: Callable[[Tensor, Tensor], Tensor]) -> Handler:
    def handler(n: Node, *xs: Tensor) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out

    return handler


onnx_op("Sum")(_variadic(ember.add))
onnx_op("Max")(_variadic(ember.maximum))
onnx_op("Min")(_variadic(ember.minimum))


@onnx_op("Mean")
def _mean(n: Node, *xs: Tensor) -> Tensor:
    return _variadic(ember.add)(n, *xs) / len(xs)


def _unary(fn: Callable[[Tensor], Tensor]) -> Handler:
    return lambda n, x: fn(x)


for _name, _fn in {
    "Neg": ember.neg,
    "Abs": ember.abs,
    "Exp": ember.exp,
    "Log": ember.log,
    "Sqrt": ember.sqrt,
    "Reciprocal": ember.reciprocal,
    "Relu": ember.relu,
    "Sigmoid": ember.sigmoid,
    "Tanh": ember.tanh,
    "Erf": ember.erf,
    "Floor": ember.floor,
    "Ceil": ember.ceil,
    "Sin": ember.sin,
    "Cos": ember.cos,
    "Tan": ember.tan,
    "Sign": ember.sign,
    "Round": ember.round,
    "IsNaN": ember.isnan,
    "Not": ember.logical_not,
    "Identity": lambda x: x,
    "Softsign": lambda x: x / (1 + ember.abs(x)),
    "Softplus": ember.softplus,
    "Sinh": lambda x: (ember.exp(x) - ember.exp(-x)) / 2,
    "Cosh": lambda x: (ember.exp(x) + ember.exp(-x)) / 2,
    "Mish": lambda x: x * ember.tanh(ember.softplus(x)),
    # Inverse trigonometric and hyperbolic functions, composed (ember has atan2, log).
    "Atan": lambda x: ember.atan2(x, ember.ones_like(x)),
    "Asin": lambda x: ember.atan2(x, ember.sqrt(1 - x * x)),
    "Acos": lambda x: ember.atan2(ember.sqrt(1 - x * x), x),
    "Asinh": lambda x: ember.sign(x) * ember.log(ember.abs(x) + ember.sqrt(x * x + 1)),
    "Acosh": lambda x: ember.log(x + ember.sqrt(x * x - 1)),
    "Atanh": lambda x: 0.5 * ember.log((1 + x) / (1 - x)),
}.items():
    onnx_op(_name)(_unary(_fn))

for _name, _fn in {
    "Equal": ember.eq,
    "Less": ember.lt,
    "LessOrEqual": ember.le,
    "Greater": ember.gt,
    "GreaterOrEqual": ember.ge,
    "And": ember.logical_and,
    "Or": ember.logical_or,
    "Xor": ember.logical_xor,
}.items():
    onnx_op(_name)(lambda n, a, b, _fn=_fn: _fn(a, b))


@onnx_op("IsInf")
def _isinf(n: Node, x: Tensor) -> Tensor:
    pos, neg = n.attr("detect_positive", 1), n.attr("detect_negative", 1)
    inf = ember.isinf(x)
    if pos and neg:
        return inf
    if pos:
        return ember.logical_and(inf, x > 0)
    if neg:
        return ember.logical_and(inf, x < 0)
    return ember.zeros_like(x, dtype=ember.bool_)


@onnx_op("LeakyRelu")
def _leaky_relu(n: Node, x: Tensor) -> Tensor:
    return ember.where(x >= 0, x, x * n.attr("alpha", 0.01))


@onnx_op("PRelu")
def _prelu(n: Node, x: Tensor, slope: Tensor) -> Tensor:
    if n.opset < 7 and slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1]:
        slope = _channel(slope, x.ndim)  # before opset 7 a 1-D slope is per channel
    return ember.where(x >= 0, x, x * slope)


@onnx_op("ThresholdedRelu")
def _thresholded_relu(n: Node, x: Tensor) -> Tensor:
    return ember.where(x > n.attr("alpha", 1.0), x, ember.zeros_like(x))


@onnx_op("Elu")
def _elu(n: Node, x: Tensor) -> Tensor:
    return ember.where(x > 0, x, n.attr("alpha", 1.0) * ember.expm1(x))


@onnx_op("Celu")
def _celu(n: Node, x: Tensor) -> Tensor:
    alpha = n.attr("alpha", 1.0)
    return ember.where(x > 0, x, alpha * ember.expm1(x / alpha))


@onnx_op("Selu")
def _selu(n: Node, x: Tensor) -> Tensor:
    alpha, gamma = (
        n.attr("alpha", 1.67326319217681884765625),
        n.attr("gamma", 1.05070102214813232421875),
    )
    return gamma * ember.where(x > 0, x, alpha * ember.expm1(x))


@onnx_op("HardSigmoid")
def _hard_sigmoid(n: Node, x: Tensor) -> Tensor:
    return ember.clamp(x * n.attr("alpha", 0.2) + n.attr("beta", 0.5), 0.0, 1.0)


@onnx_op("HardSwish")
def _hard_swish(n: Node, x: Tensor) -> Tensor:
    return x * ember.clamp(x / 6 + 0.5, 0.0, 1.0)


@onnx_op("Shrink")
def _shrink(n: Node, x: Tensor) -> Tensor:
    lambd, bias = n.attr("lambd", 0.5), n.attr("bias", 0.0)
    zero = ember.zeros_like(x)
    out = ember.where(x < -lambd, x + bias, ember.where(x > lambd, x - bias, zero))
    return out.to(x.dtype)


@onnx_op("Gelu")
def _gelu(n: Node, x: Tensor) -> Tensor:
    return ember.gelu(x, approximate=n.attr("approximate", "none"))


@onnx_op("Clip")
def _clip(n: Node, x: Tensor, lo: Tensor | None = None, hi: Tensor | None = None) -> Tensor:
    if n.opset < 11:
        lo_v, hi_v = n.attr("min"), n.attr("max")
    else:
        lo_v = None if lo is None else scalar(lo)
        hi_v = None if hi is None else scalar(hi)
    out = x
    if lo_v is not None:
        out = ember.maximum(out, const(lo_v, x))
    if hi_v is not None:
        out = ember.minimum(out, const(hi_v, x))
    return out


@onnx_op("Where")
def _where(n: Node, c: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return ember.where(c, a, b)


@onnx_op("Cast")
def _cast(n: Node, x: Tensor) -> Tensor:
    return x.to(onnx_dtype(n, n.attr("to")))


@onnx_op("CastLike")
def _cast_like(n: Node, x: Tensor, like: Tensor) -> Tensor:
    return x.to(like.dtype)


def onnx_dtype(n: Node, code: int) -> dt.dtype:
    if code not in ONNX_DTYPES:
        raise n.error(f"ONNX data type {code} has no ember dtype")
    return ONNX_DTYPES[code]


# ----------------------------------------------------------------- activations
def _coerced_2d(n: Node, x: Tensor, fn: Callable[[Tensor, int], Tensor]) -> Tensor:
    """Before opset 13 softmax-like ops act on x flattened to 2-D at ``axis``."""
    if n.opset >= 13:
        return fn(x, n.attr("axis", -1))
    axis = _axis(n.attr("axis", 1), x.ndim)
    rows = math.prod(x.shape[:axis])
    return fn(x.reshape(rows, math.prod(x.shape[axis:])), 1).reshape(x.shape)


onnx_op("Softmax")(lambda n, x: _coerced_2d(n, x, ember.softmax))
onnx_op("LogSoftmax")(lambda n, x: _coerced_2d(n, x, ember.log_softmax))


@onnx_op("Hardmax")
def _hardmax(n: Node, x: Tensor) -> Tensor:
    def hardmax(x: Tensor, axis: int) -> Tensor:
        axis = _axis(axis, x.ndim)
        hot = ember.one_hot(ember.argmax(x, axis), x.shape[axis])
        return ember.movedim(hot, -1, axis).to(x.dtype)

    return _coerced_2d(n, x, hardmax)


# ----------------------------------------------------------------- linear algebra
@onnx_op("MatMul")
def _matmul(n: Node, a: Tensor, b: Tensor) -> Tensor:
    return ember.matmul(a, b)


@onnx_op("Gemm")
def _gemm(n: Node, a: Tensor, b: Tensor, c: Tensor | None = None) -> Tensor:
    if n.attr("transA", 0):
        a = a.t()
    if n.attr("transB", 0):
        b = b.t()
    y = ember.matmul(a, b)
    alpha, beta = n.attr("alpha", 1.0), n.attr("beta", 1.0)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


@onnx_op("Einsum")
def _einsum(n: Node, *xs: Tensor) -> Tensor:
    return ember.einsum(n.attr("equation").replace(" ", ""), *xs)


# ----------------------------------------------------------------- convolution and pooling
def _window_pads(
    n: Node, spatial: tuple[int, ...], kernel: list[int], strides: list[int], dil: list[int]
) -> list[tuple[int, int]]:
    """(low, high) padding per spatial dim from ``pads`` or ``auto_pad``."""
    nd = len(spatial)
    auto = n.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(spatial, kernel, strides, dil):
            total = builtins.max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return out
    if auto == "VALID":
        return [(0, 0)] * nd
    pads = n.attr("pads", [0] * 2 * nd)
    return [(pads[i], pads[i + nd]) for i in range(nd)]


def _geometry(n: Node, x: Tensor, kernel: list[int]) -> tuple[list[int], list[int], list[int]]:
    nd = x.ndim - 2
    return (
        list(kernel),
        list(n.attr("strides", [1] * nd)),
        list(n.attr("dilations", [1] * nd)),
    )


@onnx_op("Conv")
def _conv(n: Node, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    kernel, strides, dil = _geometry(n, x, n.attr("kernel_shape", list(w.shape[2:])))
    pads = _window_pads(n, tuple(x.shape[2:]), kernel, strides, dil)
    y = conv(x, w, strides, pads, dil, n.attr("group", 1))
    if b is not None:
        y = y + b.reshape(-1, *([1] * (y.ndim - 2)))
    return y


@onnx_op("ConvTranspose")
def _conv_transpose(n: Node, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    nd = x.ndim - 2
    kernel, strides, dil = _geometry(n, x, n.attr("kernel_shape", list(w.shape[2:])))
    out_pad = list(n.attr("output_padding", [0] * nd))
    out_shape = n.attr("output_shape")
    auto = n.attr("auto_pad", "NOTSET")
    if out_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        if out_shape is None:
            out_shape = [size * s for size, s in zip(x.shape[2:], strides)]
        out_shape = list(out_shape)[-nd:]
        pads = []
        for i in range(nd):
            full = (x.shape[2 + i] - 1) * strides[i] + out_pad[i] + (kernel[i] - 1) * dil[i] + 1
            total = full - out_shape[i]
            small, big = total // 2, total - total // 2
            pads.append((big, small) if auto == "SAME_LOWER" else (small, big))
    else:
        pads = _window_pads(n, tuple(x.shape[2:]), kernel, strides, dil)
    # A negative high padding means extra output rows: ember's output_padding.
    extra = [out_pad[i] + builtins.max(0, -hi) for i, (_, hi) in enumerate(pads)]
    pads = [(lo, builtins.max(0, hi)) for lo, hi in pads]
    lead = [builtins.max(0, -lo) for lo, _ in pads]
    pads = [(builtins.max(0, lo), hi) for lo, hi in pads]
    y = conv_transpose(x, w, strides, pads, extra, n.attr("group", 1), dil)
    if builtins.any(lead):  # a negative leading padding adds zero rows in front
        widths: list[int] = []
        for before in reversed(lead):
            widths += [before, 0]
        y = ember.pad(y, widths)
    if b is not None:
        y = y + b.reshape(-1, *([1] * nd))
    return y


def _pool_pads(
    n: Node, x: Tensor, kernel: list[int], strides: list[int], dil: list[int]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Explicit (low, high) pads, and the pads including ceil_mode's extra high padding."""
    pads = _window_pads(n, tuple(x.shape[2:]), kernel, strides, dil)
    ceil = n.attr("ceil_mode", 0)
    full = []
    for size, k, s, d, (lo, hi) in zip(x.shape[2:], kernel, strides, dil, pads):
        span = size + lo + hi - ((k - 1) * d + 1)
        o = (-(-span // s) if ceil else span // s) + 1
        if ceil and (o - 1) * s >= size + lo:  # the last window would start in the padding
            o -= 1
        extra = builtins.max(0, (o - 1) * s + (k - 1) * d + 1 - (size + lo + hi))
        full.append((lo, hi + extra))
    return pads, full


@onnx_op("MaxPool")
def _max_pool(n: Node, x: Tensor) -> Any:
    kernel, strides, dil = _geometry(n, x, n.attr("kernel_shape"))
    _, full = _pool_pads(n, x, kernel, strides, dil)
    geom = {
        "kernel_size": tuple(kernel),
        "stride": tuple(strides),
        "padding": tuple(full),
        "dilation": tuple(dil),
    }
    y = apply(max_pool_op, x, **geom)
    if n.n_outputs == 1:
        return y
    if n.attr("storage_order", 0):
        raise n.error("storage_order=1 (column-major Indices) is not supported")
    # ember's indices are per (n, c) plane; ONNX's index the whole tensor.
    idx = apply(max_pool_indices_op, x, **geom)
    plane = math.prod(x.shape[2:])
    planes = ember.arange(x.shape[0] * x.shape[1]).reshape(*x.shape[:2], *([1] * (x.ndim - 2)))
    return y, idx + planes * plane


@onnx_op("AveragePool")
def _average_pool(n: Node, x: Tensor) -> Tensor:
    kernel, strides, dil = _geometry(n, x, n.attr("kernel_shape"))
    pads, full = _pool_pads(n, x, kernel, strides, dil)
    geom = {"kernel_size": tuple(kernel), "stride": tuple(strides), "dilation": tuple(dil)}
    total = apply(sum_pool_op, x, padding=tuple(full), **geom)
    ones = ember.ones(1, 1, *x.shape[2:], dtype=x.dtype)
    if n.attr("count_include_pad", 0):
        widths: list[int] = []
        for lo, hi in reversed(pads):
            widths += [lo, hi]
        ones = ember.pad(ones, widths, value=1.0)
        rest = tuple((0, fh - h) for (_, h), (_, fh) in zip(pads, full))
        counts = apply(sum_pool_op, ones, padding=rest, **geom)
    else:
        counts = apply(sum_pool_op, ones, padding=tuple(full), **geom)
    return total / counts


@onnx_op("GlobalAveragePool")
def _global_average_pool(n: Node, x: Tensor) -> Tensor:
    return ember.mean(x, tuple(range(2, x.ndim)), keepdim=True)


@onnx_op("GlobalMaxPool")
def _global_max_pool(n: Node, x: Tensor) -> Tensor:
    return ember.amax(x, tuple(range(2, x.ndim)), keepdim=True)


# ----------------------------------------------------------------- normalization
def _channel(t: Tensor, ndim: int) -> Tensor:
    return t.reshape(-1, *([1] * (ndim - 2)))


@onnx_op("BatchNormalization")
def _batch_norm(n: Node, x: Tensor, scale: Tensor, b: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    if n.attr("training_mode", 0) or (n.opset < 9 and not n.attr("is_test", 1)):
        raise n.error("training mode is not supported; export the model in eval mode")
    eps = n.attr("epsilon", 1e-5)
    inv = scale / ember.sqrt(var + eps)
    return (x - _channel(mean, x.ndim)) * _channel(inv, x.ndim) + _channel(b, x.ndim)


@onnx_op("InstanceNormalization")
def _instance_norm(n: Node, x: Tensor, scale: Tensor, b: Tensor) -> Tensor:
    dims = tuple(range(2, x.ndim))
    mean = ember.mean(x, dims, keepdim=True)
    var = ember.mean(ember.square(x - mean), dims, keepdim=True)
    y = (x - mean) / ember.sqrt(var + n.attr("epsilon", 1e-5))
    return y * _channel(scale, x.ndim) + _channel(b, x.ndim)


@onnx_op("LayerNormalization")
def _layer_norm(
    n: Node, x: Tensor, scale: Tensor, b: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    axis = _axis(n.attr("axis", -1), x.ndim)
    dims = tuple(range(axis, x.ndim))
    xs = x if x.dtype != ember.float16 else x.to(ember.float32)
    mean = ember.mean(xs, dims, keepdim=True)
    var = ember.mean(ember.square(xs - mean), dims, keepdim=True)
    inv = ember.rsqrt(var + n.attr("epsilon", 1e-5))
    y = ((xs - mean) * inv).to(x.dtype) * scale
    if b is not None:
        y = y + b
    return y, mean, inv


@onnx_op("MeanVarianceNormalization")
def _mvn(n: Node, x: Tensor) -> Tensor:
    dims = tuple(n.attr("axes", [0, 2, 3]))
    mean = ember.mean(x, dims, keepdim=True)
    var = ember.mean(ember.square(x - mean), dims, keepdim=True)
    return (x - mean) / (ember.sqrt(var) + 1e-9)


@onnx_op("LpNormalization")
def _lp_normalization(n: Node, x: Tensor) -> Tensor:
    p, axis = n.attr("p", 2), n.attr("axis", -1)
    if p == 1:
        norm = ember.sum(ember.abs(x), axis, keepdim=True)
    else:
        norm = ember.sqrt(ember.sum(ember.square(x), axis, keepdim=True))
    return x / norm


# ----------------------------------------------------------------- shape
@onnx_op("Reshape")
def _reshape(n: Node, x: Tensor, shape: Tensor | None = None) -> Tensor:
    target = ints(shape) if n.opset >= 5 else list(n.attr("shape"))
    if not n.attr("allowzero", 0):
        target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return x.reshape(*target)


@onnx_op("Transpose")
def _transpose(n: Node, x: Tensor) -> Tensor:
    perm = n.attr("perm", list(range(x.ndim))[::-1])
    return x.permute(*perm)


@onnx_op("Flatten")
def _flatten(n: Node, x: Tensor) -> Tensor:
    axis = _axis(n.attr("axis", 1), x.ndim)
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _axes(n: Node, t: Tensor | None, since: int) -> list[int] | None:
    """``axes`` from the input (opset >= ``since``) or the attribute (older opsets)."""
    if n.opset >= since:
        return None if t is None else ints(t)
    axes = n.attr("axes")
    return None if axes is None else list(axes)


@onnx_op("Squeeze")
def _squeeze(n: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
    dims = _axes(n, axes, 13)
    if dims is None:
        return x.reshape(*[s for s in x.shape if s != 1])
    dims = [_axis(d, x.ndim) for d in dims]
    return x.reshape(*[s for i, s in enumerate(x.shape) if i not in dims])


@onnx_op("Unsqueeze")
def _unsqueeze(n: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
    dims = _axes(n, axes, 13) or []
    rank = x.ndim + len(dims)
    dims = sorted(_axis(d, rank) for d in dims)
    shape = list(x.shape)
    for d in dims:
        shape.insert(d, 1)
    return x.reshape(*shape)


@onnx_op("Concat")
def _concat(n: Node, *xs: Tensor) -> Tensor:
    return ember.cat(list(xs), n.attr("axis"))


@onnx_op("Split")
def _split(n: Node, x: Tensor, split: Tensor | None = None) -> tuple[Tensor, ...]:
    axis = _axis(n.attr("axis", 0), x.ndim)
    sizes = ints(split) if n.opset >= 13 else list(n.attr("split", []))
    size = x.shape[axis]
    if not sizes:
        parts = n.attr("num_outputs", n.n_outputs)
        chunk = -(-size // parts)
        sizes = [builtins.min(chunk, size - i * chunk) for i in range(parts)]
    return ember.split(x, sizes, axis)


@onnx_op("Slice")
def _slice(
    n: Node,
    x: Tensor,
    starts: Tensor | None = None,
    ends: Tensor | None = None,
    axes: Tensor | None = None,
    steps: Tensor | None = None,
) -> Tensor:
    if n.opset < 10:
        st, en = list(n.attr("starts")), list(n.attr("ends"))
        ax = list(n.attr("axes", range(len(st))))
        sp = [1] * len(st)
    else:
        st, en = ints(starts), ints(ends)
        ax = ints(axes) if axes is not None else list(range(len(st)))
        sp = ints(steps) if steps is not None else [1] * len(st)
    index: list[Any] = [slice(None)] * x.ndim
    for a, s, e, p in zip(ax, st, en, sp):
        size = x.shape[_axis(a, x.ndim)]
        s = builtins.max(-size - 1, builtins.min(s, size))
        e = builtins.max(-size - 1, builtins.min(e, size))
        if p < 0 and e < -size:
            e = None
        elif p < 0 and s == -size - 1:
            s = -size
        index[_axis(a, x.ndim)] = slice(s, e, p)
    return getitem(x, tuple(index))


def _wrap(idx: Tensor, size: int) -> Tensor:
    return ember.where(idx < 0, idx + size, idx).to(ember.int64)


@onnx_op("Gather")
def _gather(n: Node, x: Tensor, idx: Tensor) -> Tensor:
    axis = _axis(n.attr("axis", 0), x.ndim)
    flat = _wrap(idx, x.shape[axis]).reshape(-1)
    out = ember.index_select(x, axis, flat)
    return out.reshape(*x.shape[:axis], *idx.shape, *x.shape[axis + 1 :])


@onnx_op("GatherElements")
def _gather_elements(n: Node, x: Tensor, idx: Tensor) -> Tensor:
    axis = _axis(n.attr("axis", 0), x.ndim)
    return ember.gather(x, axis, _wrap(idx, x.shape[axis]))


@onnx_op("ScatterElements", "Scatter")
def _scatter_elements(n: Node, x: Tensor, idx: Tensor, updates: Tensor) -> Tensor:
    axis = _axis(n.attr("axis", 0), x.ndim)
    reduction = n.attr("reduction", "none")
    idx = _wrap(idx, x.shape[axis])
    if reduction == "none":
        return ember.scatter(x, axis, idx, updates)
    if reduction == "add":
        return ember.scatter_add(x, axis, idx, updates)
    raise n.error(f"reduction={reduction!r} is not supported")


@onnx_op("Shape")
def _shape(n: Node, x: Tensor) -> Tensor:
    dims = list(x.shape)
    start, end = n.attr("start", 0), n.attr("end", len(dims))
    return ember.tensor(np.array(dims[start:end], dtype=np.int64))


@onnx_op("Size")
def _size(n: Node, x: Tensor) -> Tensor:
    return ember.tensor(np.array(math.prod(x.shape), dtype=np.int64))


@onnx_op("ConstantOfShape")
def _constant_of_shape(n: Node, shape: Tensor) -> Tensor:
    value = n.attr("value")
    fill = ember.tensor(np.zeros((), np.float32)) if value is None else value.reshape(())
    return ember.full(ints(shape), scalar(fill), dtype=fill.dtype)


@onnx_op("Expand")
def _expand(n: Node, x: Tensor, shape: Tensor) -> Tensor:
    return ember.broadcast_to(x, np.broadcast_shapes(tuple(x.shape), tuple(ints(shape))))


@onnx_op("Tile")
def _tile(n: Node, x: Tensor, repeats: Tensor) -> Tensor:
    return ember.tile(x, ints(repeats))


@onnx_op("Pad")
def _pad(
    n: Node,
    x: Tensor,
    pads: Tensor | None = None,
    value: Tensor | None = None,
    axes: Tensor | None = None,
) -> Tensor:
    if n.opset < 11:
        widths, fill = list(n.attr("pads")), n.attr("value", 0.0)
    else:
        widths = ints(pads)
        fill = 0 if value is None or value.numel() == 0 else scalar(value)
    dims = [_axis(a, x.ndim) for a in ints(axes)] if axes is not None else list(range(x.ndim))
    k = len(dims)
    per_dim = {d: (widths[i], widths[i + k]) for i, d in enumerate(dims)}
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
    torch_pad: list[int] = []
    for d in reversed(range(x.ndim)):
        lo, hi = per_dim.get(d, (0, 0))
        torch_pad += [builtins.max(lo, 0), builtins.max(hi, 0)]
    out = ember.pad(x, torch_pad, mode=mode[n.attr("mode", "constant")], value=fill)
    crop = [
        slice(-builtins.min(lo, 0), out.shape[d] + builtins.min(hi, 0))
        for d, (lo, hi) in ((d, per_dim.get(d, (0, 0))) for d in range(x.ndim))
    ]
    return getitem(out, tuple(crop))


@onnx_op("Dropout")
def _dropout(n: Node, x: Tensor, ratio: Tensor | None = None, training: Tensor | None = None):
    if training is not None and scalar(training) and (ratio is None or scalar(ratio) != 0):
        raise n.error("training_mode=True is not supported (inference only)")
    return x, ember.ones(*x.shape, dtype=ember.bool_)


@onnx_op("Range")
def _range(n: Node, start: Tensor, limit: Tensor, delta: Tensor) -> Tensor:
    a, b, d = scalar(start), scalar(limit), scalar(delta)
    count = builtins.max(math.ceil((b - a) / d), 0)
    return (ember.arange(count, dtype=ember.float64) * d + a).to(start.dtype)


@onnx_op("CumSum")
def _cumsum(n: Node, x: Tensor, axis: Tensor) -> Tensor:
    dim = _axis(int(scalar(axis)), x.ndim)
    if n.attr("reverse", 0):
        x = ember.flip(x, [dim])
    out = ember.cumsum(x, dim).to(x.dtype)
    if n.attr("exclusive", 0):
        out = out - x
    if n.attr("reverse", 0):
        out = ember.flip(out, [dim])
    return out


@onnx_op("TopK")
def _topk(n: Node, x: Tensor, k: Tensor | None = None) -> tuple[Tensor, Tensor]:
    count = n.attr("k") if k is None else int(scalar(k))
    axis = _axis(n.attr("axis", -1), x.ndim)
    largest = builtins.bool(n.attr("largest", 1))
    # A stable sort keeps the lower index first among equal values, as ONNX requires.
    order = ember.argsort(-x if largest else x, dim=axis, stable=True)
    idx = ember.narrow(order, axis, 0, count)
    return ember.gather(x, axis, idx), idx


@onnx_op("Trilu")
def _trilu(n: Node, x: Tensor, k: Tensor | None = None) -> Tensor:
    diag = 0 if k is None else int(scalar(k))
    return ember.triu(x, diag) if n.attr("upper", 1) else ember.tril(x, diag)


@onnx_op("OneHot")
def _one_hot(n: Node, idx: Tensor, depth: Tensor, values: Tensor) -> Tensor:
    d = int(scalar(depth))
    idx = ember.where(idx < 0, idx + d, idx).to(ember.int64)
    hot = idx.unsqueeze(-1) == ember.arange(d)
    axis = _axis(n.attr("axis", -1), idx.ndim + 1)
    hot = ember.movedim(hot, -1, axis)
    off, on = values[0], values[1]
    return ember.where(hot, on, off)


@onnx_op("NonZero")
def _non_zero(n: Node, x: Tensor) -> Tensor:
    return ember.tensor(np.array(np.nonzero(x.numpy()), dtype=np.int64).reshape(x.ndim, -1))


@onnx_op("DepthToSpace")
def _depth_to_space(n: Node, x: Tensor) -> Tensor:
    b, c, h, w = x.shape
    s = n.attr("blocksize")
    if n.attr("mode", "DCR") == "DCR":
        y = x.reshape(b, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(b, c // (s * s), s, s, h, w).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(b, c // (s * s), h * s, w * s)


@onnx_op("SpaceToDepth")
def _space_to_depth(n: Node, x: Tensor) -> Tensor:
    b, c, h, w = x.shape
    s = n.attr("blocksize")
    y = x.reshape(b, c, h // s, s, w // s, s)
    y = (
        y.permute(0, 1, 3, 5, 2, 4)
        if n.attr("mode", "DCR") == "CRD"
        else y.permute(0, 3, 5, 1, 2, 4)
    )
    return y.reshape(b, c * s * s, h // s, w // s)


# ----------------------------------------------------------------- reductions
def _reduce(
    fn: Callable[[Tensor, tuple[int, ...], bool], Tensor], axes_input_since: int
) -> Handler:
    def handler(n: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
        dims = _axes(n, axes, axes_input_since)
        if not dims:
            if n.attr("noop_with_empty_axes", 0):
                return x
            dims = list(range(x.ndim))
        keep = builtins.bool(n.attr("keepdims", 1))
        return fn(x, tuple(_axis(d, x.ndim) for d in dims), keep)

    return handler


def _sum(x: Tensor, d: tuple[int, ...], k: bool) -> Tensor:
    return ember.sum(x, d, keepdim=k).to(x.dtype)


def _extreme(
    fn: Callable[..., Tensor], empty: float
) -> Callable[[Tensor, tuple[int, ...], bool], Tensor]:
    def reduce(x: Tensor, d: tuple[int, ...], k: bool) -> Tensor:
        if builtins.any(x.shape[i] == 0 for i in d):  # the identity of max / min
            shape = [1 if i in d else s for i, s in enumerate(x.shape) if k or i not in d]
            return ember.full(shape, empty, dtype=x.dtype)
        return fn(x, d, keepdim=k)

    return reduce


_REDUCERS: dict[str, Callable[[Tensor, tuple[int, ...], bool], Tensor]] = {
    "ReduceSum": _sum,
    "ReduceMean": lambda x, d, k: ember.mean(x, d, keepdim=k),
    "ReduceMax": _extreme(ember.amax, -math.inf),
    "ReduceMin": _extreme(ember.amin, math.inf),
    "ReduceProd": lambda x, d, k: ember.prod(x, d, keepdim=k).to(x.dtype),
    "ReduceSumSquare": lambda x, d, k: _sum(x * x, d, k),
    "ReduceL1": lambda x, d, k: _sum(ember.abs(x), d, k),
    "ReduceL2": lambda x, d, k: ember.sqrt(_sum(x * x, d, k).to(ember.float64)).to(x.dtype),
    "ReduceLogSum": lambda x, d, k: ember.log(ember.sum(x, d, keepdim=k)),
    "ReduceLogSumExp": lambda x, d, k: ember.logsumexp(x.to(ember.float64), d, keepdim=k).to(
        x.dtype
    ),
}
for _name, _reducer in _REDUCERS.items():
    onnx_op(_name)(_reduce(_reducer, 13 if _name == "ReduceSum" else 18))


def _arg(fn: Callable[..., Tensor]) -> Handler:
    def handler(n: Node, x: Tensor) -> Tensor:
        axis = _axis(n.attr("axis", 0), x.ndim)
        keep = builtins.bool(n.attr("keepdims", 1))
        if n.attr("select_last_index", 0):
            idx = fn(ember.flip(x, [axis]), axis, keepdim=keep)
            return (x.shape[axis] - 1) - idx
        return fn(x, axis, keepdim=keep)

    return handler


onnx_op("ArgMax")(_arg(ember.argmax))
onnx_op("ArgMin")(_arg(ember.argmin))


# ----------------------------------------------------------------- constants
@onnx_op("Constant")
def _constant(n: Node) -> Tensor:
    for key, dtype in (
        ("value_float", np.float32),
        ("value_floats", np.float32),
        ("value_int", np.int64),
        ("value_ints", np.int64),
    ):
        if key in n.attrs:
            return ember.tensor(np.array(n.attrs[key], dtype=dtype))
    value = n.attr("value")
    if value is None:
        raise n.error(f"only tensor and numeric values are supported, got {sorted(n.attrs)}")
    return value


@onnx_op("EyeLike")
def _eye_like(n: Node, x: Tensor) -> Tensor:
    code = n.attr("dtype")
    dtype = x.dtype if code is None else onnx_dtype(n, code)
    rows, cols = x.shape
    out = np.eye(rows, cols, k=n.attr("k", 0))
    return ember.tensor(out, dtype=dtype)


@onnx_op("Swish")
def _swish(n: Node, x: Tensor) -> Tensor:
    return x * ember.sigmoid(x * n.attr("alpha", 1.0))


@onnx_op("CumProd")
def _cumprod(n: Node, x: Tensor, axis: Tensor) -> Tensor:
    dim = _axis(int(scalar(axis)), x.ndim)
    if n.attr("reverse", 0):
        x = ember.flip(x, [dim])
    if n.attr("exclusive", 0):
        ones = ember.ones_like(ember.narrow(x, dim, 0, 1))
        x = ember.cat([ones, ember.narrow(x, dim, 0, x.shape[dim] - 1)], dim)
    out = ember.cumprod(x, dim).to(x.dtype)
    return ember.flip(out, [dim]) if n.attr("reverse", 0) else out


@onnx_op("RMSNormalization")
def _rms_norm(n: Node, x: Tensor, scale: Tensor) -> Tensor:
    axis = _axis(n.attr("axis", -1), x.ndim)
    dims = tuple(range(axis, x.ndim))
    xs = x.to(ember.float32) if x.dtype == ember.float16 else x
    ms = ember.mean(ember.square(xs), dims, keepdim=True)
    return (xs * ember.rsqrt(ms + n.attr("epsilon", 1e-5))).to(x.dtype) * scale


@onnx_op("GatherND")
def _gather_nd(n: Node, x: Tensor, idx: Tensor) -> Tensor:
    b = n.attr("batch_dims", 0)
    depth = idx.shape[-1]
    idx = ember.where(idx < 0, idx + ember.tensor(list(x.shape[b : b + depth])), idx)
    batch = math.prod(x.shape[:b])
    xf = x.reshape(batch, *x.shape[b:])
    lead = idx.shape[b:-1]
    idf = idx.reshape(batch, -1, depth)
    parts = [ember.arange(batch).reshape(batch, 1)] + [idf[..., i] for i in range(depth)]
    out = getitem(xf, tuple(parts))
    return out.reshape(*x.shape[:b], *lead, *x.shape[b + depth :])


@onnx_op("LpPool")
def _lp_pool(n: Node, x: Tensor) -> Tensor:
    p = n.attr("p", 2)
    kernel, strides, dil = _geometry(n, x, n.attr("kernel_shape"))
    _, full = _pool_pads(n, x, kernel, strides, dil)
    geom = {"kernel_size": tuple(kernel), "stride": tuple(strides), "dilation": tuple(dil)}
    total = apply(sum_pool_op, ember.abs(x) ** p, padding=tuple(full), **geom)
    return total ** (1.0 / p)


# ----------------------------------------------------------------- losses
def _nll(n: Node, logp: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    ignore = n.attr("ignore_index")
    target = target.to(ember.int64)
    keep = None if ignore is None else target != ignore
    safe = target if keep is None else ember.where(keep, target, ember.zeros_like(target))
    picked = ember.gather(logp, 1, safe.unsqueeze(1)).squeeze(1)
    w = (
        ember.ones_like(picked)
        if weight is None
        else ember.index_select(weight, 0, safe.reshape(-1)).reshape(*safe.shape)
    )
    if keep is not None:
        w = ember.where(keep, w, ember.zeros_like(w))
    loss = -picked * w
    reduction = n.attr("reduction", "mean")
    if reduction == "none":
        return loss
    if reduction == "sum":
        return ember.sum(loss)
    return ember.sum(loss) / ember.sum(w)


@onnx_op("NegativeLogLikelihoodLoss")
def _nll_loss(n: Node, x: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    return _nll(n, x, target, weight)


@onnx_op("SoftmaxCrossEntropyLoss")
def _softmax_ce(
    n: Node, scores: Tensor, labels: Tensor, weight: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    logp = ember.log_softmax(scores, 1)
    return _nll(n, logp, labels, weight), logp


# ----------------------------------------------------------------- resize
def _source_coords(
    n: Node, mode: str, size: int, out: int, scale: float, roi: tuple[float, float]
) -> np.ndarray:
    """Where each output position along one axis samples the input (ONNX Resize)."""
    x = np.arange(out, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = size / 2 * (1 - out / (size * scale))
        return offset + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    if mode == "align_corners":
        return x * (size - 1) / (out - 1) if out > 1 else np.zeros(out)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if out == 1:
            return np.full(out, 0.5 * (start + end) * (size - 1))
        return start * (size - 1) + x * (end - start) * (size - 1) / (out - 1)
    raise n.error(f"coordinate_transformation_mode {mode!r} is not supported")


def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _taps(n: Node, coords: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Input indices (out, taps) and their weights along one axis."""
    mode = n.attr("mode", "nearest")
    if mode == "nearest":
        rule = n.attr("nearest_mode", "round_prefer_floor" if n.opset >= 11 else "floor")
        frac = coords - np.floor(coords)
        if rule == "floor":
            idx = np.floor(coords)
        elif rule == "ceil":
            idx = np.ceil(coords)
        elif rule == "round_prefer_ceil":
            idx = np.where(frac == 0.5, np.ceil(coords), np.round(coords))
        else:
            idx = np.where(frac == 0.5, np.floor(coords), np.round(coords))
        return idx[:, None].astype(np.int64), np.ones((len(coords), 1))
    base = np.floor(coords)
    t = coords - base
    if mode == "linear":
        idx = np.stack([base, base + 1], 1)
        weights = np.stack([1 - t, t], 1)
    elif mode == "cubic":
        idx = np.stack([base - 1, base, base + 1, base + 2], 1)
        a = n.attr("cubic_coeff_a", -0.75)
        weights = np.stack([_cubic(1 + t, a), _cubic(t, a), _cubic(1 - t, a), _cubic(2 - t, a)], 1)
    else:
        raise n.error(f"mode {mode!r} is not supported")
    if n.attr("exclude_outside", 0):
        weights = np.where((idx < 0) | (idx >= size), 0.0, weights)
        weights = weights / weights.sum(1, keepdims=True)
    return idx.astype(np.int64), weights


def _resize_axis(
    n: Node, x: Tensor, axis: int, out: int, scale: float, roi: tuple[float, float]
) -> Tensor:
    size = x.shape[axis]
    mode = n.attr("coordinate_transformation_mode", "half_pixel" if n.opset >= 11 else "asymmetric")
    coords = _source_coords(n, mode, size, out, scale, roi)
    idx, weights = _taps(n, coords, size)
    clamped = np.clip(idx, 0, size - 1)
    shape = [1] * x.ndim
    shape[axis] = out
    result: Tensor | None = None
    for k in range(idx.shape[1]):
        picked = ember.index_select(x, axis, ember.tensor(clamped[:, k]))
        if idx.shape[1] > 1 or mode == "tf_crop_and_resize":
            picked = picked * ember.tensor(weights[:, k].reshape(shape), dtype=x.dtype)
        result = picked if result is None else result + picked
    assert result is not None
    if mode == "tf_crop_and_resize":
        outside = (coords < 0) | (coords > size - 1)
        if outside.any():
            mask = ember.tensor(outside.reshape(shape))
            result = ember.where(mask, const(n.attr("extrapolation_value", 0.0), x), result)
    return result


@onnx_op("Resize", "Upsample")
def _resize(
    n: Node,
    x: Tensor,
    roi: Tensor | None = None,
    scales: Tensor | None = None,
    sizes: Tensor | None = None,
) -> Tensor:
    if n.op_type == "Upsample" or n.opset < 11:
        scales, roi = (roi, None) if n.opset >= 9 else (None, None)
        given = list(n.attr("scales", [])) if scales is None else None
        if given is not None:
            scales = ember.tensor(np.array(given, np.float32))
    if n.attr("antialias", 0):
        raise n.error("antialias=1 is not supported")
    axes = [_axis(a, x.ndim) for a in n.attr("axes", range(x.ndim))]
    in_sizes = [x.shape[a] for a in axes]
    if sizes is not None and sizes.numel() > 0:
        outs = ints(sizes)
        ratios = [o / s for o, s in zip(outs, in_sizes)]
        policy = n.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            r = builtins.min(ratios) if policy == "not_larger" else builtins.max(ratios)
            ratios = [r] * len(axes)
            outs = [math.floor(s * r + 0.5) for s in in_sizes]
    elif scales is not None and scales.numel() > 0:
        ratios = [float(v) for v in np.asarray(scales.numpy()).reshape(-1)]
        outs = [math.floor(s * r) for s, r in zip(in_sizes, ratios)]
    else:
        raise n.error("needs scales or sizes")
    roi_v = [float(v) for v in np.asarray(roi.numpy()).reshape(-1)] if roi is not None else []
    k = len(axes)
    for i, a in enumerate(axes):
        if outs[i] == in_sizes[i] and ratios[i] == 1.0:
            continue
        box = (roi_v[i], roi_v[i + k]) if len(roi_v) == 2 * k else (0.0, 1.0)
        x = _resize_axis(n, x, a, outs[i], ratios[i], box)
    return x


# ----------------------------------------------------------------- attention
def _heads(x: Tensor, heads: int | None) -> Tensor:
    """(B, S, H * D) as (B, H, S, D); 4-D inputs are already (B, H, S, D)."""
    if x.ndim == 4:
        return x
    if not heads:
        raise OnnxImportError("ONNX Attention: 3-D inputs need q_num_heads and kv_num_heads")
    b, s, hd = x.shape
    return x.reshape(b, s, heads, hd // heads).permute(0, 2, 1, 3)


@onnx_op("Attention")
def _attention(
    n: Node,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    past_key: Tensor | None = None,
    past_value: Tensor | None = None,
    nonpad_kv_seqlen: Tensor | None = None,
) -> tuple[Tensor, ...]:
    if nonpad_kv_seqlen is not None:
        raise n.error("the nonpad_kv_seqlen input is not supported")
    three_d = q.ndim == 3
    qh = _heads(q, n.attr("q_num_heads"))
    kh, vh = _heads(k, n.attr("kv_num_heads")), _heads(v, n.attr("kv_num_heads"))
    if past_key is not None:
        kh = ember.cat([past_key, kh], 2)
    if past_value is not None:
        vh = ember.cat([past_value, vh], 2)
    present_k, present_v = kh, vh
    groups = qh.shape[1] // kh.shape[1]
    if groups > 1:  # grouped-query attention: each kv head serves consecutive query heads
        kh = kh.unsqueeze(2).expand(-1, -1, groups, -1, -1).reshape(*qh.shape[:2], *kh.shape[2:])
        vh = vh.unsqueeze(2).expand(-1, -1, groups, -1, -1).reshape(*qh.shape[:2], *vh.shape[2:])
    scale = n.attr("scale")
    if scale is None:
        scale = 1.0 / math.sqrt(qh.shape[-1])
    scores = ember.matmul(qh, kh.transpose(-1, -2)) * scale
    stages = [scores]
    q_len, kv_len = scores.shape[-2], scores.shape[-1]
    if mask is not None:
        if mask.dtype == ember.bool_:
            mask = ember.where(mask, const(0.0, scores), const(-math.inf, scores))
        if mask.shape[-1] < kv_len:
            mask = ember.pad(mask, [0, kv_len - mask.shape[-1]], value=-math.inf)
        scores = scores + mask.to(scores.dtype)
    if n.attr("is_causal", 0):
        # Query i sees the past and the new keys up to its own position.
        past = 0 if past_key is None else past_key.shape[2]
        keep = ember.tril(ember.ones(q_len, kv_len, dtype=ember.bool_), past)
        scores = ember.where(keep, scores, const(-math.inf, scores))
    stages.append(scores)
    cap = n.attr("softcap", 0.0)
    if cap > 0:
        scores = cap * ember.tanh(scores / cap)
    stages.append(scores)
    probs = ember.softmax(scores, -1)
    stages.append(probs)
    y = ember.matmul(probs, vh)
    if three_d:
        y = y.permute(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)
    return y, present_k, present_v, stages[n.attr("qk_matmul_output_mode", 0)]


# ----------------------------------------------------------------- indexing
@onnx_op("ScatterND")
def _scatter_nd(n: Node, x: Tensor, idx: Tensor, updates: Tensor) -> Tensor:
    if n.attr("reduction", "none") != "none":
        raise n.error(f"reduction={n.attr('reduction')!r} is not supported")
    depth = idx.shape[-1]
    idx = ember.where(idx < 0, idx + ember.tensor(list(x.shape[:depth])), idx)
    return index_put(x, tuple(idx[..., i] for i in range(depth)), updates)


@onnx_op("Compress")
def _compress(n: Node, x: Tensor, condition: Tensor) -> Tensor:
    axis = n.attr("axis")
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = _axis(axis, x.ndim)
    keep = np.flatnonzero(np.asarray(condition.numpy())[: x.shape[axis]])
    return ember.index_select(x, axis, ember.tensor(keep.astype(np.int64)))


@onnx_op("ReverseSequence")
def _reverse_sequence(n: Node, x: Tensor, lengths: Tensor) -> Tensor:
    batch_axis, time_axis = n.attr("batch_axis", 1), n.attr("time_axis", 0)
    steps = np.arange(x.shape[time_axis])
    order = np.stack([np.where(steps < k, k - 1 - steps, steps) for k in ints(lengths)])
    if batch_axis > time_axis:  # order is (batch, time): put it in x's axis order
        order = order.T
    shape = [1] * x.ndim
    shape[batch_axis], shape[time_axis] = x.shape[batch_axis], x.shape[time_axis]
    index = ember.tensor(order.reshape(shape)).expand(*x.shape)
    return ember.gather(x, time_axis, index)


@onnx_op("CenterCropPad")
def _center_crop_pad(n: Node, x: Tensor, shape: Tensor) -> Tensor:
    axes = [_axis(a, x.ndim) for a in n.attr("axes", range(x.ndim))]
    for a, target in zip(axes, ints(shape)):
        size = x.shape[a]
        if target < size:
            x = ember.narrow(x, a, (size - target) // 2, target)
        elif target > size:
            widths = [0, 0] * (x.ndim - 1 - a)
            before = (target - size) // 2
            x = ember.pad(x, [*widths, before, target - size - before])
    return x
