"""ember.compile: tracing, the per-signature cache, captured tensors, errors, the IR."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import ember


def f64(*shape: int, requires_grad: bool = False) -> ember.Tensor:
    x = ember.randn(*shape, dtype=ember.float64)
    return x.requires_grad_() if requires_grad else x


def test_same_signature_never_retraces_and_a_new_shape_retraces_once() -> None:
    calls = []

    @ember.compile
    def f(x, y):
        calls.append(1)  # Python side effects run only while tracing
        return (x * y).sum(dim=0)

    a, b = f64(4, 3), f64(4, 3)
    for _ in range(3):
        np.testing.assert_array_equal(f(a, b).numpy(), (a * b).sum(dim=0).numpy())
    assert f.traces == 1 and len(calls) == 1
    c, d = f64(5, 3), f64(5, 3)
    for _ in range(3):
        np.testing.assert_array_equal(f(c, d).numpy(), (c * d).sum(dim=0).numpy())
    assert f.traces == 2
    f(a, b)  # the first signature is still cached
    assert f.traces == 2


def test_guards_dtype_requires_grad_and_python_values() -> None:
    f = ember.compile(lambda x, k: x * k)
    x = f64(3)
    f(x, 2.0)
    f(x, 2.0)
    f(x, 3.0)  # a Python scalar is part of the signature
    f(x.float(), 3.0)
    f(f64(3, requires_grad=True), 3.0)
    assert f.traces == 4
    np.testing.assert_array_equal(f(x, 3.0).numpy(), (x * 3.0).numpy())


def test_verbose_says_which_guard_changed(capsys: pytest.CaptureFixture[str]) -> None:
    f = ember.compile(lambda x: x + 1, verbose=True)
    f(f64(2, 3))
    f(f64(2, 3))
    f(f64(4, 3))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert "trace #1: first call" in err[0]
    assert "trace #2: args[0] shape changed: (2, 3) -> (4, 3)" in err[1]


def test_recompile_limit_warns() -> None:
    f = ember.compile(lambda x: x * 2, recompile_limit=2)
    f(f64(1))
    f(f64(2))
    with pytest.warns(RuntimeWarning, match="traced 3 times"):
        f(f64(3))


def test_captured_tensors_are_read_fresh_on_each_call() -> None:
    w = f64(3, 2, requires_grad=True)
    f = ember.compile(lambda x: x @ w)
    x = f64(4, 3)
    first = f(x)
    np.testing.assert_array_equal(first.numpy(), (x @ w).detach().numpy())
    with ember.no_grad():
        w.mul_(2.0)  # the parameter changes in place between calls
    np.testing.assert_array_equal(f(x).numpy(), 2 * first.numpy())
    w.data = f64(3, 2)  # rebound to a new array
    np.testing.assert_array_equal(f(x).numpy(), (x @ w).detach().numpy())
    assert f.traces == 1
    w.data = f64(3, 5)  # a new shape: retrace
    assert f(x).shape == (4, 5) and f.traces == 2


def test_gradients_inside_compiled_function_equal_eager() -> None:
    w = f64(3, 2, requires_grad=True)

    def step(x, y):
        loss = ((x @ w).tanh()[1:3] - y).square().mean()
        return loss, ember.grad(loss, [x, w])

    x, y = f64(4, 3, requires_grad=True), f64(2, 2)
    compiled = ember.compile(step)
    for _ in range(2):
        got_loss, (gx, gw) = compiled(x, y)
        want_loss, (wx, ww) = step(x, y)
        np.testing.assert_allclose(got_loss.numpy(), want_loss.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(gx.numpy(), wx.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gw.numpy(), ww.numpy(), rtol=1e-12)
    assert w.grad is None
    assert "index_scatter" in str(compiled.graph)  # not the eager-only sparse IndexGrad


def test_backward_into_traced_inputs_sets_the_arguments_grad() -> None:
    @ember.compile
    def f(x):
        (x**3).sum().backward()
        return x.grad

    x = f64(5, requires_grad=True)
    np.testing.assert_allclose(f(x).numpy(), 3 * x.detach().numpy() ** 2, rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.detach().numpy() ** 2, rtol=1e-12)
    # The next call would accumulate into x.grad (eager semantics): a new trace, not a
    # graph that assumes .grad was None.
    np.testing.assert_allclose(f(x).numpy(), 6 * x.detach().numpy() ** 2, rtol=1e-12)
    assert f.traces == 2


def test_backward_into_a_captured_parameter_writes_its_grad() -> None:
    w = f64(3, requires_grad=True)
    x = f64(3)

    @ember.compile
    def f(x):
        w.grad = None
        (x * w * w).sum().backward()
        return x

    f(x)
    np.testing.assert_allclose(w.grad.numpy(), 2 * x.numpy() * w.detach().numpy(), rtol=1e-12)
    g = w.grad
    with ember.no_grad():
        w.mul_(3.0)
    f(x)  # same graph, new value; the .grad object is kept and updated in place
    assert w.grad is g and f.traces == 1
    np.testing.assert_allclose(w.grad.numpy(), 2 * x.numpy() * w.detach().numpy(), rtol=1e-12)


def test_accumulating_into_a_grad_guards_on_it() -> None:
    w = f64(3, requires_grad=True)
    x = f64(3)
    f = ember.compile(lambda x: (x * w).sum().backward())
    f(x)  # traced with w.grad None: sets it
    f(x)  # w.grad is now a tensor the function accumulates into: traces again
    f(x)
    np.testing.assert_allclose(w.grad.numpy(), 3 * x.numpy(), rtol=1e-12)
    assert f.traces == 2


def _line_of(fn: object, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)  # type: ignore[arg-type]
    return start + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize(
    "access, what",
    [
        (lambda x: x.sum().item(), r"Tensor\.item\(\)"),
        (lambda x: x.numpy(), r"Tensor\.numpy\(\)"),
        (lambda x: x.tolist(), r"Tensor\.tolist\(\)"),
        (lambda x: bool(x.sum() > 0), r"bool\(tensor\)"),
        (lambda x: float(x.sum()), r"float\(tensor\)"),
        (lambda x: int(x.sum()), r"int\(tensor\)"),
        (lambda x: [1, 2, 3][x.sum().long()], "__index__"),
        (lambda x: np.asarray(x), "NumPy array"),
    ],
    ids=["item", "numpy", "tolist", "bool", "float", "int", "index", "asarray"],
)
def test_data_access_while_tracing_names_the_line_and_the_fix(access: object, what: str) -> None:
    f = ember.compile(access)  # type: ignore[arg-type]
    with pytest.raises(ember.TracerError, match=what) as e:
        f(f64(3))
    msg = str(e.value)
    assert f"{__file__}:" in msg and "ember.where" in msg  # the user's line and the fix


def test_value_dependent_if_names_the_users_line() -> None:
    def relu_or_not(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(ember.TracerError) as e:
        ember.compile(relu_or_not)(f64(3))
    assert f"{__file__}:{_line_of(relu_or_not, 'if x.sum()')}: if x.sum() > 0:" in str(e.value)


@pytest.mark.parametrize(
    "update",
    [
        lambda x: x.add_(1.0),
        lambda x: x.__iadd__(1.0),
        lambda x: x.__setitem__(0, 1.0),
        lambda x: x.zero_(),
        lambda x: x.copy_(x * 2),
        lambda x: x.clamp_(max=0.5),
    ],
    ids=["add_", "+=", "setitem", "zero_", "copy_", "clamp_"],
)
def test_in_place_ops_compile_to_the_eager_result(update: object) -> None:
    def f(x):
        y = x * 1.0
        update(y)  # type: ignore[operator]
        update(x)  # the argument itself: written back after the call
        return y * 2.0

    x1, x2 = f64(4), f64(4)
    x2.copy_(x1)
    want = f(x1)
    got = ember.compile(f)(x2)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(x2.numpy(), x1.numpy())


def test_in_place_update_of_outside_state_is_written_back() -> None:
    buf = f64(3)
    start = buf.numpy().copy()

    @ember.compile
    def f(x):
        buf.mul_(0.5).add_(x)  # a running average, like BatchNorm's statistics
        return buf.sum()

    x = f64(3)
    for k in range(1, 4):
        total = f(x)
        want = start * 0.5**k + x.numpy() * sum(0.5**j for j in range(k))
        np.testing.assert_allclose(buf.numpy(), want, rtol=1e-12)
        np.testing.assert_allclose(total.item(), want.sum(), rtol=1e-12)
    assert f.traces == 1


def test_reading_an_alias_after_an_in_place_update_is_caught() -> None:
    def update_view_read_view(x):
        y = x * 1.0
        v = y.reshape(-1)
        v.add_(1.0)
        return v * 2.0  # the view itself: fine

    x = f64(2, 2)
    np.testing.assert_array_equal(
        ember.compile(update_view_read_view)(x).numpy(), update_view_read_view(x).numpy()
    )

    def update_view_read_base(x):
        y = x * 1.0
        y.reshape(-1).add_(1.0)
        return y  # eager sees the update through the view; a compiled graph would not

    def update_base_read_view(x):
        y = x * 1.0
        v = y.t()
        y.add_(1.0)
        return v * 1.0

    for fn in (update_view_read_base, update_base_read_view):
        with pytest.raises(ember.TracerError, match="updated in place after it was made"):
            ember.compile(fn)(f64(2, 2))


def test_graph_and_source_are_readable() -> None:
    @ember.compile(optimize=False)  # one compute() per node
    def f(x, y):
        return (x @ y).relu(), x.sum()

    x, y = f64(4, 3), f64(3, 2)
    out, _ = f(x, y)
    np.testing.assert_array_equal(out.numpy(), (x @ y).relu().numpy())
    assert str(f.graph).splitlines() == [
        "graph f(x0: float64[4, 3], x1: float64[3, 2])",
        "  v2: float64[4, 2] = matmul(x0, x1)",
        "  v3: float64[4, 2] = relu(v2)",
        "  v4: float64[] = sum(x0, dim=None, keepdim=False)",
        "  return v3, v4",
    ]
    assert f.source.startswith("def f(x0, x1):\n    v2 = compute(")
    assert f.source.count("compute(") == 3


def test_structured_outputs_and_arguments() -> None:
    @ember.compile
    def f(pair, scale=1.0, *, extra):
        a, b = pair
        return {"sum": a + b, "sorted": (a * scale).sort(), "extra": extra["t"] * 2, "n": 3}

    a, b, t = f64(4), f64(4), f64(2)
    got = f((a, b), 2.0, extra={"t": t})
    assert got["n"] == 3
    np.testing.assert_array_equal(got["sum"].numpy(), (a + b).numpy())
    np.testing.assert_array_equal(got["sorted"].values.numpy(), (a * 2.0).sort().values.numpy())
    np.testing.assert_array_equal(got["sorted"].indices.numpy(), (a * 2.0).sort().indices.numpy())
    np.testing.assert_array_equal(got["extra"].numpy(), (t * 2).numpy())


def test_tensors_made_inside_are_captured_and_index_tensors_are_inputs() -> None:
    @ember.compile
    def f(x, idx):
        return x[idx] + ember.ones(3, dtype=ember.float64)

    x, idx = f64(5, 3), ember.tensor([4, 0, 4])
    np.testing.assert_array_equal(f(x, idx).numpy(), (x[idx] + 1).numpy())
    idx2 = ember.tensor([1, 2, 3])
    np.testing.assert_array_equal(f(x, idx2).numpy(), (x[idx2] + 1).numpy())
    assert f.traces == 1


def test_not_hashable_argument_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="hashable"):
        ember.compile(lambda x, a: x)(f64(2), np.ones(2))
