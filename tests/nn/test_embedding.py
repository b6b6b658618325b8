"""Embedding: lookups and weight gradients against PyTorch, padding_idx (zero row at
init, no gradient), max_norm, scale_grad_by_freq, from_pretrained, errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn
from ember.testing import gradcheck

RNG = np.random.default_rng(3)
TOL = 1e-10


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def parity(torch, kwargs, idx, weight=None):
    em = nn.Embedding(10, 4, **kwargs).double()
    tm = torch.nn.Embedding(10, 4, **kwargs).double()
    if weight is not None:
        with ember.no_grad():
            em.weight.copy_(ember.tensor(weight))
    with torch.no_grad():
        tm.weight.copy_(torch.from_numpy(em.weight.detach().numpy().copy()))
    ey, ty = em(ember.tensor(idx)), tm(torch.tensor(idx))
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=TOL, atol=TOL)
    cot = RNG.standard_normal(tuple(ty.shape))
    ey.backward(ember.tensor(cot))
    ty.backward(torch.tensor(cot))
    np.testing.assert_allclose(em.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=TOL, atol=TOL)
    # max_norm renormalizes the weight in place; both must have done the same
    np.testing.assert_allclose(
        em.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=TOL, atol=TOL
    )
    return em


IDX = np.array([[1, 2, 0, 1], [9, 0, 3, 1]])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding_idx": 0},
        {"padding_idx": -1},
        {"scale_grad_by_freq": True},
        {"scale_grad_by_freq": True, "padding_idx": 1},
        {"max_norm": 1.0},
        {"max_norm": 1.5, "norm_type": 1.0},
    ],
)
@pytest.mark.parametrize("idx", [IDX, IDX[0], np.array(3)])
def test_embedding_matches_torch(torch, kwargs, idx):
    parity(torch, kwargs, idx)


def test_padding_row_is_zero_at_init_and_gets_no_gradient():
    emb = nn.Embedding(6, 3, padding_idx=2)
    assert emb.weight[2].tolist() == [0.0, 0.0, 0.0]
    with ember.no_grad():
        emb.weight[2] = ember.ones(3)  # a padding row may be set; it still gets no gradient
    out = emb(ember.tensor([2, 4, 2]))
    assert out[0].tolist() == [1.0, 1.0, 1.0]
    out.sum().backward()
    g = emb.weight.grad.numpy()
    assert g[2].tolist() == [0.0, 0.0, 0.0]
    assert g[4].tolist() == [1.0, 1.0, 1.0]


def test_default_initialization_is_standard_normal():
    ember.manual_seed(0)
    w = nn.Embedding(1000, 100).weight.detach().numpy()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1.0) < 0.01


def test_embedding_passes_gradcheck():
    w = ember.tensor(RNG.standard_normal((5, 3)), requires_grad=True)
    idx = ember.tensor([[0, 4], [4, 2]])
    # (padding_idx and scale_grad_by_freq change the gradient on purpose: not checked here)
    assert gradcheck(lambda w: F.embedding(idx, w), (w,))


def test_from_pretrained(torch):
    w = RNG.standard_normal((4, 2))
    emb = nn.Embedding.from_pretrained(ember.tensor(w))
    assert not emb.weight.requires_grad
    np.testing.assert_array_equal(emb(ember.tensor([3, 0])).numpy(), w[[3, 0]])
    assert nn.Embedding.from_pretrained(ember.tensor(w), freeze=False).weight.requires_grad
    assert repr(nn.Embedding.from_pretrained(ember.tensor(w), padding_idx=1)) == repr(
        torch.nn.Embedding.from_pretrained(torch.tensor(w), padding_idx=1)
    )


def test_reprs_and_state_dict_match_torch(torch):
    for kwargs in [{}, {"padding_idx": 0}, {"max_norm": 2.0, "scale_grad_by_freq": True}]:
        assert repr(nn.Embedding(10, 3, **kwargs)) == repr(torch.nn.Embedding(10, 3, **kwargs))
    assert list(nn.Embedding(3, 2).state_dict()) == ["weight"]


def test_errors():
    emb = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"indices must be in \[0, 5\)"):
        emb(ember.tensor([1, 5]))
    with pytest.raises(TypeError, match="indices must be an integer tensor"):
        emb(ember.tensor([1.0]))
    with pytest.raises(ValueError, match="padding_idx 5 must be within"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="sparse gradients are not supported"):
        nn.Embedding(5, 2, sparse=True)
    with pytest.raises(ValueError, match=r"expected \(5, 2\)"):
        nn.Embedding(5, 2, _weight=ember.ones(2, 5))
