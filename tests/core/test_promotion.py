"""Type promotion against PyTorch: promote_types and the result dtypes of real ops.

Covers every pair of ember dtypes for tensor-tensor, tensor-0d and 0d-0d
operands, and tensors with Python bool/int/float scalars on either side.
Each test collects every mismatching combination and reports them together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import ember
from ember._src.core import dtype as dt

pytestmark = pytest.mark.torch

DTYPES = [d.name for d in dt.ALL]
# np.bool_ is left out: PyTorch promotes it like a float (ember treats it as a bool).
SCALARS = [True, 3, -2, 2.5, np.int64(3), np.float32(2.5)]

# name: (ember fn, torch fn); both take (a, b).
BINARY: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "maximum": (ember.maximum, lambda a, b: __import__("torch").maximum(a, b)),
    "eq": (lambda a, b: a == b, lambda a, b: a == b),
    "where": (
        lambda a, b: ember.where(ember.ones(a.shape, dtype=ember.bool), a, b),
        lambda a, b: __import__("torch").where(__import__("torch").ones(a.shape, dtype=bool), a, b),
    ),
    "cat": (
        lambda a, b: ember.cat([a.reshape(-1), b.reshape(-1)]),
        lambda a, b: __import__("torch").cat([a.reshape(-1), b.reshape(-1)]),
    ),
}


def torch_result(fn: Callable[..., Any], *args: Any) -> str | None:
    """The dtype name of torch's result, or None where torch refuses the operands."""
    try:
        out = fn(*args)
    except (RuntimeError, TypeError):
        return None
    return str(out.dtype).removeprefix("torch.")


def ember_result(fn: Callable[..., Any], *args: Any) -> str:
    try:
        return str(fn(*args).dtype.name)
    except (TypeError, ValueError, RuntimeError) as e:
        return f"raises {type(e).__name__}"


def report(mismatches: list[str]) -> None:
    assert not mismatches, f"{len(mismatches)} combinations differ from PyTorch:\n" + "\n".join(
        mismatches
    )


def test_promote_types_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    mismatches = []
    for a in DTYPES:
        for b in DTYPES:
            got = ember.promote_types(dt.to_dtype(a), dt.to_dtype(b)).name
            want = str(torch.promote_types(getattr(torch, a), getattr(torch, b)))
            if got != want.removeprefix("torch."):
                mismatches.append(f"promote_types({a}, {b}): ember {got}, torch {want}")
    report(mismatches)


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize(
    "shapes",
    [((2,), (2,)), ((2,), ()), ((), (2,)), ((), ())],
    ids=["nd-nd", "nd-0d", "0d-nd", "0d-0d"],
)
def test_tensor_tensor_result_dtype_matches_torch(op: str, shapes: Any) -> None:
    torch = pytest.importorskip("torch")
    efn, tfn = BINARY[op]
    mismatches = []
    for a in DTYPES:
        for b in DTYPES:
            want = torch_result(
                tfn,
                torch.ones(shapes[0], dtype=getattr(torch, a)),
                torch.ones(shapes[1], dtype=getattr(torch, b)),
            )
            if want is None:
                continue
            got = ember_result(efn, ember.ones(shapes[0], dtype=a), ember.ones(shapes[1], dtype=b))
            if got != want:
                mismatches.append(
                    f"{op}({a}{list(shapes[0])}, {b}{list(shapes[1])}): ember {got}, torch {want}"
                )
    report(mismatches)


SCALAR_OPS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "add": (lambda t, s: t + s, lambda t, s: t + s),
    "radd": (lambda t, s: s + t, lambda t, s: s + t),
    "mul": (lambda t, s: t * s, lambda t, s: t * s),
    "rsub": (lambda t, s: s - t, lambda t, s: s - t),
    "div": (lambda t, s: t / s, lambda t, s: t / s),
    "rdiv": (lambda t, s: s / t, lambda t, s: s / t),
    "pow": (lambda t, s: t**s, lambda t, s: t**s),
    "lt": (lambda t, s: t < s, lambda t, s: t < s),
    "where": (
        lambda t, s: ember.where(t == t, t, s),
        lambda t, s: __import__("torch").where(t == t, t, s),
    ),
    "clamp_min": (lambda t, s: ember.clamp(t, min=s), lambda t, s: t.clamp(min=s)),
    "clamp_max": (lambda t, s: ember.clamp(t, max=s), lambda t, s: t.clamp(max=s)),
    "masked_fill": (
        lambda t, s: t.masked_fill(t == t, s),
        lambda t, s: t.masked_fill(t == t, s),
    ),
}


@pytest.mark.parametrize("op", sorted(SCALAR_OPS))
@pytest.mark.parametrize("shape", [(2,), ()], ids=["nd", "0d"])
def test_tensor_scalar_result_dtype_matches_torch(op: str, shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    efn, tfn = SCALAR_OPS[op]
    mismatches = []
    for a in DTYPES:
        for s in SCALARS:
            want = torch_result(tfn, torch.ones(shape, dtype=getattr(torch, a)), s)
            if want is None:
                continue
            got = ember_result(efn, ember.ones(shape, dtype=a), s)
            if got != want:
                mismatches.append(f"{op}({a}{list(shape)}, {s!r}): ember {got}, torch {want}")
    report(mismatches)


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_python_floats_follow_the_default_dtype(default: str) -> None:
    torch = pytest.importorskip("torch")
    ember.set_default_dtype(dt.to_dtype(default))
    torch_default = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default))
    try:
        for a in ("int64", "bool", "float16"):
            got = ember_result(lambda t: t * 2.5, ember.ones(2, dtype=a))
            want = torch_result(lambda t: t * 2.5, torch.ones(2, dtype=getattr(torch, a)))
            assert got == want, f"{a} * 2.5 with default {default}: ember {got}, torch {want}"
        assert ember.tensor(1.5).dtype.name == default
    finally:
        ember.set_default_dtype(ember.float32)
        torch.set_default_dtype(torch_default)
