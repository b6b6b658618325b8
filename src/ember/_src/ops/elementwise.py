"""Elementwise primitives: arithmetic, transcendental functions, comparisons, where."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core.aval import AVal
from ember._src.core.backend import register_kernel
from ember._src.core.creation import full_like
from ember._src.core.tensor import Tensor
from ember._src.ops import reduce as R
from ember._src.ops.registry import apply, compute_dtype, defop, op_error

# ----------------------------------------------------------------- shape rules


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if isinstance(a, (Tensor, AVal)) else ()


def broadcast_shapes(*args: Any, name: str = "broadcast") -> tuple[int, ...]:
    shapes = [_shape(a) for a in args if a is not None]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise op_error(
            name,
            args,
            "operands could not be broadcast together with shapes "
            + " ".join(str(s) for s in shapes)
            + "; make the trailing dimensions equal or 1 (reshape or unsqueeze one operand)",
        ) from None


def _unary_shape(a: Any, **_: Any) -> tuple[int, ...]:
    return tuple(a.shape)


def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum a broadcast gradient back down to ``shape`` (the adjoint of broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1
    )
    r = R.sum(g, dim=axes, keepdim=True) if axes else g
    return r.reshape(shape) if r.shape != shape else r


def _nograd(g: Tensor, out: Any, *args: Any, **kw: Any) -> None:
    return None


def _zero(g: Tensor, out: Any, *args: Any, **kw: Any) -> Tensor:
    return g * 0


def _unary(name: str, fwd: Any, rule: Any, kind: str = "float", **kw: Any) -> Any:
    op = defop(name, fwd, vjp=(rule,) if rule else None, shape=_unary_shape, kind=kind, **kw)

    def fn(input: Tensor) -> Tensor:
        return apply(op, input)

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}."
    return op, fn


def _binary(name: str, fwd: Any, rules: Any, kind: str = "promote", **kw: Any) -> Any:
    def shape(a: Any, b: Any) -> tuple[int, ...]:
        return broadcast_shapes(a, b, name=name)

    op = defop(name, fwd, vjp=rules, shape=shape, kind=kind, **kw)

    def fn(input: Any, other: Any) -> Tensor:
        return apply(op, input, other)

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}, with broadcasting and PyTorch type promotion."
    return op, fn


# ----------------------------------------------------------------- unary ops
neg_op, neg = _unary(
    "neg", lambda xp, a: xp.negative(a), lambda g, o, a: -g, "same", save_inputs=False
)
sign_op, sign = _unary(
    "sign",
    lambda xp, a: a.copy() if a.dtype.kind == "b" else xp.sign(a),  # NumPy has no bool sign
    _zero,
    "same",
    save_inputs=False,
)
abs_op, abs = _unary("abs", lambda xp, a: xp.abs(a), lambda g, o, a: g * sign(a), "same")
exp_op, exp = _unary(
    "exp", lambda xp, a: xp.exp(a), lambda g, o, a: g * o, save_output=True, save_inputs=False
)
log_op, log = _unary("log", lambda xp, a: xp.log(a), lambda g, o, a: g / a)
log1p_op, log1p = _unary("log1p", lambda xp, a: xp.log1p(a), lambda g, o, a: g / (a + 1))
expm1_op, expm1 = _unary(
    "expm1",
    lambda xp, a: xp.expm1(a),
    lambda g, o, a: g * (o + 1),
    save_output=True,
    save_inputs=False,
)
sqrt_op, sqrt = _unary(
    "sqrt",
    lambda xp, a: xp.sqrt(a),
    lambda g, o, a: g / (o * 2),
    save_output=True,
    save_inputs=False,
)


def _sin_rule(g: Tensor, o: Any, a: Tensor) -> Tensor:
    return g * cos(a)  # a def, not a lambda: cos is defined below


sin_op, sin = _unary("sin", lambda xp, a: xp.sin(a), _sin_rule)
cos_op, cos = _unary("cos", lambda xp, a: xp.cos(a), lambda g, o, a: -g * sin(a))
tan_op, tan = _unary(
    "tan",
    lambda xp, a: xp.tan(a),
    lambda g, o, a: g * (o * o + 1),
    save_output=True,
    save_inputs=False,
)
tanh_op, tanh = _unary(
    "tanh",
    lambda xp, a: xp.tanh(a),
    lambda g, o, a: g * (1 - o * o),
    save_output=True,
    save_inputs=False,
)
# 0.5 * (1 + tanh(x / 2)) is sigmoid without overflow for large |x|.
sigmoid_op, sigmoid = _unary(
    "sigmoid",
    lambda xp, a: xp.multiply(xp.tanh(a * a.dtype.type(0.5)) + 1, a.dtype.type(0.5)),
    lambda g, o, a: g * o * (1 - o),
    save_output=True,
    save_inputs=False,
)
relu_op, relu = _unary(
    "relu",
    lambda xp, a: xp.maximum(a, a.dtype.type(0)),  # a typed 0: bool stays bool
    # Multiplying by the mask is several times faster than where() on NumPy.
    lambda g, o, a: g * (o > 0).to(g.dtype),
    "same",
    save_output=True,
    save_inputs=False,
)


def _erf_cpu(a: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf as sp_erf
    except ImportError:  # exact to float64 through math.erf, at Python speed
        vec = np.frompyfunc(math.erf, 1, 1)
        return np.asarray(vec(a), dtype=a.dtype)
    return np.asarray(sp_erf(a), dtype=a.dtype)


register_kernel("cpu", "erf", _erf_cpu)
register_kernel("cuda", "erf", lambda a: __import__("cupyx.scipy.special", fromlist=["erf"]).erf(a))
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
erf_op, erf = _unary(
    "erf",
    lambda xp, a: _erf_kernel(xp)(a),
    lambda g, o, a: g * exp(-(a * a)) * _TWO_OVER_SQRT_PI,
)


def _erf_kernel(xp: Any) -> Any:
    from ember._src.core.backend import get_backend

    return get_backend("cpu" if xp is np else "cuda").kernel("erf")


floor_op, floor = _unary("floor", lambda xp, a: xp.floor(a), _zero, "same", save_inputs=False)
ceil_op, ceil = _unary("ceil", lambda xp, a: xp.ceil(a), _zero, "same", save_inputs=False)
round_op, round = _unary("round", lambda xp, a: xp.round(a), _zero, "same", save_inputs=False)
trunc_op, trunc = _unary("trunc", lambda xp, a: xp.trunc(a), _zero, "same", save_inputs=False)
reciprocal_op, reciprocal = _unary(
    "reciprocal",
    lambda xp, a: 1 / a,
    lambda g, o, a: -g * o * o,
    save_output=True,
    save_inputs=False,
)

isnan_op, isnan = _unary("isnan", lambda xp, a: xp.isnan(a), None, "bool")
isinf_op, isinf = _unary("isinf", lambda xp, a: xp.isinf(a), None, "bool")
isfinite_op, isfinite = _unary("isfinite", lambda xp, a: xp.isfinite(a), None, "bool")
logical_not_op, logical_not = _unary("logical_not", lambda xp, a: xp.logical_not(a), None, "bool")


def rsqrt(input: Tensor) -> Tensor:
    """Elementwise 1 / sqrt(x)."""
    return reciprocal(sqrt(input))


# ----------------------------------------------------------------- binary ops
add_op, add_ = _binary(
    "add",
    lambda xp, a, b: a + b,
    (lambda g, o, a, b: sum_to(g, a.shape), lambda g, o, a, b: sum_to(g, b.shape)),
    save_inputs=False,
)
sub_op, sub_ = _binary(
    "sub",
    lambda xp, a, b: a - b,
    (lambda g, o, a, b: sum_to(g, a.shape), lambda g, o, a, b: sum_to(-g, b.shape)),
    save_inputs=False,
)
mul_op, mul = _binary(
    "mul",
    lambda xp, a, b: a * b,
    (lambda g, o, a, b: sum_to(g * b, a.shape), lambda g, o, a, b: sum_to(g * a, b.shape)),
    needs=((1,), (0,)),
)
div_op, div_ = _binary(
    "div",
    lambda xp, a, b: xp.true_divide(a, b),
    (lambda g, o, a, b: sum_to(g / b, a.shape), lambda g, o, a, b: sum_to(-g * o / b, b.shape)),
    kind="float",
    save_output=True,
    needs=((1,), (1,)),
)


def _log_of(a: Any) -> Any:
    if isinstance(a, Tensor):
        return log(where(a == 0, 1, a))  # d/db a**b at a == 0 is taken as 0, as PyTorch does
    return math.log(a) if a != 0 else 0.0


def _pow_grad_base(g: Tensor, a: Any, b: Any) -> Tensor:
    # b * a**(b - 1) is 0 * inf at a == 0, b == 0; the derivative of a**0 is 0 (PyTorch too).
    if not isinstance(b, Tensor):
        if b == 2:  # the common square: no pow on the backward path
            return g * a * 2
        return g * 0 if b == 0 else g * b * a ** (b - 1)
    zero = b == 0
    return where(zero, 0, g * b * where(zero, 1, a) ** (b - 1))


def _power(xp: Any, a: Any, b: Any) -> Any:
    # Squares and square roots have kernels several times faster than the general power.
    if type(b) is int or type(b) is float:
        if b == 2:
            return xp.square(a)
        if b == 0.5 and a.dtype.kind == "f":
            return xp.sqrt(a)
        if b == 1:
            return a.copy()
    return xp.power(a, b)


pow_op, pow_ = _binary(
    "pow",
    _power,
    (
        lambda g, o, a, b: sum_to(_pow_grad_base(g, a, b), a.shape),
        lambda g, o, a, b: sum_to(g * o * _log_of(a), b.shape),
    ),
    save_output=True,
)
floor_divide_op, floor_divide = _binary(
    "floor_divide",
    lambda xp, a, b: xp.floor_divide(a, b),
    (lambda g, o, a, b: sum_to(g * 0, a.shape), lambda g, o, a, b: sum_to(g * 0, b.shape)),
)
remainder_op, remainder = _binary(
    "remainder",
    lambda xp, a, b: xp.remainder(a, b),
    (
        lambda g, o, a, b: sum_to(g, a.shape),
        lambda g, o, a, b: sum_to(-g * floor_divide(a, b), b.shape),
    ),
)
maximum_op, maximum = _binary(
    "maximum",
    lambda xp, a, b: xp.maximum(a, b),
    (
        lambda g, o, a, b: sum_to(where(a > b, g, where(a == b, g * 0.5, 0)), a.shape),
        lambda g, o, a, b: sum_to(where(b > a, g, where(a == b, g * 0.5, 0)), b.shape),
    ),
)
minimum_op, minimum = _binary(
    "minimum",
    lambda xp, a, b: xp.minimum(a, b),
    (
        lambda g, o, a, b: sum_to(where(a < b, g, where(a == b, g * 0.5, 0)), a.shape),
        lambda g, o, a, b: sum_to(where(b < a, g, where(a == b, g * 0.5, 0)), b.shape),
    ),
)


def _atan2_den(a: Any, b: Any) -> Any:
    # At the origin both numerators are 0: divide by 1 there, giving PyTorch's zero gradient.
    den = a * a + b * b
    return where(den == 0, 1, den) if isinstance(den, Tensor) else den or 1


atan2_op, atan2 = _binary(
    "atan2",
    lambda xp, a, b: xp.arctan2(a, b),
    (
        lambda g, o, a, b: sum_to(g * b / _atan2_den(a, b), a.shape),
        lambda g, o, a, b: sum_to(-g * a / _atan2_den(a, b), b.shape),
    ),
    kind="float",
)

eq_op, eq = _binary("eq", lambda xp, a, b: a == b, None, "bool")
ne_op, ne = _binary("ne", lambda xp, a, b: a != b, None, "bool")
lt_op, lt = _binary("lt", lambda xp, a, b: a < b, None, "bool")
le_op, le = _binary("le", lambda xp, a, b: a <= b, None, "bool")
gt_op, gt = _binary("gt", lambda xp, a, b: a > b, None, "bool")
ge_op, ge = _binary("ge", lambda xp, a, b: a >= b, None, "bool")
logical_and_op, logical_and = _binary(
    "logical_and", lambda xp, a, b: xp.logical_and(a, b), None, "bool"
)
logical_or_op, logical_or = _binary(
    "logical_or", lambda xp, a, b: xp.logical_or(a, b), None, "bool"
)
logical_xor_op, logical_xor = _binary(
    "logical_xor", lambda xp, a, b: xp.logical_xor(a, b), None, "bool"
)
bitwise_and_op, bitwise_and = _binary(
    "bitwise_and", lambda xp, a, b: xp.bitwise_and(a, b), None, "promote"
)
bitwise_or_op, bitwise_or = _binary(
    "bitwise_or", lambda xp, a, b: xp.bitwise_or(a, b), None, "promote"
)
bitwise_xor_op, bitwise_xor = _binary(
    "bitwise_xor", lambda xp, a, b: xp.bitwise_xor(a, b), None, "promote"
)


def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """input + alpha * other, with broadcasting."""
    return add_(input, other if alpha == 1 else other * alpha)


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """input - alpha * other, with broadcasting."""
    return sub_(input, other if alpha == 1 else other * alpha)


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """input / other; ``rounding_mode`` 'trunc' or 'floor' as in PyTorch."""
    if rounding_mode is None:
        return div_(input, other)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        q = div_(input, other)
        ints = isinstance(input, Tensor) and not input.dtype.is_floating_point
        return trunc(q).to(input.dtype) if ints else trunc(q)
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


def pow(input: Any, exponent: Any) -> Tensor:
    """input ** exponent, elementwise."""
    return pow_(input, exponent)


def square(input: Tensor) -> Tensor:
    return mul(input, input)


# ----------------------------------------------------------------- clamp, where
def _clamp_shape(a: Any, min: Any = None, max: Any = None) -> tuple[int, ...]:
    return tuple(a.shape)


def _clamp_rule(g: Tensor, o: Any, a: Tensor, min: Any = None, max: Any = None) -> Tensor:
    keep = None
    if min is not None:
        keep = a >= min
    if max is not None:
        keep = (a <= max) if keep is None else logical_and(keep, a <= max)
    return g if keep is None else where(keep, g, 0)


def _clip(xp: Any, a: Any, lo: Any, hi: Any) -> Any:
    # One-sided maximum/minimum are several times faster than clip on NumPy.
    if hi is None:
        return xp.maximum(a, lo)
    if lo is None:
        return xp.minimum(a, hi)
    return xp.minimum(xp.maximum(a, lo), hi)


clamp_op = defop(
    "clamp",
    # NumPy may widen the result (bfloat16 with a Python float): keep the input's dtype.
    lambda xp, a, min=None, max=None: _clip(xp, a, min, max).astype(a.dtype, copy=False),
    vjp=(_clamp_rule,),
    shape=_clamp_shape,
    kind="same",
)


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Clamp values into [min, max]; either bound may be None or a Tensor.

    Example:
        >>> import ember
        >>> ember.tensor([-2.0, 0.5, 3.0]).clamp(min=0, max=1)
        tensor([0.0000, 0.5000, 1.0000])
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    # The bounds take part in promotion, as in PyTorch: int tensor, float bound -> float.
    result = compute_dtype((input, min, max))
    if result is not input.dtype:
        input = input.to(result)
    if not result.is_floating_point:  # an int bound wraps into the dtype (uint8: -2 -> 254)
        min, max = (b if b is None else np.asarray(b).astype(result.np)[()] for b in (min, max))
    return apply(clamp_op, input, min=min, max=max)


def _where_shape(c: Any, a: Any, b: Any) -> tuple[int, ...]:
    return broadcast_shapes(c, a, b, name="where")


where_op = defop(
    "where",
    lambda xp, c, a, b: xp.where(c, a, b),
    vjp=(
        _nograd,
        lambda g, o, c, a, b: sum_to(where(c, g, 0), a.shape),
        lambda g, o, c, a, b: sum_to(where(c, 0, g), b.shape),
    ),
    shape=_where_shape,
    promote_from=1,
    needs=((), (0,), (0,)),
)


def where(condition: Tensor, input: Any, other: Any) -> Tensor:
    """Pick ``input`` where ``condition`` holds, else ``other`` (broadcasting).

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, -1.0])
        >>> ember.where(x > 0, x, 0.0)
        tensor([1., 0.])
    """
    if not isinstance(condition, Tensor):
        raise TypeError(f"where: condition must be a bool Tensor, got {type(condition).__name__}")
    if condition.dtype.category != 0:
        condition = condition != 0
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # Two scalars: the result takes their dtype, placed like the condition.
        ref = full_like(condition, input, dtype=dt.result_type([], [], [input, other]))
        return apply(where_op, condition, ref, other)
    return apply(where_op, condition, input, other)
