"""Weight initialization (``ember.nn.init``), with PyTorch's names, defaults and formulas.

Every function fills its tensor in place under ``no_grad`` and returns it.
Random draws come from ``generator`` when given, else from ember's default
generator, so ``ember.manual_seed`` makes them reproducible.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ember._src.core import autograd
from ember._src.core import dtype as dt
from ember._src.core.creation import eye, from_numpy, rand, randn
from ember._src.core.random import Generator
from ember._src.core.tensor import Tensor
from ember._src.ops import elementwise as E

_GAIN_ONE = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    Args:
        nonlinearity: 'linear', 'conv{1,2,3}d', 'conv_transpose{1,2,3}d',
            'sigmoid', 'tanh', 'relu', 'leaky_relu' or 'selu'.
        param: the negative slope for 'leaky_relu' (0.01 when None).

    Returns:
        The gain: 1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
        sqrt(2 / (1 + slope**2)) for leaky_relu, 3/4 for selu.

    Example:
        >>> from ember.nn import init
        >>> round(init.calculate_gain("relu"), 4)
        1.4142
    """
    if nonlinearity in _GAIN_ONE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; use one of "
        f"{', '.join((*_GAIN_ONE, 'tanh', 'relu', 'leaky_relu', 'selu'))}"
    )


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(
            "fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
            f"(got shape {tuple(tensor.shape)})"
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} is not supported; use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _check(tensor: Any, name: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} expects an ember Tensor, got {type(tensor).__name__}")


def _copy_into(tensor: Tensor, value: Tensor) -> Tensor:
    with autograd.no_grad():
        tensor.copy_(value.reshape(tensor.shape))
    return tensor


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Fill with samples from U(a, b).

    Example:
        >>> import ember
        >>> from ember.nn import init
        >>> w = init.uniform_(ember.empty(1000), -0.5, 0.5)
        >>> bool((w >= -0.5).all() and (w < 0.5).all())
        True
    """
    _check(tensor, "uniform_")
    with autograd.no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Fill with samples from N(mean, std**2)."""
    _check(tensor, "normal_")
    with autograd.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def _erfinv(y: Tensor) -> Tensor:
    # Winitzki's closed form (error ~1e-3) refined by three Newton steps on erf.
    a = 0.147
    ln = E.log1p(-y * y)
    first = 2 / (math.pi * a) + ln / 2
    x = E.sign(y) * E.sqrt(E.sqrt(first * first - ln / a) - first)
    for _ in range(3):
        x = x - (E.erf(x) - y) / (E.exp(-x * x) * (2 / math.sqrt(math.pi)))
    return x


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Generator | None = None,
) -> Tensor:
    """Fill with samples from N(mean, std**2) truncated to [a, b] (inverse-CDF sampling).

    Args:
        tensor: the tensor to fill.
        mean: mean of the untruncated normal.
        std: standard deviation of the untruncated normal.
        a: lower cut-off (absolute value, not in standard deviations).
        b: upper cut-off.
        generator: the random generator (default: ember's).

    Example:
        >>> import ember
        >>> from ember.nn import init
        >>> w = init.trunc_normal_(ember.empty(1000), std=1.0, a=-0.5, b=0.5)
        >>> bool((w.abs() <= 0.5).all())
        True
    """
    _check(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    if std <= 0:
        raise ValueError(f"trunc_normal_: std must be positive, got {std}")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(
            "trunc_normal_: mean is more than 2 std from [a, b]; the distribution of values "
            "may be incorrect",
            stacklevel=2,
        )

    def cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
    with autograd.no_grad():
        u = rand(tensor.shape, dtype=dt.float64, device=tensor.device, generator=generator)
        # erfinv's argument, kept strictly inside (-1, 1) so no draw reaches infinity.
        y = ((u * (hi - lo) + lo) * 2 - 1).clamp(-1 + 1e-15, 1 - 1e-15)
        x = (_erfinv(y) * (std * math.sqrt(2.0)) + mean).clamp(a, b)
        return _copy_into(tensor, x)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    _check(tensor, "constant_")
    with autograd.no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal)."""
    _check(tensor, "eye_")
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    return _copy_into(tensor, eye(*tensor.shape, dtype=tensor.dtype, device=tensor.device))


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Glorot uniform: U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)).

    Example:
        >>> import ember
        >>> from ember.nn import init
        >>> w = init.xavier_uniform_(ember.empty(30, 20))
        >>> bool(w.abs().max() <= (6 / 50) ** 0.5)
        True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Glorot normal: N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str, name: str) -> float | None:
    _check(tensor, name)
    if 0 in tensor.shape:
        warnings.warn(f"{name}: initializing a zero-element tensor is a no-op", stacklevel=3)
        return None
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> Tensor:
    """He uniform: U(-bound, bound) with bound = gain * sqrt(3 / fan).

    Args:
        tensor: the tensor to fill (at least 2-D).
        a: the negative slope of the rectifier after this layer (for 'leaky_relu').
        mode: 'fan_in' keeps the forward variance, 'fan_out' the backward one.
        nonlinearity: the nonlinearity name passed to :func:`calculate_gain`.
        generator: the random generator (default: ember's).

    Example:
        >>> import ember, math
        >>> from ember.nn import init
        >>> w = init.kaiming_uniform_(ember.empty(8, 50), nonlinearity="relu")
        >>> bool(w.abs().max() <= math.sqrt(6 / 50))
        True
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> Tensor:
    """He normal: N(0, std**2) with std = gain / sqrt(fan) (arguments: :func:`kaiming_uniform_`)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix: the Q of a Gaussian matrix's QR, times ``gain``.

    Dimensions after the first are flattened, so ``W.reshape(rows, -1)`` has
    orthonormal rows (or columns, whichever are fewer). The QR factorization
    runs on the host with NumPy: initialization is not differentiated.

    Example:
        >>> import ember
        >>> from ember.nn import init
        >>> w = init.orthogonal_(ember.empty(3, 5, dtype=ember.float64))
        >>> bool(((w @ w.t()) - ember.eye(3, dtype=ember.float64)).abs().max() < 1e-12)
        True
    """
    _check(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(
            f"orthogonal_: only tensors with 2 or more dimensions are supported, got shape "
            f"{tuple(tensor.shape)}"
        )
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = randn(rows, cols, dtype=dt.float64, generator=generator).numpy()
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # makes the factorization unique (uniform over orthogonals)
    if rows < cols:
        q = q.T
    return _copy_into(tensor, from_numpy(np.ascontiguousarray(q * gain)))
