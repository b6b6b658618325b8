"""Gradient clipping and parameter/vector conversion, against torch.nn.utils and NumPy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import ember
from ember.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)

SHAPES = [(3, 4), (5,), (), (2, 2, 3)]


def grads(seed: int = 0, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s) * scale) for s in SHAPES]


def ember_params(gs: list[np.ndarray]) -> list[ember.Tensor]:
    out = []
    for g in gs:
        p = ember.zeros(g.shape, dtype=ember.float64, requires_grad=True)
        p.grad = ember.from_numpy(g.copy())
        out.append(p)
    return out


def torch_params(gs: list[np.ndarray]) -> list[Any]:
    torch = pytest.importorskip("torch")
    out = []
    for g in gs:
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.from_numpy(g.copy())
        out.append(p)
    return out


@pytest.mark.torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, 0.5, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type: Any, max_norm: float) -> None:
    torch = pytest.importorskip("torch")
    gs = grads()
    ps, tps = ember_params(gs), torch_params(gs)
    total = clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type=norm_type)
    assert isinstance(total, ember.Tensor) and total.ndim == 0
    assert total.dtype == ember.float64
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-12)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_reference(norm_type: float) -> None:
    gs = grads(1, scale=3.0)
    flat = np.concatenate([g.ravel() for g in gs])
    expected_total = np.linalg.norm(flat, ord=norm_type)
    ps = ember_params(gs)
    total = clip_grad_norm_(ps, 2.0, norm_type=norm_type)
    assert total.item() == pytest.approx(expected_total, rel=1e-12)
    coef = 2.0 / (expected_total + 1e-6)
    for p, g in zip(ps, gs):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)
    clipped = np.concatenate([p.grad.numpy().ravel() for p in ps])
    assert np.linalg.norm(clipped, ord=norm_type) == pytest.approx(2.0, rel=1e-5)


def test_clip_grad_norm_leaves_small_grads_and_skips_missing() -> None:
    gs = grads()
    ps = ember_params(gs)
    extra = ember.zeros(2, requires_grad=True)  # no grad: skipped
    clip_grad_norm_([*ps, extra], 1e6)
    for p, g in zip(ps, gs):
        np.testing.assert_array_equal(p.grad.numpy(), g)
    assert extra.grad is None
    single = ember_params([np.array([3.0, 4.0])])[0]
    assert clip_grad_norm_(single, 1.0).item() == pytest.approx(5.0)  # a lone Tensor works
    assert clip_grad_norm_([extra], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite() -> None:
    gs = grads()
    gs[1][2] = np.nan
    with pytest.raises(RuntimeError, match="error_if_nonfinite=False"):
        clip_grad_norm_(ember_params(gs), 1.0, error_if_nonfinite=True)
    ps = ember_params(gs)
    total = clip_grad_norm_(ps, 1.0)
    assert math.isnan(total.item())
    assert np.isnan(ps[0].grad.numpy()).all()  # scaled by nan, as PyTorch does


def test_clip_grad_norm_does_not_record() -> None:
    p = ember.zeros(3, requires_grad=True)
    p.grad = ember.tensor([1.0, 2.0, 2.0], requires_grad=True)
    total = clip_grad_norm_([p], 1.0)
    assert not total.requires_grad
    assert p.grad.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3], rel=1e-5)


@pytest.mark.torch
def test_clip_grad_value_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    gs = grads(2)
    ps, tps = ember_params(gs), torch_params(gs)
    clip_grad_value_(ps, 0.7)
    torch.nn.utils.clip_grad_value_(tps, 0.7)
    for p, tp in zip(ps, tps):
        np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())
    assert max(np.abs(p.grad.numpy()).max() for p in ps) == 0.7


def test_clip_grad_value_reference() -> None:
    gs = grads(3)
    ps = ember_params(gs)
    clip_grad_value_(ps, 0.5)
    for p, g in zip(ps, gs):
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -0.5, 0.5))


def test_parameters_to_vector_and_back() -> None:
    gs = grads(4)
    ps = [ember.from_numpy(g.copy()).requires_grad_() for g in gs]
    vec = parameters_to_vector(ps)
    np.testing.assert_array_equal(vec.detach().numpy(), np.concatenate([g.ravel() for g in gs]))
    vec.sum().backward()  # differentiable, like PyTorch's
    assert all(p.grad is not None and p.grad.shape == p.shape for p in ps)
    new = ember.arange(float(vec.numel()), dtype=ember.float64)
    vector_to_parameters(new, ps)
    assert ps[2].item() == 17.0 and ps[3].shape == (2, 2, 3)
    assert ps[3].detach().numpy().ravel().tolist() == list(range(18, 30))
    assert all(p.is_leaf and p.requires_grad for p in ps)


@pytest.mark.torch
def test_parameters_to_vector_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    gs = grads(5)
    ours = parameters_to_vector([ember.from_numpy(g) for g in gs])
    theirs = torch.nn.utils.parameters_to_vector([torch.from_numpy(g) for g in gs])
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_vector_to_parameters_errors() -> None:
    ps = [ember.zeros(2, 2), ember.zeros(3)]
    with pytest.raises(TypeError, match="Tensor"):
        vector_to_parameters(np.zeros(7), ps)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-d"):
        vector_to_parameters(ember.zeros(7, 1), ps)
    with pytest.raises(ValueError, match="6 elements but the parameters have 7"):
        vector_to_parameters(ember.zeros(6), ps)
    with pytest.raises(ValueError, match="no parameters"):
        parameters_to_vector([])
    with pytest.raises(TypeError, match="parameter 1"):
        parameters_to_vector([ember.zeros(2), [1.0]])  # type: ignore[list-item]
