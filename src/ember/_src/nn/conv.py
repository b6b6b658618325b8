"""Convolution: the functions conv1d, conv2d, conv_transpose2d and the layers Conv1d,
Conv2d, ConvTranspose2d (PyTorch's names, arguments, defaults and initialization).

The computation is the ``conv`` / ``conv_transpose`` primitives of
``ember._src.ops.conv``; this module adds bias, string padding, padding modes
and unbatched inputs.
"""

from __future__ import annotations

import math
from typing import Any

from ember._src.core.creation import empty
from ember._src.core.tensor import Tensor
from ember._src.nn import init
from ember._src.nn.module import Module, Parameter
from ember._src.ops.conv import conv, conv_transpose, ntuple
from ember._src.ops.registry import op_error
from ember._src.ops.shape import pad

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _batched(name: str, input: Tensor, weight: Tensor, nd: int) -> bool:
    """Whether ``input`` has a batch dimension; raises for a wrong number of dims."""
    if input.ndim == nd + 2:
        return True
    if input.ndim == nd + 1:
        return False
    raise op_error(
        name,
        (input, weight),
        f"expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input "
        f"to {name}, but got input of size {list(input.shape)}",
    )


def _add_bias(name: str, y: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    if bias is None:
        return y
    if bias.shape != (y.shape[1],):
        raise op_error(
            name,
            (weight, bias),
            f"bias must have shape ({y.shape[1]},), one value per output "
            f"channel, got {tuple(bias.shape)}",
        )
    return y + bias.reshape((y.shape[1],) + (1,) * (y.ndim - 2))


def same_padding(
    kernel_size: tuple[int, ...], dilation: tuple[int, ...]
) -> tuple[tuple[int, int], ...]:
    """(low, high) padding keeping the size at stride 1; an odd extra goes high, as in PyTorch."""
    total = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
    return tuple((t // 2, t - t // 2) for t in total)


def _conv_nd(
    name: str,
    nd: int,
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
) -> Tensor:
    batched = _batched(name, input, weight, nd)
    x = input if batched else input.unsqueeze(0)
    dil = ntuple(dilation, nd, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if any(s != 1 for s in ntuple(stride, nd, "stride")):
                raise ValueError(
                    f"{name}: padding='same' is not supported for strided convolutions"
                )
            padding = same_padding(tuple(weight.shape[2:]), dil)
        else:
            raise ValueError(f"{name}: padding must be 'valid', 'same' or numbers, got {padding!r}")
    y = _add_bias(name, conv(x, weight, stride, padding, dil, groups), weight, bias)
    return y if batched else y.squeeze(0)


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """1-D convolution (cross-correlation) over (N, C_in, L) or (C_in, L) inputs.

    Args:
        input: (N, C_in, L) or unbatched (C_in, L).
        weight: (C_out, C_in / groups, k).
        bias: (C_out,) or None.
        stride: an int or a 1-tuple.
        padding: an int, a 1-tuple, 'valid' (no padding) or 'same' (output length equals
            input length; stride must be 1).
        dilation: spacing between kernel elements.
        groups: number of blocked connections from input to output channels.

    Returns:
        (N, C_out, L_out), or (C_out, L_out) for an unbatched input.

    Example:
        >>> import ember
        >>> from ember._src.nn.conv import conv1d
        >>> conv1d(ember.ones(1, 1, 5), ember.ones(1, 1, 3), padding="same").tolist()
        [[[2.0, 3.0, 3.0, 3.0, 2.0]]]
    """
    return _conv_nd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation) over (N, C_in, H, W) or (C_in, H, W) inputs.

    Args:
        input: (N, C_in, H, W) or unbatched (C_in, H, W).
        weight: (C_out, C_in / groups, kH, kW).
        bias: (C_out,) or None.
        stride: an int or (sH, sW).
        padding: an int, (pH, pW), 'valid' or 'same' (stride must be 1).
        dilation: an int or (dH, dW).
        groups: number of blocked connections from input to output channels.

    Returns:
        (N, C_out, H_out, W_out) with
        ``H_out = (H + 2 pH - dH (kH - 1) - 1) // sH + 1`` (likewise W_out).

    Example:
        >>> import ember
        >>> from ember._src.nn.conv import conv2d
        >>> conv2d(ember.ones(1, 1, 4, 4), ember.ones(2, 1, 3, 3), stride=2, padding=1).shape
        (1, 2, 2, 2)
    """
    return _conv_nd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def _output_padding_range(
    name: str, output_padding: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> None:
    for op, s, d in zip(output_padding, stride, dilation):
        if op < 0 or op >= max(s, d):
            raise ValueError(
                f"{name}: output_padding {output_padding} must be smaller than either stride "
                f"{stride} or dilation {dilation} (and non-negative)"
            )


def _conv_transpose_nd(
    name: str,
    nd: int,
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
) -> Tensor:
    batched = _batched(name, input, weight, nd)
    x = input if batched else input.unsqueeze(0)
    st, dil = ntuple(stride, nd, "stride"), ntuple(dilation, nd, "dilation")
    opad = ntuple(output_padding, nd, "output_padding")
    _output_padding_range(name, opad, st, dil)
    y = conv_transpose(x, weight, st, ntuple(padding, nd, "padding"), opad, groups, dil)
    y = _add_bias(name, y, weight, bias)
    return y if batched else y.squeeze(0)


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """2-D transposed convolution (the gradient of conv2d with respect to its input).

    Args:
        input: (N, C_in, H, W) or unbatched (C_in, H, W).
        weight: (C_in, C_out / groups, kH, kW).
        bias: (C_out,) or None.
        stride, padding, dilation, groups: those of the conv2d this transposes.
        output_padding: extra rows/columns at the bottom/right, smaller than stride or
            dilation; picks among the input sizes a strided conv2d maps to this size.

    Returns:
        (N, C_out, H_out, W_out) with
        ``H_out = (H - 1) sH - 2 pH + dH (kH - 1) + output_padding + 1``.

    Example:
        >>> import ember
        >>> from ember._src.nn.conv import conv_transpose2d
        >>> conv_transpose2d(ember.ones(1, 1, 2, 2), ember.ones(1, 1, 2, 2), stride=2).shape
        (1, 1, 4, 4)
    """
    return _conv_transpose_nd(
        "conv_transpose2d",
        2,
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
    )


# ----------------------------------------------------------------- layers
class _ConvNd(Module):
    """Shared parameters, initialization and repr of the convolution layers."""

    _nd = 0
    transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        output_padding: Any,
        groups: int,
        bias: bool,
        padding_mode: str,
        device: Any,
        dtype: Any,
    ) -> None:
        super().__init__()
        nd = self._nd
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = ntuple(kernel_size, nd, "kernel_size")
        self.stride = ntuple(stride, nd, "stride")
        self.dilation = ntuple(dilation, nd, "dilation")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"invalid padding string {padding!r}; use 'valid' or 'same'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding: Any = padding
        else:
            self.padding = ntuple(padding, nd, "padding")
        self.output_padding = ntuple(output_padding, nd, "output_padding")
        self.groups = groups
        self.padding_mode = padding_mode
        if self.transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(empty(*shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw weight and bias with PyTorch's default initialization.

        ``kaiming_uniform_(a=sqrt(5))`` for the weight, whose bound is
        ``1 / sqrt(fan_in)``; the bias is uniform within the same bound.
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        nd = self._nd
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _conv_forward(self, input: Tensor, name: str) -> Tensor:
        if self.padding_mode == "zeros":
            return _conv_nd(
                name,
                self._nd,
                input,
                self.weight,
                self.bias,
                self.stride,
                self.padding,
                self.dilation,
                self.groups,
            )
        if self.padding == "valid":
            pairs = ((0, 0),) * self._nd
        elif self.padding == "same":
            pairs = same_padding(self.kernel_size, self.dilation)
        else:
            pairs = tuple((p, p) for p in self.padding)
        widths = [w for lo_hi in reversed(pairs) for w in lo_hi]  # last dimension first
        x = pad(input, widths, mode=self.padding_mode)
        return _conv_nd(
            name, self._nd, x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


class Conv1d(_ConvNd):
    """1-D convolution layer over (N, C_in, L) inputs.

    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: an int or 1-tuple.
        stride: default 1.
        padding: an int, 'valid' or 'same'; default 0.
        dilation: default 1.
        groups: default 1; in and out channels must be divisible by it.
        bias: learn an additive bias (default True).
        padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'.
        device, dtype: of the parameters.

    Example:
        >>> import ember
        >>> m = ember.nn.Conv1d(4, 8, 3, padding=1)
        >>> m(ember.randn(2, 4, 10)).shape
        (2, 8, 10)
    """

    _nd = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            0,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, "conv1d")


class Conv2d(_ConvNd):
    """2-D convolution layer over (N, C_in, H, W) inputs.

    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: an int or (kH, kW).
        stride: default 1.
        padding: an int, a pair, 'valid' or 'same'; default 0.
        dilation: default 1.
        groups: default 1; in and out channels must be divisible by it.
        bias: learn an additive bias (default True).
        padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'.
        device, dtype: of the parameters.

    Example:
        >>> import ember
        >>> m = ember.nn.Conv2d(1, 16, 3, padding=1)
        >>> m
        Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
        >>> m(ember.randn(2, 1, 8, 8)).shape
        (2, 16, 8, 8)
    """

    _nd = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            0,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, "conv2d")


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution layer (a learnable upsampling).

    Args:
        in_channels: channels of the input.
        out_channels: channels produced.
        kernel_size: an int or (kH, kW).
        stride: default 1.
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added around the
            input, as in PyTorch; default 0.
        output_padding: extra size on one side of the output; default 0.
        groups: default 1.
        bias: learn an additive bias (default True).
        dilation: default 1.
        padding_mode: only 'zeros'.
        device, dtype: of the parameters.

    Example:
        >>> import ember
        >>> m = ember.nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        >>> m(ember.randn(1, 8, 5, 5)).shape
        (1, 4, 10, 10)
    """

    _nd = 2
    transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'only "zeros" padding_mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__} does not take string padding {padding!r}")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            output_padding,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def _output_padding(self, input: Tensor, output_size: Any) -> tuple[int, ...]:
        if output_size is None:
            return self.output_padding
        nd = self._nd
        size = [int(s) for s in output_size][-nd:]
        if len(size) != nd:
            raise ValueError(f"output_size must have {nd} or {nd + 2} elements, got {output_size}")
        out = []
        for i in range(nd):
            n = input.shape[input.ndim - nd + i]
            least = (
                (n - 1) * self.stride[i]
                - 2 * self.padding[i]
                + self.dilation[i] * (self.kernel_size[i] - 1)
                + 1
            )
            if not least <= size[i] < least + self.stride[i]:
                raise ValueError(
                    f"requested output size {size} is not reachable: dimension {i} can be "
                    f"from {least} to {least + self.stride[i] - 1}"
                )
            out.append(size[i] - least)
        return tuple(out)

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        return _conv_transpose_nd(
            "conv_transpose2d",
            2,
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(input, output_size),
            self.groups,
            self.dilation,
        )
