"""The symbolic API: ember.placeholder, symbolic ember.grad, ember.function (updates, givens)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn

RNG = np.random.default_rng(0)


def param(*shape: int) -> ember.Tensor:
    return ember.tensor(RNG.standard_normal(shape) * 0.5, dtype=ember.float64, requires_grad=True)


def mlp_numpy(x, w1, w2, y):  # type: ignore[no-untyped-def]
    """Forward and hand-written backward of mean((relu(x w1) w2 - y)^2), all in NumPy."""
    h = x @ w1
    r = np.maximum(h, 0)
    d = r @ w2 - y
    loss = (d**2).mean()
    gd = 2 * d / d.size
    gw2 = r.T @ gd
    gh = (gd @ w2.T) * (h > 0)
    return loss, x.T @ gh, gw2, gh @ w1.T


def test_mlp_values_and_gradients_equal_eager_and_numpy() -> None:
    w1, w2 = param(5, 4), param(4, 3)
    x = ember.placeholder((None, 5), ember.float64, name="x")
    y = ember.placeholder((None, 3), ember.float64, name="y")
    loss = ((x @ w1).relu() @ w2 - y).pow(2).mean()
    gw1, gw2, gx = ember.grad(loss, [w1, w2, x])
    f = ember.function([x, y], [loss, gw1, gw2, gx])
    for batch in (6, 2, 9):
        xv, yv = RNG.standard_normal((batch, 5)), RNG.standard_normal((batch, 3))
        got = f(xv, yv)
        assert isinstance(got, list) and len(got) == 4
        # Eager: the same ops on concrete tensors.
        xe = ember.tensor(xv, requires_grad=True)
        le = ((xe @ w1).relu() @ w2 - ember.tensor(yv)).pow(2).mean()
        eager = [le, *ember.grad(le, [w1, w2, xe])]
        for g, e in zip(got, eager):
            np.testing.assert_allclose(g, e.detach().numpy(), rtol=1e-12, atol=1e-12)
        ref = mlp_numpy(xv, w1.detach().numpy(), w2.detach().numpy(), yv)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)
    assert f.traces == 3  # one trace per batch size ...
    f(RNG.standard_normal((6, 5)), RNG.standard_normal((6, 3)))
    assert f.traces == 3  # ... then cached


def test_single_output_returns_an_array_and_a_list_returns_a_list() -> None:
    x = ember.placeholder((3,), ember.float64)
    single = ember.function([x], x * 2.0)
    listed = ember.function([x], [x * 2.0])
    out = single([1.0, 2.0, 3.0])
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [2.0, 4.0, 6.0])
    out2 = listed([1.0, 2.0, 3.0])
    assert isinstance(out2, list)
    np.testing.assert_array_equal(out2[0], [2.0, 4.0, 6.0])


def test_updates_train_like_numpy_sgd_and_read_parameters_fresh() -> None:
    w1, w2 = param(5, 4), param(4, 3)
    w1_np, w2_np = w1.detach().numpy().copy(), w2.detach().numpy().copy()
    x = ember.placeholder((None, 5), ember.float64)
    y = ember.placeholder((None, 3), ember.float64)
    loss = ((x @ w1).relu() @ w2 - y).pow(2).mean()
    gw1, gw2 = ember.grad(loss, [w1, w2])
    lr = 0.1
    step = ember.function([x, y], loss, updates=[(w1, w1 - lr * gw1), (w2, w2 - lr * gw2)])
    xv, yv = RNG.standard_normal((8, 5)), RNG.standard_normal((8, 3))
    losses = []
    for _ in range(5):
        losses.append(float(step(xv, yv)))
        ref_loss, g1, g2, _ = mlp_numpy(xv, w1_np, w2_np, yv)
        assert losses[-1] == pytest.approx(ref_loss, rel=1e-12)
        w1_np, w2_np = w1_np - lr * g1, w2_np - lr * g2
        np.testing.assert_allclose(w1.detach().numpy(), w1_np, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(w2.detach().numpy(), w2_np, rtol=1e-12, atol=1e-14)
    assert losses[-1] < losses[0]
    assert step.traces == 1
    # A parameter changed outside the function is read on the next call.
    with ember.no_grad():
        w2.mul_(0.0)
    assert float(step(xv, yv)) == pytest.approx(float((yv**2).mean()), rel=1e-12)


def test_updates_are_atomic_when_one_fails_at_call_time() -> None:
    a = ember.zeros(3, dtype=ember.float64)
    b = ember.zeros(3, dtype=ember.float64)
    x = ember.placeholder((None,), ember.float64)
    f = ember.function([x], None, updates=[(a, a + 1.0), (b, x * 1.0)])
    f([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(a.numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(b.numpy(), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="nothing was updated"):
        f([1.0, 2.0])
    np.testing.assert_array_equal(a.numpy(), [1.0, 1.0, 1.0])  # a was not written either


def test_swap_updates_use_the_old_values() -> None:
    a = ember.tensor([1.0, 2.0], dtype=ember.float64)
    b = ember.tensor([3.0, 4.0], dtype=ember.float64)
    x = ember.placeholder((), ember.float64)
    f = ember.function([x], x, updates=[(a, b), (b, a)])
    f(0.0)
    np.testing.assert_array_equal(a.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(b.numpy(), [1.0, 2.0])


def test_nn_module_and_functional_on_placeholders() -> None:
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    x = ember.placeholder((None, 6), ember.float64, name="x")
    target = ember.placeholder((None, 4), ember.float64, name="t")
    logp = F.log_softmax(model(x), dim=1)
    loss = -(logp * target).sum(dim=1).mean()
    params = list(model.parameters())
    grads = ember.grad(loss, params)
    f = ember.function([x, target], [loss, *grads])
    xv = RNG.standard_normal((5, 6))
    tv = np.eye(4)[RNG.integers(0, 4, 5)]
    got = f(xv, tv)
    le = -(F.log_softmax(model(ember.tensor(xv)), dim=1) * ember.tensor(tv)).sum(dim=1).mean()
    eager = [le, *ember.grad(le, params)]
    for g, e in zip(got, eager):
        np.testing.assert_allclose(g, e.detach().numpy(), rtol=1e-12, atol=1e-12)
    # NumPy reference for the loss value.
    w0, b0 = params[0].detach().numpy(), params[1].detach().numpy()
    w1, b1 = params[2].detach().numpy(), params[3].detach().numpy()
    z = np.tanh(xv @ w0.T + b0) @ w1.T + b1
    lp = z - z.max(1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    assert float(got[0]) == pytest.approx(-(lp * tv).sum(1).mean(), rel=1e-12)


def test_gather_with_an_integer_placeholder_target() -> None:
    w = param(4, 3)
    x = ember.placeholder((None, 4), ember.float64)
    y = ember.placeholder((None,), ember.int64)
    nll = -F.log_softmax(x @ w, dim=1).gather(1, y.unsqueeze(1)).mean()
    (gw,) = ember.grad(nll, [w])
    f = ember.function([x, y], [nll, gw])
    xv, yv = RNG.standard_normal((7, 4)), RNG.integers(0, 3, 7)
    loss, g = f(xv, yv)
    ref = F.cross_entropy(ember.tensor(xv) @ w, ember.tensor(yv))
    (gref,) = ember.grad(ref, [w])
    assert float(loss) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(g, gref.numpy(), rtol=1e-12, atol=1e-14)


def test_gradients_through_cat_stack_where_and_eager_slices_of_a_parameter() -> None:
    w = param(3, 3)

    def loss_of(x: ember.Tensor, n) -> ember.Tensor:  # type: ignore[no-untyped-def]
        ys = ember.stack([x @ w, (x * 2.0) @ w, x.exp()], 1)
        z = ember.cat([ys.reshape(n, -1), x], 1)
        # w[0] is computed eagerly (w has values); its gradient rule then runs on a symbolic
        # gradient and must record a scatter instead of the engine's sparse IndexGrad.
        picked = ember.where(x > 0, x, x * w[0]).sum()
        return (z.tanh() ** 2).sum() + F.softmax(z, dim=1)[:, 0].sum() + picked

    x = ember.placeholder((None, 3), ember.float64)
    loss = loss_of(x, x.shape[0])
    f = ember.function([x], [loss, *ember.grad(loss, [w, x])])
    for n in (2, 5):
        xv = RNG.standard_normal((n, 3))
        got = f(xv)
        xe = ember.tensor(xv, requires_grad=True)
        le = loss_of(xe, n)
        for g, e in zip(got, [le, *ember.grad(le, [w, xe])]):
            np.testing.assert_allclose(g, e.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_grad_with_respect_to_an_intermediate_and_a_placeholder() -> None:
    x = ember.placeholder((None, 3), ember.float64)
    h = x.exp()
    loss = (h * h).sum()
    gh, gx = ember.grad(loss, [h, x])
    f = ember.function([x], [gh, gx])
    xv = RNG.standard_normal((2, 3))
    got_h, got_x = f(xv)
    np.testing.assert_allclose(got_h, 2 * np.exp(xv), rtol=1e-12)
    np.testing.assert_allclose(got_x, 2 * np.exp(2 * xv), rtol=1e-12)


def test_variable_dimension_in_shape_arithmetic_is_evaluated_per_call() -> None:
    x = ember.placeholder((None, 2, 3), ember.float64)
    flat = x.reshape(x.shape[0], -1)  # the None dim flows into reshape's attribute
    assert repr(flat.shape) == "(None, 6)"
    f = ember.function([x], [flat.mean(dim=0), flat.sum(), x.mean()])
    for n in (1, 4):
        xv = RNG.standard_normal((n, 2, 3))
        m0, s, m = f(xv)
        np.testing.assert_allclose(m0, xv.reshape(n, 6).mean(0), rtol=1e-12)
        assert float(s) == pytest.approx(xv.sum(), rel=1e-12)
        assert float(m) == pytest.approx(xv.mean(), rel=1e-12)


def test_slices_computed_from_a_variable_dimension_are_evaluated_per_call() -> None:
    x = ember.placeholder((None, 2), ember.float64)
    f = ember.function([x], [x[: x.shape[0] // 2], x[1 : x.shape[0] - 1 : 2].sum(dim=0)])
    for n in (4, 7):
        xv = RNG.standard_normal((n, 2))
        head, mid = f(xv)
        np.testing.assert_array_equal(head, xv[: n // 2])
        np.testing.assert_allclose(mid, xv[1 : n - 1 : 2].sum(0), rtol=1e-12)


def test_givens_replace_a_placeholder() -> None:
    data = ember.tensor(RNG.standard_normal((4, 3)), dtype=ember.float64)
    x = ember.placeholder((None, 3), ember.float64)
    s = ember.placeholder((), ember.float64)
    f = ember.function([s], (x * 2.0).sum(dim=1), givens={x: data * s})
    got = f(3.0)
    np.testing.assert_allclose(got, 6.0 * data.numpy().sum(1), rtol=1e-12)
    with pytest.raises(ValueError, match="not in inputs"):
        ember.function([s], x * 2.0)


def test_printing_shows_shape_and_dtype() -> None:
    x = ember.placeholder((None, 500), name="x")
    assert repr(x) == "<symbolic tensor x: float32[None, 500]>"
    assert "float32[None, 50]" in repr(x @ ember.ones(500, 50))
    assert x.shape == (x.shape[0], 500) and repr(x.shape) == "(None, 500)"
    (g,) = ember.grad((x * 2.0).sum(), [x])
    assert repr(g).startswith("<symbolic tensor") and "float32[None, 500]" in repr(g)


@pytest.mark.parametrize(
    "access",
    [
        lambda t: t.numpy(force=True),
        lambda t: bool(t.sum()),
        lambda t: float(t.sum()),
        lambda t: t.sum().item(),
        lambda t: np.asarray(t),
        lambda t: t.tolist(),
        lambda t: np.ones(3) + t._data,
    ],
)
def test_reading_values_of_a_symbolic_tensor_raises(access) -> None:  # type: ignore[no-untyped-def]
    x = ember.placeholder((3,), ember.float64)
    with pytest.raises(ember.TracerError, match="(?s)symbolic .* ember.function"):
        access(x * 2.0)


def test_in_place_and_backward_on_symbolic_tensors_raise() -> None:
    w = param(3)
    x = ember.placeholder((3,), ember.float64)
    y = x * w
    with pytest.raises(ember.TracerError, match="symbolic"), ember.no_grad():
        y.add_(1.0)
    with pytest.raises(ember.TracerError, match="ember.grad"):
        (y * 1.0).sum().backward()
    assert w.grad is None


def test_sizing_a_tensor_by_a_none_dimension_raises() -> None:
    x = ember.placeholder((None, 3))
    with pytest.raises(ember.TracerError, match="None dimension"):
        ember.zeros(x.shape)
    with pytest.raises(ember.TracerError, match="None dimension"):
        ember.zeros(x.shape[0] + 1)
    with pytest.raises(ember.TracerError, match="None dimension"):
        x[x.shape[0] - 1]
    with pytest.raises(ember.TracerError, match="None dimension"):
        len(x)


def test_dropout_on_a_none_dimension_raises_instead_of_baking_a_mask() -> None:
    x = ember.placeholder((None, 3))
    with pytest.raises(ember.TracerError, match="None dimension"):
        F.dropout(x, 0.5, training=True)
    np.testing.assert_array_equal(
        ember.function([x], F.dropout(x, 0.5, training=False))(np.ones((2, 3))), np.ones((2, 3))
    )


def test_outputs_never_alias_the_fed_arrays_or_shared_tensors() -> None:
    w = ember.tensor([1.0, 2.0], dtype=ember.float64)
    x = ember.placeholder((2,), ember.float64)
    y = ember.placeholder((2,), ember.float64)
    f = ember.function([x], [x, w, x.reshape(1, 2), y[:1]], givens={y: w})
    fed = np.array([3.0, 4.0])
    outs = f(fed)
    for out in outs:
        assert not np.shares_memory(out, fed) and not np.shares_memory(out, w.numpy())
    np.testing.assert_array_equal(outs[1], [1.0, 2.0])
    np.testing.assert_array_equal(outs[3], [1.0])


def test_shapes_that_fit_only_one_batch_size_raise_early() -> None:
    x = ember.placeholder((None, 3))
    with pytest.raises(ember.ShapeError, match="None dimension"):
        _ = x + ember.ones(4, 3)


def test_second_order_symbolic_gradients_raise() -> None:
    x = ember.placeholder((3,), ember.float64)
    with pytest.raises(ember.TracerError, match="create_graph"):
        ember.grad((x**3).sum(), [x], create_graph=True)


def test_function_argument_errors() -> None:
    x = ember.placeholder((None, 2), ember.float32, name="x")
    y = ember.placeholder((None,), ember.int64, name="y")
    with pytest.raises(ValueError, match="placeholder y .* not in inputs"):
        ember.function([x], x.sum() + y.sum())
    with pytest.raises(TypeError, match="not an ember.placeholder"):
        ember.function([x * 2.0], x)
    with pytest.raises(TypeError, match="assigns to symbolic"):
        ember.function([x], x, updates=[(x, x)])
    w = ember.zeros(2)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        ember.function([x], x, updates=[(w, ember.zeros(3))])
    f = ember.function([x, y], [x.sum(), y.sum()])
    with pytest.raises(TypeError, match="takes 2 inputs"):
        f(np.zeros((1, 2)))
    with pytest.raises(
        ValueError, match=r"input 0 \(x: float32\[None, 2\]\) got an array of shape"
    ):
        f(np.zeros((1, 3)), np.zeros(1, np.int64))
    with pytest.raises(TypeError, match="got a float64 array"):
        f(np.zeros((1, 2)), np.zeros(1))  # floats for an integer placeholder
    s, t = f(np.ones((2, 2)), np.arange(3))  # float64 data for a float32 placeholder: cast
    assert s.dtype == np.float32 and float(s) == 4.0 and int(t) == 3


def test_compile_works_beside_placeholders_and_rejects_them_inside() -> None:
    x = ember.placeholder((2,), ember.float64)
    a = ember.tensor([1.0, 2.0], dtype=ember.float64)
    np.testing.assert_array_equal((a + a).numpy(), [2.0, 4.0])  # eager ops are untouched
    g = ember.compile(lambda t: (t * a).sum())
    assert g(a).item() == 5.0 and g(a).item() == 5.0
    h = ember.compile(lambda t: t * x)
    with pytest.raises(ember.TracerError, match="symbolic"):
        h(a)


def test_cross_entropy_with_a_placeholder_target_matches_eager() -> None:
    x = ember.placeholder((None, 4), ember.float64, name="x")
    y = ember.placeholder((None,), ember.int64, name="y")
    ember.manual_seed(0)
    w = ember.randn(4, 3, dtype=ember.float64, requires_grad=True)
    loss = nn.functional.cross_entropy(x @ w, y)
    (gw,) = ember.grad(loss, [w])
    f = ember.function([x, y], [loss, gw])
    rng = np.random.default_rng(0)
    for n in (5, 3):  # a None batch: two sizes
        xa, ya = rng.normal(size=(n, 4)), rng.integers(0, 3, n)
        got_loss, got_grad = f(xa, ya)
        want = nn.functional.cross_entropy(ember.from_numpy(xa) @ w, ember.from_numpy(ya))
        (want_grad,) = ember.grad(want, [w])
        np.testing.assert_allclose(got_loss, want.item(), rtol=1e-12)
        np.testing.assert_allclose(got_grad, want_grad.numpy(), rtol=1e-12)
    assert repr(x) == "<symbolic tensor x: float64[None, 4]>"
