"""ember.nn.functional: attention, distances, padding and the public name list, against
PyTorch (values and every gradient, float64) and float64 central differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(4)
TOL = 1e-10


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def parity(torch, efn, tfn, args, kwargs=None, tol=TOL):
    """Same float64 data through both; compare outputs and every float argument's gradient.
    ``kwargs`` values that are arrays become (non-differentiable) tensors."""
    kwargs = kwargs or {}
    floats = [i for i, a in enumerate(args) if a.dtype.kind == "f"]
    e_args = [ember.tensor(a, requires_grad=i in floats) for i, a in enumerate(args)]
    t_args = [torch.tensor(a, requires_grad=i in floats) for i, a in enumerate(args)]
    e_kw = {k: ember.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    t_kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    eo, to = efn(*e_args, **e_kw), tfn(*t_args, **t_kw)
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=tol, atol=tol)
    cot = RNG.standard_normal(tuple(to.shape))
    eo.backward(ember.tensor(cot))
    to.backward(torch.tensor(cot))
    for i in floats:
        np.testing.assert_allclose(
            e_args[i].grad.numpy(), t_args[i].grad.numpy(), rtol=tol, atol=tol, err_msg=str(i)
        )


def randn(*shape):
    return RNG.standard_normal(shape)


# ----------------------------------------------------------------- attention
@pytest.mark.parametrize(
    "shapes",
    [
        ((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 7)),  # (N, H, L, E), S != L, Ev != E
        ((5, 4), (5, 4), (5, 4)),
        ((2, 1, 5, 4), (2, 3, 5, 4), (1, 3, 5, 4)),  # broadcast batch dims
    ],
)
@pytest.mark.parametrize("scale", [None, 0.3])
def test_sdpa_matches_torch(torch, shapes, scale):
    q, k, v = (randn(*s) for s in shapes)
    parity(
        torch, F.scaled_dot_product_attention,
        torch.nn.functional.scaled_dot_product_attention, [q, k, v], {"scale": scale},
    )  # fmt: skip


@pytest.mark.parametrize("lengths", [(5, 5), (3, 6), (6, 3)])
def test_sdpa_causal_matches_torch(torch, lengths):
    n_l, n_s = lengths
    q, k, v = randn(2, n_l, 4), randn(2, n_s, 4), randn(2, n_s, 3)
    parity(
        torch, F.scaled_dot_product_attention,
        torch.nn.functional.scaled_dot_product_attention, [q, k, v], {"is_causal": True},
    )  # fmt: skip


def test_sdpa_bool_mask_keeps_true_positions_and_float_mask_adds(torch):
    q, k, v = randn(2, 2, 4, 3), randn(2, 2, 5, 3), randn(2, 2, 5, 3)
    keep = RNG.random((4, 5)) > 0.4
    keep[:, 0] = True  # every query attends somewhere
    tfn = torch.nn.functional.scaled_dot_product_attention
    parity(torch, F.scaled_dot_product_attention, tfn, [q, k, v], {"attn_mask": keep})
    additive = randn(2, 1, 4, 5)
    parity(torch, F.scaled_dot_product_attention, tfn, [q, k, v], {"attn_mask": additive})
    with_inf = np.where(keep, 0.0, -np.inf)
    parity(torch, F.scaled_dot_product_attention, tfn, [q, k, v], {"attn_mask": with_inf})


def test_sdpa_fully_masked_rows_give_zeros_like_torch(torch):
    q, k, v = randn(3, 2), randn(4, 2), randn(4, 2)
    keep = np.ones((3, 4), bool)
    keep[1] = False
    tfn = torch.nn.functional.scaled_dot_product_attention
    parity(torch, F.scaled_dot_product_attention, tfn, [q, k, v], {"attn_mask": keep})
    out = F.scaled_dot_product_attention(
        ember.tensor(q), ember.tensor(k), ember.tensor(v), attn_mask=ember.tensor(keep)
    )
    assert out[1].tolist() == [0.0, 0.0]


def test_sdpa_grouped_query_attention_matches_torch(torch):
    q, k, v = randn(2, 6, 4, 3), randn(2, 2, 5, 3), randn(2, 2, 5, 3)
    parity(
        torch, F.scaled_dot_product_attention,
        torch.nn.functional.scaled_dot_product_attention, [q, k, v], {"enable_gqa": True},
    )  # fmt: skip


def test_sdpa_dropout_is_seeded_and_scaled():
    q, k, v = (ember.tensor(randn(2, 8, 4)) for _ in range(3))
    ember.manual_seed(0)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    ember.manual_seed(0)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    c = F.scaled_dot_product_attention(q, k, v)
    assert not np.allclose(a.numpy(), c.numpy())


def test_sdpa_passes_gradcheck():
    q, k, v = (ember.tensor(randn(2, 3, 2), requires_grad=True) for _ in range(3))
    mask = ember.tensor([[True, False, True], [True, True, False], [False, True, True]])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask), (q, k, v))
    assert gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v)
    )


def test_sdpa_errors():
    x = ember.ones(2, 3, 4)
    with pytest.raises(ValueError, match=r"query \(\*, L, E\), key \(\*, S, E\)"):
        F.scaled_dot_product_attention(x, ember.ones(2, 3, 5), x)
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=ember.ones(3, 3), is_causal=True)
    with pytest.raises(ValueError, match="multiple of key/value heads"):
        q = ember.ones(1, 3, 2, 4)
        F.scaled_dot_product_attention(q, ember.ones(1, 2, 2, 4), ember.ones(1, 2, 2, 4),
                                       enable_gqa=True)  # fmt: skip


# ----------------------------------------------------------------- distances
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("dim", [1, 0, -1])
def test_normalize_matches_torch(torch, p, dim):
    parity(
        torch, F.normalize, torch.nn.functional.normalize, [randn(3, 4, 2)], {"p": p, "dim": dim}
    )


def test_normalize_zero_vector_has_zero_output_and_finite_gradient(torch):
    x = randn(3, 4)
    x[1] = 0.0
    parity(torch, F.normalize, torch.nn.functional.normalize, [x])


@pytest.mark.parametrize(
    "shapes, dim", [(((4, 5), (4, 5)), 1), (((4, 5), (1, 5)), 1), (((2, 3, 4), (2, 3, 4)), -1)]
)
def test_cosine_similarity_matches_torch(torch, shapes, dim):
    a, b = (randn(*s) for s in shapes)
    parity(torch, F.cosine_similarity, torch.nn.functional.cosine_similarity, [a, b], {"dim": dim})


def test_distances_pass_gradcheck():
    a = ember.tensor(randn(3, 4), requires_grad=True)
    b = ember.tensor(randn(3, 4), requires_grad=True)
    assert gradcheck(lambda a, b: F.cosine_similarity(a, b), (a, b))
    assert gradcheck(lambda a: F.normalize(a, p=3.0, dim=0), (a,))


# ----------------------------------------------------------------- linear, padding, one_hot
def test_functional_linear_and_bilinear_match_torch(torch):
    parity(torch, F.linear, torch.nn.functional.linear, [randn(2, 5, 3), randn(4, 3), randn(4)])
    parity(torch, F.linear, torch.nn.functional.linear, [randn(5, 3), randn(4, 3)])
    parity(
        torch, F.bilinear, torch.nn.functional.bilinear,
        [randn(5, 3), randn(5, 2), randn(4, 3, 2), randn(4)],
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_matches_torch(torch, mode):
    kwargs = {"mode": mode, **({"value": 1.5} if mode == "constant" else {})}
    parity(
        torch,
        lambda x: F.pad(x, (1, 2, 2, 0), **kwargs),
        lambda x: torch.nn.functional.pad(x, (1, 2, 2, 0), **kwargs),
        [randn(2, 3, 4, 5)],
    )


def test_pad_default_value_is_zero():
    assert F.pad(ember.ones(1), (1, 1)).tolist() == [0.0, 1.0, 0.0]


def test_one_hot_matches_torch(torch):
    idx = np.array([[0, 3], [2, 1]])
    e = F.one_hot(ember.tensor(idx), 5)
    t = torch.nn.functional.one_hot(torch.tensor(idx), 5)
    assert e.dtype == ember.int64
    np.testing.assert_array_equal(e.numpy(), t.numpy())
    inferred = torch.nn.functional.one_hot(torch.tensor(idx)).numpy()
    np.testing.assert_array_equal(F.one_hot(ember.tensor(idx)).numpy(), inferred)


def test_softmax_dtype_argument():
    y = F.softmax(ember.tensor([1.0, 2.0]), dim=0, dtype=ember.float64)
    assert y.dtype == ember.float64


def test_public_functional_names():
    names = """linear bilinear relu leaky_relu elu gelu silu softplus sigmoid tanh softmax
    log_softmax dropout dropout2d embedding one_hot pad mse_loss l1_loss smooth_l1_loss
    huber_loss cross_entropy nll_loss binary_cross_entropy binary_cross_entropy_with_logits
    kl_div cosine_embedding_loss normalize cosine_similarity scaled_dot_product_attention"""
    for name in names.split():
        assert callable(getattr(F, name)), name
        assert getattr(F, name).__doc__, f"{name} has no docstring"


def test_second_derivatives():
    q, k, v = (ember.tensor(randn(2, 3, 2), requires_grad=True) for _ in range(3))
    assert gradgradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v)
    )
    x = ember.tensor(randn(3, 4), requires_grad=True)
    assert gradgradcheck(lambda x: F.elu(x) + F.gelu(x) + F.silu(x) + F.softplus(x), (x,))
    assert gradgradcheck(F.normalize, (x,))


def _params(fn):
    import inspect

    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


def test_signatures_match_torch(torch):
    """Argument names, order and defaults are PyTorch's (where torch exposes a signature)."""
    for name in ["relu", "leaky_relu", "elu", "silu", "sigmoid", "tanh", "softmax",
                 "log_softmax", "dropout", "dropout2d", "embedding", "pad", "mse_loss",
                 "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
                 "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
                 "cosine_embedding_loss"]:  # fmt: skip
        assert _params(getattr(F, name)) == _params(getattr(torch.nn.functional, name)), name
    assert _params(F.normalize) == _params(torch.nn.functional.normalize)[:-1]  # no out=
    for name in ["uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
                 "eye_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
                 "kaiming_normal_", "orthogonal_", "calculate_gain"]:  # fmt: skip
        assert _params(getattr(ember.nn.init, name)) == _params(getattr(torch.nn.init, name))
    for name in ["Linear", "Bilinear", "Flatten", "Unflatten", "Dropout", "Dropout2d",
                 "Embedding", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Softplus",
                 "Softmax", "LogSoftmax", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss",
                 "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss",
                 "CosineEmbeddingLoss"]:  # fmt: skip
        ours = _params(getattr(ember.nn, name).__init__)
        assert ours == _params(getattr(torch.nn, name).__init__), name


def test_conv_pool_and_norm_functions_are_public_and_agree_with_the_layers():
    import ember.nn.functional as F

    x = ember.randn(2, 3, 8, 8)
    conv = ember.nn.Conv2d(3, 4, 3, padding=1)
    np.testing.assert_allclose(
        F.conv2d(x, conv.weight, conv.bias, padding=1).detach().numpy(),
        conv(x).detach().numpy(),
        rtol=1e-6,
    )
    assert F.max_pool2d(x, 2).shape == (2, 3, 4, 4)
    assert F.avg_pool2d(x, 2).shape == (2, 3, 4, 4)
    assert F.adaptive_avg_pool2d(x, 1).shape == (2, 3, 1, 1)
    ln = F.layer_norm(x, (8,)).numpy()
    np.testing.assert_allclose(ln.mean(-1), 0, atol=1e-5)
    for name in (
        "conv1d",
        "conv_transpose2d",
        "max_pool1d",
        "avg_pool1d",
        "adaptive_max_pool2d",
        "batch_norm",
        "group_norm",
    ):
        assert callable(getattr(F, name))
