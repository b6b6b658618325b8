"""Every op-table entry run through ``ember.compile`` equals eager: values and gradients.

Each float64 sample's tensor arguments become the compiled function's
arguments (other arguments are closed over). Gradients are taken inside the
compiled function with ``ember.grad`` of a weighted sum of the float outputs,
so the traced backward graph is checked against the eager tape.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import ember

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:  # the op table lives in tests/ops
    sys.path.insert(0, ROOT)

from tests.ops.op_table import OPS, OpInfo, Sample  # noqa: E402

# Ops whose output shape depends on the input values cannot be traced with shapes only.
DATA_DEPENDENT = {"masked_select"}
BOOL_INDEXED = {"getitem", "setitem"}  # with a traced boolean mask as the index


def value_dependent(info: OpInfo, sample: Sample) -> bool:
    if info.name in DATA_DEPENDENT:
        return True
    bools = [a for a in sample.args if isinstance(a, np.ndarray) and a.dtype.kind == "b"]
    return info.name in BOOL_INDEXED and bool(bools)


def flat(result: Any) -> list[Any]:
    if isinstance(result, (tuple, list)):
        return [y for r in result for y in flat(r)]
    return [result]


def to_ember(a: Any, requires_grad: bool = False) -> Any:
    """A sample's NumPy array as an ember tensor (other arguments pass through)."""
    if not isinstance(a, np.ndarray):
        return a
    t = ember.from_numpy(np.array(a, copy=True, order="K"))
    return t.requires_grad_() if requires_grad and a.dtype.kind == "f" else t


def cases() -> list[Any]:
    return [pytest.param(info, id=info.name) for info in OPS if "float64" in info.dtypes]


def split(sample: Sample, requires_grad: bool) -> tuple[list[Any], Callable[..., list[Any]]]:
    """The sample's tensors, and a function of them that runs with the other arguments fixed."""
    args = [to_ember(a, requires_grad) for a in sample.args]
    where = [i for i, a in enumerate(args) if isinstance(a, ember.Tensor)]

    def with_tensors(tensors: tuple[Any, ...]) -> list[Any]:
        full = list(args)
        for i, t in zip(where, tensors):
            full[i] = t
        return full

    return [args[i] for i in where], with_tensors


def weights(outputs: list[Any]) -> list[Any]:
    rng = np.random.default_rng(0)
    return [ember.from_numpy(rng.standard_normal(o.shape)).to(o.dtype) for o in outputs]


def float_outs(result: Any) -> list[Any]:
    return [t for t in flat(result) if isinstance(t, ember.Tensor) and t.dtype.is_floating_point]


def assert_same(got: list[Any], want: list[Any]) -> None:
    assert len(got) == len(want), f"{len(got)} outputs, eager gives {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None, f"output {k}: eager gives None"
            continue
        assert g.shape == w.shape, f"output {k}: shape {g.shape}, eager {w.shape}"
        assert g.dtype is w.dtype, f"output {k}: dtype {g.dtype}, eager {w.dtype}"
        np.testing.assert_allclose(
            g.detach().numpy(), w.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"output {k}"
        )


def weighted_loss_and_grads(
    info: OpInfo, s: Sample, full: Callable[..., list[Any]], ws: list[Any]
) -> Callable[..., Any]:
    """A function of the sample's tensors: a weighted sum of the float outputs and its grads."""

    def loss_and_grads(*ts: Any) -> Any:
        outs = float_outs(info.op(*full(ts), **s.kwargs))
        loss = ember.zeros((), dtype=ember.float64)
        for o, w in zip(outs, ws):
            loss = loss + (o * w).sum()
        grad_in = [t for t in ts if t.requires_grad]
        return loss, ember.grad(loss, grad_in, allow_unused=True)

    return loss_and_grads


@pytest.mark.parametrize("info", cases())
def test_compiled_equals_eager(info: OpInfo) -> None:
    for s in info.make_samples("float64"):
        tensors, full = split(s, requires_grad=False)
        if not tensors:
            continue
        compiled = ember.compile(lambda *ts: info.op(*full(ts), **s.kwargs))  # noqa: B023
        want = flat(info.op(*full(tuple(tensors)), **s.kwargs))
        if value_dependent(info, s):
            with pytest.raises(
                ember.TracerError, match="shape depends on|needs the tensor's value"
            ):
                compiled(*tensors)
            continue
        try:
            got = flat(compiled(*tensors))
            assert_same(got, want)
            assert compiled.traces == 1
        except Exception as e:
            raise AssertionError(f"{info.name} {s!r}: {type(e).__name__}: {e}") from e


@pytest.mark.parametrize(
    "info", [c for c in cases() if c.values[0].grad and c.values[0].name not in DATA_DEPENDENT]
)
def test_compiled_gradients_equal_eager(info: OpInfo) -> None:
    checked = 0
    for s in info.make_samples("float64"):
        if value_dependent(info, s):
            continue
        tensors, full = split(s, requires_grad=True)
        wrt = [t for t in tensors if t.requires_grad]
        if not wrt:
            continue
        outs = float_outs(info.op(*full(tuple(tensors)), **s.kwargs))
        if not outs or not any(o.requires_grad for o in outs):
            continue

        loss_and_grads = weighted_loss_and_grads(info, s, full, weights(outs))
        want_loss, want_grads = loss_and_grads(*tensors)
        try:
            got_loss, got_grads = ember.compile(loss_and_grads)(*tensors)
            assert_same([got_loss, *got_grads], [want_loss, *want_grads])
        except Exception as e:
            raise AssertionError(f"{info.name} {s!r}: {type(e).__name__}: {e}") from e
        checked += 1
    assert checked, f"{info.name}: no sample with a differentiable float output"
