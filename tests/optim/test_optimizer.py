"""The Optimizer base: parameter groups, input errors, zero_grad, closures, state dicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ember
import ember.optim as optim

ALL = {
    "SGD": (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    "Adam": (optim.Adam, {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    "AdamW": (optim.AdamW, {"lr": 0.05, "amsgrad": True}),
    "RMSprop": (optim.RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True}),
    "Adagrad": (optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    "Adadelta": (optim.Adadelta, {"lr": 0.5, "weight_decay": 0.1}),
}


def params() -> list[ember.Tensor]:
    rng = np.random.default_rng(0)
    return [ember.from_numpy(rng.standard_normal(s)).requires_grad_() for s in [(3, 2), (2,), ()]]


def loss(ps: list[ember.Tensor]) -> ember.Tensor:
    w, b, c = ps
    return ((w.sum(0) - b) ** 2).sum() + (c - 1) ** 2 + (w * w).sum() * (c * c) * 0.1


def train(opt: Any, ps: list[ember.Tensor], steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        loss(ps).backward()
        opt.step()


def two_groups(ps: list[ember.Tensor]) -> list[dict[str, Any]]:
    return [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02}]


# ----------------------------------------------------------------- construction
def test_param_groups_take_defaults_and_overrides() -> None:
    ps = params()
    opt = optim.SGD(two_groups(ps), lr=0.1, momentum=0.5)
    assert len(opt.param_groups) == 2
    assert opt.param_groups[0]["params"][0] is ps[0]
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.02
    assert opt.param_groups[1]["momentum"] == 0.5
    assert opt.defaults["lr"] == 0.1


def test_params_may_be_a_generator_or_tuple() -> None:
    ps = params()
    assert optim.Adam(p for p in ps).param_groups[0]["params"] == ps
    assert len(optim.Adam(tuple(ps)).param_groups[0]["params"]) == 3


def test_add_param_group() -> None:
    ps = params()
    opt = optim.Adam(ps[:2], lr=0.1)
    opt.add_param_group({"params": ps[2], "lr": 0.5})
    assert opt.param_groups[1]["params"] == [ps[2]]
    assert opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [ps[0]]})
    with pytest.raises(ValueError, match="learning rate"):
        opt.add_param_group({"params": [ember.zeros(1, requires_grad=True)], "lr": -1.0})
    with pytest.raises(TypeError, match="must be a dict"):
        opt.add_param_group([ember.zeros(1, requires_grad=True)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'params'"):
        opt.add_param_group({"lr": 0.1})
    assert len(opt.param_groups) == 2


@pytest.mark.parametrize("kind", [set, frozenset])
def test_a_set_of_params_is_rejected(kind: type) -> None:
    ps = params()
    with pytest.raises(TypeError, match="ordered collection"):
        optim.SGD(kind(ps), lr=0.1)
    with pytest.raises(TypeError, match="ordered collection"):
        optim.SGD([{"params": kind(ps)}], lr=0.1)
    opt = optim.SGD(ps[:1], lr=0.1)
    with pytest.raises(TypeError, match="ordered collection"):
        opt.add_param_group({"params": kind(ps[1:])})


def test_duplicate_params_are_rejected() -> None:
    ps = params()
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([ps[0], ps[1], ps[0]], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": ps[:2]}, {"params": ps[1:]}], lr=0.1)


def test_bad_params() -> None:
    ps = params()
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(ps[0], lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got a dict"):
        optim.SGD({"params": ps}, lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([ps[0], np.zeros(2)], lr=0.1)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([ps[0] * 2], lr=0.1)
    with pytest.raises(TypeError, match="must be a dict"):
        optim.SGD([{"params": ps[:1]}, ps[1]], lr=0.1)  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (optim.SGD, {"lr": -0.1}, "Invalid learning rate"),
        (optim.SGD, {"lr": 0.1, "momentum": -0.5}, "momentum"),
        (optim.SGD, {"lr": 0.1, "weight_decay": -1}, "weight_decay"),
        (optim.SGD, {"lr": 0.1, "nesterov": True}, "Nesterov"),
        (optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "Nesterov"),
        (optim.Adam, {"lr": -1e-3}, "Invalid learning rate"),
        (optim.Adam, {"betas": (1.0, 0.999)}, r"betas\[0\]"),
        (optim.Adam, {"betas": (0.9, -0.1)}, r"betas\[1\]"),
        (optim.Adam, {"betas": (0.9,)}, "pair"),
        (optim.Adam, {"eps": -1e-8}, "eps"),
        (optim.AdamW, {"weight_decay": -0.01}, "weight_decay"),
        (optim.AdamW, {"lr": float("nan")}, "learning rate"),
        (optim.RMSprop, {"alpha": -0.1}, "alpha"),
        (optim.RMSprop, {"momentum": -0.1}, "momentum"),
        (optim.RMSprop, {"eps": -1.0}, "eps"),
        (optim.Adagrad, {"lr_decay": -0.1}, "lr_decay"),
        (optim.Adagrad, {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
        (optim.Adadelta, {"rho": 1.5}, "rho"),
        (optim.Adadelta, {"lr": -1.0}, "Invalid learning rate"),
    ],
)
def test_bad_hyperparameters(cls: type, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(params(), **kwargs)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("SGD", {"lr": -0.1}),
        ("SGD", {"lr": 0.1, "nesterov": True}),
        ("Adam", {"betas": (1.0, 0.999)}),
        ("Adam", {"eps": -1e-8}),
        ("RMSprop", {"alpha": -0.1}),
        ("Adagrad", {"lr_decay": -0.1}),
        ("Adadelta", {"rho": 1.5}),
    ],
)
def test_bad_hyperparameters_are_bad_in_torch_too(name: str, kwargs: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError):
        getattr(optim, name)([ember.zeros(1, requires_grad=True)], **kwargs)


# ----------------------------------------------------------------- stepping
def test_zero_grad() -> None:
    ps = params()
    opt = optim.SGD(ps, lr=0.1)
    loss(ps).backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any().item() for p in ps)
    grad = ps[0].grad
    loss(ps).backward()
    assert ps[0].grad is grad  # zeroed in place, then accumulated into
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


def test_step_runs_without_recording_and_closure_runs_with_grad() -> None:
    ps = params()
    opt = optim.Adam(ps, lr=0.1)
    seen = []

    def closure() -> ember.Tensor:
        seen.append(ember.is_grad_enabled())
        opt.zero_grad()
        out = loss(ps)
        out.backward()
        return out

    with ember.no_grad():
        result = opt.step(closure)
    assert seen == [True]
    assert isinstance(result, ember.Tensor)
    assert all(p.is_leaf for p in ps)
    assert opt.step() is None


def test_lr_changes_between_steps_take_effect() -> None:
    p = ember.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = ember.tensor([1.0])
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    assert p.item() == pytest.approx(1.0 - 0.1 - 0.5)


def test_repr() -> None:
    text = repr(optim.SGD(two_groups(params()), lr=0.1))
    assert text.startswith("SGD (") and "Parameter Group 1" in text and "lr: 0.02" in text


# ----------------------------------------------------------------- state dicts
@pytest.mark.parametrize("name", list(ALL))
def test_state_dict_round_trip(name: str) -> None:
    cls, kwargs = ALL[name]
    ps = params()
    opt = cls(two_groups(ps), **kwargs)
    train(opt, ps, 10)
    sd = opt.state_dict()
    fresh = [ember.from_numpy(p.detach().numpy().copy()).requires_grad_() for p in ps]
    opt2 = cls(two_groups(fresh), lr=123.0)  # the loaded groups bring back the real lr
    opt2.load_state_dict(sd)
    train(opt, ps, 10)
    train(opt2, fresh, 10)
    for a, b in zip(ps, fresh):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert opt2.param_groups[1]["lr"] == opt.param_groups[1]["lr"]


def test_state_dict_layout() -> None:
    ps = params()
    opt = optim.Adam(two_groups(ps), lr=0.1, amsgrad=True)
    train(opt, ps, 3)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1, 2]]
    assert sd["param_groups"][1]["lr"] == 0.02
    assert set(sd["state"]) == {0, 1, 2}
    st = sd["state"][1]
    assert set(st) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert st["step"].item() == 3.0
    for v in st.values():
        assert isinstance(v, ember.Tensor)
    for g in sd["param_groups"]:
        for k, v in g.items():
            assert isinstance(v, (int, float, bool, tuple, list)), k


def test_loaded_state_is_a_copy() -> None:
    ps = params()
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    train(opt, ps, 2)
    sd = opt.state_dict()
    opt2 = optim.SGD(ps, lr=0.1, momentum=0.9)
    opt2.load_state_dict(sd)
    buf = opt.state[ps[0]]["momentum_buffer"]
    assert opt2.state[ps[0]]["momentum_buffer"] is not buf
    sd["param_groups"][0]["lr"] = 7.0
    assert opt2.param_groups[0]["lr"] == 0.1


def test_load_casts_state_to_the_param_dtype() -> None:
    p64 = ember.zeros(2, dtype=ember.float64, requires_grad=True)
    opt = optim.Adam([p64])
    p64.grad = ember.ones(2, dtype=ember.float64)
    opt.step()
    p32 = ember.zeros(2, requires_grad=True)
    opt32 = optim.Adam([p32])
    opt32.load_state_dict(opt.state_dict())
    assert opt32.state[p32]["exp_avg"].dtype == ember.float32
    assert opt32.state[p32]["step"].item() == 1.0
    sd = opt.state_dict()
    sd["state"][0]["step"] = 4  # a plain number (e.g. from a hand-made checkpoint) loads too
    opt32.load_state_dict(sd)
    p32.grad = ember.ones(2)
    opt32.step()
    assert opt32.state[p32]["step"].item() == 5.0


def test_load_state_dict_errors_leave_the_optimizer_unchanged() -> None:
    ps = params()
    opt = optim.Adam(two_groups(ps), lr=0.1)
    train(opt, ps, 1)
    sd = opt.state_dict()
    one_group = optim.Adam(ps, lr=0.1)
    with pytest.raises(ValueError, match="2 parameter groups, but this optimizer has 1"):
        one_group.load_state_dict(sd)
    other = optim.Adam([{"params": ps[:2]}, {"params": ps[2:]}], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 1 parameters, but this optimizer's group 0"):
        other.load_state_dict(sd)
    assert not other.state and other.param_groups[0]["lr"] == 0.1
    bad = {"state": {7: {}}, "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match="parameter 7"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"param_groups": []})


@pytest.mark.torch
@pytest.mark.parametrize("name", list(ALL))
def test_state_dict_loads_into_torch(name: str) -> None:
    """ember's state dict, its tensors converted, continues a torch optimizer identically."""
    torch = pytest.importorskip("torch")
    cls, kwargs = ALL[name]
    ps = params()
    opt = cls(two_groups(ps), **kwargs)
    train(opt, ps, 5)
    tps = [torch.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ps]
    topt = getattr(torch.optim, name)(
        [{"params": tps[:1]}, {"params": tps[1:], "lr": 0.02}], **kwargs, foreach=False
    )
    theirs = topt.state_dict()
    sd = opt.state_dict()
    assert set(sd["param_groups"][0]) <= set(theirs["param_groups"][0])
    state = {
        i: {k: torch.from_numpy(v.numpy().copy()) for k, v in s.items()}
        for i, s in sd["state"].items()
    }
    groups = [{**tg, **g} for tg, g in zip(theirs["param_groups"], sd["param_groups"])]
    topt.load_state_dict({"state": state, "param_groups": groups})
    train(opt, ps, 5)
    for _ in range(5):
        topt.zero_grad()
        loss(tps).backward()  # type: ignore[arg-type]
        topt.step()
    for a, b in zip(ps, tps):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10)
    theirs = topt.state_dict()
    assert {i: set(s) for i, s in opt.state_dict()["state"].items()} == {
        i: set(s) for i, s in theirs["state"].items()
    }


@pytest.mark.torch
def test_torch_state_dict_loads_into_ember() -> None:
    torch = pytest.importorskip("torch")
    ps = params()
    tps = [torch.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ps]
    topt = torch.optim.Adam(tps, lr=0.05, amsgrad=True, foreach=False)
    for _ in range(4):
        topt.zero_grad()
        loss(tps).backward()  # type: ignore[arg-type]
        topt.step()
    tsd = topt.state_dict()
    sd = {
        "state": {
            i: {k: ember.from_numpy(v.numpy().copy()) for k, v in s.items()}
            for i, s in tsd["state"].items()
        },
        "param_groups": tsd["param_groups"],
    }
    mine = [ember.from_numpy(p.detach().numpy().copy()).requires_grad_() for p in tps]
    opt = optim.Adam(mine)
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[0]["amsgrad"]
    train(opt, mine, 5)
    for _ in range(5):
        topt.zero_grad()
        loss(tps).backward()  # type: ignore[arg-type]
        topt.step()
    for a, b in zip(mine, tps):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10)
