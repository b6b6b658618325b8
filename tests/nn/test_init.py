"""ember.nn.init: gains and fans as PyTorch, distributions' bounds and statistics,
orthogonality, truncation, generators, in-place under no_grad, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import nn
from ember._src.nn.init import _calculate_fan_in_and_fan_out
from ember.nn import init

N = 200_000  # samples for the statistical checks: tolerances below are ~5 standard errors


@pytest.fixture(autouse=True)
def _seed():
    ember.manual_seed(1234)  # statistical checks are deterministic, not merely likely to pass


def param(*shape):
    return nn.Parameter(ember.empty(*shape, dtype=ember.float64))


@pytest.mark.parametrize(
    "nonlinearity, param_",
    [
        ("linear", None),
        ("conv2d", None),
        ("conv_transpose3d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", 3),
        ("selu", None),
    ],
)
def test_calculate_gain_matches_torch(nonlinearity, param_):
    torch = pytest.importorskip("torch")
    want = torch.nn.init.calculate_gain(nonlinearity, param_)
    assert init.calculate_gain(nonlinearity, param_) == pytest.approx(want, rel=1e-15)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "big")


def test_every_function_works_in_place_on_a_parameter_and_records_nothing():
    fns = [
        lambda t: init.uniform_(t, -1, 1),
        lambda t: init.normal_(t, 0, 2),
        lambda t: init.trunc_normal_(t),
        lambda t: init.constant_(t, 0.3),
        init.ones_,
        init.zeros_,
        init.eye_,
        init.xavier_uniform_,
        init.xavier_normal_,
        init.kaiming_uniform_,
        init.kaiming_normal_,
        init.orthogonal_,
    ]
    for fn in fns:
        p = param(4, 3)
        version = p._version_number
        out = fn(p)
        assert out is p
        assert p.is_leaf and p.requires_grad and p.grad_fn is None
        assert p._version_number > version


def test_uniform_and_normal_statistics():
    u = init.uniform_(param(N), -2.0, 3.0).detach().numpy()
    assert u.min() >= -2.0 and u.max() < 3.0
    assert abs(u.mean() - 0.5) < 5 * 5 / math.sqrt(12 * N)
    n = init.normal_(param(N), 1.0, 2.0).detach().numpy()
    assert abs(n.mean() - 1.0) < 5 * 2 / math.sqrt(N)
    assert abs(n.std() - 2.0) < 0.02


def test_constant_ones_zeros_eye():
    assert init.constant_(param(2, 2), 1.5).tolist() == [[1.5, 1.5], [1.5, 1.5]]
    assert init.ones_(param(3)).tolist() == [1.0, 1.0, 1.0]
    assert init.zeros_(param(3)).tolist() == [0.0, 0.0, 0.0]
    assert init.eye_(param(2, 3)).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="only 2-D tensors"):
        init.eye_(param(2, 2, 2))


def test_fans_follow_torch_for_conv_shaped_weights():
    torch = pytest.importorskip("torch")
    for shape in [(8, 4), (16, 3, 5, 5), (6, 2, 3)]:
        want = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert _calculate_fan_in_and_fan_out(ember.empty(*shape)) == want
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(param(5))


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_bounds_and_std(gain):
    fan_in, fan_out = 50 * 9, 40 * 9
    w = init.xavier_uniform_(param(40, 50, 3, 3), gain=gain).detach().numpy()
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    assert abs(w.std() / std - 1) < 0.02
    n = init.xavier_normal_(param(400, 500), gain=gain).detach().numpy()
    assert abs(n.std() / (gain * math.sqrt(2.0 / (500 + 400))) - 1) < 0.02


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("relu", 0), ("leaky_relu", 0.1), ("tanh", 0)])
def test_kaiming_bounds_and_std(mode, nonlinearity, a):
    shape = (300, 200, 2)
    fan = 200 * 2 if mode == "fan_in" else 300 * 2
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    w = init.kaiming_uniform_(param(*shape), a=a, mode=mode, nonlinearity=nonlinearity)
    w = w.detach().numpy()
    bound = math.sqrt(3.0) * std
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert abs(w.std() / std - 1) < 0.02
    n = init.kaiming_normal_(param(*shape), a=a, mode=mode, nonlinearity=nonlinearity)
    assert abs(n.detach().numpy().std() / std - 1) < 0.02


def test_kaiming_errors_and_zero_element_warning():
    with pytest.raises(ValueError, match="mode 'fan_avg' is not supported"):
        init.kaiming_uniform_(param(3, 3), mode="fan_avg")
    with pytest.warns(UserWarning, match="zero-element tensor is a no-op"):
        init.kaiming_normal_(param(0, 3))


@pytest.mark.parametrize("shape", [(6, 6), (3, 8), (8, 3), (4, 2, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal_is_orthogonal(shape, gain):
    w = init.orthogonal_(param(*shape), gain=gain).detach().numpy().reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_float32_and_errors():
    w = init.orthogonal_(ember.empty(5, 5)).numpy()
    np.testing.assert_allclose(w.T @ w, np.eye(5), atol=1e-5)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(param(4))


def _truncnorm_moments(mean, std, a, b):
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2
    z = cdf(beta) - cdf(alpha)
    m = mean + std * (pdf(alpha) - pdf(beta)) / z
    var = std**2 * (
        1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - ((pdf(alpha) - pdf(beta)) / z) ** 2
    )
    return m, math.sqrt(var)


@pytest.mark.parametrize(
    "mean, std, a, b",
    [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04), (1.0, 2.0, 0.0, 5.0), (0.0, 1.0, 2.0, 4.0)],
)
def test_trunc_normal_within_bounds_with_the_right_moments(mean, std, a, b):
    w = init.trunc_normal_(param(N), mean, std, a, b).detach().numpy()
    assert w.min() >= a and w.max() <= b
    m, s = _truncnorm_moments(mean, std, a, b)
    assert abs(w.mean() - m) < 5 * s / math.sqrt(N)
    assert abs(w.std() / s - 1) < 0.01


def test_trunc_normal_float32_and_errors():
    w = init.trunc_normal_(ember.empty(1000), std=0.02, a=-0.04, b=0.04).numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= 0.04
    with pytest.raises(ValueError, match="need a < b"):
        init.trunc_normal_(param(3), a=1.0, b=0.0)


@pytest.mark.parametrize(
    "fn",
    [
        init.uniform_,
        init.normal_,
        init.trunc_normal_,
        init.xavier_uniform_,
        init.xavier_normal_,
        init.kaiming_uniform_,
        init.kaiming_normal_,
        init.orthogonal_,
    ],
)
def test_generator_argument_makes_draws_reproducible(fn):
    g = ember.Generator().manual_seed(11)
    a = fn(param(5, 4), generator=g).detach().numpy()
    g.manual_seed(11)
    b = fn(param(5, 4), generator=g).detach().numpy()
    np.testing.assert_array_equal(a, b)
    ember.manual_seed(11)  # the default generator is a different stream
    c = fn(param(5, 4)).detach().numpy()
    ember.manual_seed(11)
    np.testing.assert_array_equal(fn(param(5, 4)).detach().numpy(), c)


def test_public_module_lists_torchs_names():
    for name in [
        "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_",
        "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
        "orthogonal_", "trunc_normal_",
    ]:  # fmt: skip
        assert callable(getattr(nn.init, name))
