"""The memory plan and direct NumPy calls: buffers are reused where that is safe and never
where a result, a view of it, an input or a captured tensor could be affected."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import ember
from ember._src.compile.memory import plan

rng = np.random.default_rng(1)


@pytest.fixture(autouse=True)
def _optimized(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBER_COMPILE_OPTIMIZE", raising=False)  # these tests are about it


def t(*shape: int, dtype: Any = np.float32) -> ember.Tensor:
    return ember.from_numpy(rng.standard_normal(shape).astype(dtype))


def test_elementwise_chain_runs_in_one_buffer() -> None:
    @ember.compile
    def f(x: ember.Tensor) -> ember.Tensor:
        y = ((x * 2.0 + 1.0).tanh() - x).exp()
        return y.sum(dim=0)

    x = t(64, 32)
    want = np.exp(np.tanh(x.numpy() * 2 + 1) - x.numpy()).sum(0)
    for _ in range(2):
        np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-6)
    p = f.memory_plan()
    assert len(p.buffers) == 1 and len(p.slot) == 5  # mul, add, tanh, sub, exp in place
    assert p.held_bytes == 64 * 32 * 4
    assert p.call_bytes == 32 * 4  # only the output is allocated per call
    assert p.naive_bytes == 5 * 64 * 32 * 4 + 32 * 4
    text = str(p)
    assert "5 write into 1 reused buffers" in text and "b0 (8.2 kB): v1 v2 v3 v4 v5" in text
    assert f.source.count("out=s0") == 5


def test_results_of_one_call_survive_the_next() -> None:
    """No output, nor a view of one, lives in a buffer that the next call writes."""

    @ember.compile
    def f(x: ember.Tensor) -> Any:
        a = (x * 3.0).exp()
        b = a.reshape(-1)  # an output that is a view of an elementwise result
        c = (x + 1.0).t()  # a permuted view
        d = (x - 1.0) * 2.0  # an output computed by a chain
        return b, c, d

    x1, x2 = t(4, 3), t(4, 3)
    first = [o.numpy().copy() for o in f(x1)]
    kept = f(x1)
    f(x2)
    for a, b in zip(kept, first):
        np.testing.assert_array_equal(a.numpy(), b)
    want = [np.exp(x1.numpy() * 3).reshape(-1), (x1.numpy() + 1).T, (x1.numpy() - 1) * 2]
    for a, b in zip(kept, want):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-6)


def test_a_buffer_with_a_live_view_is_not_reused() -> None:
    @ember.compile
    def f(x: ember.Tensor) -> ember.Tensor:
        a = x * 2.0
        v = a.t()  # a view of a's buffer, read at the end
        b = (x + 5.0) * 3.0  # same shape as a: would take a's buffer if a were dead
        return (v + b.t()).sum()

    x = t(3, 3)
    want = ((x.numpy() * 2).T + ((x.numpy() + 5) * 3).T).sum()
    for _ in range(2):
        np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-5)
    p = f.memory_plan()
    a_node, b_node = f.graph.nodes[0], f.graph.nodes[2]
    assert (a_node.op.name, b_node.op.name) == ("mul", "add")
    assert p.slot[a_node.out.name] != p.slot[b_node.out.name]


def test_inputs_and_captured_tensors_are_never_written() -> None:
    w = t(5)
    w0 = w.numpy().copy()

    @ember.compile
    def f(x: ember.Tensor) -> ember.Tensor:
        return ((x * w).exp() + w).sum()

    x = t(5)
    x0 = x.numpy().copy()
    for _ in range(3):
        f(x)
    np.testing.assert_array_equal(w.numpy(), w0)
    np.testing.assert_array_equal(x.numpy(), x0)
    np.testing.assert_allclose(f(x).numpy(), (np.exp(x0 * w0) + w0).sum(), rtol=1e-6)


def test_a_call_during_another_gets_its_own_buffers() -> None:
    @ember.compile
    def f(x: ember.Tensor) -> ember.Tensor:
        return ((x * 2.0).exp() + 1.0).sum()

    x = t(8)
    want = f(x).numpy()
    names = f._entry().run.__globals__
    (buffer,) = names["held"]  # the planned code's one buffer, as the view it writes into
    before = buffer.copy()
    lock: threading.Lock = names["lock"]
    with lock:  # as if another thread were inside f
        np.testing.assert_array_equal(f(x * 0.5).numpy(), (np.exp(x.numpy()) + 1).sum())
    np.testing.assert_array_equal(buffer, before)  # the held buffer was left alone
    np.testing.assert_array_equal(f(x).numpy(), want)


def test_planned_and_unplanned_code_agree_bitwise_on_float32() -> None:
    w = t(16, 8)

    def step(x: ember.Tensor) -> Any:
        h = (x @ w).sigmoid() * (x @ w).relu() - (x @ w) ** 2 + 1.0 / ((x @ w) ** 2 + 1.0)
        loss = (h * h).mean()
        return loss, ember.grad(loss, [w])[0]

    x = t(4, 16)
    w.requires_grad_()
    on, off = ember.compile(step), ember.compile(step, optimize=False)
    for _ in range(2):
        for a, b in zip(on(x), off(x)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert "np.tanh" in on.source and "np.maximum" in on.source and "np.square" in on.source


def test_memory_plan_report_without_optimization() -> None:
    f = ember.compile(lambda x: (x * 2.0).exp() + 1.0, optimize=False)
    f(t(10))
    p = f.memory_plan()
    assert not p.buffers and p.call_bytes == p.naive_bytes == 3 * 40
    assert p.planned_peak == p.naive_peak


def test_plan_counts_a_chain_of_mixed_shapes() -> None:
    @ember.compile
    def f(x: ember.Tensor, y: ember.Tensor) -> ember.Tensor:
        a = x * 2.0  # (4, 5)
        b = y * 3.0  # (5,)
        c = a + b  # (4, 5): reuses a's buffer in place
        d = b.exp()  # (5,): reuses b's buffer
        return c.sum() + d.sum()

    x, y = t(4, 5), t(5)
    f(x, y)
    p = plan(f.graph)
    a, b, c, d = (n.out.name for n in f.graph.nodes[:4])
    assert p.slot[a] == p.slot[c] and p.slot[b] == p.slot[d]
    # a and c in one buffer, b and d in another; the first sum in a third, the second
    # sum in a's (raw bytes: any dtype and shape that fits)
    assert len(p.buffers) == 3 and p.buffers[0] == 4 * 5 * 4
    np.testing.assert_allclose(
        f(x, y).numpy(), (x.numpy() * 2 + y.numpy() * 3).sum() + np.exp(y.numpy() * 3).sum(), 1e-5
    )


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32])
def test_other_dtypes_compile_to_eager_values(dtype: Any) -> None:
    def fn(x: ember.Tensor, y: ember.Tensor) -> ember.Tensor:
        return (x * y + x) * 2 - y

    x, y = t(3, 4, dtype=dtype), t(3, 4, dtype=dtype)
    f = ember.compile(fn)
    for _ in range(2):
        got, want = f(x, y), fn(x, y)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_slice_gradients_sum_into_a_reused_buffer() -> None:
    w = t(4, 8).requires_grad_()

    def fn(x: ember.Tensor) -> ember.Tensor:
        h = x @ w
        loss = h[:, :4].tanh().sum() + (h[:, 2:] * 3.0).sigmoid().sum() + h[1].sum()
        return ember.grad(loss, [w])[0]

    x = t(3, 4)
    f = ember.compile(fn)
    want = fn(x).detach().numpy()
    for _ in range(2):
        np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-5, atol=1e-6)
    merged = [n for n in f.graph.nodes if n.op.name == "scatter_sum"]
    assert len(merged) == 1 and len(merged[0].attrs["indices"]) == 3
    assert merged[0].out.name in f.memory_plan().slot  # written into a held buffer


def test_batched_matmuls_write_into_buffers() -> None:
    w = t(8, 6)

    @ember.compile
    def f(x: ember.Tensor) -> ember.Tensor:
        h = (x @ w).tanh()  # (2, 3, 8) @ (8, 6): one GEMM over the 6 rows
        s = h @ h.transpose(1, 2)  # a batch of (3, 6) @ (6, 3)
        return (s * 2.0).sum()

    x = t(2, 3, 8)
    h = np.tanh(x.numpy() @ w.numpy())
    want = (2 * (h @ h.transpose(0, 2, 1))).sum()
    for _ in range(2):
        np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-5)
    first, second = (n for n in f.graph.nodes if n.op.name == "matmul")
    assert {first.out.name, second.out.name} <= set(f.memory_plan().slot)
    assert "compute(op_matmul" not in f.source  # matmul_into, writing into the buffers


@pytest.mark.parametrize("layout", ["batch", "sample"])
@pytest.mark.parametrize(("stride", "groups"), [(1, 1), (2, 1), (1, 2)])
def test_convolutions_write_into_buffers(
    monkeypatch: Any, layout: str, stride: int, groups: int
) -> None:
    from ember._src.ops import conv as C
    from ember._src.ops.registry import apply

    monkeypatch.setattr(C, "_FORCE_LAYOUT", layout)  # each GEMM layout's path into the buffer
    a = {"stride": (stride, stride), "padding": ((1, 1), (1, 1)), "dilation": (1, 1)}

    def fn(x: ember.Tensor, w: ember.Tensor) -> list[ember.Tensor]:
        y = C.conv(x, w, stride=stride, padding=1, groups=groups)
        z = C.conv_transpose(
            y * 2.0, w, stride=stride, padding=1, output_padding=stride - 1, groups=groups
        )
        dw = apply(C.conv_weight_op, z, y, kernel_size=(3, 3), groups=groups, **a)
        return [y * 2.0, z * 2.0, dw * 2.0]  # each an intermediate, then exactly doubled

    x, w = t(2, 6, 6, 6), t(4, 6 // groups, 3, 3)
    f = ember.compile(fn)
    eager = fn(x, w)
    for _ in range(2):
        for k, (got, want) in enumerate(zip(f(x, w), eager)):
            np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"output {k}")
    convs = [n for n in f.graph.nodes if n.op.name.startswith("conv")]
    assert len(convs) == 3 and {n.out.name for n in convs} <= set(f.memory_plan().slot)
    assert "compute(op_conv" not in f.source  # the CPU kernels, writing into the buffers


def test_a_function_named_like_the_runtime_helpers_still_runs() -> None:
    def views(x: ember.Tensor) -> ember.Tensor:  # the planned code's buffer factory's name
        return ((x * 2.0).exp() + 1.0).sum()

    f = ember.compile(views)
    x = t(4)
    want = (np.exp(x.numpy() * 2) + 1).sum()
    np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-6)
    with f._entry().run.__globals__["lock"]:  # the path that calls views() for new buffers
        np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-6)
