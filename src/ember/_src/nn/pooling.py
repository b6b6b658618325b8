"""Pooling: max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool2d, adaptive_max_pool2d and
their layers (PyTorch's names, arguments, output sizes and tie rules).

The windows are the ``max_pool`` / ``sum_pool`` primitives of
``ember._src.ops.pool``; this module works out PyTorch's output sizes
(``ceil_mode``), divisors (``count_include_pad``, ``divisor_override``) and
unbatched inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember._src.core.creation import tensor
from ember._src.core.tensor import Tensor
from ember._src.nn.module import Module
from ember._src.ops.conv import Ints, Pads, ntuple
from ember._src.ops.pool import (
    adaptive_max_pool_indices_op,
    max_pool_indices_op,
    max_pool_op,
    spatial_gather_op,
    sum_pool_op,
)
from ember._src.ops.registry import DTypeError, apply, op_error


def _batched(name: str, input: Tensor, nd: int) -> Tensor:
    if input.ndim == nd + 2:
        return input
    if input.ndim == nd + 1:
        return input.unsqueeze(0)
    raise op_error(
        name,
        (input,),
        f"expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got {input.ndim}-D",
    )


def _unbatch(y: Tensor, input: Tensor, nd: int) -> Tensor:
    return y if input.ndim == nd + 2 else y.squeeze(0)


def _out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size, where ceil_mode keeps a last window that starts inside."""
    span = d * (k - 1) + 1
    out = (n + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _windows(
    name: str,
    x: Tensor,
    nd: int,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    max_pad: str,
) -> tuple[Ints, Ints, Pads, Ints, Ints]:
    """Kernel, stride, (low, high) padding incl. ceil_mode's extra, dilation and output sizes."""
    ks = ntuple(kernel_size, nd, "kernel_size")
    st = ks if stride is None or stride == () or stride == [] else ntuple(stride, nd, "stride")
    ps = ntuple(padding, nd, "padding")
    dil = ntuple(dilation, nd, "dilation")
    if any(k < 1 for k in ks) or any(s < 1 for s in st) or any(d < 1 for d in dil):
        raise op_error(
            name, (x,), f"kernel_size {ks}, stride {st} and dilation {dil} must be positive"
        )
    for k, p, d in zip(ks, ps, dil):
        half = (d * (k - 1) + 1) // 2 if max_pad == "effective" else k // 2
        if not 0 <= p <= half:
            raise op_error(
                name,
                (x,),
                f"padding {ps} should be at most half of the kernel size {ks}"
                + (f" dilated by {dil}" if max_pad == "effective" else ""),
            )
    outs, pads = [], []
    for n, k, s, p, d in zip(x.shape[2:], ks, st, ps, dil):
        o = _out_size(n, k, s, p, d, ceil_mode)
        if o < 1:
            raise op_error(
                name,
                (x,),
                f"output size would be {o}: the input ({n}) padded by {p} is smaller "
                f"than the window ({d * (k - 1) + 1})",
            )
        extra = max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
        outs.append(o)
        pads.append((p, p + extra))
    return ks, st, tuple(pads), dil, tuple(outs)


def _max_pool_nd(
    name: str,
    nd: int,
    input: Tensor,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    return_indices: bool,
) -> Any:
    x = _batched(name, input, nd)
    ks, st, pads, dil, _ = _windows(
        name, x, nd, kernel_size, stride, padding, dilation, ceil_mode, "effective"
    )
    attrs = {"kernel_size": ks, "stride": st, "padding": pads, "dilation": dil}
    y = _unbatch(apply(max_pool_op, x, **attrs), input, nd)
    if not return_indices:
        return y
    return y, _unbatch(apply(max_pool_indices_op, x, **attrs), input, nd)


def max_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """1-D max pooling over (N, C, L) or (C, L) inputs.

    Args:
        input: (N, C, L) or unbatched (C, L).
        kernel_size: window length.
        stride: step between windows (default: kernel_size).
        padding: implicit -inf padding on both sides, at most half the dilated window.
        dilation: spacing between window elements.
        ceil_mode: round the output length up (a last partial window that starts
            inside the input or left padding).
        return_indices: also return the argmax positions (int64, index into L).

    Returns:
        The pooled tensor, or (pooled, indices). Gradients go to the first maximum of
        each window.

    Example:
        >>> import ember
        >>> from ember._src.nn.pooling import max_pool1d
        >>> max_pool1d(ember.tensor([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2, ceil_mode=True).tolist()
        [[[3.0, 5.0, 4.0]]]
    """
    return _max_pool_nd(
        "max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """2-D max pooling over (N, C, H, W) or (C, H, W) inputs.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W).
        kernel_size: an int or (kH, kW).
        stride: default: kernel_size.
        padding: implicit -inf padding, at most half the dilated window.
        dilation: spacing between window elements.
        ceil_mode: round output sizes up (see :func:`max_pool1d`).
        return_indices: also return the argmax positions as flat indices into H * W.

    Returns:
        The pooled tensor, or (pooled, indices).

    Example:
        >>> import ember
        >>> from ember._src.nn.pooling import max_pool2d
        >>> max_pool2d(ember.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
        [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    return _max_pool_nd(
        "max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def _window_counts(n: int, k: int, s: int, p: int, o: int, include_pad: bool) -> np.ndarray:
    start = np.arange(o) * s - p
    end = np.minimum(start + k, n + p)
    if include_pad:
        return end - start
    return np.minimum(end, n) - np.maximum(start, 0)


def _avg_pool_nd(
    name: str,
    nd: int,
    input: Tensor,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Tensor:
    x = _batched(name, input, nd)
    if not x.dtype.is_floating_point:
        raise op_error(name, (input,), f"needs a floating point input, got {x.dtype}", DTypeError)
    ks, st, pads, dil, outs = _windows(
        name, x, nd, kernel_size, stride, padding, 1, ceil_mode, "kernel"
    )
    total = apply(sum_pool_op, x, kernel_size=ks, stride=st, padding=pads, dilation=dil)
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError(f"{name}: divisor_override must be non-zero")
        y = total / divisor_override
    else:
        counts = np.ones((), dtype=np.int64)
        for i, (n, k, s, (p, _), o) in enumerate(zip(x.shape[2:], ks, st, pads, outs)):
            c = _window_counts(n, k, s, p, o, count_include_pad)
            counts = counts * c.reshape([o if j == i else 1 for j in range(nd)])
        if (counts == counts.flat[0]).all():  # every window has the same size
            y = total / int(counts.flat[0])
        else:
            y = total / tensor(counts, dtype=x.dtype, device=x.device)
    return _unbatch(y, input, nd)


def avg_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """1-D average pooling over (N, C, L) or (C, L) inputs.

    Args:
        input: (N, C, L) or unbatched (C, L), floating point.
        kernel_size: window length.
        stride: default: kernel_size.
        padding: implicit zero padding on both sides, at most half the window.
        ceil_mode: round the output length up.
        count_include_pad: divide by the window size including padding (True) or by
            the number of real elements.

    Returns:
        The pooled tensor.

    Example:
        >>> import ember
        >>> from ember._src.nn.pooling import avg_pool1d
        >>> avg_pool1d(ember.tensor([[[1.0, 3.0, 2.0, 6.0]]]), 2).tolist()
        [[[2.0, 4.0]]]
    """
    return _avg_pool_nd(
        "avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None
    )


def avg_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-D average pooling over (N, C, H, W) or (C, H, W) inputs.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W), floating point.
        kernel_size: an int or (kH, kW).
        stride: default: kernel_size.
        padding: implicit zero padding, at most half the window.
        ceil_mode: round output sizes up.
        count_include_pad: count padding in the divisor (default True).
        divisor_override: divide every window sum by this instead.

    Returns:
        The pooled tensor.

    Example:
        >>> import ember
        >>> from ember._src.nn.pooling import avg_pool2d
        >>> avg_pool2d(ember.arange(16.0).reshape(1, 4, 4), 2).tolist()
        [[[2.5, 4.5], [10.5, 12.5]]]
    """
    return _avg_pool_nd(
        "avg_pool2d",
        2,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def _adaptive_sizes(name: str, x: Tensor, nd: int, output_size: Any) -> Ints:
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size,) * nd
    sizes = tuple(x.shape[2 + i] if o is None else int(o) for i, o in enumerate(output_size))
    if len(sizes) != nd or any(o < 1 for o in sizes):
        raise op_error(name, (x,), f"output_size must be {nd} positive sizes, got {output_size}")
    if any(n < 1 for n in x.shape[2:]):
        raise op_error(name, (x,), "the spatial dimensions of the input must be non-empty")
    return sizes


def _averaging(n: int, o: int) -> np.ndarray:
    """(o, n) matrix averaging the adaptive windows of a length-n axis."""
    m = np.zeros((o, n))
    for i in range(o):
        start, end = (i * n) // o, -((-(i + 1) * n) // o)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """2-D average pooling to a fixed output size (windows from floor/ceil of i * H / out).

    Args:
        input: (N, C, H, W) or unbatched (C, H, W), floating point.
        output_size: an int, (oH, oW), or a pair with None to keep that input size.

    Returns:
        (N, C, oH, oW).

    Example:
        >>> import ember
        >>> from ember._src.nn.pooling import adaptive_avg_pool2d
        >>> adaptive_avg_pool2d(ember.ones(2, 3, 5, 7), 1).shape
        (2, 3, 1, 1)
    """
    x = _batched("adaptive_avg_pool2d", input, 2)
    if not x.dtype.is_floating_point:
        raise op_error(
            "adaptive_avg_pool2d",
            (input,),
            f"needs a floating point input, got {x.dtype}",
            DTypeError,
        )
    sizes = _adaptive_sizes("adaptive_avg_pool2d", x, 2, output_size)
    spatial = x.shape[2:]
    if all(n % o == 0 for n, o in zip(spatial, sizes)):  # equal windows: plain average pooling
        ks = tuple(n // o for n, o in zip(spatial, sizes))
        total = apply(
            sum_pool_op, x, kernel_size=ks, stride=ks, padding=((0, 0), (0, 0)), dilation=(1, 1)
        )
        y = total / (ks[0] * ks[1])
    else:  # overlapping windows of two lengths: the average is separable, two matmuls
        mh, mw = (
            tensor(_averaging(n, o), dtype=x.dtype, device=x.device) for n, o in zip(spatial, sizes)
        )
        y = mh @ x @ mw.T
    return _unbatch(y, input, 2)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """2-D max pooling to a fixed output size (windows as in :func:`adaptive_avg_pool2d`).

    Args:
        input: (N, C, H, W) or unbatched (C, H, W).
        output_size: an int, (oH, oW), or a pair with None to keep that input size.
        return_indices: also return the argmax positions as flat indices into H * W.

    Returns:
        The pooled tensor, or (pooled, indices).

    Example:
        >>> import ember
        >>> from ember._src.nn.pooling import adaptive_max_pool2d
        >>> adaptive_max_pool2d(ember.arange(9.0).reshape(1, 3, 3), 2).tolist()
        [[[4.0, 5.0], [7.0, 8.0]]]
    """
    x = _batched("adaptive_max_pool2d", input, 2)
    sizes = _adaptive_sizes("adaptive_max_pool2d", x, 2, output_size)
    spatial = x.shape[2:]
    if all(n % o == 0 for n, o in zip(spatial, sizes)):  # equal windows: plain max pooling
        ks = tuple(n // o for n, o in zip(spatial, sizes))
        attrs = {"kernel_size": ks, "stride": ks, "padding": ((0, 0), (0, 0)), "dilation": (1, 1)}
        y = apply(max_pool_op, x, **attrs)
        idx = apply(max_pool_indices_op, x, **attrs) if return_indices else None
    else:
        idx = apply(adaptive_max_pool_indices_op, x, output_size=sizes)
        y = apply(spatial_gather_op, x, idx)
    y = _unbatch(y, input, 2)
    if not return_indices:
        return y
    assert idx is not None
    return y, _unbatch(idx, input, 2)


# ----------------------------------------------------------------- layers
class _MaxPoolNd(Module):
    _fn: Any = None

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )

    def forward(self, input: Tensor) -> Any:
        return type(self)._fn(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling layer; arguments as :func:`max_pool1d`.

    Example:
        >>> import ember
        >>> ember.nn.MaxPool1d(2)(ember.randn(4, 3, 10)).shape
        (4, 3, 5)
    """

    _fn = staticmethod(max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling layer; arguments as :func:`max_pool2d`.

    Example:
        >>> import ember
        >>> ember.nn.MaxPool2d(2)
        MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
        >>> ember.nn.MaxPool2d(3, stride=2, padding=1)(ember.randn(1, 2, 8, 8)).shape
        (1, 2, 4, 4)
    """

    _fn = staticmethod(max_pool2d)


class AvgPool1d(Module):
    """1-D average pooling layer; arguments as :func:`avg_pool1d`.

    Example:
        >>> import ember
        >>> ember.nn.AvgPool1d(3, stride=2)
        AvgPool1d(kernel_size=(3,), stride=(2,), padding=(0,))
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = ntuple(kernel_size, 1, "kernel_size")
        self.stride = ntuple(stride if stride is not None else kernel_size, 1, "stride")
        self.padding = ntuple(padding, 1, "padding")
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool1d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
        )


class AvgPool2d(Module):
    """2-D average pooling layer; arguments as :func:`avg_pool2d`.

    Example:
        >>> import ember
        >>> ember.nn.AvgPool2d(2)(ember.randn(1, 3, 6, 6)).shape
        (1, 3, 3, 3)
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size; see :func:`adaptive_avg_pool2d`.

    Example:
        >>> import ember
        >>> ember.nn.AdaptiveAvgPool2d((1, 1))(ember.randn(2, 8, 5, 5)).shape
        (2, 8, 1, 1)
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output size; see :func:`adaptive_max_pool2d`.

    Example:
        >>> import ember
        >>> ember.nn.AdaptiveMaxPool2d(3)(ember.randn(2, 8, 7, 7)).shape
        (2, 8, 3, 3)
    """

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool2d(input, self.output_size, self.return_indices)
