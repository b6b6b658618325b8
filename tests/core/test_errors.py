"""Errors are the first documentation: op, operands' shapes and dtypes, the user's line."""

from __future__ import annotations

import numpy as np
import pytest

import ember


def test_broadcast_mismatch_names_op_operands_and_source_line():
    a, b = ember.ones(3, 4), ember.ones(5, dtype=ember.float64)
    with pytest.raises(ember.ShapeError) as info:
        a + b  # the line the message must quote
    msg = str(info.value)
    assert msg.startswith("add(float32[3, 4], float64[5])")
    assert "could not be broadcast" in msg and "(3, 4) (5,)" in msg
    assert "test_errors.py:" in msg and "a + b  # the line the message must quote" in msg


def test_matmul_mismatch_explains_inner_dimensions():
    with pytest.raises(ember.ShapeError, match=r"matmul\(float32\[2, 3\], float32\[4, 5\]\).*3.*4"):
        ember.ones(2, 3) @ ember.ones(4, 5)


def test_matmul_dtype_mismatch_is_a_dtype_error():
    with pytest.raises(ember.DTypeError, match="same dtype"):
        ember.ones(2, 2) @ ember.ones(2, 2, dtype=ember.float64)


def test_reduction_dim_out_of_range():
    with pytest.raises(ember.ShapeError, match=r"sum\(float32\[2, 3\]\).*dimension 2 out of range"):
        ember.ones(2, 3).sum(dim=2)


def test_reshape_to_wrong_size():
    with pytest.raises(ember.ShapeError, match=r"shape \(4, 2\) is invalid for input of size 6"):
        ember.ones(2, 3).reshape(4, 2)


def test_cat_mismatch():
    with pytest.raises(ember.ShapeError, match=r"cat\(.*float32\[2, 3\], float32\[2, 4\]"):
        ember.cat([ember.ones(2, 3), ember.ones(2, 4)], dim=0)


def test_errors_raise_before_any_state_changes():
    t = ember.zeros(2, 3)
    with pytest.raises((ember.ShapeError, RuntimeError)):
        t.add_(ember.ones(4))
    assert t._version_number == 0 and not t.numpy().any()
    x = ember.ones(3, requires_grad=True)
    h = x * 2
    with pytest.raises((ember.ShapeError, RuntimeError)):
        h.mul_(ember.ones(2))
    assert h.grad_fn.name() == "MulBackward0"  # the tape is untouched
    np.testing.assert_array_equal(h.detach().numpy(), [2.0, 2.0, 2.0])


def test_error_points_at_user_line_inside_a_model_function():
    def forward(x, w):
        return x @ w  # user code

    with pytest.raises(ember.ShapeError, match=r"return x @ w  # user code"):
        forward(ember.ones(2, 3), ember.ones(2, 3))
