"""Activation layers against PyTorch (values and gradients in float64, including the
kinks at 0), float64 central differences, in-place variants, reprs."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn
from ember.testing import gradcheck

RNG = np.random.default_rng(1)
TOL = 1e-10

# Values on both sides of every kink, the kinks themselves, and far tails.
X = np.concatenate([RNG.uniform(-4, 4, 20), [0.0, -0.0, 1e-8, -1e-8, 25.0, -25.0, 30.0]])

LAYERS = [
    ("ReLU", {}),
    ("LeakyReLU", {}),
    ("LeakyReLU", {"negative_slope": 0.2}),
    ("ELU", {}),
    ("ELU", {"alpha": 0.5}),
    ("GELU", {}),
    ("GELU", {"approximate": "tanh"}),
    ("SiLU", {}),
    ("Tanh", {}),
    ("Sigmoid", {}),
    ("Softplus", {}),
    ("Softplus", {"beta": 2.0, "threshold": 5.0}),
    ("Softmax", {"dim": 1}),
    ("Softmax", {"dim": -1}),
    ("LogSoftmax", {"dim": 0}),
    ("LogSoftmax", {"dim": 1}),
]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("name, kwargs", LAYERS)
def test_layer_matches_torch_value_and_gradient(torch, name, kwargs):
    x = X.reshape(3, 9)
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ey, ty = getattr(nn, name)(**kwargs)(ex), getattr(torch.nn, name)(**kwargs)(tx)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=TOL, atol=TOL)
    cot = RNG.standard_normal(x.shape)
    ey.backward(ember.tensor(cot))
    ty.backward(torch.tensor(cot))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("name, kwargs", LAYERS)
def test_layer_repr_matches_torch(torch, name, kwargs):
    assert repr(getattr(nn, name)(**kwargs)) == repr(getattr(torch.nn, name)(**kwargs))


@pytest.mark.parametrize("name", ["ReLU", "LeakyReLU", "ELU", "SiLU"])
def test_inplace_repr_matches_torch(torch, name):
    assert repr(getattr(nn, name)(inplace=True)) == repr(getattr(torch.nn, name)(inplace=True))


@pytest.mark.parametrize(
    "fn",
    [
        F.relu,
        lambda x: F.leaky_relu(x, 0.1),
        lambda x: F.elu(x, 0.7),
        F.gelu,
        lambda x: F.gelu(x, approximate="tanh"),
        F.silu,
        F.tanh,
        F.sigmoid,
        lambda x: F.softplus(x, beta=1.5, threshold=3.0),
        lambda x: F.softmax(x, dim=1),
        lambda x: F.log_softmax(x, dim=0),
    ],
)
def test_activations_pass_gradcheck(fn):
    # Away from the kinks, where central differences are meaningful.
    x = RNG.uniform(0.1, 3, (3, 4)) * RNG.choice([-1, 1], (3, 4))
    assert gradcheck(fn, (ember.tensor(x, requires_grad=True),))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "silu"])
def test_inplace_writes_into_the_input_and_keeps_gradients(name):
    x = ember.tensor(X, requires_grad=True)
    ref = getattr(F, name)(x * 1.0)
    (ref * ref).sum().backward()
    g_ref = x.grad.numpy().copy()
    x.grad = None
    h = x * 1.0  # a non-leaf, as in-place activations see in a network
    out = getattr(F, name)(h, inplace=True)
    assert out is h
    np.testing.assert_array_equal(h.detach().numpy(), ref.detach().numpy())
    (out * out).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), g_ref, rtol=1e-12)


def test_inplace_module_without_grad_modifies_the_tensor():
    x = ember.tensor([-1.0, 2.0])
    assert nn.ReLU(inplace=True)(x) is x
    assert x.tolist() == [0.0, 2.0]


def test_inplace_on_a_leaf_that_requires_grad_raises():
    x = ember.tensor([-1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"relu\(inplace=True\) on a leaf"):
        F.relu(x, inplace=True)


def test_softmax_without_dim_warns_and_uses_torchs_legacy_dim(torch):
    x = RNG.standard_normal((2, 3))
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        e = nn.Softmax()(ember.tensor(x))
    with pytest.warns(UserWarning):
        t = torch.nn.Softmax()(torch.tensor(x))
    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=TOL)


def test_softmax_is_stable_for_large_inputs():
    y = F.log_softmax(ember.tensor([[1000.0, 0.0]], dtype=ember.float64), dim=1)
    assert y.tolist() == [[0.0, -1000.0]]


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("fast")
