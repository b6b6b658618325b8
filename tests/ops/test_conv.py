"""The conv primitives (conv, conv_transpose, conv_weight): forward against NumPy loop
references, gradients and second derivatives against float64 central differences,
values and gradients against PyTorch, shape rules against eager results, errors and
the backend kernel table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ember
from ember._src.core.aval import AVal
from ember._src.core.backend import get_backend, register_kernel
from ember._src.ops import conv as C
from ember._src.ops.registry import DTypeError, ShapeError, apply
from ember.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(0)
TOL = {"float32": (1e-5, 1e-5), "float64": (1e-12, 1e-12)}


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# ----------------------------------------------------------------- NumPy loop references
def out_sizes(xs, ks, stride, padding, dilation):
    return tuple(
        (n + lo + hi - d * (k - 1) - 1) // s + 1
        for n, k, s, (lo, hi), d in zip(xs, ks, stride, padding, dilation)
    )


def ref_conv(x, w, stride, padding, dilation, groups):
    """y[n, o, p] = sum over c, k of x_pad[n, c, p * s + k * d] * w[o, c, k], one term at a time."""
    n = x.shape[0]
    o, cg = w.shape[:2]
    ks = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0), *padding])
    outs = out_sizes(x.shape[2:], ks, stride, padding, dilation)
    y = np.zeros((n, o, *outs), dtype=x.dtype)
    og = o // groups
    for oc in range(o):
        g = oc // og
        for pos in np.ndindex(*outs):
            for k in np.ndindex(*ks):
                src = tuple(p * s + kk * d for p, kk, s, d in zip(pos, k, stride, dilation))
                for ci in range(cg):
                    y[(slice(None), oc, *pos)] += (
                        xp[(slice(None), g * cg + ci, *src)] * w[(oc, ci, *k)]
                    )
    return y


def ref_conv_transpose(x, w, stride, padding, dilation, groups, output_padding):
    """Each input element scatters ``x * w[k]`` to ``p * s + k * d``, then the padding is cut."""
    n, ci = x.shape[:2]
    cog = w.shape[1]
    ks = w.shape[2:]
    full = [
        (i - 1) * s + d * (k - 1) + 1 + op
        for i, s, d, k, op in zip(x.shape[2:], stride, dilation, ks, output_padding)
    ]
    buf = np.zeros((n, cog * groups, *full), dtype=x.dtype)
    cig = ci // groups
    for c in range(ci):
        g = c // cig
        for pos in np.ndindex(*x.shape[2:]):
            for k in np.ndindex(*ks):
                dst = tuple(p * s + kk * d for p, kk, s, d in zip(pos, k, stride, dilation))
                for co in range(cog):
                    buf[(slice(None), g * cog + co, *dst)] += (
                        x[(slice(None), c, *pos)] * w[(c, co, *k)]
                    )
    outs = [f - lo - hi for f, (lo, hi) in zip(full, padding)]
    return buf[
        (slice(None), slice(None), *(slice(lo, lo + o) for (lo, _), o in zip(padding, outs)))
    ]


def ref_conv_weight(x, g, stride, padding, dilation, groups, kernel_size):
    """dw[o, c, k] = sum over n, p of g[n, o, p] * x_pad[n, c, p * s + k * d]."""
    c = x.shape[1]
    o = g.shape[1]
    xp = np.pad(x, [(0, 0), (0, 0), *padding])
    cg, og = c // groups, o // groups
    dw = np.zeros((o, cg, *kernel_size), dtype=x.dtype)
    for oc in range(o):
        grp = oc // og
        for ci in range(cg):
            for k in np.ndindex(*kernel_size):
                for pos in np.ndindex(*g.shape[2:]):
                    src = tuple(p * s + kk * d for p, kk, s, d in zip(pos, k, stride, dilation))
                    dw[(oc, ci, *k)] += np.sum(
                        g[(slice(None), oc, *pos)] * xp[(slice(None), grp * cg + ci, *src)]
                    )
    return dw


# ----------------------------------------------------------------- cases
# (input shape, weight shape, stride, padding pairs, dilation, groups)
CONV_CASES = [
    ((2, 3, 7), (4, 3, 3), (1,), ((0, 0),), (1,), 1),
    ((2, 4, 9), (6, 2, 2), (2,), ((1, 1),), (2,), 2),
    ((1, 2, 8), (2, 1, 3), (3,), ((2, 1),), (1,), 2),
    ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), ((1, 0), (0, 2)), (1, 2), 2),
    ((1, 6, 5, 5), (6, 1, 2, 2), (1, 2), ((0, 1), (1, 1)), (2, 1), 6),
    ((3, 1, 8, 8), (2, 1, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),
    ((1, 2, 4, 4, 3), (2, 2, 2, 2, 2), (1, 2, 1), ((1, 0), (0, 1), (1, 1)), (1, 1, 2), 1),
]
CASE_IDS = [f"{len(c[0]) - 2}d-s{c[2]}-p{c[3]}-d{c[4]}-g{c[5]}" for c in CONV_CASES]


def attrs(case):
    _, _, stride, padding, dilation, groups = case
    return {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def run_conv(x, w, **a):
    return C.conv(x, w, a["stride"], a["padding"], a["dilation"], a["groups"])


def transpose_opad(case):
    """An output_padding for transposing ``case``: the conv's unused remainder."""
    xs, ws, stride, padding, dilation, _ = case
    ys = out_sizes(xs[2:], ws[2:], stride, padding, dilation)
    return C._remainder(xs[2:], ys, ws[2:], stride, padding, dilation)


def run_transpose(y, w, output_padding, **a):
    return C.conv_transpose(
        y, w, a["stride"], a["padding"], output_padding, a["groups"], a["dilation"]
    )


def run_weight(x, g, kernel_size, **a):
    return apply(C.conv_weight_op, x, g, kernel_size=kernel_size, **a)


def arrays(case, dtype="float64"):
    xs, ws = case[0], case[1]
    ys = (xs[0], ws[0], *out_sizes(xs[2:], ws[2:], case[2], case[3], case[4]))
    return tuple(RNG.standard_normal(s).astype(dtype) for s in (xs, ws, ys))


# ----------------------------------------------------------------- forward vs NumPy
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CASE_IDS)
def test_conv_forward_matches_loops(case, dtype):
    x, w, _ = arrays(case, dtype)
    a = attrs(case)
    got = run_conv(ember.tensor(x), ember.tensor(w), **a)
    want = ref_conv(x, w, **a)
    assert got.dtype.name == dtype and got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, *TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CASE_IDS)
def test_conv_transpose_forward_matches_loops(case, dtype):
    x, w, y = arrays(case, dtype)
    a = attrs(case)
    opad = transpose_opad(case)
    got = run_transpose(ember.tensor(y), ember.tensor(w), opad, **a)
    want = ref_conv_transpose(y, w, output_padding=opad, **a)
    assert got.shape == x.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, *TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CASE_IDS)
def test_conv_weight_forward_matches_loops(case, dtype):
    x, w, g = arrays(case, dtype)
    a = attrs(case)
    got = run_weight(ember.tensor(x), ember.tensor(g), tuple(w.shape[2:]), **a)
    want = ref_conv_weight(x, g, kernel_size=tuple(w.shape[2:]), **a)
    assert got.shape == w.shape
    np.testing.assert_allclose(got.numpy(), want, *TOL[dtype])


@pytest.mark.parametrize("layout", ["batch", "sample"])
def test_both_gemm_layouts_match_loops(monkeypatch, layout):
    """The kernels pick a GEMM layout by size; each layout must be right everywhere."""
    monkeypatch.setattr(C, "_FORCE_LAYOUT", layout)
    for case in CONV_CASES:
        x, w, g = arrays(case)
        a = attrs(case)
        ex, ew, eg = ember.tensor(x), ember.tensor(w), ember.tensor(g)
        ks, opad = tuple(w.shape[2:]), transpose_opad(case)
        np.testing.assert_allclose(run_conv(ex, ew, **a).numpy(), ref_conv(x, w, **a), 1e-12, 1e-12)
        np.testing.assert_allclose(
            run_transpose(eg, ew, opad, **a).numpy(),
            ref_conv_transpose(g, w, output_padding=opad, **a),
            1e-12,
            1e-12,
        )
        np.testing.assert_allclose(
            run_weight(ex, eg, ks, **a).numpy(),
            ref_conv_weight(x, g, kernel_size=ks, **a),
            1e-12,
            1e-12,
        )
    x = ember.zeros(0, 2, 5, 5, requires_grad=True)  # an empty batch
    w = ember.ones(3, 2, 3, 3, requires_grad=True)
    y = C.conv(x, w, padding=1)
    assert y.shape == (0, 3, 5, 5)
    y.sum().backward()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape


@pytest.mark.parametrize("layout", ["batch", "sample"])
def test_results_do_not_share_the_kernels_scratch_buffers(monkeypatch, layout):
    """Temporaries are reused between calls; a result must survive the next call."""
    monkeypatch.setattr(C, "_FORCE_LAYOUT", layout)
    monkeypatch.setattr(C, "_SCRATCH_MIN", 0)  # reuse even these small temporaries
    for case in CONV_CASES:
        x, w, g = arrays(case)
        a = attrs(case)
        ks, opad = tuple(w.shape[2:]), transpose_opad(case)
        first = [
            run_conv(ember.tensor(x), ember.tensor(w), **a),
            run_transpose(ember.tensor(g), ember.tensor(w), opad, **a),
            run_weight(ember.tensor(x), ember.tensor(g), ks, **a),
        ]
        kept = [t.numpy().copy() for t in first]
        second = [
            run_conv(ember.tensor(-x), ember.tensor(w), **a),
            run_transpose(ember.tensor(-g), ember.tensor(w), opad, **a),
            run_weight(ember.tensor(-x), ember.tensor(g), ks, **a),
        ]
        for t, again, want in zip(first, second, kept):
            np.testing.assert_array_equal(t.numpy(), want)
            np.testing.assert_allclose(again.numpy(), -want, 1e-12, 1e-12)  # linear in x, g
        np.testing.assert_allclose(kept[0], ref_conv(x, w, **a), 1e-12, 1e-12)


@pytest.mark.parametrize("shape", [(40, 300), (300, 70), (5, 7), (16, 256), (128, 64)])
def test_blocked_transposing_copy(shape):
    """The batch moves copy a few rows at a time (partial last blocks included)."""
    src = RNG.standard_normal(shape).astype(np.float32)
    dst = np.full(shape[::-1], np.nan, np.float32)
    C._transpose_into(src, dst)
    np.testing.assert_array_equal(dst, src.T)


def test_adjoint_identities():
    """<conv(x, w), y> = <x, conv_transpose(y, w)> = <w, conv_weight(x, y)>."""
    for case in CONV_CASES:
        x, w, y = arrays(case)
        a = attrs(case)
        ex, ew, ey = ember.tensor(x), ember.tensor(w), ember.tensor(y)
        lhs = float((run_conv(ex, ew, **a) * ey).sum())
        mid = float((ex * run_transpose(ey, ew, transpose_opad(case), **a)).sum())
        rhs = float((ew * run_weight(ex, ey, tuple(w.shape[2:]), **a)).sum())
        assert lhs == pytest.approx(mid, rel=1e-12) and lhs == pytest.approx(rhs, rel=1e-12)


def test_non_contiguous_operands():
    x = RNG.standard_normal((5, 6, 3, 2)).transpose(3, 2, 1, 0)  # (2, 3, 6, 5), strided
    w = RNG.standard_normal((3, 3, 4, 2))[..., ::-1, :].transpose(1, 0, 2, 3)
    a = {"stride": (1, 2), "padding": ((1, 1), (0, 0)), "dilation": (1, 1), "groups": 1}
    got = run_conv(ember.from_numpy(x), ember.from_numpy(w), **a)
    np.testing.assert_allclose(got.numpy(), ref_conv(x, w, **a), 1e-12, 1e-12)


def test_empty_batch():
    x, w = ember.zeros(0, 2, 5, 5), ember.ones(3, 2, 3, 3, requires_grad=True)
    y = C.conv(x, w, padding=1)
    assert y.shape == (0, 3, 5, 5)
    y.sum().backward()
    assert w.grad is not None and w.grad.shape == w.shape and float(w.grad.abs().sum()) == 0


# ----------------------------------------------------------------- gradients
SMALL = [c for c in CONV_CASES if np.prod(c[0]) <= 150]


@pytest.mark.parametrize("case", SMALL, ids=[CASE_IDS[CONV_CASES.index(c)] for c in SMALL])
def test_conv_family_gradcheck(case):
    x, w, y = (ember.tensor(v, requires_grad=True) for v in arrays(case))
    a = attrs(case)
    opad, ks = transpose_opad(case), tuple(w.shape[2:])
    gradcheck(lambda x, w: run_conv(x, w, **a), (x, w))
    gradcheck(lambda y, w: run_transpose(y, w, opad, **a), (y, w))
    gradcheck(lambda x, y: run_weight(x, y, ks, **a), (x, y))


GG_CASES = [
    ((1, 2, 5), (2, 1, 2), (2,), ((1, 0),), (1,), 2),
    ((1, 1, 4, 3), (2, 1, 2, 2), (1, 2), ((1, 0), (0, 1)), (2, 1), 1),
    ((1, 2, 3, 3), (2, 2, 2, 2), (2, 1), ((0, 1), (1, 0)), (1, 1), 1),
]


@pytest.mark.parametrize("case", GG_CASES, ids=["1d-groups", "2d-dilated", "2d-strided"])
def test_conv_family_double_backward(case):
    x, w, y = (ember.tensor(v, requires_grad=True) for v in arrays(case))
    a = attrs(case)
    opad, ks = transpose_opad(case), tuple(w.shape[2:])
    gradgradcheck(lambda x, w: run_conv(x, w, **a), (x, w))
    gradgradcheck(lambda y, w: run_transpose(y, w, opad, **a), (y, w))
    gradgradcheck(lambda x, y: run_weight(x, y, ks, **a), (x, y))


def test_transpose_with_output_padding_beyond_stride_has_exact_gradients():
    # output_padding >= stride (allowed when dilation is larger): the last rows
    # receive no contribution and the input gradient must be cropped.
    y = ember.tensor(RNG.standard_normal((1, 2, 3)), requires_grad=True)
    w = ember.tensor(RNG.standard_normal((2, 1, 2)), requires_grad=True)
    f = lambda y, w: C.conv_transpose(y, w, stride=1, output_padding=2, dilation=3)
    assert f(y, w).shape == (1, 1, 8)
    gradcheck(f, (y, w))
    gradgradcheck(f, (y, w))


# ----------------------------------------------------------------- PyTorch parity
def torch_pad(torch, x, padding):
    flat = [v for lo_hi in reversed(padding) for v in lo_hi]
    return torch.nn.functional.pad(x, flat)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CASE_IDS)
def test_conv_matches_torch(torch, case, dtype):
    x, w, g = arrays(case, dtype)
    a = attrs(case)
    nd = len(case[0]) - 2
    ex, ew = ember.tensor(x, requires_grad=True), ember.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ey = run_conv(ex, ew, **a)
    fn = getattr(torch.nn.functional, f"conv{nd}d")
    ty = fn(
        torch_pad(torch, tx, a["padding"]), tw, None, a["stride"], 0, a["dilation"], a["groups"]
    )
    rtol, atol = (1e-5, 1e-5) if dtype == "float32" else (1e-11, 1e-11)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol, atol)
    gx, gw = ember.grad(ey, [ex, ew], ember.tensor(g))
    tgx, tgw = torch.autograd.grad(ty, [tx, tw], torch.tensor(g))
    np.testing.assert_allclose(gx.numpy(), tgx.numpy(), rtol, atol)
    np.testing.assert_allclose(gw.numpy(), tgw.numpy(), rtol, atol)


TRANSPOSE_GRID = [
    # (input, weight, stride, padding, output_padding, dilation, groups)
    ((2, 4, 3), (4, 3, 3), 2, 1, 1, 1, 1),
    ((1, 4, 5), (4, 1, 2), 3, 0, 2, 2, 4),
    ((2, 2, 3, 4), (2, 3, 3, 3), 1, 0, 0, 1, 1),
    ((2, 4, 3, 3), (4, 2, 3, 2), (2, 3), (1, 0), (1, 2), (1, 2), 2),
    ((1, 3, 2, 3), (3, 2, 2, 2), 1, 0, (1, 0), 2, 1),
    ((1, 2, 2, 2, 2), (2, 2, 2, 2, 2), 2, 1, 1, 1, 1),
]


@pytest.mark.torch
@pytest.mark.parametrize("case", TRANSPOSE_GRID)
def test_conv_transpose_and_its_double_backward_match_torch(torch, case):
    xs, ws, stride, padding, opad, dilation, groups = case
    nd = len(xs) - 2
    x, w = RNG.standard_normal(xs), RNG.standard_normal(ws)
    ex, ew = ember.tensor(x, requires_grad=True), ember.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ey = C.conv_transpose(ex, ew, stride, padding, opad, groups, dilation)
    fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
    ty = fn(tx, tw, None, stride, padding, opad, groups, dilation)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), 1e-11, 1e-11)
    g = RNG.standard_normal(tuple(ty.shape))
    egx, egw = ember.grad(ey, [ex, ew], ember.tensor(g), create_graph=True)
    tgx, tgw = torch.autograd.grad(ty, [tx, tw], torch.tensor(g), create_graph=True)
    np.testing.assert_allclose(egx.detach().numpy(), tgx.detach().numpy(), 1e-11, 1e-11)
    np.testing.assert_allclose(egw.detach().numpy(), tgw.detach().numpy(), 1e-11, 1e-11)
    # Second order: a scalar of both gradients, differentiated again.
    e2 = ember.grad((egx * egx).sum() + (egw**3).sum(), [ex, ew])
    t2 = torch.autograd.grad((tgx * tgx).sum() + (tgw**3).sum(), [tx, tw])
    for a, b in zip(e2, t2):
        np.testing.assert_allclose(a.numpy(), b.numpy(), 1e-10, 1e-10)


@pytest.mark.torch
def test_conv_double_backward_matches_torch(torch):
    x, w = RNG.standard_normal((2, 4, 6, 5)), RNG.standard_normal((6, 2, 3, 2))
    ex, ew = ember.tensor(x, requires_grad=True), ember.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ey = C.conv(ex, ew, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    ty = torch.nn.functional.conv2d(tx, tw, None, (2, 1), 1, (1, 2), 2)
    eg = ember.grad((ey**2).sum(), [ex, ew], create_graph=True)
    tg = torch.autograd.grad((ty**2).sum(), [tx, tw], create_graph=True)
    e2 = ember.grad(eg[0].sin().sum() + (eg[1] * eg[1]).sum(), [ex, ew])
    t2 = torch.autograd.grad(tg[0].sin().sum() + (tg[1] * tg[1]).sum(), [tx, tw])
    for a, b in zip(e2, t2):
        np.testing.assert_allclose(a.numpy(), b.numpy(), 1e-10, 1e-10)


# ----------------------------------------------------------------- shape rules and errors
def test_infer_matches_eager():
    for case in CONV_CASES:
        x, w, y = arrays(case, "float32")
        a = attrs(case)
        ex, ew, ey = ember.tensor(x), ember.tensor(w), ember.tensor(y)
        opad, ks = transpose_opad(case), tuple(w.shape[2:])
        for op, args, extra, out in [
            (C.conv_op, (ex, ew), {}, run_conv(ex, ew, **a)),
            (C.conv_transpose_op, (ey, ew), {"output_padding": opad},
             run_transpose(ey, ew, opad, **a)),
            (C.conv_weight_op, (ex, ey), {"kernel_size": ks}, run_weight(ex, ey, ks, **a)),
        ]:  # fmt: skip
            inferred = op.infer(*(AVal(t.shape, t.dtype) for t in args), **a, **extra)
            assert (inferred.shape, inferred.dtype) == (out.shape, out.dtype), op.name


def test_wrong_channel_count_names_both_shapes():
    x, w = ember.zeros(2, 3, 8, 8), ember.zeros(16, 1, 3, 3)
    with pytest.raises(ShapeError) as e:
        C.conv(x, w)
    msg = str(e.value)
    assert "conv(" in msg and "[2, 3, 8, 8]" in msg and "[16, 1, 3, 3]" in msg
    assert "expect the input to have 1 channels" in msg and "has 3 channels" in msg
    assert "test_conv.py" in msg  # the user's line


@pytest.mark.parametrize(
    "xs, ws, kw, match",
    [
        ((1, 4, 5, 5), (6, 2, 3, 3), {"groups": 4}, "divisible by groups"),
        ((1, 4, 5, 5), (6, 1, 3, 3), {"groups": 4}, "divisible by groups"),
        ((1, 2, 2, 2), (1, 2, 3, 3), {}, "smaller than the dilated kernel"),
        ((1, 2, 5, 5), (1, 2, 3, 3), {"dilation": 3}, "smaller than the dilated kernel"),
        ((1, 2, 5), (1, 2, 3, 3), {}, "same number of dimensions"),
        ((1, 2, 5, 5), (1, 2, 3, 3), {"stride": 0}, "must be positive"),
        ((1, 2, 5, 5), (1, 2, 3, 3), {"groups": 0}, "groups must be a positive"),
    ],
)
def test_conv_shape_errors(xs, ws, kw, match):
    with pytest.raises(ShapeError, match=match):
        C.conv(ember.zeros(*xs), ember.zeros(*ws), **kw)


def test_conv_dtype_errors():
    with pytest.raises(DTypeError, match="same dtype"):
        C.conv(ember.zeros(1, 1, 3, 3), ember.zeros(1, 1, 2, 2, dtype=ember.float64))
    with pytest.raises(DTypeError, match="floating point"):
        C.conv(
            ember.zeros(1, 1, 3, 3, dtype=ember.int64), ember.zeros(1, 1, 2, 2, dtype=ember.int64)
        )


def test_conv_transpose_errors():
    with pytest.raises(ShapeError, match=r"expects an input with 4 channels.*\[1, 3, 2, 2\]"):
        C.conv_transpose(ember.zeros(1, 3, 2, 2), ember.zeros(4, 2, 3, 3))
    with pytest.raises(ShapeError, match="divisible by groups"):
        C.conv_transpose(ember.zeros(1, 3, 2, 2), ember.zeros(3, 2, 3, 3), groups=2)
    with pytest.raises(ShapeError, match="output size would be"):
        C.conv_transpose(ember.zeros(1, 1, 1, 1), ember.zeros(1, 1, 1, 1), padding=1)


def test_conv_weight_errors():
    with pytest.raises(ShapeError, match="batch sizes differ"):
        run_weight(ember.zeros(2, 1, 4, 4), ember.zeros(3, 1, 2, 2), (3, 3),
                   stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)  # fmt: skip
    with pytest.raises(ShapeError, match="larger than the convolution output"):
        run_weight(ember.zeros(2, 1, 4, 4), ember.zeros(2, 1, 3, 3), (3, 3),
                   stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)  # fmt: skip


def test_padding_arguments():
    assert C.pad_pairs(1, 2) == ((1, 1), (1, 1))
    assert C.pad_pairs((1, 2), 2) == ((1, 1), (2, 2))
    assert C.pad_pairs(((0, 1), (2, 3)), 2) == ((0, 1), (2, 3))
    with pytest.raises(ValueError, match="non-negative"):
        C.pad_pairs(-1, 1)
    with pytest.raises(ValueError, match="tuple of 2 ints"):
        C.ntuple((1, 2, 3), 2, "stride")


# ----------------------------------------------------------------- the kernel table
def test_forward_runs_the_backend_kernel_by_name():
    cpu = get_backend("cpu")
    real = {name: cpu.kernel(name) for name in ("conv", "conv_transpose", "conv_weight")}
    calls: list[str] = []

    def spy(name: str) -> Any:
        def kernel(*args: Any, **kw: Any) -> Any:
            calls.append(name)
            return real[name](*args, **kw)

        return kernel

    try:
        for name in real:
            register_kernel("cpu", name, spy(name))
        x = ember.randn(1, 2, 4, 4, requires_grad=True)
        w = ember.randn(3, 2, 3, 3, requires_grad=True)
        C.conv(x, w, padding=1).sum().backward()
    finally:
        for name, fn in real.items():
            register_kernel("cpu", name, fn)
    assert sorted(calls) == ["conv", "conv_transpose", "conv_weight"]
    assert cpu.kernel("conv") is real["conv"]


def test_all_kernel_layouts_agree_with_einsum_on_random_grids():
    """A denser random sweep than the loop references can afford, against einsum."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        nd = int(rng.integers(1, 3))
        groups = int(rng.choice([1, 2]))
        c, o = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        ks = tuple(int(k) for k in rng.integers(1, 4, nd))
        st = tuple(int(s) for s in rng.integers(1, 3, nd))
        dil = tuple(int(d) for d in rng.integers(1, 3, nd))
        pads = tuple((int(lo), int(hi)) for lo, hi in rng.integers(0, 3, (nd, 2)))
        xs = tuple(int(d * (k - 1) + 1 + rng.integers(0, 4)) for k, d in zip(ks, dil))
        x = rng.standard_normal((2, c, *xs))
        w = rng.standard_normal((o, c // groups, *ks))
        xp = np.pad(x, [(0, 0), (0, 0), *pads])
        outs = out_sizes(xs, ks, st, pads, dil)
        # einsum over an explicit window stack: y[n, g, o, p] = sum x[n, g, c, p, k] w[g, o, c, k]
        win = np.zeros((2, c, *outs, *ks))
        for pos in np.ndindex(*outs):
            for k in np.ndindex(*ks):
                src = tuple(p * s + kk * d for p, kk, s, d in zip(pos, k, st, dil))
                win[(slice(None), slice(None), *pos, *k)] = xp[(slice(None), slice(None), *src)]
        p, kk = int(np.prod(outs)), int(np.prod(ks))
        want = np.einsum(
            "ngcpk,gock->ngop",
            win.reshape(2, groups, c // groups, p, kk),
            w.reshape(groups, o // groups, c // groups, kk),
        ).reshape(2, o, *outs)
        got = C.conv(ember.tensor(x), ember.tensor(w), st, pads, dil, groups)
        np.testing.assert_allclose(got.numpy(), want, 1e-12, 1e-12)
