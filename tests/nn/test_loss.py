"""Losses: modules and functions against PyTorch (values and every gradient, float64),
float64 central differences, PyTorch's weighting rules, and error messages."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn
from ember.testing import gradcheck, gradgradcheck

RNG = np.random.default_rng(0)
TOL = 1e-10


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _close(e, t, tol=TOL):
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


def parity(torch, efn, tfn, args, kwargs=None, grad=None):
    """Run ``efn`` and ``tfn`` on the same float64 data; compare outputs and the
    gradients of every float argument listed in ``grad`` (all floats by default)."""
    kwargs = kwargs or {}
    grad = [i for i, a in enumerate(args) if a.dtype.kind == "f"] if grad is None else grad
    e_args = [ember.tensor(a, requires_grad=i in grad) for i, a in enumerate(args)]
    t_args = [torch.tensor(a, requires_grad=i in grad) for i, a in enumerate(args)]
    e_kw = {k: ember.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    t_kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    eo = efn(*e_args, **e_kw)
    with warnings.catch_warnings():  # torch's kl_div warns about reduction='mean'
        warnings.simplefilter("ignore")
        to = tfn(*t_args, **t_kw)
    _close(eo, to)
    cot = RNG.standard_normal(to.shape)
    eo.backward(ember.tensor(cot))
    to.backward(torch.tensor(cot))
    for i in grad:
        assert e_args[i].grad is not None, f"no gradient for argument {i}"
        _close(e_args[i].grad, t_args[i].grad)
    return eo


def rand(*shape, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, shape)


def probs(*shape):
    return RNG.uniform(0.05, 0.95, shape)


REDUCTIONS = ["none", "mean", "sum"]


# ----------------------------------------------------------------- regression losses
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("mse_loss", {}),
        ("l1_loss", {}),
        ("smooth_l1_loss", {}),
        ("smooth_l1_loss", {"beta": 0.5}),
        ("smooth_l1_loss", {"beta": 0.0}),
        ("huber_loss", {}),
        ("huber_loss", {"delta": 0.3}),
    ],
)
def test_regression_losses_match_torch(torch, name, kwargs, reduction):
    x, y = rand(4, 3), rand(4, 3)
    efn, tfn = getattr(F, name), getattr(torch.nn.functional, name)
    parity(torch, efn, tfn, [x, y], {"reduction": reduction, **kwargs})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_weighted_regression_losses_match_torch(torch, name, reduction):
    x, y, w = rand(3, 4), rand(3, 4), RNG.uniform(0.1, 2.0, (3, 4))
    efn, tfn = getattr(F, name), getattr(torch.nn.functional, name)
    parity(torch, efn, tfn, [x, y], {"reduction": reduction, "weight": w})


@pytest.mark.parametrize(
    "module, kwargs",
    [
        ("MSELoss", {}),
        ("L1Loss", {"reduction": "sum"}),
        ("SmoothL1Loss", {"beta": 0.7}),
        ("HuberLoss", {"delta": 0.5, "reduction": "none"}),
    ],
)
def test_regression_modules_match_torch(torch, module, kwargs):
    parity(
        torch, getattr(nn, module)(**kwargs), getattr(torch.nn, module)(**kwargs),
        [rand(5, 2), rand(5, 2)],
    )  # fmt: skip


# ----------------------------------------------------------------- nll / cross entropy
CLASS_SHAPES = [(5,), (4, 5), (3, 5, 2), (2, 5, 2, 3)]  # (C), (N, C), (N, C, d1), (N, C, d1, d2)


def class_target(shape, ignore=None):
    tshape = () if len(shape) == 1 else (shape[0], *shape[2:])
    cdim = 0 if len(shape) == 1 else 1
    classes = [c for c in range(shape[cdim]) if c != ignore]
    t = RNG.choice(classes, tshape)
    if ignore is not None and t.size > 1:
        t.reshape(-1)[::3] = ignore  # some, never all, are ignored
    return t


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_nll_loss_matches_torch(torch, shape, reduction, weighted, ignore_index):
    logp = np.log(probs(*shape))
    kwargs = {"reduction": reduction, "ignore_index": ignore_index}
    if weighted:
        kwargs["weight"] = RNG.uniform(0.2, 3.0, shape[0 if len(shape) == 1 else 1])
    t = class_target(shape, ignore=ignore_index if ignore_index >= 0 else None)
    parity(torch, F.nll_loss, torch.nn.functional.nll_loss, [logp, t], kwargs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_class_indices_match_torch(
    torch, shape, reduction, weighted, label_smoothing
):
    x = rand(*shape, lo=-3, hi=3)
    kwargs = {"reduction": reduction, "label_smoothing": label_smoothing, "ignore_index": 2}
    if weighted:
        kwargs["weight"] = RNG.uniform(0.2, 3.0, shape[0 if len(shape) == 1 else 1])
    t = class_target(shape, ignore=2)
    parity(torch, F.cross_entropy, torch.nn.functional.cross_entropy, [x, t], kwargs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_class_probabilities_match_torch(
    torch, shape, reduction, weighted, label_smoothing
):
    cdim = 0 if len(shape) == 1 else 1
    x = rand(*shape, lo=-3, hi=3)
    p = probs(*shape)
    p = p / p.sum(axis=cdim, keepdims=True)
    kwargs = {"reduction": reduction, "label_smoothing": label_smoothing}
    if weighted:
        kwargs["weight"] = RNG.uniform(0.2, 3.0, shape[cdim])
    # Gradients flow to both the logits and the probability target.
    parity(torch, F.cross_entropy, torch.nn.functional.cross_entropy, [x, p], kwargs)


def test_cross_entropy_weighted_mean_is_normalized_by_target_weights():
    x = ember.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 2.0, 0.0]], dtype=ember.float64)
    t = ember.tensor([0, 2, -100])
    w = ember.tensor([2.0, 1.0, 0.5], dtype=ember.float64)
    per = F.cross_entropy(x, t, weight=w, reduction="none")
    assert per[2].item() == 0.0  # ignored
    mean = F.cross_entropy(x, t, weight=w)
    assert mean.item() == pytest.approx(per.sum().item() / (2.0 + 0.5))


def test_all_targets_ignored_gives_nan_like_torch(torch):
    x = ember.zeros(2, 3, dtype=ember.float64)
    t = ember.tensor([-100, -100])
    with np.errstate(invalid="ignore"):
        assert math.isnan(F.cross_entropy(x, t).item())
    assert F.cross_entropy(x, t, reduction="sum").item() == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"weight": np.array([1.0, 2.0, 0.5, 1.5])},
        {"ignore_index": 3, "reduction": "sum"},
        {"label_smoothing": 0.1, "weight": np.array([1.0, 2.0, 0.5, 1.5])},
    ],
)
def test_cross_entropy_and_nll_modules_match_torch(torch, kwargs):
    x = rand(6, 4)
    t = RNG.integers(0, 4, 6)
    mk = {k: ember.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    tk = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    parity(torch, nn.CrossEntropyLoss(**mk), torch.nn.CrossEntropyLoss(**tk), [x, t])
    mk.pop("label_smoothing", None)
    tk.pop("label_smoothing", None)
    parity(torch, nn.NLLLoss(**mk), torch.nn.NLLLoss(**tk), [np.log(probs(6, 4)), t])


def test_cross_entropy_weight_is_a_buffer():
    loss = nn.CrossEntropyLoss(weight=ember.ones(3))
    assert list(loss.state_dict()) == ["weight"]
    assert list(loss.parameters()) == []
    assert loss.double().weight.dtype == ember.float64


# ----------------------------------------------------------------- binary
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (3, 4), (4,)])
def test_binary_cross_entropy_matches_torch(torch, reduction, weight_shape):
    kwargs = {"reduction": reduction}
    if weight_shape:
        kwargs["weight"] = RNG.uniform(0.1, 2.0, weight_shape)
    parity(
        torch, F.binary_cross_entropy, torch.nn.functional.binary_cross_entropy,
        [probs(3, 4), probs(3, 4)], kwargs,
    )  # fmt: skip


def test_binary_cross_entropy_clamps_log_at_minus_100(torch):
    x = np.array([0.0, 1.0, 1e-50, 0.5])
    t = np.array([1.0, 0.0, 1.0, 1.0])
    e = F.binary_cross_entropy(ember.tensor(x), ember.tensor(t), reduction="none")
    ref = torch.nn.functional.binary_cross_entropy(
        torch.tensor(x), torch.tensor(t), reduction="none"
    )
    _close(e, ref)
    assert e.tolist()[:3] == [100.0, 100.0, 100.0]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("pos_weight", [False, True])
def test_binary_cross_entropy_with_logits_matches_torch(torch, reduction, weight, pos_weight):
    kwargs = {"reduction": reduction}
    if weight:
        kwargs["weight"] = RNG.uniform(0.1, 2.0, (3, 4))
    if pos_weight:
        kwargs["pos_weight"] = RNG.uniform(0.5, 3.0, (4,))
    x = rand(3, 4, lo=-4, hi=4)
    x[0, 0] = 0.0  # the gradient at exactly 0 is -sigmoid(0) * ..., not a subgradient
    parity(
        torch, F.binary_cross_entropy_with_logits,
        torch.nn.functional.binary_cross_entropy_with_logits, [x, probs(3, 4)], kwargs,
    )  # fmt: skip


def test_binary_cross_entropy_with_logits_is_stable_for_huge_logits(torch):
    x = np.array([-1000.0, -50.0, 50.0, 1000.0])
    t = np.array([1.0, 0.0, 1.0, 0.0])
    parity(
        torch, lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"),
        lambda a, b: torch.nn.functional.binary_cross_entropy_with_logits(a, b, reduction="none"),
        [x, t],
    )  # fmt: skip


def test_bce_modules_match_torch(torch):
    w, pw = RNG.uniform(0.1, 2, (2, 3)), RNG.uniform(0.5, 2, (3,))
    parity(
        torch, nn.BCELoss(weight=ember.tensor(w)), torch.nn.BCELoss(weight=torch.tensor(w)),
        [probs(2, 3), probs(2, 3)],
    )  # fmt: skip
    parity(
        torch,
        nn.BCEWithLogitsLoss(pos_weight=ember.tensor(pw), reduction="sum"),
        torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw), reduction="sum"),
        [rand(2, 3), probs(2, 3)],
    )
    m = nn.BCEWithLogitsLoss(weight=ember.ones(3), pos_weight=ember.ones(3))
    assert list(m.state_dict()) == ["weight", "pos_weight"]


# ----------------------------------------------------------------- kl, cosine embedding
@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(torch, reduction, log_target):
    x = np.log(probs(3, 5))
    t = np.log(probs(3, 5)) if log_target else probs(3, 5)
    if not log_target:
        t[0, 0] = 0.0  # 0 * log 0 = 0
    kw = {"reduction": reduction, "log_target": log_target}
    grad = [0, 1] if log_target else [0]  # d/dtarget at target == 0 is -inf in torch
    parity(torch, F.kl_div, torch.nn.functional.kl_div, [x, t], kw, grad=grad)
    parity(torch, nn.KLDivLoss(**kw), torch.nn.KLDivLoss(**kw), [x, t], grad=grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_cosine_embedding_loss_matches_torch(torch, reduction, margin):
    y = np.array([1, -1, 1, -1, -1])
    kw = {"margin": margin, "reduction": reduction}
    parity(
        torch, F.cosine_embedding_loss, torch.nn.functional.cosine_embedding_loss,
        [rand(5, 3), rand(5, 3), y], kw,
    )  # fmt: skip
    parity(
        torch, nn.CosineEmbeddingLoss(**kw), torch.nn.CosineEmbeddingLoss(**kw),
        [rand(5, 3), rand(5, 3), y],
    )  # fmt: skip
    # 1-D inputs with a 0-D target
    parity(
        torch, F.cosine_embedding_loss, torch.nn.functional.cosine_embedding_loss,
        [rand(4), rand(4), np.array(-1)], kw,
    )  # fmt: skip


# ----------------------------------------------------------------- central differences
def _t(a):
    return ember.tensor(a, requires_grad=True)


@pytest.mark.parametrize(
    "fn, args",
    [
        (lambda x, y: F.mse_loss(x, y), lambda: [_t(rand(3, 2)), _t(rand(3, 2))]),
        (lambda x, y: F.l1_loss(x, y, reduction="sum"), lambda: [_t(rand(3, 2)), _t(rand(3, 2))]),
        (lambda x, y: F.smooth_l1_loss(x, y, beta=0.5), lambda: [_t(rand(4)), _t(rand(4))]),
        (lambda x, y: F.huber_loss(x, y, delta=0.5), lambda: [_t(rand(4)), _t(rand(4))]),
        (
            lambda x: F.cross_entropy(x, ember.tensor([0, 2, 1]), label_smoothing=0.1),
            lambda: [_t(rand(3, 4))],
        ),
        (
            lambda x: F.cross_entropy(
                x, ember.tensor([[0, 1], [2, 3]]), weight=ember.tensor([1.0, 2.0, 3.0, 0.5])
            ),
            lambda: [_t(rand(2, 4, 2))],
        ),
        (lambda x, p: F.cross_entropy(x, p.softmax(1)), lambda: [_t(rand(3, 4)), _t(rand(3, 4))]),
        (lambda x: F.nll_loss(x, ember.tensor([1, 0])), lambda: [_t(rand(2, 3))]),
        (lambda x, y: F.binary_cross_entropy(x, y), lambda: [_t(probs(5)), _t(probs(5))]),
        (
            lambda x, y: F.binary_cross_entropy_with_logits(
                x, y, pos_weight=ember.tensor([2.0, 0.5])
            ),
            lambda: [_t(rand(3, 2)), _t(probs(3, 2))],
        ),
        (
            lambda x, y: F.kl_div(x, y, reduction="batchmean"),
            lambda: [_t(np.log(probs(2, 3))), _t(probs(2, 3))],
        ),
        (
            lambda a, b: F.cosine_embedding_loss(a, b, ember.tensor([1, -1, -1]), margin=-0.5),
            lambda: [_t(rand(3, 4)), _t(rand(3, 4))],
        ),
    ],
)
def test_losses_pass_gradcheck(fn, args):
    assert gradcheck(fn, args())


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "name",
    [
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "kl_div",
    ],
)
def test_shape_mismatch_names_both_shapes(name):
    x, y = ember.full((3, 1), 0.5), ember.full((3,), 0.5)
    msg = r"target shape \(3,\) does not match input shape \(3, 1\)"
    with pytest.raises(ValueError, match=msg):
        getattr(F, name)(x, y)


def test_bad_reduction_is_a_clear_value_error():
    x = ember.zeros(3)
    with pytest.raises(ValueError, match=r"mse_loss: reduction must be one of .*got 'avg'"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.CrossEntropyLoss(reduction="batchmean")
    with pytest.raises(ValueError, match="'batchmean'"):
        F.kl_div(x, x, reduction="meen")


def test_cross_entropy_target_errors():
    x = ember.zeros(4, 3)
    msg = r"target shape \(5,\) does not match input shape \(4, 3\)"
    with pytest.raises(ValueError, match=msg):
        F.cross_entropy(x, ember.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match=r"need the input's shape"):
        F.cross_entropy(x, ember.zeros(4, 2))
    with pytest.raises(TypeError, match="must be integers"):
        F.nll_loss(x, ember.zeros(4))
    with pytest.raises(IndexError, match="target 3 is out of bounds for 3 classes"):
        F.cross_entropy(x, ember.tensor([0, 3, 1, 1]))
    with pytest.raises(ValueError, match=r"one entry per class \(3,\)"):
        F.cross_entropy(x, ember.tensor([0, 1, 1, 1]), weight=ember.ones(4))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, ember.tensor([0, 1, 1, 1]), label_smoothing=1.5)


def test_other_argument_errors():
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(ember.tensor([1.5]), ember.tensor([1.0]))
    with pytest.raises(ValueError, match=r"weight of shape \(2,\) must broadcast"):
        F.binary_cross_entropy(ember.full((3,), 0.5), ember.ones(3), weight=ember.ones(2))
    with pytest.raises(ValueError, match=r"weight shape \(2,\) must equal input shape \(3,\)"):
        F.mse_loss(ember.ones(3), ember.ones(3), weight=ember.ones(2))
    with pytest.raises(ValueError, match="1-D target needs two 2-D inputs"):
        F.cosine_embedding_loss(ember.ones(3), ember.ones(3), ember.ones(3))


def test_legacy_size_average_and_reduce_warn_and_map_to_reduction():
    with pytest.warns(UserWarning, match="reduction='sum'"):
        loss = nn.MSELoss(size_average=False)
    assert loss.reduction == "sum"
    with pytest.warns(UserWarning, match="reduction='none'"):
        out = F.l1_loss(ember.ones(2), ember.zeros(2), reduce=False)
    assert out.tolist() == [1.0, 1.0]


def test_loss_reprs_match_torch():
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.MSELoss()) == "MSELoss()"


def test_losses_have_second_derivatives():
    x = ember.tensor(rand(3, 4), requires_grad=True)
    p = ember.tensor(probs(3, 4), requires_grad=True)
    t = ember.tensor([0, 3, 1])
    assert gradgradcheck(lambda x: F.cross_entropy(x, t, label_smoothing=0.1), (x,))
    assert gradgradcheck(F.binary_cross_entropy_with_logits, (x, p))
    assert gradgradcheck(lambda x, p: F.kl_div(x.log_softmax(1), p, reduction="batchmean"), (x, p))
