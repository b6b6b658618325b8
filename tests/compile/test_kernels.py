"""What the memory plan assumes of the ops: those in ``kernels.FRESH`` return new arrays.

The plan lets a value's buffer be reused once its last reader ran; an op that
returned a view of an operand would keep that buffer alive unseen. Every
op-table sample (forward and backward, float64) runs eagerly with
``registry.compute`` checked: no result of an op in FRESH may share memory with
an operand.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import pytest

import ember
from ember._src.compile.kernels import FRESH
from ember._src.ops import registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:  # the op table lives in tests/ops
    sys.path.insert(0, ROOT)

from tests.ops.op_table import OPS  # noqa: E402


def _arrays(value: Any) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays(v)]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _arrays(v)]
    return []


def test_fresh_ops_never_return_a_view_of_an_operand(monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry.compute
    seen: set[str] = set()
    aliased: list[str] = []
    views: set[str] = set()  # ops outside FRESH seen returning a view: the check can see one

    def checked(op: Any, backend: Any, operands: Any, attrs: Any) -> Any:
        out = real(op, backend, operands, attrs)
        if op.name in FRESH:
            seen.add(op.name)
        for a in _arrays(list(operands)) + _arrays(attrs):
            if np.shares_memory(out, a):
                if op.name in FRESH:
                    aliased.append(f"{op.name} (operand {a.shape} {a.dtype})")
                else:
                    views.add(op.name)
        return out

    monkeypatch.setattr(registry, "compute", checked)
    for info in OPS:
        if "float64" not in info.dtypes:
            continue
        for s in info.make_samples("float64"):
            args = [
                ember.from_numpy(np.array(a, copy=True)).requires_grad_()
                if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                else (ember.from_numpy(np.array(a, copy=True)) if isinstance(a, np.ndarray) else a)
                for a in s.args
            ]
            try:
                out = info.op(*args, **s.kwargs)
            except Exception:  # the table's error samples: not what this test is about
                continue
            outs = out if isinstance(out, (tuple, list)) else [out]
            floats = [o for o in outs if isinstance(o, ember.Tensor) and o.requires_grad]
            if floats:
                total = sum((o.sum() for o in floats), ember.zeros((), dtype=ember.float64))
                total.backward()
    assert not aliased, sorted(set(aliased))
    assert len(seen) > 40  # the check ran on most of FRESH's ops, not on none
    assert {"reshape", "permute", "getitem"} <= views


UNARY = ["neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "tanh",
         "floor", "ceil", "trunc", "relu", "sigmoid", "reciprocal"]  # fmt: skip
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "atan2", "eq", "ne", "lt", "le",
          "gt", "ge"]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_direct_kernels_give_eagers_bits(dtype: Any) -> None:
    rng = np.random.default_rng(2)
    x = ember.from_numpy((rng.random((5, 4)) + 0.5).astype(dtype))
    y = ember.from_numpy((rng.standard_normal((4,))).astype(dtype))

    def fn(a: ember.Tensor, b: ember.Tensor) -> list[ember.Tensor]:
        outs = [getattr(ember, name)(a) for name in UNARY]
        outs += [getattr(ember, name)(a, b) for name in BINARY]
        outs += [getattr(ember, name)(a, 1.5) for name in BINARY]
        outs += [a**2, a**0.5, a**3, a**b, 2.0**b, (a * b).sum(dim=0), a.to(ember.float64)]
        # Each result an intermediate (written into a reused buffer), then exactly doubled
        # in float32: equal bits here mean equal bits of the op's own result.
        return [o.to(ember.float32) * 2.0 for o in outs]

    planned, plain = ember.compile(fn), ember.compile(fn, optimize=False)
    eager = fn(x, y)
    for _ in range(2):
        for k, (p, q, e) in enumerate(zip(planned(x, y), plain(x, y), eager)):
            np.testing.assert_array_equal(p.numpy(), e.numpy(), err_msg=f"output {k}")
            np.testing.assert_array_equal(q.numpy(), e.numpy(), err_msg=f"output {k}")
            assert p.dtype == e.dtype
    direct = [line for line in planned.source.splitlines() if "compute(" not in line]
    assert sum("= np." in line for line in direct) > len(UNARY) + 2 * len(BINARY)
    assert sum("out=s" in line for line in direct) > len(UNARY) + 2 * len(BINARY)


def test_an_op_outside_the_registry_keeps_its_own_forward() -> None:
    from ember._src.compile.codegen import generate
    from ember._src.compile.graph import Graph
    from ember._src.core.backend import CPU
    from ember._src.ops.registry import Op

    # Named like a registered op, computing something else (and returning a view).
    odd = Op("add", lambda xp, a, b: a[::-1], shape=lambda a, b: tuple(a.shape), kind="same")
    g = Graph("g")
    x = g.add_input((4,), np.dtype(np.float64), captured=False)
    y = g.add(odd, [x, x], {}, (4,), np.dtype(np.float64))
    z = g.add(registry.REGISTRY["exp"], [y], {}, (4,), np.dtype(np.float64))
    g.outputs = [g.add(registry.REGISTRY["mul"], [z, y], {}, (4,), np.dtype(np.float64))]
    source, run = generate(g, CPU, optimize=True)
    assert "compute(op_add" in source  # not np.add
    xv = np.arange(4.0)
    for _ in range(2):
        np.testing.assert_allclose(run(xv)[0], np.exp(xv[::-1]) * xv[::-1], rtol=1e-15)
    np.testing.assert_array_equal(xv, np.arange(4.0))  # y, a view of the input, never written
