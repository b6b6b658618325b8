"""The tape: accumulation, ember.grad, higher order, grad modes, hooks, in-place safety."""

from __future__ import annotations

import numpy as np
import pytest

import ember


def leaf(a, dtype=ember.float64):
    return ember.tensor(np.asarray(a, dtype=np.float64), dtype=dtype, requires_grad=True)


def test_backward_accumulates_into_leaves_across_calls():
    x = leaf([1.0, 2.0, 3.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0, 12.0])


def test_second_backward_without_retain_graph_says_why():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(ember.GradError, match="second time.*retain_graph=True"):
        y.backward()


def test_shared_subexpression_gets_summed_gradient():
    x = leaf([0.5, -1.5])
    h = x.tanh()
    y = (h * h + h).sum()  # h used three times
    y.backward()
    t = np.tanh([0.5, -1.5])
    np.testing.assert_allclose(x.grad.numpy(), (2 * t + 1) * (1 - t**2))


def test_leaf_grads_own_their_memory():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.mul_(10)
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])


def test_nonscalar_backward_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        y.backward()
    y.backward(ember.tensor([1.0, 10.0], dtype=ember.float64))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 30.0])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.ones(2).sum().backward()


def test_grad_returns_without_touching_dot_grad_and_allows_unused():
    x, z = leaf([1.0, 2.0]), leaf([5.0])
    y = (x**2).sum()
    (gx,) = ember.grad(y, x, retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), [2.0, 4.0])
    assert x.grad is None
    with pytest.raises(ember.GradError, match="allow_unused"):
        ember.grad(y, [x, z], retain_graph=True)
    gx2, gz = ember.grad(y, [x, z], allow_unused=True)
    assert gz is None
    np.testing.assert_allclose(gx2.numpy(), [2.0, 4.0])


def test_higher_order_gradients_of_polynomial_and_sin():
    x = leaf(0.7)
    y = x**4 + x.sin()
    (d1,) = ember.grad(y, x, create_graph=True)
    (d2,) = ember.grad(d1, x, create_graph=True)
    (d3,) = ember.grad(d2, x)
    v = 0.7
    assert d1.item() == pytest.approx(4 * v**3 + np.cos(v))
    assert d2.item() == pytest.approx(12 * v**2 - np.sin(v))
    assert d3.item() == pytest.approx(24 * v - np.cos(v))


def test_grad_with_respect_to_intermediate_tensor():
    x = leaf([1.0, 2.0])
    h = x * 3
    y = (h * h).sum()
    gh, gx = ember.grad(y, [h, x])
    np.testing.assert_allclose(gh.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(gx.numpy(), [18.0, 36.0])


def test_grad_modes_nest_and_decorate():
    x = leaf([1.0])
    with ember.no_grad():
        assert not (x * 2).requires_grad
        with ember.enable_grad():
            assert (x * 2).requires_grad
        assert not ember.is_grad_enabled()
    assert ember.is_grad_enabled()

    @ember.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with ember.set_grad_enabled(False):
        assert not (x + 1).requires_grad
    assert (x + 1).requires_grad
    ember.set_grad_enabled(False)
    try:
        assert not ember.is_grad_enabled()
    finally:
        ember.set_grad_enabled(True)


def test_hooks_on_leaf_and_nonleaf_can_replace_gradient_and_be_removed():
    x = leaf([1.0, 2.0])
    seen = []
    h = x * 2
    handle = h.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    x.register_hook(lambda g: g + 1)
    h.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [21.0, 21.0])
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_retain_grad_keeps_nonleaf_gradient():
    x = leaf([1.0, 2.0])
    h = x * x
    h.retain_grad()
    assert h.retains_grad
    (h * 3).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [3.0, 3.0])
    other = x * 5
    (other * 3).sum().backward()
    assert other.grad is None


def test_detach_cuts_the_tape_and_shares_memory():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.numpy(), x.detach().numpy())
    y = (x * d).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0])


def test_leaf_and_grad_fn_bookkeeping():
    x = leaf([1.0])
    y = x * 2
    assert x.is_leaf and x.grad_fn is None
    assert not y.is_leaf and y.grad_fn.name() == "MulBackward0"
    assert y.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2]).requires_grad_()


# ----------------------------------------------------------------- in-place safety
def test_inplace_on_leaf_requiring_grad_raises_but_works_under_no_grad():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x.add_(1)
    with ember.no_grad():
        x.add_(1)
    np.testing.assert_allclose(x.detach().numpy(), [2.0, 3.0])


def test_modifying_a_saved_tensor_raises_at_backward():
    x = leaf([1.0, 2.0])
    h = x * 2
    y = h * h  # saves h
    h.add_(1)
    assert h._version_number == 1
    with pytest.raises(ember.GradError, match="modified by an inplace operation"):
        y.sum().backward()


def test_modifying_a_saved_output_raises_at_backward():
    x = leaf([1.0, 2.0])
    e = (x * 1).exp()  # exp saves its output
    e.mul_(2)
    with pytest.raises(ember.GradError, match="output of ExpBackward0"):
        e.sum().backward()


def test_inplace_ops_record_the_right_gradients():
    x, w = leaf([1.0, -2.0, 3.0]), leaf([0.5, 4.0, -1.0])
    h = x * 1
    h.mul_(w)
    h.add_(w)
    h.relu_()
    h.sum().backward()
    xv, wv = np.array([1.0, -2.0, 3.0]), np.array([0.5, 4.0, -1.0])
    active = (xv * wv + wv) > 0
    np.testing.assert_allclose(x.grad.numpy(), wv * active)
    np.testing.assert_allclose(w.grad.numpy(), (xv + 1) * active)


def test_setitem_is_differentiable_in_target_and_value():
    w = leaf([2.0, 3.0])
    x = leaf([1.0, 1.0, 1.0, 1.0])
    buf = x * 1
    buf[1:3] = w * w
    (buf * ember.tensor([1.0, 2.0, 3.0, 4.0], dtype=ember.float64)).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [2 * 2.0 * 2, 2 * 3.0 * 3])
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 0.0, 4.0])


def test_setitem_with_mask_without_grad_matches_numpy():
    a = np.array([[-1.0, 2.0], [3.0, -4.0]], dtype=np.float32)
    t = ember.tensor(a)
    t[t < 0] = 0
    b = a.copy()
    b[b < 0] = 0
    np.testing.assert_array_equal(t.numpy(), b)
    assert t._version_number == 1


def test_views_share_the_version_counter():
    x = ember.zeros(2, 3)
    v = x.reshape(3, 2)
    s = x[0]
    x.add_(1)
    assert v._version_number == s._version_number == 1
    assert v.numpy().sum() == 6.0


def test_inplace_on_expanded_view_raises_clear_error():
    e = ember.ones(3).expand(2, 3)
    with pytest.raises(RuntimeError, match="clone"):
        e.mul_(2)


def test_inplace_dtype_that_cannot_hold_the_result_raises():
    t = ember.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        t.mul_(1.5)


def test_iadd_operator_is_inplace():
    t = ember.zeros(3)
    before = t
    t += 2
    assert t is before
    np.testing.assert_array_equal(t.numpy(), [2.0, 2.0, 2.0])


def test_inputs_no_live_rule_reads_are_not_saved():
    # x * 2 only needs the scalar for x's gradient: modifying x afterwards is fine (as in PyTorch)
    a = leaf([1.0, 2.0])
    x = a * 1
    y = x * 2
    x.add_(1)
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [2.0, 2.0])
    # but when the other operand needs x, the modification is caught
    w = leaf([3.0, 4.0])
    b = leaf([1.0, 2.0])
    x2 = b * 1
    z = x2 * w
    x2.add_(1)
    with pytest.raises(ember.GradError, match="modified by an inplace operation"):
        z.sum().backward()


@pytest.mark.parametrize(
    "sa, sb", [((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)), ((5, 2, 3), (3, 4))]
)
def test_matmul_gradients_when_only_one_operand_requires_grad(sa, sb):
    # Only one side requires grad, so the node keeps the other side and an AVal of this one.
    from ember.testing import gradcheck

    rng = np.random.default_rng(0)
    av, bv = rng.standard_normal(sa), rng.standard_normal(sb)
    a, b = ember.tensor(av, requires_grad=True), ember.tensor(bv)
    assert gradcheck(lambda x: (x @ b).sin(), (a,))
    a, b = ember.tensor(av), ember.tensor(bv, requires_grad=True)
    assert gradcheck(lambda y: (a @ y).sin(), (b,))


def test_inplace_on_aliased_memory_with_grad_raises_instead_of_going_wrong():
    a = leaf([1.0, 2.0, 3.0])
    b = a * 1
    with pytest.raises(RuntimeError, match="shares memory with a view"):
        b[:2].mul_(2)
    c = a * 1
    c.reshape(3, 1)
    with pytest.raises(RuntimeError, match="shares memory with a view"):
        c.add_(1)
    d = a * 1
    with pytest.raises(RuntimeError, match="shares memory with a view"):
        d.T[0] = 5.0  # setitem on a view
    with ember.no_grad():  # without recording, views and in-place mix freely
        e = ember.zeros(3)
        e[:2].add_(1)
    np.testing.assert_array_equal(e.numpy(), [1.0, 1.0, 0.0])


def test_slice_gradients_accumulate_sparsely_and_match_the_dense_sum():
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((3, 6, 4))
    x = ember.tensor(xv, requires_grad=True)
    h = x * 1  # a non-leaf: its node receives the sparse parts
    seen = []
    h.register_hook(lambda g: seen.append(type(g).__name__))
    total = h.sum() * 0.5  # a dense contribution to the same node
    for t in range(6):
        total = total + (h[:, t] ** 2).sum()
    idx = ember.tensor([0, 2, 2])  # repeated integer index: must add twice
    total = total + h[idx].sum()
    total.backward()
    ref = 0.5 + 2 * xv
    ref[0] += 1
    ref[2] += 2
    np.testing.assert_allclose(x.grad.numpy(), ref)
    assert seen == ["Tensor"]  # hooks see a dense gradient
    h = ember.tensor(xv, requires_grad=True) * 1
    (g_h,) = ember.grad((h[:, 1] * 3).sum(), h)
    expect = np.zeros_like(xv)
    expect[:, 1] = 3
    np.testing.assert_allclose(g_h.numpy(), expect)


def test_slice_gradients_of_a_leaf_are_dense_and_owned():
    x = leaf([1.0, 2.0, 3.0])
    (x[0] + x[2] * 2).backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 2.0])
    assert type(x.grad) is ember.Tensor


def test_overwriting_inplace_ops_follow_pytorch_on_the_tape():
    w = leaf([1.0, 2.0])
    for name, call in [
        ("zero_", lambda t: t.zero_()),
        ("fill_", lambda t: t.fill_(3.0)),
        ("uniform_", lambda t: t.uniform_()),
        ("normal_", lambda t: t.normal_()),
    ]:
        with pytest.raises(RuntimeError, match=rf"leaf tensor that requires grad.*\({name}\)"):
            call(w)
    x = leaf([1.0, 2.0])
    h = x * 3
    h.fill_(5.0)  # a constant now: no gradient reaches x through h
    (h * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_writes_to_read_only_memory_name_the_cause():
    a = np.zeros(3)
    a.flags.writeable = False
    t = ember.from_numpy(a)
    for call in (
        lambda: t.zero_(),
        lambda: t.fill_(1),
        lambda: t.add_(1),
        lambda: t.__setitem__(0, 1),
    ):
        with pytest.raises(RuntimeError, match="read-only.*from_numpy"):
            call()
