"""Normalization: batch_norm, layer_norm, group_norm and the layers BatchNorm1d,
BatchNorm2d, LayerNorm, GroupNorm (PyTorch's names, buffers and update rules).

Each is a composite of ember ops (mean, rsqrt, arithmetic), so gradients of
any order come from the primitives' rules.
"""

from __future__ import annotations

from typing import Any

from ember._src.core import autograd
from ember._src.core import dtype as dt
from ember._src.core.creation import ones, tensor, zeros
from ember._src.core.tensor import Tensor
from ember._src.nn.module import Module, Parameter
from ember._src.ops.elementwise import rsqrt
from ember._src.ops.reduce import mean
from ember._src.ops.registry import op_error


def _normalize(
    x: Tensor, dims: tuple[int, ...], eps: float, weight: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``(x - mean) / sqrt(var + eps)`` over ``dims`` (biased variance), and that variance.

    A ``weight`` shaped like the statistics is folded into the small scale
    tensor, which saves a pass over ``x`` forward and backward.
    """
    centered = x - mean(x, dims, keepdim=True)
    var = mean(centered * centered, dims, keepdim=True)
    scale = rsqrt(var + eps)
    return centered * (scale if weight is None else scale * weight), var


def _channel_shape(x: Tensor) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _affine(
    y: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]
) -> Tensor:
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization over every dimension but the channels (dim 1).

    In training the batch's mean and biased variance normalize the input and,
    when given, ``running_mean`` / ``running_var`` are updated in place:
    ``running = (1 - momentum) * running + momentum * batch`` with the unbiased
    batch variance. Otherwise the running statistics normalize.

    Args:
        input: (N, C, *).
        running_mean, running_var: (C,) buffers, or None.
        weight, bias: (C,) affine parameters, or None.
        training: use (and record) batch statistics.
        momentum: weight of the new batch in the running averages.
        eps: added to the variance.

    Returns:
        A tensor shaped like ``input``.

    Example:
        >>> import ember
        >>> from ember._src.nn.normalization import batch_norm
        >>> y = batch_norm(ember.tensor([[1.0], [3.0]]), None, None, training=True)
        >>> [round(v, 3) for v in y.flatten().tolist()]
        [-1.0, 1.0]
    """
    if input.ndim < 2:
        raise op_error("batch_norm", (input,), "input must be (N, C, *)")
    c = input.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and t.shape != (c,):
            raise op_error(
                "batch_norm", (input, t), f"{name} must have shape ({c},), one value per channel"
            )
    shape = _channel_shape(input)
    dims = (0, *range(2, input.ndim))
    if training:
        n = input.numel() // c if c else 0
        if n <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"of size {list(input.shape)}"
            )
        y, var = _normalize(input, dims, eps, None if weight is None else weight.reshape(shape))
        if running_mean is not None or running_var is not None:
            with autograd.no_grad():
                if running_mean is not None:
                    batch_mean = mean(input, dims).to(running_mean.dtype)
                    running_mean.copy_(running_mean * (1 - momentum) + batch_mean * momentum)
                if running_var is not None:
                    unbiased = var.reshape(c).to(running_var.dtype) * (n / (n - 1))
                    running_var.copy_(running_var * (1 - momentum) + unbiased * momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed unless training")
        scale = rsqrt(running_var.reshape(shape) + eps)
        if weight is not None:
            scale = scale * weight.reshape(shape)
        shift = -running_mean.reshape(shape) * scale
        return input * scale + (shift if bias is None else shift + bias.reshape(shape))
    return _affine(y, None, bias, shape)


def layer_norm(
    input: Tensor,
    normalized_shape: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` dimensions of each sample.

    Args:
        input: (*, *normalized_shape).
        normalized_shape: an int or the shape of the trailing dimensions.
        weight, bias: elementwise affine parameters of ``normalized_shape``, or None.
        eps: added to the (biased) variance.

    Returns:
        A tensor shaped like ``input``.

    Example:
        >>> import ember
        >>> from ember._src.nn.normalization import layer_norm
        >>> y = layer_norm(ember.tensor([[1.0, 3.0]]), 2)
        >>> [round(v, 3) for v in y.flatten().tolist()]
        [-1.0, 1.0]
    """
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k :]) != ns:
        raise op_error(
            "layer_norm",
            (input,),
            f"given normalized_shape={list(ns)}, expected input with "
            f"shape [*, {', '.join(map(str, ns))}], but got input of size {list(input.shape)}",
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != ns:
            raise op_error("layer_norm", (input, t), f"{name} must have shape {ns}")
    y, _ = _normalize(input, tuple(range(input.ndim - k, input.ndim)), eps)
    return _affine(y, weight, bias, ns)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each sample over groups of channels (and all their positions).

    Args:
        input: (N, C, *) with C divisible by ``num_groups``.
        num_groups: number of channel groups.
        weight, bias: per-channel (C,) affine parameters, or None.
        eps: added to the (biased) variance.

    Returns:
        A tensor shaped like ``input``.

    Example:
        >>> import ember
        >>> from ember._src.nn.normalization import group_norm
        >>> group_norm(ember.randn(2, 4, 3), 2).shape
        (2, 4, 3)
    """
    if input.ndim < 2 or num_groups < 1 or input.shape[1] % num_groups:
        raise op_error(
            "group_norm",
            (input,),
            f"expected an input (N, C, *) with C divisible by "
            f"num_groups={num_groups}, got input of size {list(input.shape)}",
        )
    c = input.shape[1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise op_error("group_norm", (input, t), f"{name} must have shape ({c},)")
    n, per = input.shape[0], c // num_groups
    grouped = input.reshape(n, num_groups, per, input.numel() // (n * c) if n * c else 0)
    w = None if weight is None else weight.reshape(1, num_groups, per, 1)
    y, _ = _normalize(grouped, (2, 3), eps, w)
    return _affine(y.reshape(input.shape), None, bias, _channel_shape(input))


# ----------------------------------------------------------------- layers
class _BatchNorm(Module):
    _dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(ones(num_features, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(zeros(num_features, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=dt.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with autograd.no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        with autograd.no_grad():
            if self.weight is not None:
                self.weight.fill_(1)
            if self.bias is not None:
                self.bias.zero_()

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in self._dims:
            dims = " or ".join(f"{d}D" for d in self._dims)
            raise ValueError(
                f"{type(self).__name__}: expected {dims} input (got {input.ndim}D input)"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with autograd.no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / int(self.num_batches_tracked.item())
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return batch_norm(
            input,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) inputs, per channel.

    Args:
        num_features: C.
        eps: added to the variance (default 1e-5).
        momentum: weight of each new batch in the running statistics (default 0.1);
            None for a cumulative average over all batches seen.
        affine: learn a per-channel scale (weight) and, if ``bias``, shift (bias).
        track_running_stats: keep ``running_mean``, ``running_var`` and
            ``num_batches_tracked`` buffers for evaluation.
        device, dtype: of the parameters and buffers.
        bias: keyword-only; learn the shift (default True).

    Example:
        >>> import ember
        >>> bn = ember.nn.BatchNorm1d(3)
        >>> bn
        BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
        >>> bn(ember.randn(8, 3)).shape
        (8, 3)
    """

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) inputs, per channel; arguments as BatchNorm1d.

    Example:
        >>> import ember
        >>> ember.nn.BatchNorm2d(4)(ember.randn(2, 4, 5, 5)).shape
        (2, 4, 5, 5)
    """

    _dims = (4,)


class LayerNorm(Module):
    """Layer normalization over the trailing ``normalized_shape`` dimensions.

    Args:
        normalized_shape: an int or the trailing shape to normalize over.
        eps: added to the variance (default 1e-5).
        elementwise_affine: learn a weight (ones) and, if ``bias``, a bias (zeros).
        bias: learn the additive bias (default True).
        device, dtype: of the parameters.

    Example:
        >>> import ember
        >>> ember.nn.LayerNorm(10)
        LayerNorm((10,), eps=1e-05, elementwise_affine=True, bias=True)
    """

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(ones(*self.normalized_shape, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(zeros(*self.normalized_shape, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        with autograd.no_grad():
            if self.weight is not None:
                self.weight.fill_(1)
            if self.bias is not None:
                self.bias.zero_()

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )

    def forward(self, input: Tensor) -> Tensor:
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)


class GroupNorm(Module):
    """Group normalization: per sample, over groups of channels.

    Args:
        num_groups: number of groups; must divide ``num_channels``.
        num_channels: C of the (N, C, *) input.
        eps: added to the variance (default 1e-5).
        affine: learn a per-channel weight (ones) and, if ``bias``, a bias (zeros).
        device, dtype: of the parameters.
        bias: keyword-only; learn the additive bias (default True).

    Example:
        >>> import ember
        >>> ember.nn.GroupNorm(2, 6)(ember.randn(3, 6, 4)).shape
        (3, 6, 4)
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = Parameter(ones(num_channels, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(zeros(num_channels, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        with autograd.no_grad():
            if self.weight is not None:
                self.weight.fill_(1)
            if self.bias is not None:
                self.bias.zero_()

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )

    def forward(self, input: Tensor) -> Tensor:
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)
