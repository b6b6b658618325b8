"""BatchNorm1d/2d, LayerNorm, GroupNorm and batch_norm/layer_norm/group_norm: against PyTorch
(outputs, every gradient and the running statistics after several training steps, in
float64), eval mode, gradchecks, reprs, state_dict keys, errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn
from ember._src.nn import normalization as F
from ember._src.ops.registry import ShapeError
from ember.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(5)
TOL = 1e-10


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def randomize(m):
    """Random affine parameters, so that parity does not rest on ones and zeros."""
    with ember.no_grad():
        for p in m.parameters():
            p.copy_(ember.tensor(RNG.standard_normal(p.shape)))
    return m


def copy_to_torch(torch, em, tm):
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in em.state_dict().items()})


def step(torch, em, tm, x):
    """One forward and backward in both; compare the output and every gradient."""
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ey, ty = em(ex), tm(tx)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), TOL, TOL)
    cot = RNG.standard_normal(x.shape)
    ey.backward(ember.tensor(cot))
    ty.backward(torch.tensor(cot))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), TOL, TOL)
    tparams = dict(tm.named_parameters())
    for name, p in em.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), TOL, TOL)
        p.grad, tparams[name].grad = None, None


def same_state(em, tm):
    tstate = tm.state_dict()
    assert list(em.state_dict()) == list(tstate)
    for k, v in em.state_dict().items():
        assert v.dtype.name == str(tstate[k].dtype).removeprefix("torch."), k
        np.testing.assert_allclose(v.numpy(), tstate[k].numpy(), TOL, TOL, err_msg=k)


@pytest.mark.torch
@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
@pytest.mark.parametrize("affine", [True, False, "no bias"])
@pytest.mark.parametrize("track", [True, False])
@pytest.mark.parametrize(
    "name, shape",
    [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)), ("BatchNorm2d", (3, 3, 4, 2))],
)
def test_batch_norm_training_steps_and_eval_match_torch(
    torch, name, shape, momentum, affine, track
):
    kw = dict(momentum=momentum, affine=bool(affine), track_running_stats=track, eps=1e-3)
    if affine == "no bias":
        kw["bias"] = False
    em = randomize(getattr(nn, name)(3, **kw).double())
    tm = getattr(torch.nn, name)(3, **kw).double()
    copy_to_torch(torch, em, tm)
    for _ in range(4):
        x = RNG.standard_normal(shape) * 3 + 1
        step(torch, em, tm, x)
        same_state(em, tm)
    em.eval(), tm.eval()
    step(torch, em, tm, RNG.standard_normal(shape))
    same_state(em, tm)


@pytest.mark.torch
@pytest.mark.parametrize(
    "shape, normalized, kw",
    [
        ((4, 5), 5, {}),
        ((2, 3, 4), (3, 4), {}),
        ((2, 3, 4), 4, {"elementwise_affine": False}),
        ((2, 3, 4), (4,), {"bias": False, "eps": 1e-2}),
        ((3, 1, 2, 2), (1, 2, 2), {}),
    ],
)
def test_layer_norm_matches_torch(torch, shape, normalized, kw):
    em = randomize(nn.LayerNorm(normalized, **kw).double())
    tm = torch.nn.LayerNorm(normalized, **kw).double()
    copy_to_torch(torch, em, tm)
    step(torch, em, tm, RNG.standard_normal(shape) * 2 + 3)
    assert repr(em) == repr(tm)


@pytest.mark.torch
@pytest.mark.parametrize(
    "groups, shape, affine",
    [(1, (2, 4, 3), True), (2, (2, 4, 3, 3), True), (4, (3, 4), True), (2, (2, 6, 2, 2, 2), False)],
)
@pytest.mark.parametrize("bias", [True, False])
def test_group_norm_matches_torch(torch, groups, shape, affine, bias):
    kw = dict(eps=1e-4, affine=affine, bias=bias)
    em = randomize(nn.GroupNorm(groups, shape[1], **kw).double())
    tm = torch.nn.GroupNorm(groups, shape[1], **kw).double()
    copy_to_torch(torch, em, tm)
    step(torch, em, tm, RNG.standard_normal(shape) * 2 - 1)
    assert repr(em) == repr(tm)


@pytest.mark.torch
def test_functions_match_torch(torch):
    x = RNG.standard_normal((4, 3, 5))
    w, b = RNG.standard_normal(3), RNG.standard_normal(3)
    rm, rv = RNG.standard_normal(3), RNG.random(3) + 0.5
    for training in (True, False):
        e_stats = [ember.tensor(rm), ember.tensor(rv)]
        t_stats = [torch.tensor(rm), torch.tensor(rv)]
        ey = F.batch_norm(ember.tensor(x), *e_stats, ember.tensor(w), ember.tensor(b), training,
                          0.3, 1e-4)  # fmt: skip
        ty = torch.nn.functional.batch_norm(torch.tensor(x), *t_stats, torch.tensor(w),
                                            torch.tensor(b), training, 0.3, 1e-4)  # fmt: skip
        np.testing.assert_allclose(ey.numpy(), ty.numpy(), TOL, TOL)
        for a, c in zip(e_stats, t_stats):
            np.testing.assert_allclose(a.numpy(), c.numpy(), TOL, TOL)
    ey = F.batch_norm(ember.tensor(x), None, None, training=True)
    ty = torch.nn.functional.batch_norm(torch.tensor(x), None, None, training=True)
    np.testing.assert_allclose(ey.numpy(), ty.numpy(), TOL, TOL)
    lw, lb = RNG.standard_normal((3, 5)), RNG.standard_normal((3, 5))
    ey = F.layer_norm(ember.tensor(x), (3, 5), ember.tensor(lw), ember.tensor(lb), 1e-3)
    ty = torch.nn.functional.layer_norm(torch.tensor(x), (3, 5), torch.tensor(lw),
                                        torch.tensor(lb), 1e-3)  # fmt: skip
    np.testing.assert_allclose(ey.numpy(), ty.numpy(), TOL, TOL)
    x6 = RNG.standard_normal((2, 6, 3))
    w6, b6 = RNG.standard_normal(6), RNG.standard_normal(6)
    ey = F.group_norm(ember.tensor(x6), 3, ember.tensor(w6), ember.tensor(b6))
    ty = torch.nn.functional.group_norm(torch.tensor(x6), 3, torch.tensor(w6), torch.tensor(b6))
    np.testing.assert_allclose(ey.numpy(), ty.numpy(), TOL, TOL)


@pytest.mark.torch
def test_reprs_and_state_dict_keys_match_torch(torch):
    for name, args, kw in [
        ("BatchNorm1d", (3,), {}),
        ("BatchNorm2d", (8,), {"eps": 1e-3, "momentum": None, "affine": False}),
        ("BatchNorm2d", (8,), {"track_running_stats": False}),
        ("BatchNorm1d", (8,), {"bias": False}),
        ("LayerNorm", ((4, 5),), {"elementwise_affine": False}),
        ("LayerNorm", (4,), {"bias": False}),
        ("GroupNorm", (2, 6), {"affine": False}),
    ]:
        em, tm = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
        assert repr(em) == repr(tm)
        assert [k for k, _ in em.named_parameters()] == [k for k, _ in tm.named_parameters()]
        same_state(em, tm)


# ----------------------------------------------------------------- gradients and modes
def test_gradcheck_and_double_backward():
    def t(*shape):
        return ember.tensor(RNG.standard_normal(shape), requires_grad=True)

    x, w, b = t(4, 2, 2), t(2), t(2)
    rm, rv = ember.tensor(RNG.standard_normal(2)), ember.tensor(RNG.random(2) + 0.5)
    checks = [
        (lambda x, w, b: F.batch_norm(x, None, None, w, b, True), (x, w, b)),
        (lambda x, w, b: F.batch_norm(x, rm, rv, w, b, False), (x, w, b)),
        (
            lambda x, w, b: F.layer_norm(x, (2, 2), w.reshape(2, 1) * b, w.reshape(2, 1) + b),
            (x, w, b),
        ),
        (lambda x, w, b: F.group_norm(x.reshape(2, 4, 2), 2, w.repeat(2), b.repeat(2)), (x, w, b)),
    ]
    for fn, args in checks:
        gradcheck(fn, args)
        gradgradcheck(fn, args)


def test_eval_mode_uses_running_statistics():
    bn = nn.BatchNorm2d(2)
    with ember.no_grad():
        bn.running_mean.copy_(ember.tensor([1.0, -2.0]))
        bn.running_var.copy_(ember.tensor([4.0, 0.25]))
    bn.eval()
    x = ember.randn(3, 2, 2, 2)
    want = (x.numpy() - np.array([1.0, -2.0]).reshape(1, 2, 1, 1)) / np.sqrt(
        np.array([4.0, 0.25]).reshape(1, 2, 1, 1) + 1e-5
    )
    np.testing.assert_allclose(bn(x).detach().numpy(), want, 1e-5, 1e-6)
    assert int(bn.num_batches_tracked.item()) == 0  # eval does not count batches


def test_running_stats_buffers_keep_identity_and_reset():
    bn = nn.BatchNorm1d(3)
    rm, nbt = bn.running_mean, bn.num_batches_tracked
    bn(ember.randn(5, 3) + 2)
    assert bn.running_mean is rm and bn.num_batches_tracked is nbt
    assert int(nbt.item()) == 1 and float(rm.abs().sum()) > 0
    bn.reset_running_stats()
    assert rm.tolist() == [0.0] * 3 and bn.running_var.tolist() == [1.0] * 3 and nbt.item() == 0
    assert nbt.dtype is ember.int64
    bn.double()
    assert bn.running_mean.dtype is ember.float64 and bn.num_batches_tracked.dtype is ember.int64


# ----------------------------------------------------------------- errors
def test_errors():
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3)(ember.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        nn.BatchNorm2d(3)(ember.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(ember.zeros(1, 3))
    nn.BatchNorm1d(3).eval()(ember.zeros(1, 3))  # fine in eval mode
    with pytest.raises(ShapeError, match="running_mean must have shape"):
        F.batch_norm(ember.zeros(2, 3), ember.zeros(4), ember.ones(3), training=True)
    with pytest.raises(ShapeError, match=r"expected input with shape \[\*, 4, 5\].*\[2, 5, 4\]"):
        nn.LayerNorm((4, 5))(ember.zeros(2, 5, 4))
    with pytest.raises(
        ValueError, match=r"num_channels \(6\) must be divisible by num_groups \(4\)"
    ):
        nn.GroupNorm(4, 6)
    with pytest.raises(ShapeError, match="divisible by num_groups=4"):
        F.group_norm(ember.zeros(2, 6, 3), 4)
