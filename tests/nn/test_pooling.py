"""max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool2d, adaptive_max_pool2d and their layers:
against PyTorch (values, indices and input gradients in float64) over a grid of kernel,
stride, padding, dilation, ceil_mode and divisor options; gradchecks, reprs, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import nn
from ember._src.nn import pooling as F
from ember._src.ops.registry import DTypeError, ShapeError
from ember.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(4)
TOL = 1e-12


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def distinct(shape):
    n = math.prod(shape)
    return ((RNG.permutation(n) - n / 2) * 0.1).reshape(shape)


def parity(torch, fn, x, *args, **kw):
    """Run ``fn`` from ember and torch.nn.functional; compare every output and the input
    gradient of the first (floating) output."""
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ey = getattr(F, fn)(ex, *args, **kw)
    ty = getattr(torch.nn.functional, fn)(tx, *args, **kw)
    ey, ty = (ey, ty) if isinstance(ey, tuple) else ((ey,), (ty,))
    for a, b in zip(ey, ty):
        assert a.shape == tuple(b.shape) and a.dtype.name == str(b.dtype).removeprefix("torch.")
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), TOL, TOL)
    cot = RNG.standard_normal(tuple(ty[0].shape))
    ey[0].backward(ember.tensor(cot))
    ty[0].backward(torch.tensor(cot))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), TOL, TOL)


MAX2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2)),
    dict(kernel_size=2, stride=3, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=1, padding=1, dilation=2, ceil_mode=True),
    dict(kernel_size=(1, 3), stride=(1, 2)),
]


@pytest.mark.torch
@pytest.mark.parametrize("kw", MAX2D, ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (3, 6, 6)], ids=["batched", "unbatched"])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_max_pool2d_matches_torch(torch, kw, shape, ties):
    x = RNG.integers(0, 3, shape).astype(np.float64) if ties else distinct(shape)
    parity(torch, "max_pool2d", x, return_indices=True, **kw)


MAX1D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=2, stride=1, dilation=3),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True),
]


@pytest.mark.torch
@pytest.mark.parametrize("kw", MAX1D, ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 11), (3, 10)], ids=["batched", "unbatched"])
def test_max_pool1d_matches_torch(torch, kw, shape):
    parity(torch, "max_pool1d", RNG.integers(0, 4, shape).astype(np.float64), return_indices=True,
           **kw)  # fmt: skip


AVG2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(2, 3), stride=(3, 2), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, divisor_override=5),
    dict(kernel_size=2, stride=3, ceil_mode=True, count_include_pad=False),
]


@pytest.mark.torch
@pytest.mark.parametrize("kw", AVG2D, ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (2, 5, 5)], ids=["batched", "unbatched"])
def test_avg_pool2d_matches_torch(torch, kw, shape):
    parity(torch, "avg_pool2d", RNG.standard_normal(shape), **kw)


AVG1D = [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False),
]


@pytest.mark.torch
@pytest.mark.parametrize("kw", AVG1D, ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 11), (3, 10)], ids=["batched", "unbatched"])
def test_avg_pool1d_matches_torch(torch, kw, shape):
    parity(torch, "avg_pool1d", RNG.standard_normal(shape), **kw)


@pytest.mark.torch
@pytest.mark.parametrize(
    "shape, size",
    [
        ((2, 3, 8, 6), (4, 3)),
        ((2, 3, 7, 5), (3, 2)),
        ((2, 3, 7, 5), 1),
        ((2, 3, 5, 7), (None, 3)),
        ((3, 5, 4), (5, 6)),
        ((1, 2, 6, 6), (4, 4)),
    ],
)
def test_adaptive_pools_match_torch(torch, shape, size):
    parity(torch, "adaptive_avg_pool2d", RNG.standard_normal(shape), size)
    parity(torch, "adaptive_max_pool2d", RNG.integers(0, 3, shape).astype(np.float64), size,
           return_indices=True)  # fmt: skip
    parity(torch, "adaptive_max_pool2d", distinct(shape), size)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_max_pool_dtypes_match_torch(torch, dtype):
    x = (distinct((2, 2, 6, 6)) * 10).astype(dtype)
    e, i = F.max_pool2d(ember.tensor(x), 3, 2, 1, return_indices=True)
    te, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    assert e.dtype.name == dtype
    np.testing.assert_array_equal(e.numpy(), te.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


@pytest.mark.torch
def test_layers_match_torch_and_their_reprs(torch):
    x = RNG.standard_normal((2, 3, 9, 8))
    x1 = RNG.standard_normal((2, 3, 9))
    for name, args, kw, inp in [
        ("MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True), x),
        ("MaxPool2d", ((2, 3),), dict(dilation=(2, 1)), x),
        ("MaxPool1d", (2,), dict(), x1),
        ("AvgPool2d", (3,), dict(stride=2, padding=1, count_include_pad=False), x),
        ("AvgPool2d", ((2, 3),), dict(divisor_override=2), x),
        ("AvgPool1d", (3,), dict(stride=2, ceil_mode=True), x1),
        ("AdaptiveAvgPool2d", ((3, 5),), dict(), x),
        ("AdaptiveAvgPool2d", ((None, 3),), dict(), x),
        ("AdaptiveMaxPool2d", (4,), dict(), x),
    ]:
        em, tm = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
        assert repr(em) == repr(tm)
        ey = em(ember.tensor(inp))
        np.testing.assert_allclose(ey.numpy(), tm(torch.tensor(inp)).numpy(), TOL, TOL)
    em, tm = nn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)
    (_, ei), (_, ti) = em(ember.tensor(x)), tm(torch.tensor(x))
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())
    em, tm = nn.AdaptiveMaxPool2d(3, return_indices=True), torch.nn.AdaptiveMaxPool2d(3, True)
    (_, ei), (_, ti) = em(ember.tensor(x)), tm(torch.tensor(x))
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())


# ----------------------------------------------------------------- gradients
def test_gradcheck_and_double_backward():
    x = ember.tensor(distinct((1, 2, 5, 5)), requires_grad=True)
    for fn in [
        lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
        lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
        lambda x: F.adaptive_max_pool2d(x, (3, 2)),
        lambda x: F.max_pool1d(x.reshape(2, 5, 5), 2, dilation=2),
        lambda x: F.avg_pool1d(x.reshape(1, 10, 5), 2, ceil_mode=True),
    ]:
        gradcheck(fn, (x,))
    small = ember.tensor(distinct((1, 1, 4, 4)), requires_grad=True)
    for fn in [
        lambda x: F.max_pool2d(x, 2, 1, 1),
        lambda x: F.avg_pool2d(x, 2, 2, 1, count_include_pad=False),
        lambda x: F.adaptive_avg_pool2d(x, 3) ** 2,
    ]:
        gradgradcheck(fn, (small,))


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: F.max_pool2d(x, 3, padding=2), "at most half"),
        (lambda x: F.avg_pool2d(x, 2, padding=2), "at most half"),
        (lambda x: F.max_pool2d(x, 9), "output size would be"),
        (lambda x: F.max_pool2d(x, 2, stride=0), "must be positive"),
        (lambda x: F.max_pool2d(x.reshape(-1), 2), "expected a 3-D .unbatched. or 4-D"),
        (lambda x: F.max_pool1d(x, 2), "expected a 2-D .unbatched. or 3-D"),
        (lambda x: F.adaptive_avg_pool2d(x, (0, 2)), "positive sizes"),
    ],
)
def test_errors_name_the_op_and_the_input(call, match):
    with pytest.raises(ShapeError, match=match) as e:
        call(ember.zeros(1, 2, 6, 6))
    assert "[1, 2, 6, 6]" in str(e.value) or "[72]" in str(e.value)


def test_integer_inputs_to_average_pools():
    for call in (lambda x: F.avg_pool2d(x, 2), lambda x: F.adaptive_avg_pool2d(x, 2)):
        with pytest.raises(DTypeError, match="floating point"):
            call(ember.zeros(1, 2, 6, 6, dtype=ember.int64))


def test_divisor_override_zero():
    with pytest.raises(ValueError, match="non-zero"):
        F.avg_pool2d(ember.zeros(1, 1, 4, 4), 2, divisor_override=0)
