"""The pooling primitives (max_pool, max_pool_indices, adaptive_max_pool_indices,
spatial_gather, spatial_scatter_add, sum_pool, sum_pool_transpose): forward against
NumPy loop references, tie and NaN rules, gradients and second derivatives against
float64 central differences, shape rules against eager results, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember._src.core.aval import AVal
from ember._src.ops import conv as C
from ember._src.ops import pool as P
from ember._src.ops.registry import DTypeError, ShapeError, apply
from ember.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(1)


def distinct(shape, dtype="float64"):
    """Values without ties, at least 0.1 apart, so finite differences can judge max."""
    n = math.prod(shape)
    return ((RNG.permutation(n) - n / 2) * 0.1).reshape(shape).astype(dtype)


# (input shape, kernel_size, stride, padding pairs, dilation)
CASES = [
    ((2, 3, 8), (2,), (2,), ((0, 0),), (1,)),
    ((1, 2, 9), (3,), (2,), ((1, 2),), (2,)),
    ((2, 2, 6, 6), (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)),
    ((1, 3, 7, 5), (3, 2), (2, 1), ((1, 1), (0, 1)), (1, 2)),
    ((2, 1, 5, 6), (3, 3), (3, 2), ((1, 2), (1, 1)), (1, 1)),
    ((1, 2, 3, 4, 4), (2, 2, 2), (1, 2, 2), ((0, 1), (1, 0), (0, 0)), (1, 1, 1)),
]
IDS = [f"{len(c[0]) - 2}d-k{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}" for c in CASES]


def attrs(case):
    return dict(zip(("kernel_size", "stride", "padding", "dilation"), case[1:]))


def out_shape(case):
    xs, ks, st, pads, dil = case
    outs = [
        (n + lo + hi - d * (k - 1) - 1) // s + 1
        for n, k, s, (lo, hi), d in zip(xs[2:], ks, st, pads, dil)
    ]
    return (*xs[:2], *outs)


def windows(x, case):
    """For every output position: the (flat index, value) pairs of its real elements, in
    row-major window order."""
    xs, ks, st, pads, dil = case
    for pos in np.ndindex(*out_shape(case)[2:]):
        elems = []
        for k in np.ndindex(*ks):
            src = tuple(p * s - lo + kk * d for p, kk, s, (lo, _), d in zip(pos, k, st, pads, dil))
            if all(0 <= i < n for i, n in zip(src, xs[2:])):
                elems.append((int(np.ravel_multi_index(src, xs[2:])), src))
        yield pos, elems


def ref_max_pool(x, case):
    """Values and first-argmax indices (NaN wins, as in PyTorch), one window at a time."""
    shape = out_shape(case)
    vals = np.zeros(shape, dtype=x.dtype)
    idx = np.zeros(shape, dtype=np.int64)
    for pos, elems in windows(x, case):
        for n, c in np.ndindex(*shape[:2]):
            best_i, best_v = elems[0][0], x[(n, c, *elems[0][1])]
            for flat, src in elems[1:]:
                v = x[(n, c, *src)]
                if v > best_v or (np.isnan(v) and not np.isnan(best_v)):
                    best_i, best_v = flat, v
            vals[(n, c, *pos)], idx[(n, c, *pos)] = best_v, best_i
    return vals, idx


def ref_sum_pool(x, case):
    shape = out_shape(case)
    out = np.zeros(shape, dtype=x.dtype)
    for pos, elems in windows(x, case):
        for _, src in elems:
            out[(slice(None), slice(None), *pos)] += x[(slice(None), slice(None), *src)]
    return out


def max_pool(x, case):
    return apply(P.max_pool_op, x, **attrs(case))


def max_pool_indices(x, case):
    return apply(P.max_pool_indices_op, x, **attrs(case))


def sum_pool(x, case):
    return apply(P.sum_pool_op, x, **attrs(case))


def sum_pool_t(g, case):
    return apply(P.sum_pool_transpose_op, g, shape=case[0][2:], **attrs(case))


# ----------------------------------------------------------------- forward vs NumPy
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool_and_indices_match_loops(case, dtype):
    x = distinct(case[0], "float64")
    x = (x * 10).astype(dtype) if dtype == "int64" else x.astype(dtype)
    vals, idx = ref_max_pool(x, case)
    got = max_pool(ember.tensor(x), case)
    assert got.dtype.name == dtype
    np.testing.assert_array_equal(got.numpy(), vals)
    got_idx = max_pool_indices(ember.tensor(x), case)
    assert got_idx.dtype is ember.int64
    np.testing.assert_array_equal(got_idx.numpy(), idx)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_ties_pick_the_first_maximum(case):
    x = RNG.integers(0, 2, case[0]).astype(np.float64)  # many ties
    vals, idx = ref_max_pool(x, case)
    np.testing.assert_array_equal(max_pool(ember.tensor(x), case).numpy(), vals)
    np.testing.assert_array_equal(max_pool_indices(ember.tensor(x), case).numpy(), idx)
    xt = ember.tensor(x, requires_grad=True)
    max_pool(xt, case).sum().backward()
    want = np.zeros(x.size // (x.shape[0] * x.shape[1]) * x.shape[0] * x.shape[1])
    flat = idx.reshape(x.shape[0] * x.shape[1], -1) + (
        np.arange(x.shape[0] * x.shape[1])[:, None] * math.prod(x.shape[2:])
    )
    np.add.at(want, flat.ravel(), 1.0)
    np.testing.assert_array_equal(xt.grad.numpy().ravel(), want)


def test_nan_propagates_and_is_the_argmax():
    x = np.array([[[1.0, np.nan, 3.0, 2.0, np.nan, np.nan]]])
    case = ((1, 1, 6), (2,), (2,), ((0, 0),), (1,))
    vals = max_pool(ember.tensor(x), case).numpy()
    assert np.isnan(vals[0, 0, 0]) and vals[0, 0, 1] == 3.0 and np.isnan(vals[0, 0, 2])
    assert max_pool_indices(ember.tensor(x), case).tolist() == [[[1, 2, 4]]]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nan_and_ties_anywhere_in_the_window(case):
    x = RNG.integers(0, 3, case[0]).astype(np.float64)
    x[RNG.random(x.shape) < 0.2] = np.nan
    vals, idx = ref_max_pool(x, case)
    np.testing.assert_array_equal(max_pool(ember.tensor(x), case).numpy(), vals)
    np.testing.assert_array_equal(max_pool_indices(ember.tensor(x), case).numpy(), idx)


@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_many_channels_small_images(case, dtype):
    """With N * C >= 64 and short output rows the kernel moves the batch innermost."""
    shape = (8, 9, *case[0][2:])
    x = RNG.integers(0, 3, shape).astype(dtype)  # many ties
    if dtype == "float32":
        x[RNG.random(shape) < 0.1] = np.nan
    vals, idx = ref_max_pool(x, (shape, *case[1:]))
    got = max_pool_indices(ember.tensor(x), (shape, *case[1:])).numpy()
    np.testing.assert_array_equal(got, idx)
    np.testing.assert_array_equal(max_pool(ember.tensor(x), (shape, *case[1:])).numpy(), vals)


def test_results_do_not_share_the_kernels_scratch_buffers(monkeypatch):
    """Temporaries are reused between calls; a result must survive the next call."""
    monkeypatch.setattr(C, "_SCRATCH_MIN", 0)  # reuse even these small temporaries
    case = CASES[3]
    x, y = distinct(case[0]), distinct(case[0])
    idx = max_pool_indices(ember.tensor(x), case)
    g = ember.tensor(RNG.standard_normal(idx.shape))
    scattered = apply(P.spatial_scatter_add_op, g, idx, shape=case[0][2:])
    kept = idx.numpy().copy(), scattered.numpy().copy()
    again = max_pool_indices(ember.tensor(y), case)
    np.testing.assert_array_equal(again.numpy(), ref_max_pool(y, case)[1])
    apply(P.spatial_scatter_add_op, -g, again, shape=case[0][2:])
    np.testing.assert_array_equal(idx.numpy(), kept[0])
    np.testing.assert_array_equal(scattered.numpy(), kept[1])


def test_all_lowest_windows_point_inside_the_input():
    # Windows holding only -inf (and -inf padding) must index a real element.
    x = np.full((1, 1, 5, 5), -np.inf)
    for case in [
        ((1, 1, 5, 5), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1)),
        ((1, 1, 5, 5), (2, 2), (2, 2), ((1, 1), (1, 1)), (2, 2)),
    ]:
        idx = max_pool_indices(ember.tensor(x), case).numpy()
        _, want = ref_max_pool(x, case)
        np.testing.assert_array_equal(idx, want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sum_pool_and_its_transpose_match_loops(case, dtype):
    x = RNG.standard_normal(case[0]).astype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(sum_pool(ember.tensor(x), case).numpy(), ref_sum_pool(x, case), tol)
    g = RNG.standard_normal(out_shape(case))
    lhs = float((sum_pool(ember.tensor(x.astype("float64")), case) * ember.tensor(g)).sum())
    rhs = float((ember.tensor(x.astype("float64")) * sum_pool_t(ember.tensor(g), case)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-12)  # adjoint


@pytest.mark.parametrize(
    "shape, out",
    [((1, 2, 7, 5), (3, 2)), ((2, 1, 5, 5), (5, 5)), ((1, 1, 3, 8), (2, 3)), ((1, 2, 6), (4,))],
)
def test_adaptive_max_pool_indices_match_loops(shape, out):
    x = distinct(shape)
    x.flat[::3] = 0.0  # some ties
    idx = apply(P.adaptive_max_pool_indices_op, ember.tensor(x), output_size=out).numpy()
    spatial = shape[2:]
    for n, c in np.ndindex(*shape[:2]):
        for pos in np.ndindex(*out):
            ranges = [
                range((p * s) // o, -((-(p + 1) * s) // o)) for p, s, o in zip(pos, spatial, out)
            ]
            cells = [
                (int(np.ravel_multi_index(src, spatial)), x[(n, c, *src)])
                for src in np.ndindex(*(len(r) for r in ranges))
                for src in [tuple(r[i] for r, i in zip(ranges, src))]
            ]
            best = max(v for _, v in cells)
            assert idx[(n, c, *pos)] == next(f for f, v in cells if v == best)


def test_spatial_gather_and_scatter_add_are_adjoint():
    x = RNG.standard_normal((2, 3, 4, 5))
    idx = RNG.integers(0, 20, (2, 3, 6)).astype(np.int64)  # repeats accumulate
    g = RNG.standard_normal((2, 3, 6))
    gathered = apply(P.spatial_gather_op, ember.tensor(x), ember.tensor(idx)).numpy()
    np.testing.assert_array_equal(gathered, np.take_along_axis(x.reshape(2, 3, 20), idx, axis=2))
    scattered = apply(P.spatial_scatter_add_op, ember.tensor(g), ember.tensor(idx), shape=(4, 5))
    assert scattered.shape == (2, 3, 4, 5)
    assert float((gathered * g).sum()) == pytest.approx(float((x * scattered.numpy()).sum()))


# ----------------------------------------------------------------- gradients
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pool_gradcheck(case):
    if math.prod(case[0]) > 150:
        pytest.skip("kept small for finite differences")
    x = ember.tensor(distinct(case[0]), requires_grad=True)
    gradcheck(lambda x: max_pool(x, case), (x,))
    gradcheck(lambda x: sum_pool(x, case), (x,))
    g = ember.tensor(RNG.standard_normal(out_shape(case)), requires_grad=True)
    gradcheck(lambda g: sum_pool_t(g, case), (g,))


SMALL = [
    ((1, 2, 5), (2,), (2,), ((1, 0),), (1,)),
    ((1, 1, 4, 3), (2, 2), (1, 2), ((0, 1), (1, 0)), (1, 1)),
    ((1, 1, 4, 4), (2, 2), (1, 1), ((0, 0), (0, 0)), (2, 1)),
]


@pytest.mark.parametrize("case", SMALL, ids=["1d", "2d-padded", "2d-dilated"])
def test_pool_double_backward(case):
    x = ember.tensor(distinct(case[0]), requires_grad=True)
    gradgradcheck(lambda x: max_pool(x, case), (x,))
    gradgradcheck(lambda x: sum_pool(x, case), (x,))
    g = ember.tensor(RNG.standard_normal(out_shape(case)), requires_grad=True)
    gradgradcheck(lambda g: sum_pool_t(g, case), (g,))


def test_gather_scatter_double_backward():
    x = ember.tensor(RNG.standard_normal((1, 2, 3, 2)), requires_grad=True)
    idx = ember.tensor(RNG.integers(0, 6, (1, 2, 4)).astype(np.int64))
    g = ember.tensor(RNG.standard_normal((1, 2, 4)), requires_grad=True)
    gradgradcheck(lambda x: apply(P.spatial_gather_op, x, idx) ** 2, (x,))
    gradgradcheck(lambda g: apply(P.spatial_scatter_add_op, g, idx, shape=(3, 2)) ** 2, (g,))


def test_adaptive_max_values_gradcheck():
    x = ember.tensor(distinct((1, 2, 5, 4)), requires_grad=True)

    def fn(x):
        idx = apply(P.adaptive_max_pool_indices_op, x, output_size=(3, 3))
        return apply(P.spatial_gather_op, x, idx)

    gradcheck(fn, (x,))


def test_in_place_on_the_pooled_output_keeps_backward_legal():
    # The gradient finds the argmax from the input, so relu_/mul_ on the output is fine.
    x = ember.tensor(distinct((1, 1, 4, 4)), requires_grad=True)
    y = max_pool(x * 1.0, CASES[2])
    y.mul_(2.0)
    y.sum().backward()
    assert float(x.grad.sum()) == 8.0


# ----------------------------------------------------------------- shape rules and errors
def test_infer_matches_eager():
    for case in CASES:
        x = ember.tensor(distinct(case[0], "float32"))
        g = ember.tensor(RNG.standard_normal(out_shape(case)).astype("float32"))
        a = attrs(case)
        for op, args, extra in [
            (P.max_pool_op, (x,), {}),
            (P.max_pool_indices_op, (x,), {}),
            (P.sum_pool_op, (x,), {}),
            (P.sum_pool_transpose_op, (g,), {"shape": case[0][2:]}),
        ]:
            out = apply(op, *args, **a, **extra)
            inferred = op.infer(*(AVal(t.shape, t.dtype) for t in args), **a, **extra)
            assert (inferred.shape, inferred.dtype) == (out.shape, out.dtype), op.name
    x = ember.randn(2, 3, 7, 5)
    idx = apply(P.adaptive_max_pool_indices_op, x, output_size=(3, 2))
    assert P.adaptive_max_pool_indices_op.infer(AVal(x.shape, x.dtype), output_size=(3, 2)) == (
        AVal(idx.shape, idx.dtype)
    )
    for op, args, kw in [
        (P.spatial_gather_op, (x, idx), {}),
        (P.spatial_scatter_add_op, (ember.randn(2, 3, 3, 2), idx), {"shape": (7, 5)}),
    ]:
        out = apply(op, *args, **kw)
        assert op.infer(*(AVal(t.shape, t.dtype) for t in args), **kw) == AVal(out.shape, out.dtype)


def test_errors():
    a = {"kernel_size": (3, 3), "stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1)}
    with pytest.raises(ShapeError, match=r"max_pool\(float32\[1, 1, 2, 2\]\).*too small"):
        apply(P.max_pool_op, ember.zeros(1, 1, 2, 2), **a)
    with pytest.raises(ShapeError, match="2 spatial dimensions"):
        apply(P.sum_pool_op, ember.zeros(1, 4, 4), **a)
    with pytest.raises(DTypeError, match="floating point"):
        apply(P.sum_pool_op, ember.zeros(1, 1, 4, 4, dtype=ember.int64), **a)
    with pytest.raises(DTypeError, match="bool"):
        apply(P.max_pool_op, ember.zeros(1, 1, 4, 4, dtype=ember.bool_), **a)
    with pytest.raises(ShapeError, match="not the cotangent's shape"):
        apply(P.sum_pool_transpose_op, ember.zeros(1, 1, 3, 3), shape=(4, 4), **a)
    with pytest.raises(DTypeError, match="int64"):
        apply(P.spatial_gather_op, ember.zeros(1, 1, 4), ember.zeros(1, 1, 2))
    with pytest.raises(ShapeError, match="first two dimensions"):
        apply(P.spatial_gather_op, ember.zeros(1, 2, 4), ember.zeros(1, 1, 2, dtype=ember.int64))
