"""Dropout and Dropout2d: scaling, keep rate, eval-mode identity, whole-channel masks,
seeded reproducibility, gradients, in-place, errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_scales_kept_elements_by_inverse_keep_rate(p):
    ember.manual_seed(0)
    x = ember.tensor(np.random.default_rng(0).uniform(1, 2, 20000))
    y = nn.Dropout(p)(x).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], x.numpy()[kept] / (1 - p), rtol=1e-6)
    # the kept fraction is 1 - p within 5 standard deviations
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / x.numel())


def test_dropout_preserves_the_mean():
    ember.manual_seed(1)
    y = F.dropout(ember.ones(200000), p=0.3)
    assert abs(y.mean().item() - 1.0) < 0.01


def test_eval_mode_and_p_zero_are_the_identity():
    x = ember.randn(4, 5)
    d = nn.Dropout(0.5).eval()
    assert d(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert nn.Dropout2d(0.5).eval()(ember.randn(2, 3, 4, 4)).shape == (2, 3, 4, 4)


def test_p_one_zeroes_everything():
    assert F.dropout(ember.ones(5), p=1.0).tolist() == [0.0] * 5
    assert F.dropout2d(ember.ones(1, 2, 2, 2), p=1.0).sum().item() == 0.0


def test_manual_seed_makes_masks_reproducible():
    x = ember.ones(100)
    ember.manual_seed(42)
    a = F.dropout(x).numpy()
    b = F.dropout(x).numpy()
    ember.manual_seed(42)
    np.testing.assert_array_equal(F.dropout(x).numpy(), a)
    assert not np.array_equal(a, b)  # consecutive calls draw new masks
    ember.manual_seed(3)
    c = nn.Dropout2d()(ember.ones(4, 8, 2, 2)).numpy()
    ember.manual_seed(3)
    np.testing.assert_array_equal(nn.Dropout2d()(ember.ones(4, 8, 2, 2)).numpy(), c)


def test_gradient_is_the_scaled_mask():
    ember.manual_seed(0)
    x = ember.randn(50, dtype=ember.float64, requires_grad=True)
    y = F.dropout(x, p=0.4)
    y.sum().backward()
    mask = (y.detach().numpy() != 0) / 0.6
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-12)


@pytest.mark.parametrize("shape", [(6, 10, 3, 3), (10, 3, 3)])
def test_dropout2d_zeroes_whole_channels(shape):
    ember.manual_seed(5)
    x = ember.tensor(np.random.default_rng(1).uniform(1, 2, shape), requires_grad=True)
    y = nn.Dropout2d(0.5)(x)
    yn, xn = y.detach().numpy(), x.detach().numpy()
    per_channel = yn.reshape(*shape[:-2], -1)
    zero = (per_channel == 0).all(-1)
    full = (per_channel != 0).all(-1)
    assert (zero | full).all()  # every channel is dropped or kept whole
    assert zero.any() and full.any()
    np.testing.assert_allclose(yn[full], 2 * xn[full])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(yn != 0, 2.0, 0.0))


def test_dropout2d_needs_3d_or_4d_input():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\)"):
        F.dropout2d(ember.ones(2, 3))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_probability_outside_unit_interval_raises(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout2d(ember.ones(1, 1, 1, 1), p)


def test_inplace_dropout_writes_into_its_input():
    ember.manual_seed(0)
    x = ember.ones(1000)
    y = nn.Dropout(0.5, inplace=True)(x)
    assert y is x
    assert set(x.tolist()) == {0.0, 2.0}


def test_reprs_match_torch():
    torch = pytest.importorskip("torch")
    assert repr(nn.Dropout()) == repr(torch.nn.Dropout())
    assert repr(nn.Dropout2d(0.2, inplace=True)) == repr(torch.nn.Dropout2d(0.2, inplace=True))


def test_train_and_eval_switch_through_a_container():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.9))
    x = ember.ones(3, 4)
    model.eval()
    np.testing.assert_array_equal(model(x).detach().numpy(), model[0](x).detach().numpy())
    model.train()
    ember.manual_seed(0)
    assert (model(x).detach().numpy() == 0).mean() > 0.5
