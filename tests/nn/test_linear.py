"""Linear, Bilinear, Identity, Flatten, Unflatten: against PyTorch with copied weights
(outputs and all gradients in float64), default initialization bounds, reprs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import nn
from ember.testing import gradcheck

RNG = np.random.default_rng(2)
TOL = 1e-10


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def module_parity(torch, em, tm, *inputs):
    """Copy ``em``'s weights into ``tm``, run both in float64, compare the outputs and
    the gradients of every input and every parameter."""
    em, tm = em.double(), tm.double()
    with torch.no_grad():
        for name, p in em.state_dict().items():
            tm.state_dict()[name].copy_(torch.from_numpy(p.numpy()))
    ex = [ember.tensor(x, requires_grad=True) for x in inputs]
    tx = [torch.tensor(x, requires_grad=True) for x in inputs]
    ey, ty = em(*ex), tm(*tx)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=TOL, atol=TOL)
    cot = RNG.standard_normal(tuple(ty.shape))
    ey.backward(ember.tensor(cot))
    ty.backward(torch.tensor(cot))
    for a, b in zip(ex, tx):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=TOL, atol=TOL)
    tparams = dict(tm.named_parameters())
    assert set(tparams) == {n for n, _ in em.named_parameters()}
    for name, p in em.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), tparams[name].grad.numpy(), rtol=TOL, atol=TOL, err_msg=name
        )


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_linear_matches_torch(torch, bias, batch):
    module_parity(
        torch, nn.Linear(4, 3, bias=bias), torch.nn.Linear(4, 3, bias=bias),
        RNG.standard_normal((*batch, 4)),
    )  # fmt: skip


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_bilinear_matches_torch(torch, bias, batch):
    module_parity(
        torch, nn.Bilinear(4, 2, 3, bias=bias), torch.nn.Bilinear(4, 2, 3, bias=bias),
        RNG.standard_normal((*batch, 4)), RNG.standard_normal((*batch, 2)),
    )  # fmt: skip


def test_linear_and_bilinear_pass_gradcheck():
    lin = nn.Linear(3, 2).double()
    x = ember.tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    assert gradcheck(lambda x, w, b: ember.nn.functional.linear(x, w, b), (x, lin.weight, lin.bias))
    bil = nn.Bilinear(3, 2, 2).double()
    y = ember.tensor(RNG.standard_normal((4, 2)), requires_grad=True)
    fn = ember.nn.functional.bilinear
    assert gradcheck(fn, (x, y, bil.weight, bil.bias))


def test_state_dict_keys_and_shapes_match_torch(torch):
    for em, tm in [
        (nn.Linear(4, 3), torch.nn.Linear(4, 3)),
        (nn.Linear(4, 3, bias=False), torch.nn.Linear(4, 3, bias=False)),
        (nn.Bilinear(4, 2, 3), torch.nn.Bilinear(4, 2, 3)),
    ]:
        assert {k: v.shape for k, v in em.state_dict().items()} == {
            k: tuple(v.shape) for k, v in tm.state_dict().items()
        }


def test_default_initialization_has_torchs_bounds():
    ember.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) reduces to 1/sqrt(fan_in)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound  # uniform's std
    bil = nn.Bilinear(50, 7, 40)
    bb = 1 / math.sqrt(50)
    wb = bil.weight.detach().numpy()
    assert np.abs(wb).max() <= bb and np.abs(wb).max() > 0.99 * bb
    assert np.abs(bil.bias.detach().numpy()).max() <= bb


def test_initialization_is_reproducible_with_manual_seed():
    ember.manual_seed(7)
    a = nn.Linear(5, 4).weight.detach().numpy()
    ember.manual_seed(7)
    b = nn.Linear(5, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


def test_dtype_and_device_arguments():
    lin = nn.Linear(2, 3, dtype=ember.float64, device="cpu")
    assert lin.weight.dtype == ember.float64 and lin.bias.dtype == ember.float64
    assert lin(ember.ones(1, 2, dtype=ember.float64)).dtype == ember.float64


def test_reprs_match_torch(torch):
    pairs = [
        (nn.Linear(3, 2), torch.nn.Linear(3, 2)),
        (nn.Linear(3, 2, bias=False), torch.nn.Linear(3, 2, bias=False)),
        (nn.Bilinear(3, 4, 2), torch.nn.Bilinear(3, 4, 2)),
        (nn.Identity(), torch.nn.Identity()),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Flatten(0, 2), torch.nn.Flatten(0, 2)),
        (nn.Unflatten(1, (2, 5)), torch.nn.Unflatten(1, (2, 5))),
    ]
    for em, tm in pairs:
        assert repr(em) == repr(tm)
    assert repr(nn.Linear(3, 2)) == "Linear(in_features=3, out_features=2, bias=True)"


def test_linear_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"linear\(float32\[2, 5\], float32\[3, 4\]\)"):
        nn.Linear(4, 3)(ember.ones(2, 5))


def test_bilinear_shape_error():
    with pytest.raises(ValueError, match="equal leading dims"):
        nn.Bilinear(2, 3, 4)(ember.ones(5, 2), ember.ones(4, 3))


# ----------------------------------------------------------------- Flatten, Unflatten
@pytest.mark.parametrize("args", [(), (0,), (1, 2), (0, -2), (2, 3)])
def test_flatten_matches_torch(torch, args):
    x = RNG.standard_normal((2, 3, 4, 5))
    e = nn.Flatten(*args)(ember.tensor(x))
    t = torch.nn.Flatten(*args)(torch.tensor(x))
    assert e.shape == tuple(t.shape)
    np.testing.assert_array_equal(e.numpy(), t.numpy())


@pytest.mark.parametrize("dim, sizes", [(1, (3, 4)), (-1, (2, -1)), (0, (1, 2))])
def test_unflatten_matches_torch(torch, dim, sizes):
    x = RNG.standard_normal((2, 12))
    e = nn.Unflatten(dim, sizes)(ember.tensor(x))
    t = torch.nn.Unflatten(dim, sizes)(torch.tensor(x))
    assert e.shape == tuple(t.shape)
    np.testing.assert_array_equal(e.numpy(), t.numpy())


def test_flatten_unflatten_gradients_flow():
    x = ember.tensor(RNG.standard_normal((2, 3, 4)), requires_grad=True)
    y = nn.Unflatten(1, (4, 3))(nn.Flatten()(x))
    assert y.shape == (2, 4, 3)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())


def test_unflatten_rejects_bad_sizes():
    with pytest.raises(TypeError, match="tuple of ints"):
        nn.Unflatten(1, 12)


def test_identity_passes_anything_through():
    x = ember.ones(2)
    assert nn.Identity(3, foo="bar")(x) is x
