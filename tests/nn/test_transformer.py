"""Transformer layers and stacks: against PyTorch (outputs and every gradient, float64,
state dict keys) over norm_first, activations, masks and modes; gradchecks; clone_module."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn
from ember._src.nn.transformer import clone_module
from ember.testing import gradcheck

RNG = np.random.default_rng(2)
TOL = 1e-10
D, HEADS, FF, L, S, N = 8, 2, 12, 4, 5, 2  # d_model, heads, feed-forward, tgt/src lengths, batch


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _to_ember(x):
    if x is None:
        return None
    t = ember.tensor(x.detach().numpy().copy())
    return t.requires_grad_() if x.requires_grad else t


def parity(torch, emod, tmod, args, kwargs, tol=TOL):
    """Load ``tmod``'s weights into ``emod``; compare the output and every gradient."""
    assert list(emod.state_dict()) == list(tmod.state_dict())
    emod.load_state_dict({k: ember.tensor(v.numpy()) for k, v in tmod.state_dict().items()})
    e_args = [_to_ember(a) for a in args]
    e_kwargs = {k: _to_ember(v) if hasattr(v, "detach") else v for k, v in kwargs.items()}
    t_out, e_out = tmod(*args, **kwargs), emod(*e_args, **e_kwargs)
    assert tuple(e_out.shape) == tuple(t_out.shape)
    np.testing.assert_allclose(e_out.detach().numpy(), t_out.detach().numpy(), rtol=tol, atol=tol)
    cot = RNG.standard_normal(tuple(t_out.shape))
    (t_out * torch.tensor(cot, dtype=t_out.dtype)).sum().backward()
    (e_out * ember.tensor(cot, dtype=e_out.dtype)).sum().backward()
    for t, e in zip(args, e_args):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)
    t_params = dict(tmod.named_parameters())
    for name, p in emod.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        np.testing.assert_allclose(
            p.grad.numpy(), t_params[name].grad.numpy(), rtol=tol, atol=tol, err_msg=name
        )


def randn(torch, *shape):
    return torch.tensor(RNG.standard_normal(shape), requires_grad=True)


def _seq(torch, length, batch_first):
    return randn(torch, N, length, D) if batch_first else randn(torch, length, N, D)


def _src_masks(torch, kind, length):
    """(attn mask, key padding mask) for a sequence of ``length``; same dtype for both."""
    if kind == "none":
        return None, None
    causal = torch.nn.Transformer.generate_square_subsequent_mask(length, dtype=torch.float64)
    kpm = torch.zeros(N, length, dtype=torch.float64)
    kpm[1, -1] = -math.inf
    if kind == "causal":
        return causal, None
    if kind == "bool+kpm":
        return causal.isinf(), kpm.isinf()
    return causal, kpm  # "float+kpm"


def _activation(torch, name):
    if name == "callable":  # a plain function on each side
        return torch.nn.functional.silu, F.silu
    if name == "module":  # a Module is registered as a child (no parameters)
        return torch.nn.GELU(), nn.GELU()
    return name, name


# norm_first x activation x masks; batch_first and train/eval alternate across the grid.
LAYER_CASES = [
    (norm_first, act, masks, i % 2 == 1, "eval" if i % 4 >= 2 else "train")
    for i, (norm_first, act, masks) in enumerate(
        (nf, a, m)
        for nf in (False, True)
        for a in ("relu", "gelu", "callable", "module")
        for m in ("none", "causal", "bool+kpm", "float+kpm")
    )
]


@pytest.mark.parametrize("norm_first, act, masks, batch_first, mode", LAYER_CASES)
def test_encoder_layer_matches_torch(torch, norm_first, act, batch_first, mode, masks):
    t_act, e_act = _activation(torch, act)
    opts = dict(dropout=0.0, norm_first=norm_first, batch_first=batch_first)
    tmod = torch.nn.TransformerEncoderLayer(D, HEADS, FF, activation=t_act, **opts).double()
    emod = nn.TransformerEncoderLayer(D, HEADS, FF, activation=e_act, **opts).double()
    tmod.train(mode == "train")
    emod.train(mode == "train")
    mask, kpm = _src_masks(torch, masks, L)
    kwargs = dict(src_mask=mask, src_key_padding_mask=kpm, is_causal=masks == "causal")
    parity(torch, emod, tmod, [_seq(torch, L, batch_first)], kwargs)


@pytest.mark.parametrize(
    "norm_first, act, masks, batch_first, mode",
    [case for case in LAYER_CASES if case[1] != "callable"],
)
def test_decoder_layer_matches_torch(torch, norm_first, act, masks, batch_first, mode):
    t_act, e_act = _activation(torch, act)
    opts = dict(dropout=0.0, norm_first=norm_first, batch_first=batch_first)
    tmod = torch.nn.TransformerDecoderLayer(D, HEADS, FF, activation=t_act, **opts).double()
    emod = nn.TransformerDecoderLayer(D, HEADS, FF, activation=e_act, **opts).double()
    tmod.train(mode == "train")
    emod.train(mode == "train")
    tgt_mask, tgt_kpm = _src_masks(torch, masks, L)
    _, mem_kpm = _src_masks(torch, "float+kpm" if masks != "none" else "none", S)
    mem_mask = None
    if masks == "bool+kpm":
        mem_kpm = mem_kpm.isinf()
        mem_mask = torch.tensor(RNG.random((L, S)) < 0.3)
        mem_mask[:, 0] = False
    kwargs = dict(tgt_mask=tgt_mask, memory_mask=mem_mask, tgt_key_padding_mask=tgt_kpm,
                  memory_key_padding_mask=mem_kpm, tgt_is_causal=masks == "causal")  # fmt: skip
    parity(torch, emod, tmod, [_seq(torch, L, batch_first), _seq(torch, S, batch_first)], kwargs)


@pytest.mark.parametrize("norm_first, final_norm", [(False, True), (True, False)])
@pytest.mark.parametrize("masks", ["none", "causal", "float+kpm"])
def test_encoder_and_decoder_stacks_match_torch(torch, norm_first, final_norm, masks):
    opts = dict(dropout=0.0, norm_first=norm_first)
    t_layer = torch.nn.TransformerEncoderLayer(D, HEADS, FF, **opts).double()
    e_layer = nn.TransformerEncoderLayer(D, HEADS, FF, **opts).double()
    t_norm = torch.nn.LayerNorm(D).double() if final_norm else None
    e_norm = nn.LayerNorm(D).double() if final_norm else None
    tmod = torch.nn.TransformerEncoder(t_layer, 2, t_norm, enable_nested_tensor=False)
    emod = nn.TransformerEncoder(e_layer, 2, e_norm)
    mask, kpm = _src_masks(torch, masks, L)
    kwargs = dict(mask=mask, src_key_padding_mask=kpm)
    parity(torch, emod, tmod, [_seq(torch, L, False)], kwargs)

    t_layer = torch.nn.TransformerDecoderLayer(D, HEADS, FF, **opts).double()
    e_layer = nn.TransformerDecoderLayer(D, HEADS, FF, **opts).double()
    t_norm = torch.nn.LayerNorm(D).double() if final_norm else None
    e_norm = nn.LayerNorm(D).double() if final_norm else None
    tmod = torch.nn.TransformerDecoder(t_layer, 2, t_norm)
    emod = nn.TransformerDecoder(e_layer, 2, e_norm)
    kwargs = dict(tgt_mask=mask, tgt_key_padding_mask=kpm)
    parity(torch, emod, tmod, [_seq(torch, L, False), _seq(torch, S, False)], kwargs)


def test_full_transformer_matches_torch(torch):
    opts = dict(d_model=D, nhead=HEADS, num_encoder_layers=2, num_decoder_layers=1,
                dim_feedforward=FF, dropout=0.0, batch_first=True)  # fmt: skip
    tmod = torch.nn.Transformer(**opts).double()
    emod = nn.Transformer(**opts).double()
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    kwargs = dict(tgt_mask=tgt_mask, tgt_is_causal=True)
    parity(torch, emod, tmod, [_seq(torch, S, True), _seq(torch, L, True)], kwargs)


def test_float32_encoder_layer_matches_torch(torch):
    tmod = torch.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True)
    emod = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True)
    x = torch.tensor(RNG.standard_normal((N, L, D)), dtype=torch.float32, requires_grad=True)
    parity(torch, emod, tmod, [x], {}, tol=1e-5)


def test_state_dict_keys_match_torch(torch):
    pairs = [
        (torch.nn.TransformerEncoderLayer(D, HEADS, FF), nn.TransformerEncoderLayer(D, HEADS, FF)),
        (
            torch.nn.TransformerDecoderLayer(D, HEADS, FF, bias=False),
            nn.TransformerDecoderLayer(D, HEADS, FF, bias=False),
        ),
        (
            torch.nn.Transformer(D, HEADS, 1, 2, FF, batch_first=True),
            nn.Transformer(D, HEADS, 1, 2, FF, batch_first=True),
        ),
    ]
    for tmod, emod in pairs:
        t_sd, e_sd = tmod.state_dict(), emod.state_dict()
        assert list(e_sd) == list(t_sd)
        assert [tuple(v.shape) for v in e_sd.values()] == [tuple(v.shape) for v in t_sd.values()]
    assert list(nn.TransformerEncoderLayer(D, HEADS, FF).state_dict()) == [
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
        "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
    ]  # fmt: skip


def test_dropout_is_active_in_training_only():
    layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.5).double()
    x = ember.randn(L, N, D, dtype=ember.float64)
    layer.eval()
    a, b = layer(x), layer(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    layer.train()
    ember.manual_seed(0)
    c = layer(x)
    assert not np.allclose(c.detach().numpy(), a.detach().numpy())


# ----------------------------------------------------------------- numerical gradients
def test_encoder_layer_gradcheck():
    layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, norm_first=True).double()
    x = ember.tensor(RNG.standard_normal((3, 1, 4)), requires_grad=True)
    mask = ember.tensor([[False, True, True], [False, False, True], [False, False, False]])
    assert gradcheck(lambda x: layer(x, src_mask=mask), (x,))


def test_decoder_layer_gradcheck():
    layer = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, activation="gelu").double()
    tgt = ember.tensor(RNG.standard_normal((2, 1, 4)), requires_grad=True)
    memory = ember.tensor(RNG.standard_normal((3, 1, 4)), requires_grad=True)
    assert gradcheck(lambda t, m: layer(t, m), (tgt, memory))


# ----------------------------------------------------------------- copies, init, errors
def test_stack_layers_are_independent_copies():
    layer = nn.TransformerEncoderLayer(D, HEADS, FF, activation=nn.GELU())
    enc = nn.TransformerEncoder(layer, 3)
    params = [p for m in enc.layers for p in m.parameters()]
    assert len({id(p) for p in params}) == len(params) == 3 * len(list(layer.parameters()))
    for copy in enc.layers:
        for (name, p), q in zip(copy.named_parameters(), layer.parameters()):
            assert p is not q
            np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=name)
        assert isinstance(copy.activation, nn.GELU) and copy.activation is not layer.activation
    with ember.no_grad():
        enc.layers[0].linear1.weight.fill_(0.0)
    assert enc.layers[1].linear1.weight.detach().numpy().any()
    assert layer.linear1.weight.detach().numpy().any()


def test_clone_module_keeps_sharing_buffers_and_flags():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    model.register_buffer("steps", ember.zeros(1))
    model.eval()
    model[0].weight.requires_grad_(False)
    twin = clone_module(model)
    assert twin[0] is twin[2] and twin[0] is not shared
    assert not twin.training and not twin[0].weight.requires_grad
    assert twin.steps is not model.steps and list(twin.state_dict()) == list(model.state_dict())
    calls = []
    model.register_forward_hook(lambda m, a, o: calls.append(m))
    twin = clone_module(model)
    twin(ember.ones(1, 2))
    assert calls == [twin]  # the hook came along


def test_transformer_init_is_xavier_for_matrices():
    ember.manual_seed(0)
    model = nn.Transformer(16, 2, 1, 1, 32)
    w = model.encoder.layers[0].linear1.weight.detach().numpy()
    bound = math.sqrt(6 / (16 + 32))
    assert np.all(np.abs(w) <= bound) and w.std() == pytest.approx(bound / math.sqrt(3), rel=0.15)
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    assert mask.tolist() == [[0.0, -math.inf, -math.inf], [0.0, 0.0, -math.inf], [0.0] * 3]


def test_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(D, HEADS, activation="tanh")
    with pytest.raises(TypeError, match="expects a Module to copy"):
        nn.TransformerEncoder("layer", 2)
    model = nn.Transformer(D, HEADS, 1, 1, FF)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        model(ember.randn(S, N, D), ember.randn(L, N + 1, D))
    with pytest.raises(RuntimeError, match="feature number of src and tgt"):
        model(ember.randn(S, N, D), ember.randn(L, N, D + 1))
