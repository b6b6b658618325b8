"""Property tests (hypothesis): broadcasting and indexing against NumPy, on random shapes.

Binary ops must broadcast exactly as NumPy does, and their gradients must sum
back over the broadcast dimensions. Indexing with basic slices, integer arrays
and bool masks must select what NumPy selects, and the gradient of
``x[idx].sum()`` must count how often each element was selected (``np.add.at``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ember

PROPERTY = settings(max_examples=50, deadline=None)

BINARY = {
    "add": (ember.add, np.add),
    "sub": (ember.sub, np.subtract),
    "mul": (ember.mul, np.multiply),
    "div": (ember.div, np.true_divide),
    "maximum": (ember.maximum, np.maximum),
    "minimum": (ember.minimum, np.minimum),
    "pow": (ember.pow, np.power),
    "atan2": (ember.atan2, np.arctan2),
    "lt": (ember.lt, np.less),
    "eq": (ember.eq, np.equal),
    "where": (
        lambda a, b: ember.where(a > b, a, b),
        lambda a, b: np.where(a > b, a, b),
    ),
}
# Away from zero, so that div and pow stay finite and smooth.
VALUES = st.floats(0.5, 4.0) | st.floats(-4.0, -0.5)


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the dimensions that broadcasting added or stretched."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    stretched = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True).reshape(shape)


@PROPERTY
@given(data=st.data(), name=st.sampled_from(sorted(BINARY)))
def test_binary_ops_broadcast_like_numpy(data: Any, name: str) -> None:
    fn, ref = BINARY[name]
    shapes = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3)
    )
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    a, b = (data.draw(hnp.arrays(dtype, s, elements=VALUES)) for s in shapes.input_shapes)
    if name == "pow":
        a = np.asarray(np.abs(a))  # np.abs turns a 0-d array into a scalar
    got = fn(ember.from_numpy(a), ember.from_numpy(b))
    want = np.asarray(ref(a, b))
    assert got.shape == want.shape == shapes.result_shape
    assert got.dtype.np == want.dtype
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5 if dtype == np.float32 else 1e-12)


@PROPERTY
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
    data=st.data(),
)
def test_broadcast_gradients_sum_back_to_each_operand(shapes: Any, data: Any) -> None:
    a, b = (data.draw(hnp.arrays(np.float64, s, elements=VALUES)) for s in shapes.input_shapes)
    g = data.draw(hnp.arrays(np.float64, shapes.result_shape, elements=VALUES))
    x = ember.tensor(a, requires_grad=True)
    y = ember.tensor(b, requires_grad=True)
    gx, gy = ember.grad(x * y, [x, y], ember.tensor(g))
    assert gx is not None and gy is not None
    np.testing.assert_allclose(gx.numpy(), _unbroadcast(g * b, a.shape), rtol=1e-12)
    np.testing.assert_allclose(gy.numpy(), _unbroadcast(g * a, b.shape), rtol=1e-12)


# ----------------------------------------------------------------- indexing
SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4)


@st.composite
def int_array_index(draw: Any, shape: tuple[int, ...]) -> tuple[Any, ...]:
    """One or two integer-array indices (negative entries and repeats allowed)."""
    dims = [d for d, n in enumerate(shape) if n > 0]
    if not dims:
        return (np.zeros((0,), np.int64),)
    axis = draw(st.sampled_from(dims))
    index_shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=3))
    n = shape[axis]
    arr = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(-n, n - 1)))
    index: list[Any] = [slice(None)] * axis + [arr]
    rest = [d for d in dims if d > axis]
    if rest and draw(st.booleans()):  # a second array, broadcast against the first
        second = rest[0]
        m = shape[second]
        index += [slice(None)] * (second - axis - 1)
        index.append(draw(hnp.arrays(np.int64, arr.shape[-1:], elements=st.integers(-m, m - 1))))
    return tuple(index)


@st.composite
def bool_mask_index(draw: Any, shape: tuple[int, ...]) -> tuple[Any, ...]:
    """A bool mask over a run of dimensions, after some leading full slices."""
    start = draw(st.integers(0, len(shape) - 1))
    stop = draw(st.integers(start + 1, len(shape)))
    mask = draw(hnp.arrays(np.bool_, shape[start:stop]))
    return (*[slice(None)] * start, mask)


@st.composite
def indexed(draw: Any) -> tuple[np.ndarray, Any, str]:
    shape = draw(SHAPES)
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-10, 10)))
    kind = draw(st.sampled_from(["basic", "int array", "bool mask"]))
    if kind == "basic":
        index = draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True))
    elif kind == "int array":
        index = draw(int_array_index(shape))
    else:
        index = draw(bool_mask_index(shape))
    return x, index, kind


def _as_ember_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_as_ember_index(v) for v in index)
    return ember.from_numpy(index) if isinstance(index, np.ndarray) else index


@PROPERTY
@given(case=indexed(), as_tensors=st.booleans())
def test_indexing_matches_numpy(case: tuple[np.ndarray, Any, str], as_tensors: bool) -> None:
    x, index, _ = case
    want = x[index]
    got = ember.from_numpy(x)[_as_ember_index(index) if as_tensors else index]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


@PROPERTY
@given(case=indexed())
def test_indexing_gradient_counts_selections(case: tuple[np.ndarray, Any, str]) -> None:
    x, index, _ = case
    t = ember.tensor(x, requires_grad=True)
    t[index].sum().backward()
    counts = np.zeros(x.shape)
    np.add.at(counts, index, 1.0)
    assert t.grad is not None
    np.testing.assert_array_equal(t.grad.numpy(), counts)


@PROPERTY
@given(case=indexed(), data=st.data())
def test_setitem_matches_numpy(case: tuple[np.ndarray, Any, str], data: Any) -> None:
    x, index, kind = case
    if kind == "int array":
        # Repeated integer indices make the written value order-dependent: use distinct ones.
        flat = np.ravel_multi_index(
            np.broadcast_arrays(*np.indices(x.shape, sparse=True)), x.shape
        )[index].ravel()
        if len(np.unique(flat)) != flat.size:
            return
    selected = x[index].shape
    value = data.draw(hnp.arrays(np.float64, selected, elements=st.floats(-10, 10)))
    want = x.copy()
    want[index] = value
    t = ember.tensor(x)
    t[index] = ember.tensor(value)
    np.testing.assert_array_equal(t.numpy(), want)
