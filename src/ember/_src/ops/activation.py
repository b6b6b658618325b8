"""Activation composites and softmax, written from primitives (they inherit gradients)."""

from __future__ import annotations

import math
from typing import Any

from ember._src.core.dtype import float32
from ember._src.core.tensor import Tensor
from ember._src.ops import elementwise as E
from ember._src.ops import reduce as R

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
# Half-precision softmax is computed in float32 and rounded once, as PyTorch does on CPU.
_HALF = ("float16", "bfloat16")


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """GELU: exact (``approximate='none'``, with erf) or the tanh approximation."""
    if approximate == "none":
        return input * 0.5 * (E.erf(input * (1.0 / math.sqrt(2.0))) + 1.0)
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * _SQRT_2_OVER_PI
        return input * 0.5 * (E.tanh(inner) + 1.0)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: Tensor) -> Tensor:
    """x * sigmoid(x)."""
    return input * E.sigmoid(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` as in PyTorch; no overflow."""
    z = input * beta
    soft = (E.maximum(z, 0) + E.log1p(E.exp(-E.abs(z)))) / beta
    return E.where(z > threshold, input, soft)


def softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, shifted by the max for stability.

    Example:
        >>> import ember
        >>> ember.softmax(ember.tensor([1000.0, 1000.0]), dim=0)
        tensor([0.5000, 0.5000])
    """
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.name in _HALF:
        return softmax(input.to(float32), dim).to(input.dtype)
    d = -1 if dim is None else dim
    z = input - R.amax(input, d, keepdim=True).detach()
    e = E.exp(z)
    return e / R.sum(e, d, keepdim=True)


def log_softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    """log(softmax(x)) computed as x - logsumexp(x), stable for large inputs."""
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.name in _HALF:
        return log_softmax(input.to(float32), dim).to(input.dtype)
    d = -1 if dim is None else dim
    z = input - R.amax(input, d, keepdim=True).detach()
    return z - E.log(R.sum(E.exp(z), d, keepdim=True))
