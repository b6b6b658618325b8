"""MultiheadAttention: against PyTorch (outputs, weights, every gradient, float64, state
dict keys) over masks and options, float64 central differences, init, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import ember
from ember import nn
from ember.testing import gradcheck

RNG = np.random.default_rng(1)
TOL = 1e-10
E, HEADS, L, S, N = 8, 2, 3, 5, 2  # embed dim, heads, target and source lengths, batch


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _to_ember(x):
    if x is None:
        return None
    t = ember.tensor(x.detach().numpy().copy())
    return t.requires_grad_() if x.requires_grad else t


def parity(torch, emod, tmod, args, kwargs, tol=TOL):
    """Load ``tmod``'s weights into ``emod``; compare outputs, inputs' and parameters' grads."""
    assert list(emod.state_dict()) == list(tmod.state_dict())
    emod.load_state_dict({k: ember.tensor(v.numpy()) for k, v in tmod.state_dict().items()})
    converted = {}  # the same torch tensor twice becomes the same ember tensor twice
    e_args = [converted.setdefault(id(a), _to_ember(a)) for a in args]
    e_kwargs = {k: _to_ember(v) if hasattr(v, "detach") else v for k, v in kwargs.items()}
    t_out, e_out = tmod(*args, **kwargs), emod(*e_args, **e_kwargs)
    t_loss, e_loss = 0, 0
    for t, e in zip(t_out, e_out):
        assert (t is None) == (e is None)
        if t is None:
            continue
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)
        cot = RNG.standard_normal(tuple(t.shape))
        t_loss = t_loss + (t * torch.tensor(cot, dtype=t.dtype)).sum()
        e_loss = e_loss + (e * ember.tensor(cot, dtype=e.dtype)).sum()
    t_loss.backward()
    e_loss.backward()
    for t, e in zip(args, e_args):
        if t.requires_grad:
            np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)
    t_params = dict(tmod.named_parameters())
    for name, p in emod.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        np.testing.assert_allclose(
            p.grad.numpy(), t_params[name].grad.numpy(), rtol=tol, atol=tol, err_msg=name
        )
    return e_out


def randn(torch, *shape, grad=True):
    return torch.tensor(RNG.standard_normal(shape), requires_grad=grad)


def _seq(torch, length, dim, batch_first, batched=True):
    if not batched:
        return randn(torch, length, dim)
    return randn(torch, N, length, dim) if batch_first else randn(torch, length, N, dim)


def _masks(torch, kind, batched=True, tgt=L):
    """(attn_mask, key_padding_mask) of one kind; every query keeps a visible key."""
    attn = kpm = None
    if kind in ("bool", "bool+kpm", "bool3d"):
        shape = (N * HEADS if batched else HEADS, tgt, S) if kind == "bool3d" else (tgt, S)
        attn = torch.tensor(RNG.random(shape) < 0.4)
        attn[..., 0] = False
    elif kind in ("float", "float+kpm"):
        attn = torch.tensor(RNG.standard_normal((tgt, S)))
    if kind.endswith("kpm"):
        kpm = torch.zeros((N, S) if batched else (S,), dtype=torch.bool)
        kpm[..., -2:] = True
        if kind.startswith("float"):
            kpm = torch.zeros(kpm.shape, dtype=torch.float64).masked_fill(kpm, -math.inf)
    return attn, kpm


MASKS = ["none", "bool", "float", "bool3d", "kpm", "bool+kpm", "float+kpm"]


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize(
    "batch_first, need_weights, average", [(False, True, True), (True, True, False),
                                           (False, False, True), (True, False, True)]
)  # fmt: skip
@pytest.mark.parametrize("cross", [False, True])
def test_mha_matches_torch(torch, mask, batch_first, need_weights, average, cross):
    tmod = torch.nn.MultiheadAttention(E, HEADS, batch_first=batch_first).double()
    emod = nn.MultiheadAttention(E, HEADS, batch_first=batch_first).double()
    if cross:
        q, k, v = (_seq(torch, n, E, batch_first) for n in (L, S, S))
        attn, kpm = _masks(torch, mask)
    else:  # self-attention: one tensor three times (PyTorch's packed projection)
        q = k = v = _seq(torch, S, E, batch_first)
        attn, kpm = _masks(torch, mask, tgt=S)
    kwargs = dict(attn_mask=attn, key_padding_mask=kpm, need_weights=need_weights,
                  average_attn_weights=average)  # fmt: skip
    parity(torch, emod, tmod, [q, k, v], kwargs)


@pytest.mark.parametrize(
    "options",
    [
        {"kdim": 3, "vdim": 5},
        {"bias": False},
        {"add_bias_kv": True},
        {"add_zero_attn": True},
        {"add_bias_kv": True, "add_zero_attn": True, "kdim": 3, "vdim": 4},
    ],
    ids=str,
)
@pytest.mark.parametrize("mask", ["none", "bool", "float+kpm", "bool3d"])
def test_mha_options_match_torch(torch, options, mask):
    tmod = torch.nn.MultiheadAttention(E, HEADS, **options).double()
    emod = nn.MultiheadAttention(E, HEADS, **options).double()
    q = _seq(torch, L, E, False)
    k = _seq(torch, S, options.get("kdim", E), False)
    v = _seq(torch, S, options.get("vdim", E), False)
    attn, kpm = _masks(torch, mask)
    parity(torch, emod, tmod, [q, k, v], dict(attn_mask=attn, key_padding_mask=kpm))


@pytest.mark.parametrize("mask", ["none", "bool3d", "bool+kpm"])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_unbatched_matches_torch(torch, mask, need_weights):
    tmod = torch.nn.MultiheadAttention(E, HEADS, kdim=3, vdim=3).double()
    emod = nn.MultiheadAttention(E, HEADS, kdim=3, vdim=3).double()
    q, k, v = _seq(torch, L, E, False, False), _seq(torch, S, 3, False, False), None
    v = _seq(torch, S, 3, False, False)
    attn, kpm = _masks(torch, mask, batched=False)
    kwargs = dict(attn_mask=attn, key_padding_mask=kpm, need_weights=need_weights)
    parity(torch, emod, tmod, [q, k, v], kwargs)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_eval_mode_and_dropout(torch, need_weights):
    tmod = torch.nn.MultiheadAttention(E, HEADS, dropout=0.5).double().eval()
    emod = nn.MultiheadAttention(E, HEADS, dropout=0.5).double().eval()
    q, k = _seq(torch, L, E, False), _seq(torch, S, E, False)
    attn, _ = _masks(torch, "bool")
    parity(torch, emod, tmod, [q, k, k.detach()], dict(attn_mask=attn, need_weights=need_weights))
    # Training applies dropout to the attention weights: rows no longer sum to one.
    x = ember.randn(L, N, E, dtype=ember.float64)
    ember.manual_seed(0)
    _, w = emod.train()(x, x, x, average_attn_weights=False)
    sums = w.detach().numpy().sum(-1)
    assert not np.allclose(sums, 1.0)
    assert set(np.unique(np.round(w.detach().numpy(), 12))) >= {0.0}


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_kpm", [True, False])
def test_mha_is_causal_matches_torch(torch, need_weights, with_kpm):
    tmod = torch.nn.MultiheadAttention(E, HEADS).double()
    emod = nn.MultiheadAttention(E, HEADS).double()
    x = _seq(torch, L, E, False)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    kpm = None
    if with_kpm:
        kpm = torch.zeros(N, L, dtype=torch.float64)  # float, like the causal mask
        kpm[1, -1] = -math.inf
    kwargs = dict(attn_mask=causal, key_padding_mask=kpm, need_weights=need_weights,
                  is_causal=True)  # fmt: skip
    parity(torch, emod, tmod, [x, x.detach(), x.detach()], kwargs)


def test_mha_float32_matches_torch(torch):
    tmod = torch.nn.MultiheadAttention(E, HEADS, batch_first=True)
    emod = nn.MultiheadAttention(E, HEADS, batch_first=True)
    q = torch.tensor(RNG.standard_normal((N, L, E)), dtype=torch.float32, requires_grad=True)
    k = torch.tensor(RNG.standard_normal((N, S, E)), dtype=torch.float32, requires_grad=True)
    parity(torch, emod, tmod, [q, k, k.detach()], {}, tol=1e-5)


def test_state_dict_keys_match_torch(torch):
    for options in [{}, {"kdim": 3, "vdim": 5}, {"bias": False}, {"add_bias_kv": True}]:
        t_sd = torch.nn.MultiheadAttention(E, HEADS, **options).state_dict()
        e_sd = nn.MultiheadAttention(E, HEADS, **options).state_dict()
        assert list(e_sd) == list(t_sd)
        assert [tuple(v.shape) for v in e_sd.values()] == [tuple(v.shape) for v in t_sd.values()]
    assert list(nn.MultiheadAttention(E, HEADS).state_dict()) == [
        "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias",
    ]  # fmt: skip


# ----------------------------------------------------------------- numerical gradients
def _call_with(module, params, *args, **kwargs):
    saved = dict(module._parameters)
    module._parameters.update(params)
    try:
        return module(*args, **kwargs)
    finally:
        module._parameters.update(saved)


@pytest.mark.parametrize(
    "options, mask",
    [({}, "bool"), ({"kdim": 3, "vdim": 2, "add_bias_kv": True}, "float"), ({}, "kpm")],
    ids=str,
)
def test_mha_gradcheck(options, mask):
    mha = nn.MultiheadAttention(4, 2, **options).double()
    inner = [n for n, _ in mha.named_parameters() if "." not in n]
    params = [mha._parameters[n].detach().clone().requires_grad_() for n in inner]
    q = ember.tensor(RNG.standard_normal((2, 1, 4)), requires_grad=True)
    k = ember.tensor(RNG.standard_normal((3, 1, options.get("kdim", 4))), requires_grad=True)
    v = ember.tensor(RNG.standard_normal((3, 1, options.get("vdim", 4))), requires_grad=True)
    kw = {}
    if mask == "bool":
        kw["attn_mask"] = ember.tensor([[False, True, False], [False, False, True]])
    elif mask == "float":
        kw["attn_mask"] = ember.tensor(RNG.standard_normal((2, 3)))
    else:
        kw["key_padding_mask"] = ember.tensor([[False, False, True]])

    def fn(q, k, v, *ps):
        return _call_with(mha, dict(zip(inner, ps)), q, k, v, **kw)

    assert gradcheck(fn, (q, k, v, *params))


def test_attention_gradcheck_weights_path_and_sdpa_path():
    mha = nn.MultiheadAttention(4, 2, batch_first=True).double()
    x = ember.tensor(RNG.standard_normal((1, 3, 4)), requires_grad=True)
    assert gradcheck(lambda x: mha(x, x, x, need_weights=True)[0], (x,))
    assert gradcheck(lambda x: mha(x, x, x, need_weights=False)[0], (x,))


# ----------------------------------------------------------------- init, errors
def test_default_init_follows_torch():
    ember.manual_seed(0)
    mha = nn.MultiheadAttention(64, 4, add_bias_kv=True)
    w = mha.in_proj_weight.detach().numpy()
    bound = math.sqrt(6 / (64 + 3 * 64))  # xavier_uniform over the packed (3E, E) matrix
    assert np.all(np.abs(w) <= bound) and w.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert not mha.in_proj_bias.detach().numpy().any()
    assert not mha.out_proj.bias.detach().numpy().any()
    out_w = mha.out_proj.weight.detach().numpy()
    assert np.all(np.abs(out_w) <= 1 / math.sqrt(64))  # Linear's default
    assert mha.bias_k.shape == (1, 1, 64)
    assert mha.bias_k.detach().numpy().std() == pytest.approx(math.sqrt(2 / 128), rel=0.3)
    separate = nn.MultiheadAttention(8, 2, kdim=3, vdim=5)
    assert separate.in_proj_weight is None and separate.k_proj_weight.shape == (8, 3)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="must be divisible by num_heads"):
        nn.MultiheadAttention(6, 4)
    mha = nn.MultiheadAttention(E, HEADS)
    x = ember.randn(L, N, E)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match="was expecting embedding dimension of 8"):
        mha(ember.randn(L, N, 4), x, x)
    with pytest.raises(ValueError, match="shape of attn_mask is"):
        mha(x, x, x, attn_mask=ember.zeros(L, L + 1, dtype=ember.bool))
    with pytest.raises(ValueError, match="key_padding_mask of shape"):
        mha(x, x, x, key_padding_mask=ember.zeros(N, L + 1, dtype=ember.bool))
    with pytest.raises(TypeError, match="only bool and floating types of attn_mask"):
        mha(x, x, x, attn_mask=ember.zeros(L, L, dtype=ember.int64))
    with pytest.raises(ValueError, match="expected key and value to be 3-D"):
        mha(x, ember.randn(L, E), x)


def test_output_shapes():
    mha = nn.MultiheadAttention(E, HEADS, batch_first=True)
    q, kv = ember.randn(N, L, E), ember.randn(N, S, E)
    out, w = mha(q, kv, kv, average_attn_weights=False)
    assert out.shape == (N, L, E) and w.shape == (N, HEADS, L, S)
    out, w = mha(q[0], kv[0], kv[0])
    assert out.shape == (L, E) and w.shape == (L, S)
    assert mha(q, kv, kv, need_weights=False)[1] is None
    for combo in itertools.product([None, ember.zeros(N, S, dtype=ember.bool)], [True, False]):
        assert mha(q, kv, kv, key_padding_mask=combo[0], need_weights=combo[1])[0].shape == (
            N, L, E,
        )  # fmt: skip
