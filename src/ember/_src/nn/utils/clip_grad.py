"""Gradient utilities: clip by total norm or by value, flatten parameters to a vector.

PyTorch has these under ``torch.nn.utils``; ember re-exports them as ``ember.nn.utils``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ember._src.core.autograd import no_grad
from ember._src.core.creation import tensor
from ember._src.core.tensor import Tensor
from ember._src.ops.reduce import norm
from ember._src.ops.registry import is_tracing
from ember._src.ops.shape import cat, stack

Parameters = Tensor | Iterable[Tensor]


def _as_list(parameters: Parameters) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"expected Tensors, but parameter {i} is a {type(p).__name__}")
    return params


def clip_grad_norm_(
    parameters: Parameters,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the gradients in place so that their total norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradients together, as if
    concatenated into one vector. Gradients are multiplied by
    ``max_norm / (total_norm + 1e-6)`` when that is below 1.

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` to clip
            (parameters without a gradient are skipped).
        max_norm: the largest total norm allowed.
        norm_type: the p of the p-norm: a number, or ``inf`` (``"inf"``) for the max-norm.
        error_if_nonfinite: raise if the total norm is nan or inf instead of scaling.

    Returns:
        The total norm of the gradients before clipping, as a 0-d Tensor.

    Example:
        >>> import ember
        >>> from ember.nn.utils import clip_grad_norm_
        >>> w = ember.tensor([3.0, 4.0], requires_grad=True)
        >>> w.grad = ember.tensor([3.0, 4.0])
        >>> clip_grad_norm_([w], max_norm=1.0)
        tensor(5.)
        >>> w.grad
        tensor([0.6000, 0.8000])
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return tensor(0.0)
    p = float(norm_type)
    with no_grad():
        norms = [norm(g.reshape(-1), p=p) for g in grads]
        total = norms[0] if len(norms) == 1 else norm(stack(norms), p=p)
        if is_tracing() and not error_if_nonfinite:
            # ember.compile: the norm is a graph value; scale by min(coef, 1) as a tensor
            coef_t = (max_norm / (total + 1e-6)).clamp(max=1.0)
            for g in grads:
                g.mul_(coef_t)
            return total
        value = total.item()
        if error_if_nonfinite and not math.isfinite(value):
            raise RuntimeError(
                f"the total norm of order {p} of the gradients is {value}, so they can't be "
                "clipped; fix the nan/inf gradients, or pass error_if_nonfinite=False to scale "
                "by it anyway"
            )
        coef = max_norm / (value + 1e-6)
        if not coef >= 1.0:  # also scales by a nan coefficient, as PyTorch does
            for g in grads:
                g.mul_(coef)
    return total


def clip_grad_value_(parameters: Parameters, clip_value: float) -> None:
    """Clamp every gradient into ``[-clip_value, clip_value]`` in place.

    Example:
        >>> import ember
        >>> from ember.nn.utils import clip_grad_value_
        >>> w = ember.zeros(3, requires_grad=True)
        >>> w.grad = ember.tensor([-2.0, 0.5, 3.0])
        >>> clip_grad_value_(w, 1.0)
        >>> w.grad
        tensor([-1.0000,  0.5000,  1.0000])
    """
    clip_value = float(clip_value)
    with no_grad():
        for p in _as_list(parameters):
            if p.grad is not None:
                p.grad.clamp_(min=-clip_value, max=clip_value)


def parameters_to_vector(parameters: Parameters) -> Tensor:
    """Flatten and concatenate the parameters into one 1-d Tensor (a copy).

    Example:
        >>> import ember
        >>> from ember.nn.utils import parameters_to_vector
        >>> parameters_to_vector([ember.ones(2, 2), ember.zeros(3)])
        tensor([1., 1., 1., 1., 0., 0., 0.])
    """
    params = _as_list(parameters)
    if not params:
        raise ValueError("parameters_to_vector got no parameters")
    _check_one_device(params)
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Parameters) -> None:
    """Copy consecutive slices of the 1-d ``vec`` into the parameters, in place.

    Example:
        >>> import ember
        >>> from ember.nn.utils import vector_to_parameters
        >>> a, b = ember.zeros(2, 2), ember.zeros(3)
        >>> vector_to_parameters(ember.arange(7.0), [a, b])
        >>> b
        tensor([4., 5., 6.])
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, got {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"expected a 1-d vec, got shape {tuple(vec.shape)}")
    params = _as_list(parameters)
    _check_one_device([vec, *params])
    total = sum(p.numel() for p in params)
    if total != vec.numel():
        raise ValueError(f"vec has {vec.numel()} elements but the parameters have {total} in all")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[offset : offset + n].reshape(p.shape))
            offset += n


def _check_one_device(tensors: list[Tensor]) -> None:
    devices = {str(t.device) for t in tensors}
    if len(devices) > 1:
        raise TypeError(
            f"found tensors on different devices ({', '.join(sorted(devices))}); "
            "move them to one device first"
        )
