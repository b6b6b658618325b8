"""ember.cond and ember.scan: eager, under ember.compile, on placeholders; values and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import ember

RNG = np.random.default_rng(1)


def f64(*shape: int, requires_grad: bool = False) -> ember.Tensor:
    x = ember.tensor(RNG.standard_normal(shape), dtype=ember.float64)
    return x.requires_grad_() if requires_grad else x


def branches(x: ember.Tensor, w: ember.Tensor) -> tuple:  # type: ignore[type-arg]
    return (
        lambda a, b: ((a * b).sin(), a.sum()),
        lambda a, b: ((a - b).exp(), (a * a).sum()),
    )


def numpy_branch(pred: bool, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    if pred:
        return np.sin(a * b), a.sum()
    return np.exp(a - b), (a * a).sum()


def test_eager_cond_runs_only_the_chosen_branch() -> None:
    calls: list[str] = []

    def yes(v: ember.Tensor) -> ember.Tensor:
        calls.append("yes")
        return v + 1.0

    def no(v: ember.Tensor) -> ember.Tensor:
        calls.append("no")
        return v - 1.0

    x = ember.tensor([1.0, 2.0])
    np.testing.assert_array_equal(ember.cond(ember.tensor(True), yes, no, x).numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(ember.cond(x.sum() < 0, yes, no, x).numpy(), [0.0, 1.0])
    np.testing.assert_array_equal(ember.cond(False, yes, no, x).numpy(), [0.0, 1.0])
    assert calls == ["yes", "no", "no"]


def test_compiled_cond_picks_the_branch_per_call_without_retracing() -> None:
    x, w = f64(4), f64(4)
    t_fn, f_fn = branches(x, w)
    step = ember.compile(lambda p, a, b: ember.cond(p, t_fn, f_fn, a, b))
    for pred in (True, False, False, True):
        out, total = step(ember.tensor(pred), x, w)
        ref_out, ref_total = numpy_branch(pred, x.numpy(), w.numpy())
        np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-13)
        assert total.item() == pytest.approx(ref_total, rel=1e-13)
        eager_out, eager_total = ember.cond(ember.tensor(pred), t_fn, f_fn, x, w)
        np.testing.assert_array_equal(out.numpy(), eager_out.numpy())
        np.testing.assert_array_equal(total.numpy(), eager_total.numpy())
    assert step.traces == 1
    # A float predicate counts as true when non-zero, a one-element tensor works too.
    out, _ = step(ember.tensor([0.0]), x, w)
    np.testing.assert_allclose(out.numpy(), np.exp(x.numpy() - w.numpy()), rtol=1e-13)


def test_compiled_cond_gradients_match_eager_and_numpy() -> None:
    x, w = f64(3), f64(3, requires_grad=True)
    t_fn, f_fn = branches(x, w)

    def loss_and_grad(p: ember.Tensor, a: ember.Tensor) -> tuple[ember.Tensor, ember.Tensor]:
        out, total = ember.cond(p, t_fn, f_fn, a, w)
        loss = out.sum() + total
        return loss, ember.grad(loss, [w])[0]

    compiled = ember.compile(loss_and_grad)
    for pred in (True, False):
        loss, g = compiled(ember.tensor(pred), x)
        eager_loss, eager_g = loss_and_grad(ember.tensor(pred), x)
        np.testing.assert_allclose(loss.numpy(), eager_loss.detach().numpy(), rtol=1e-13)
        np.testing.assert_allclose(g.numpy(), eager_g.numpy(), rtol=1e-13, atol=1e-15)
        a, b = x.numpy(), w.detach().numpy()
        ref = a * np.cos(a * b) if pred else -np.exp(a - b)
        np.testing.assert_allclose(g.numpy(), ref, rtol=1e-12)
    assert compiled.traces == 1


def test_cond_on_placeholders() -> None:
    p = ember.placeholder((), ember.bool, name="p")
    x = ember.placeholder((None,), ember.float64, name="x")
    y = ember.cond(p, lambda v: v * 2.0, lambda v: v - 1.0, x)
    f = ember.function([p, x], y)
    np.testing.assert_array_equal(f(True, [1.0, 2.0]), [2.0, 4.0])
    np.testing.assert_array_equal(f(False, [1.0, 2.0]), [0.0, 1.0])
    np.testing.assert_array_equal(f(False, [1.0, 2.0, 5.0]), [0.0, 1.0, 4.0])


def test_cond_with_a_shared_flag_and_symbolic_operands_chooses_per_call() -> None:
    flag = ember.tensor(True)
    x = ember.placeholder((2,), ember.float64)
    f = ember.function([x], ember.cond(flag, lambda v: v + 1.0, lambda v: v * 10.0, x))
    np.testing.assert_array_equal(f([1.0, 2.0]), [2.0, 3.0])
    flag.fill_(False)
    np.testing.assert_array_equal(f([1.0, 2.0]), [10.0, 20.0])
    assert f.traces == 1


def test_cond_errors() -> None:
    x = ember.tensor([1.0, 2.0])
    f = ember.compile(lambda p, v: ember.cond(p, lambda a: a, lambda a: a.sum(), v))
    with pytest.raises(TypeError, match="same shapes and dtypes"):
        f(ember.tensor(True), x)
    g = ember.compile(lambda p, v: ember.cond(p, lambda a: (a, a), lambda a: a, v))
    with pytest.raises(TypeError, match="same structure"):
        g(ember.tensor(True), x)
    with pytest.raises(ValueError, match="one element"):
        ember.cond(ember.tensor([True, False]), lambda a: a, lambda a: a, x)
    h = ember.compile(lambda p, v: ember.cond(p, lambda a: a.float(), lambda a: a.double(), v))
    with pytest.raises(TypeError, match="same shapes and dtypes"):
        h(ember.tensor(True), x)


def test_tracer_error_for_python_if_suggests_cond() -> None:
    @ember.compile
    def bad(x: ember.Tensor) -> ember.Tensor:
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(ember.TracerError, match="ember.cond"):
        bad(ember.ones(2))


def test_scan_cumulative_sum_eager_compiled_and_numpy() -> None:
    xs = f64(5, 3)

    def step(c: ember.Tensor, x: ember.Tensor) -> tuple[ember.Tensor, ember.Tensor]:
        c = c + x
        return c, c * 2.0

    init = ember.zeros(3, dtype=ember.float64)
    carry, ys = ember.scan(step, init, xs)
    ref = np.cumsum(xs.numpy(), axis=0)
    np.testing.assert_allclose(carry.numpy(), ref[-1], rtol=1e-13)
    np.testing.assert_allclose(ys.numpy(), 2 * ref, rtol=1e-13)
    compiled = ember.compile(lambda i, v: ember.scan(step, i, v))
    c2, y2 = compiled(init, xs)
    np.testing.assert_array_equal(c2.numpy(), carry.numpy())
    np.testing.assert_array_equal(y2.numpy(), ys.numpy())
    # Reverse: accumulates from the end, ys keep xs's order.
    _, rev = ember.scan(step, init, xs, reverse=True)
    np.testing.assert_allclose(rev.numpy(), 2 * np.cumsum(xs.numpy()[::-1], axis=0)[::-1])


def rnn_cell(w_x: ember.Tensor, w_h: ember.Tensor):  # type: ignore[no-untyped-def]
    def cell(h: ember.Tensor, x: ember.Tensor) -> tuple[ember.Tensor, ember.Tensor]:
        h = (x @ w_x + h @ w_h).tanh()
        return h, h

    return cell


def test_rnn_by_scan_matches_a_python_loop_values_and_gradients() -> None:
    steps, batch, d_in, d_h = 6, 2, 3, 4
    w_x, w_h = f64(d_in, d_h, requires_grad=True), f64(d_h, d_h, requires_grad=True)
    xs, h0 = f64(steps, batch, d_in), f64(batch, d_h)
    cell = rnn_cell(w_x, w_h)

    def by_scan(h: ember.Tensor, seq: ember.Tensor):  # type: ignore[no-untyped-def]
        last, hs = ember.scan(cell, h, seq)
        loss = (hs**2).sum() + last.sum()
        return (loss, hs, *ember.grad(loss, [w_x, w_h]))

    def by_loop(h: ember.Tensor, seq: ember.Tensor):  # type: ignore[no-untyped-def]
        hs = []
        for t in range(seq.shape[0]):
            h, y = cell(h, seq[t])
            hs.append(y)
        stacked = ember.stack(hs)
        loss = (stacked**2).sum() + h.sum()
        return (loss, stacked, *ember.grad(loss, [w_x, w_h]))

    loop = by_loop(h0, xs)
    for got in (by_scan(h0, xs), ember.compile(by_scan)(h0, xs)):
        for a, b in zip(got, loop):
            np.testing.assert_allclose(
                a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14
            )
    # NumPy forward reference.
    h, wx, wh = h0.numpy(), w_x.detach().numpy(), w_h.detach().numpy()
    ref = []
    for t in range(steps):
        h = np.tanh(xs.numpy()[t] @ wx + h @ wh)
        ref.append(h)
    np.testing.assert_allclose(loop[1].detach().numpy(), np.stack(ref), rtol=1e-12)


def test_scan_with_structures_and_no_xs() -> None:
    def step(c: dict, _: None):  # type: ignore[no-untyped-def,type-arg]
        a, b = c["fib"]
        return {"fib": (b, a + b)}, None

    init = {"fib": (ember.tensor(0.0, dtype=ember.float64), ember.tensor(1.0, dtype=ember.float64))}
    carry, ys = ember.scan(step, init, None, length=10)
    assert ys is None
    assert carry["fib"][0].item() == 55.0

    def pair(c: ember.Tensor, x: tuple) -> tuple:  # type: ignore[type-arg]
        u, v = x
        return c + u * v, {"p": u * v, "s": u + v}

    us, vs = f64(4, 2), f64(4, 2)
    c, out = ember.scan(pair, ember.zeros(2, dtype=ember.float64), (us, vs))
    np.testing.assert_allclose(out["p"].numpy(), us.numpy() * vs.numpy())
    np.testing.assert_allclose(out["s"].numpy(), us.numpy() + vs.numpy())
    np.testing.assert_allclose(c.numpy(), (us.numpy() * vs.numpy()).sum(0), rtol=1e-13)


def test_scan_on_placeholders_with_a_static_length() -> None:
    w = f64(3, 3, requires_grad=True)
    xs = ember.placeholder((4, None, 3), ember.float64, name="xs")
    h0 = ember.placeholder((None, 3), ember.float64, name="h0")
    cell = rnn_cell(ember.eye(3, dtype=ember.float64), w)
    last, _ = ember.scan(cell, h0, xs)
    loss = (last**2).sum()
    (gw,) = ember.grad(loss, [w])
    f = ember.function([h0, xs], [loss, gw])
    for batch in (2, 5):
        hv, xv = RNG.standard_normal((batch, 3)), RNG.standard_normal((4, batch, 3))
        got_loss, got_g = f(hv, xv)
        h = ember.tensor(hv)
        for t in range(4):
            h, _ = cell(h, ember.tensor(xv[t]))
        ref = (h**2).sum()
        (ref_g,) = ember.grad(ref, [w])
        assert float(got_loss) == pytest.approx(ref.item(), rel=1e-12)
        np.testing.assert_allclose(got_g, ref_g.numpy(), rtol=1e-12, atol=1e-14)


def test_scan_errors() -> None:
    xs = f64(3, 2)
    with pytest.raises(TypeError, match="same structure, shapes and dtypes"):
        ember.scan(lambda c, x: (c.sum(), x), ember.zeros(2, dtype=ember.float64), xs)
    with pytest.raises(TypeError, match="pair"):
        ember.scan(lambda c, x: c, ember.zeros(2, dtype=ember.float64), xs)
    with pytest.raises(ValueError, match="length"):
        ember.scan(lambda c, x: (c, x), ember.zeros(2), xs, length=4)
    with pytest.raises(ValueError, match="give xs or length"):
        ember.scan(lambda c, x: (c, x), ember.zeros(2))
    batch = ember.placeholder((None, 2))
    with pytest.raises(ember.TracerError, match="static length"):
        ember.scan(lambda c, x: (c + x, x), ember.zeros(2), batch)
