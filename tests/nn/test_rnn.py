"""RNN, LSTM, GRU and their cells: against PyTorch (outputs, every gradient, float64,
state dict keys), float64 central differences, default init, dropout, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import ember
from ember import nn
from ember.testing import gradcheck

RNG = np.random.default_rng(0)
TOL = 1e-10
T, B, I, H = 4, 3, 3, 4  # sequence, batch, input and hidden sizes: tiny on purpose


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _flat(x):
    """The tensors of a nested output, in order (None entries kept as None)."""
    if isinstance(x, (tuple, list)):
        return [t for item in x for t in _flat(item)]
    return [x]


def _to_ember(x):
    if x is None:
        return None
    if isinstance(x, (tuple, list)):
        return type(x)(_to_ember(t) for t in x)
    t = ember.tensor(x.detach().numpy().copy())
    return t.requires_grad_() if x.requires_grad else t


def parity(torch, emod, tmod, args, tol=TOL):
    """Load ``tmod``'s weights into ``emod``; compare outputs, input and parameter grads.

    ``args`` are torch tensors (or tuples of them, or None) for ``forward``.
    """
    assert list(emod.state_dict()) == list(tmod.state_dict())
    emod.load_state_dict({k: ember.tensor(v.numpy()) for k, v in tmod.state_dict().items()})
    e_args = [_to_ember(a) for a in args]
    t_out, e_out = _flat(tmod(*args)), _flat(emod(*e_args))
    assert len(t_out) == len(e_out)
    t_loss, e_loss = 0, 0
    for t, e in zip(t_out, e_out):
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)
        cot = RNG.standard_normal(tuple(t.shape))
        t_loss = t_loss + (t * torch.tensor(cot, dtype=t.dtype)).sum()
        e_loss = e_loss + (e * ember.tensor(cot, dtype=e.dtype)).sum()
    t_loss.backward()
    e_loss.backward()
    for t, e in zip(_flat(args), _flat(e_args)):
        if t is not None and t.requires_grad:
            np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)
    t_params = dict(tmod.named_parameters())
    for name, p in emod.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        np.testing.assert_allclose(
            p.grad.numpy(), t_params[name].grad.numpy(), rtol=tol, atol=tol, err_msg=name
        )


def randn(torch, *shape, grad=True):
    return torch.tensor(RNG.standard_normal(shape), requires_grad=grad)


MODES = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu"}),
    ("LSTM", {}),
    ("LSTM", {"proj_size": 2}),
    ("GRU", {}),
]


def _hidden(torch, name, kw, layers, dirs, batch):
    """An initial state for the module, with ``batch`` None for unbatched input."""
    lead = (layers * dirs,) if batch is None else (layers * dirs, batch)
    h_size = kw.get("proj_size") or H
    h = randn(torch, *lead, h_size)
    return (h, randn(torch, *lead, H)) if name == "LSTM" else h


@pytest.mark.parametrize("name, kw", MODES, ids=lambda v: str(v))
@pytest.mark.parametrize(
    "layers, bidirectional, batch_first, with_hx",
    list(itertools.product([1, 2], [False, True], [False, True], [False, True])),
)
def test_recurrent_matches_torch(torch, name, kw, layers, bidirectional, batch_first, with_hx):
    opts = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, **kw)
    tmod = getattr(torch.nn, name)(I, H, **opts).double()
    emod = getattr(nn, name)(I, H, **opts).double()
    x = randn(torch, B, T, I) if batch_first else randn(torch, T, B, I)
    dirs = 2 if bidirectional else 1
    hx = _hidden(torch, name, kw, layers, dirs, B) if with_hx else None
    parity(torch, emod, tmod, [x, hx])


@pytest.mark.parametrize("name, kw", MODES, ids=lambda v: str(v))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_eval_mode_no_bias_and_unbatched_match_torch(torch, name, kw, bidirectional):
    opts = dict(num_layers=2, bidirectional=bidirectional, **kw)
    tmod = getattr(torch.nn, name)(I, H, bias=False, **opts).double().eval()
    emod = getattr(nn, name)(I, H, bias=False, **opts).double().eval()
    parity(torch, emod, tmod, [randn(torch, T, B, I)])
    tmod, emod = tmod.train(), emod.train()
    dirs = 2 if bidirectional else 1
    parity(torch, emod, tmod, [randn(torch, T, I), _hidden(torch, name, kw, 2, dirs, None)])
    parity(torch, emod, tmod, [randn(torch, T, I)])


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_dropout_between_layers(torch, name):
    # p=1 drops the whole first-layer output: deterministic, so comparable with torch.
    tmod = getattr(torch.nn, name)(I, H, num_layers=3, dropout=1.0).double()
    emod = getattr(nn, name)(I, H, num_layers=3, dropout=1.0).double()
    parity(torch, emod, tmod, [randn(torch, T, B, I)])
    # In eval mode dropout is off again; in training at p=0.5 it changes the output.
    emod.dropout = 0.5
    x = ember.randn(T, B, I, dtype=ember.float64)
    out_eval = emod.eval()(x)[0]
    tmod.dropout = 0.5
    t_eval = tmod.eval()(torch.tensor(x.numpy()))[0]
    np.testing.assert_allclose(out_eval.detach().numpy(), t_eval.detach().numpy(), atol=TOL)
    ember.manual_seed(0)
    out_train = emod.train()(x)[0]
    assert not np.allclose(out_train.detach().numpy(), out_eval.detach().numpy())


CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}), ("GRUCell", {})]


@pytest.mark.parametrize("name, kw", CELLS, ids=lambda v: str(v))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
def test_cells_match_torch(torch, name, kw, bias, batched, with_hx):
    tmod = getattr(torch.nn, name)(I, H, bias=bias, **kw).double()
    emod = getattr(nn, name)(I, H, bias=bias, **kw).double()
    lead = (B,) if batched else ()
    hx = None
    if with_hx:
        hx = randn(torch, *lead, H)
        if name == "LSTMCell":
            hx = (hx, randn(torch, *lead, H))
    parity(torch, emod, tmod, [randn(torch, *lead, I), hx])


def test_state_dict_keys_and_shapes_match_torch(torch):
    cases = [
        ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2)),
        ("GRU", dict(num_layers=3, bias=False)),
        ("RNN", dict(bidirectional=True)),
    ]
    for name, kw in cases:
        t_sd = getattr(torch.nn, name)(I, H, **kw).state_dict()
        e_sd = getattr(nn, name)(I, H, **kw).state_dict()
        assert list(e_sd) == list(t_sd)
        assert [tuple(v.shape) for v in e_sd.values()] == [tuple(v.shape) for v in t_sd.values()]
    assert list(nn.LSTM(I, H, bidirectional=True).state_dict()) == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
        "bias_hh_l0_reverse",
    ]  # fmt: skip


def test_float32_matches_torch(torch):
    tmod = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    emod = nn.LSTM(I, H, num_layers=2, bidirectional=True)
    x = torch.tensor(RNG.standard_normal((T, B, I)), dtype=torch.float32, requires_grad=True)
    parity(torch, emod, tmod, [x], tol=1e-5)


# ----------------------------------------------------------------- numerical gradients
def _call_with(module, params, *args):
    """Run ``module`` with its parameters replaced by ``params`` (name -> tensor)."""
    saved = dict(module._parameters)
    module._parameters.update(params)
    try:
        return module(*args)
    finally:
        module._parameters.update(saved)


def _float64_leaves(*shapes):
    return [ember.tensor(RNG.standard_normal(s) * 0.7, requires_grad=True) for s in shapes]


@pytest.mark.parametrize("name, kw", CELLS, ids=lambda v: str(v))
def test_cell_gradcheck(name, kw):
    cell = getattr(nn, name)(2, 3, **kw).double()
    names = [n for n, _ in cell.named_parameters()]
    x, h, c = _float64_leaves((2, 2), (2, 3), (2, 3))
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    if name == "RNNCell" and kw:  # relu: keep pre-activations away from the kink at 0
        x = ember.tensor(np.abs(x.detach().numpy()) + 0.5, requires_grad=True)

    def fn(x, h, c, *ps):
        hx = (h, c) if name == "LSTMCell" else h
        return _call_with(cell, dict(zip(names, ps)), x, hx)

    assert gradcheck(fn, (x, h, c, *params))


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_module_gradcheck_inputs_states_and_weights(name):
    mod = getattr(nn, name)(2, 2, num_layers=2, bidirectional=True).double()
    names = [n for n, _ in mod.named_parameters()]
    x, h, c = _float64_leaves((2, 1, 2), (4, 1, 2), (4, 1, 2))
    params = [p.detach().clone().requires_grad_() for p in mod.parameters()]

    def fn(x, h, c, *ps):
        hx = (h, c) if name == "LSTM" else h
        return _call_with(mod, dict(zip(names, ps)), x, hx)

    assert gradcheck(fn, (x, h, c, *params))


# ----------------------------------------------------------------- init, shapes, repr
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_default_init_is_uniform_in_one_over_sqrt_hidden(name):
    ember.manual_seed(0)
    mod = getattr(nn, name)(5, 16)
    bound = 1 / math.sqrt(16)
    values = np.concatenate([p.detach().numpy().ravel() for p in mod.parameters()])
    assert np.all(np.abs(values) <= bound)
    assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)  # U(-b, b)


def test_output_shapes_and_hidden_layout():
    lstm = nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True)
    out, (h, c) = lstm(ember.randn(B, T, I))
    assert out.shape == (B, T, 2 * H) and h.shape == (4, B, H) and c.shape == (4, B, H)
    # h_n holds the last step of the forward direction and the first of the reverse one.
    np.testing.assert_allclose(h[2].detach().numpy(), out[:, -1, :H].detach().numpy())
    np.testing.assert_allclose(h[3].detach().numpy(), out[:, 0, H:].detach().numpy())
    proj = nn.LSTM(I, H, proj_size=2)
    out, (h, c) = proj(ember.randn(T, B, I))
    assert out.shape == (T, B, 2) and h.shape == (1, B, 2) and c.shape == (1, B, H)


def test_repr_matches_torch_style():
    assert repr(nn.LSTM(3, 4, num_layers=2, batch_first=True)) == (
        "LSTM(3, 4, num_layers=2, batch_first=True)"
    )
    assert repr(nn.RNN(3, 4, nonlinearity="relu")) == "RNN(3, 4, nonlinearity='relu')"
    assert repr(nn.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"
    assert len(nn.GRU(3, 4, num_layers=2, bidirectional=True).all_weights) == 4


# ----------------------------------------------------------------- errors
def test_errors_name_the_problem():
    lstm = nn.LSTM(I, H)
    with pytest.raises(RuntimeError, match="input_size. Expected 3, got 5"):
        lstm(ember.randn(T, B, 5))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 3, 4\), got"):
        lstm(ember.randn(T, B, I), (ember.zeros(1, 2, H), ember.zeros(1, B, H)))
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
        lstm(ember.randn(T, B, I), ember.zeros(1, B, H))
    with pytest.raises(ValueError, match="2-D \\(unbatched\\) or 3-D"):
        lstm(ember.randn(T))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(2, 3, 4\)"):
        nn.GRU(I, H, num_layers=2)(ember.randn(T, B, I), ember.zeros(1, B, H))
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        nn.GRU(I, H, dropout=1.5)
    with pytest.raises(ValueError, match="proj_size has to be smaller"):
        nn.LSTM(I, H, proj_size=H)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        nn.RNNBase("GRU", I, H, proj_size=1)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(I, H, dropout=0.5)
    with pytest.raises(RuntimeError, match="inconsistent input_size"):
        nn.LSTMCell(I, H)(ember.randn(B, I + 1))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        nn.GRUCell(I, H)(ember.randn(B, I), ember.zeros(B + 1, H))
