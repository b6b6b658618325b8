"""Learning-rate schedulers: the same lr (and momentum) sequences as torch.optim.lr_scheduler,
state-dict round trips and input errors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import ember
import ember.optim as optim
from ember.optim import lr_scheduler as S

Factory = Callable[[Any, Any], Any]  # (lr_scheduler module, optimizer) -> scheduler

LRS = (0.1, 0.05)  # two parameter groups


def ember_opt(kind: str = "SGD") -> optim.Optimizer:
    groups = [{"params": [ember.zeros(2, requires_grad=True)], "lr": lr} for lr in LRS]
    if kind == "SGD":
        return optim.SGD(groups, lr=LRS[0], momentum=0.9)
    return getattr(optim, kind)(groups, lr=LRS[0])


def torch_opt(kind: str = "SGD") -> Any:
    torch = pytest.importorskip("torch")
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in LRS]
    if kind == "SGD":
        return torch.optim.SGD(groups, lr=LRS[0], momentum=0.9)
    return getattr(torch.optim, kind)(groups, lr=LRS[0])


def snapshot(opt: Any, sched: Any) -> list[float]:
    values = [float(v) for v in sched.get_last_lr()]
    for g in opt.param_groups:
        values.append(float(g["lr"]))
        if "momentum" in g:
            values.append(float(g["momentum"]))
        if "betas" in g:
            values.extend(float(b) for b in g["betas"])
    return values


def sequences(
    factory: Factory, steps: int, kind: str = "SGD", metrics: list[float] | None = None
) -> tuple[list[list[float]], list[list[float]]]:
    """Run the same schedule in ember and torch; return each side's per-step snapshot."""
    torch = pytest.importorskip("torch")
    out = []
    for opt, module in ((ember_opt(kind), S), (torch_opt(kind), torch.optim.lr_scheduler)):
        sched = factory(module, opt)
        seq = []
        for i in range(steps):
            seq.append(snapshot(opt, sched))
            opt.step()
            if metrics is None:
                sched.step()
            else:
                sched.step(metrics[i])
        seq.append(snapshot(opt, sched))
        out.append(seq)
    return out[0], out[1]


def assert_same(ours: list[list[float]], theirs: list[list[float]]) -> None:
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=f"epoch {i}")


CASES: dict[str, Factory] = {
    "StepLR": lambda M, o: M.StepLR(o, step_size=3, gamma=0.5),
    "StepLR-1": lambda M, o: M.StepLR(o, step_size=1, gamma=0.9),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, T_max=10),
    "CosineAnnealingLR-eta": lambda M, o: M.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
    "LinearLR": lambda M, o: M.LinearLR(o),
    "LinearLR-custom": lambda M, o: M.LinearLR(
        o, start_factor=0.25, end_factor=0.75, total_iters=8
    ),
    "LinearLR-to-zero": lambda M, o: M.LinearLR(
        o, start_factor=1.0, end_factor=0.0, total_iters=10
    ),
    "LambdaLR": lambda M, o: M.LambdaLR(o, lambda e: 0.95**e),
    "LambdaLR-per-group": lambda M, o: M.LambdaLR(
        o, [lambda e: 1.0 / (1 + e), lambda e: min(1.0, (e + 1) / 5)]
    ),
    "SequentialLR": lambda M, o: M.SequentialLR(
        o,
        [M.LinearLR(o, start_factor=0.1, total_iters=5), M.CosineAnnealingLR(o, T_max=20)],
        milestones=[5],
    ),
    "SequentialLR-3": lambda M, o: M.SequentialLR(
        o,
        [
            M.ExponentialLR(o, gamma=0.9),
            M.StepLR(o, step_size=2, gamma=0.5),
            M.LambdaLR(o, lambda e: 1.0 / (e + 1)),
        ],
        milestones=[4, 10],
    ),
    "SequentialLR-nested": lambda M, o: M.SequentialLR(
        o,
        [
            M.SequentialLR(
                o,
                [M.LinearLR(o, start_factor=0.5, total_iters=3), M.ExponentialLR(o, gamma=0.8)],
                milestones=[3],
            ),
            M.MultiStepLR(o, milestones=[2, 4]),
        ],
        milestones=[8],
    ),
}


@pytest.mark.torch
# torch's nested SequentialLR warns about the step order though it is right
@pytest.mark.filterwarnings("ignore:Detected call of")
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case: str) -> None:
    assert_same(*sequences(CASES[case], 60))


class _Both:
    """Two schedulers on one optimizer, stepped together (their factors compose)."""

    def __init__(self, a: Any, b: Any) -> None:
        self.a, self.b = a, b

    def step(self) -> None:
        self.a.step()
        self.b.step()

    def get_last_lr(self) -> list[float]:
        return list(self.b.get_last_lr())


@pytest.mark.torch
def test_chained_schedulers_match_torch() -> None:
    def factory(M: Any, o: Any) -> _Both:
        return _Both(M.StepLR(o, step_size=4, gamma=0.5), M.CosineAnnealingLR(o, T_max=9))

    assert_same(*sequences(factory, 40))


ONE_CYCLE = list(
    itertools.product(["cos", "linear"], [False, True], [False, True], ["SGD", "Adam"])
)


@pytest.mark.torch
@pytest.mark.parametrize(("anneal", "three_phase", "cycle_momentum", "kind"), ONE_CYCLE)
def test_one_cycle_matches_torch(
    anneal: str, three_phase: bool, cycle_momentum: bool, kind: str
) -> None:
    def factory(M: Any, o: Any) -> Any:
        return M.OneCycleLR(
            o,
            max_lr=[1.0, 0.5],
            total_steps=50,
            pct_start=0.25,
            anneal_strategy=anneal,
            three_phase=three_phase,
            cycle_momentum=cycle_momentum,
            base_momentum=[0.8, 0.85],
        )

    assert_same(*sequences(factory, 50, kind))


@pytest.mark.torch
def test_one_cycle_epochs_and_steps_per_epoch() -> None:
    assert_same(
        *sequences(lambda M, o: M.OneCycleLR(o, max_lr=0.3, epochs=4, steps_per_epoch=10), 40)
    )


def test_one_cycle_past_total_steps_raises() -> None:
    opt = ember_opt()
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="total_steps=3"):
        sched.step()


def plateau_metrics(n: int = 60) -> list[float]:
    rng = np.random.default_rng(0)
    base = 1.0 / (1.0 + 0.3 * np.arange(n))
    values = base + np.round(rng.normal(0, 0.05, n), 2)
    values[20:40] = np.round(values[20:40], 1)  # a plateau with exact repeats
    return [float(v) for v in values]


PLATEAU = list(
    itertools.product(["min", "max"], ["rel", "abs"], [0, 2], [0, 3], [0.0, [0.02, 0.0]])
)


@pytest.mark.torch
@pytest.mark.parametrize(("mode", "threshold_mode", "patience", "cooldown", "min_lr"), PLATEAU)
def test_reduce_on_plateau_matches_torch(
    mode: str, threshold_mode: str, patience: int, cooldown: int, min_lr: Any
) -> None:
    metrics = plateau_metrics()
    if mode == "max":
        metrics = [-m for m in metrics]
    threshold = 0.05 if threshold_mode == "rel" else 0.01

    def factory(M: Any, o: Any) -> Any:
        return M.ReduceLROnPlateau(
            o,
            mode=mode,
            factor=0.5,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            min_lr=min_lr,
        )

    ours, theirs = sequences(factory, len(metrics), metrics=metrics)
    assert_same(ours, theirs)
    assert ours[-1][0] < LRS[0]  # the schedule did reduce


@pytest.mark.torch
def test_reduce_on_plateau_eps_matches_torch() -> None:
    metrics = [1.0] * 40

    def factory(M: Any, o: Any) -> Any:
        return M.ReduceLROnPlateau(o, factor=0.5, patience=0, eps=0.01)

    ours, theirs = sequences(factory, 40, metrics=metrics)
    assert_same(ours, theirs)
    assert 0.01 < ours[-1][0] <= 0.02  # stops once a reduction would change lr by < eps


def test_reduce_on_plateau_accepts_a_tensor_metric() -> None:
    opt = ember_opt()
    sched = S.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    sched.step(ember.tensor(1.0))
    sched.step(ember.tensor(2.0))
    assert sched.get_last_lr() == [0.05, 0.025]


def test_reduce_on_plateau_follows_added_groups() -> None:
    opt = ember_opt()
    sched = S.ReduceLROnPlateau(opt, patience=0, factor=0.5, min_lr=0.04)
    opt.add_param_group({"params": [ember.zeros(1, requires_grad=True)], "lr": 1.0})
    sched.step(1.0)
    sched.step(2.0)
    assert sched.get_last_lr() == [0.05, 0.04, 0.5]
    per_group = S.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0, 0.0])
    opt.add_param_group({"params": [ember.zeros(1, requires_grad=True)]})
    per_group.step(1.0)
    with pytest.raises(RuntimeError, match="min_lrs"):
        per_group.step(2.0)


# ----------------------------------------------------------------- without torch
def test_cosine_closed_form() -> None:
    opt = ember_opt()
    sched = S.CosineAnnealingLR(opt, T_max=8, eta_min=0.001)
    for t in range(1, 30):
        opt.step()
        sched.step()
        for base, lr in zip(LRS, sched.get_last_lr()):
            expected = 0.001 + (base - 0.001) * (1 + math.cos(math.pi * t / 8)) / 2
            assert lr == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_step_and_multistep_closed_form() -> None:
    opt = ember_opt()
    step = S.StepLR(opt, step_size=3, gamma=0.5)
    lrs = [step.get_last_lr()[0]]
    for _ in range(7):
        step.step()
        lrs.append(step.get_last_lr()[0])
    assert lrs == pytest.approx([0.1 * 0.5 ** (e // 3) for e in range(8)])
    opt = ember_opt()
    multi = S.MultiStepLR(opt, milestones=[3, 1, 3], gamma=0.1)
    lrs = [multi.get_last_lr()[1]]
    for _ in range(4):
        multi.step()
        lrs.append(multi.get_last_lr()[1])
    assert lrs == pytest.approx([0.05, 0.005, 0.005, 0.00005, 0.00005])


def test_one_cycle_shape() -> None:
    opt = ember_opt()
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=100, pct_start=0.3, base_momentum=0.8)
    lrs, moms = [], []
    for _ in range(100):
        lrs.append(sched.get_last_lr()[0])
        moms.append(opt.param_groups[0]["momentum"])
        sched.step()
    peak = int(np.argmax(lrs))
    assert lrs[0] == pytest.approx(1.0 / 25)
    assert peak == 29 and lrs[peak] == pytest.approx(1.0)
    assert moms[0] == pytest.approx(0.95) and moms[peak] == pytest.approx(0.8)
    assert lrs[-1] < lrs[0] / 1000 < lrs[0]


def test_one_cycle_cycles_adam_beta1() -> None:
    opt = ember_opt("Adam")
    S.OneCycleLR(opt, max_lr=0.1, total_steps=10, max_momentum=0.9)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert opt.param_groups[0]["max_lr"] == 0.1


# ----------------------------------------------------------------- state dicts
STATEFUL: dict[str, Factory] = {
    "StepLR": CASES["StepLR"],
    "CosineAnnealingLR": CASES["CosineAnnealingLR-eta"],
    "LinearLR": CASES["LinearLR-custom"],
    "LambdaLR": CASES["LambdaLR"],
    "SequentialLR": CASES["SequentialLR"],
    "OneCycleLR": lambda M, o: M.OneCycleLR(o, max_lr=1.0, total_steps=30, three_phase=True),
}


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


@pytest.mark.parametrize("name", list(STATEFUL))
def test_state_dict_round_trip(name: str) -> None:
    factory = STATEFUL[name]
    opt = ember_opt()
    sched = factory(S, opt)
    for _ in range(7):
        opt.step()
        sched.step()
    sd, osd = sched.state_dict(), opt.state_dict()
    assert _plain(sd), sd
    opt2 = ember_opt()
    sched2 = factory(S, opt2)  # build the scheduler first: it writes the groups' lr
    sched2.load_state_dict(sd)
    opt2.load_state_dict(osd)
    for _ in range(15):
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert snapshot(opt2, sched2) == snapshot(opt, sched)


def test_plateau_state_dict_round_trip() -> None:
    metrics = plateau_metrics()
    opt = ember_opt()
    sched = S.ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1)
    for m in metrics[:30]:
        sched.step(m)
    sd, osd = sched.state_dict(), opt.state_dict()
    assert _plain(sd)
    opt2 = ember_opt()
    sched2 = S.ReduceLROnPlateau(opt2)
    sched2.load_state_dict(sd)
    opt2.load_state_dict(osd)
    for m in metrics[30:]:
        sched.step(m)
        sched2.step(m)
        assert sched2.get_last_lr() == sched.get_last_lr()


def test_resume_with_last_epoch() -> None:
    opt = ember_opt()
    sched = S.ExponentialLR(opt, gamma=0.5)
    for _ in range(3):
        sched.step()
    opt2 = ember_opt()
    opt2.load_state_dict(opt.state_dict())
    resumed = S.ExponentialLR(opt2, gamma=0.5, last_epoch=3)
    assert resumed.get_last_lr() == sched.get_last_lr()
    sched.step()
    resumed.step()
    assert resumed.get_last_lr() == sched.get_last_lr() == [0.1 / 16, 0.05 / 16]
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(ember_opt(), step_size=2, last_epoch=4)


# ----------------------------------------------------------------- errors
def test_errors() -> None:
    opt = ember_opt()
    with pytest.raises(TypeError, match="Optimizer"):
        S.StepLR(object(), step_size=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Optimizer"):
        S.ReduceLROnPlateau(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        S.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="start_factor"):
        S.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="end_factor"):
        S.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="lr_lambdas"):
        S.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="total_steps"):
        S.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="total_steps"):
        S.OneCycleLR(opt, max_lr=1.0, total_steps=0)
    with pytest.raises(ValueError, match="epochs"):
        S.OneCycleLR(opt, max_lr=1.0, epochs=0, steps_per_epoch=3)
    with pytest.raises(ValueError, match="pct_start"):
        S.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        S.OneCycleLR(opt, max_lr=1.0, total_steps=10, anneal_strategy="cosine")
    with pytest.raises(ValueError, match="2 values for max_lr"):
        S.OneCycleLR(opt, max_lr=[1.0], total_steps=10)
    adagrad = optim.Adagrad([ember.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="cycle_momentum"):
        S.OneCycleLR(adagrad, max_lr=1.0, total_steps=10)
    S.OneCycleLR(adagrad, max_lr=1.0, total_steps=10, cycle_momentum=False)
    with pytest.raises(ValueError, match="factor"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        S.ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(ValueError, match="threshold_mode"):
        S.ReduceLROnPlateau(opt, threshold_mode="relative")
    with pytest.raises(ValueError, match="min_lr"):
        S.ReduceLROnPlateau(opt, min_lr=[0.0])


def test_sequential_errors() -> None:
    opt, other = ember_opt(), ember_opt()
    a, b = S.StepLR(opt, step_size=2), S.ExponentialLR(opt, gamma=0.9)
    with pytest.raises(ValueError, match="at least one"):
        S.SequentialLR(opt, [], milestones=[])
    with pytest.raises(ValueError, match="one milestone fewer"):
        S.SequentialLR(opt, [a, b], milestones=[2, 4])
    with pytest.raises(ValueError, match="another optimizer"):
        S.SequentialLR(opt, [a, S.StepLR(other, step_size=2)], milestones=[2])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        S.SequentialLR(opt, [a, S.ReduceLROnPlateau(opt)], milestones=[2])
