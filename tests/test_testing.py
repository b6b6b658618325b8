"""ember.testing: gradcheck and gradgradcheck pass correct gradients and catch wrong ones."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import ember
from ember._src.ops import registry
from ember.testing import GradcheckError, gradcheck, gradgradcheck


def leaf(values: Any, dtype: Any = ember.float64) -> ember.Tensor:
    return ember.tensor(values, dtype=dtype, requires_grad=True)


def test_gradcheck_passes_correct_gradients() -> None:
    x = leaf([[0.5, -1.0, 2.0], [0.3, 1.5, -0.7]])
    y = leaf([1.0, -2.0, 0.5])
    assert gradcheck(lambda a, b: (a * b).sin(), (x, y))
    assert gradcheck(lambda a, b: (a @ b, a.sum(dim=0)), (x, y))  # several outputs


def test_gradcheck_names_input_element_and_values() -> None:
    x = leaf([1.0, 2.0])
    y = leaf([3.0, 4.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, b: a * b.detach() * b, (x, y))  # d/db misses a factor of 2
    message = str(info.value)
    assert "with respect to input 1" in message
    # The worst entry is reported: d(x1 * y1 * y1)/dy1 = 16, backward gives 8.
    assert "at input 1 element (1,), output element (1,)" in message
    found = re.search(r"analytic (\S+) vs numerical (\S+) ", message)
    assert found is not None
    assert float(found[1]) == 8.0
    assert float(found[2]) == pytest.approx(16.0)


def test_gradcheck_can_return_false() -> None:
    x = leaf([1.0, 2.0])
    assert gradcheck(lambda a: a.detach() * a, (x,), raise_exception=False) is False


def test_gradcheck_flags_an_output_cut_from_the_tape() -> None:
    x = leaf([1.0, 2.0])
    with pytest.raises(GradcheckError, match=r"analytic 0.0 vs numerical (3\.0|2\.999)"):
        gradcheck(lambda a: (a * 2).detach() + a.detach(), (x,))


def test_gradcheck_checks_float32_inputs_in_float64() -> None:
    seen = []

    def fn(a: ember.Tensor) -> ember.Tensor:
        seen.append(a.dtype)
        return a.exp()

    assert gradcheck(fn, leaf([0.1, 0.2], ember.float32))
    assert set(seen) == {ember.float64}


def test_gradcheck_passes_other_arguments_through() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    index = ember.tensor([[1, 0], [0, 0]])
    assert gradcheck(lambda a, i, d: ember.gather(a, d, i), (x, index, 1))


def test_gradcheck_ignores_integer_outputs() -> None:
    x = leaf([3.0, 1.0, 2.0])
    assert gradcheck(lambda a: ember.sort(a), (x,))  # (values, int64 indices)


def test_gradcheck_rejects_inputs_without_grad_and_outputs_without_floats() -> None:
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(ember.exp, (ember.tensor([1.0]),))
    with pytest.raises(ValueError, match="no floating point Tensor"):
        gradcheck(ember.argmax, (leaf([1.0, 2.0]),))


def test_gradcheck_catches_a_gradient_of_the_wrong_shape() -> None:
    # An unregistered op whose rule forgets to sum a broadcast gradient back.
    bad = registry.Op(
        "bad_broadcast",
        lambda xp, a: xp.broadcast_to(a, (2, *a.shape)),
        vjp=(lambda g, o, a: g,),
        shape=lambda a: (2, *a.shape),
        kind="same",
    )
    with pytest.raises(GradcheckError, match=r"shape \(2, 3\)"):
        gradcheck(lambda a: registry.apply(bad, a), (leaf([1.0, 2.0, 3.0]),))


def test_gradcheck_handles_empty_and_0d_inputs() -> None:
    assert gradcheck(lambda a: a * 2, (leaf(np.zeros((0, 3))),))
    assert gradcheck(lambda a: a.exp(), (leaf(0.5),))


def test_gradgradcheck_passes_correct_second_derivatives() -> None:
    x = leaf([0.5, 1.5, -2.0])
    y = leaf([1.0, 0.3, -0.4])
    assert gradgradcheck(lambda a, b: (a * b).tanh(), (x, y))
    assert gradgradcheck(lambda a: a.relu(), (x,))  # zero second derivative


def test_gradgradcheck_catches_a_first_derivative_that_is_not_differentiable() -> None:
    x = leaf([0.5, 1.5])
    with pytest.raises(GradcheckError, match="gradgradcheck"):
        gradgradcheck(lambda a: a * a.detach() ** 2, (x,))  # analytic d2 misses 2 a


def test_gradgradcheck_uses_given_grad_outputs() -> None:
    x = leaf([0.5, 1.5])
    assert gradgradcheck(lambda a: a**3, (x,), ember.tensor([1.0, -2.0]))
    with pytest.raises(ValueError, match="do not match"):
        gradgradcheck(lambda a: a**3, (x,), ember.tensor([1.0]))
