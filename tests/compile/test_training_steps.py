"""Whole training steps compiled: forward, backward(), clipping, optimizer.step() and
zero_grad() in one graph, with parameters, buffers and optimizer state written back.

Each compiled step must follow the eager trajectory (same seed, same data): float64 to
1e-10, float32 to a stated tolerance, over 50 steps.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ember
from ember import nn, optim

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, ROOT)

from benchmarks import train_steps  # noqa: E402

STEPS = 50


def _trajectory(
    build: Any, compiled: bool, steps: int = STEPS, seed: int = 0
) -> tuple[list[float], dict[str, np.ndarray]]:
    """Losses and final state (parameters and buffers) of ``steps`` training steps."""
    model, opt, step_fn = build()
    ember.manual_seed(seed)  # dropout masks: the same stream for both runs
    step = ember.compile(step_fn) if compiled else step_fn
    losses = [float(step().item()) for _ in range(steps)]
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    for i, s in opt.state_dict()["state"].items():
        for name, v in s.items():
            if isinstance(v, ember.Tensor):
                state[f"opt.{i}.{name}"] = v.numpy().copy()
    if compiled:
        assert step.traces <= 2, f"{step.traces} traces: the step should settle on one graph"
    return losses, state


def _compare(build: Any, rtol: float, atol: float, steps: int = STEPS) -> list[float]:
    eager_losses, eager_state = _trajectory(build, compiled=False, steps=steps)
    comp_losses, comp_state = _trajectory(build, compiled=True, steps=steps)
    np.testing.assert_allclose(comp_losses, eager_losses, rtol=rtol, atol=atol)
    assert comp_state.keys() == eager_state.keys()
    for k in eager_state:
        np.testing.assert_allclose(comp_state[k], eager_state[k], rtol=rtol, atol=atol, err_msg=k)
    return eager_losses


def _workload(name: str, dtype: Any, train: bool = True) -> Any:
    def build() -> Any:
        ts = train_steps.TrainStep("ember", name, tiny=True)
        model = ts.model.to(dtype)
        model.train(train)
        x, y = ts.x.to(dtype), ts.y if ts.y.dtype == ember.int64 else ts.y.to(dtype)
        opt = ts.optimizer

        def step() -> ember.Tensor:
            loss = ts.loss_fn(ts.predict(model(x)), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        return model, opt, step

    return build


@pytest.mark.parametrize("name", list(train_steps.WORKLOADS))
def test_example_models_follow_the_eager_trajectory_float64(name: str) -> None:
    losses = _compare(_workload(name, ember.float64), rtol=1e-10, atol=1e-12)
    assert losses[-1] < losses[0]  # and they train


@pytest.mark.parametrize("name", ["mlp_b32", "cnn_digits", "lstm", "transformer"])
def test_example_models_follow_the_eager_trajectory_float32(name: str) -> None:
    # Same ops in the same order: float32 agrees to rounding (the fused kernels of the
    # optimizing passes may round differently).
    _compare(_workload(name, ember.float32), rtol=2e-5, atol=1e-6)


def _mlp_with(opt_factory: Any, dropout: float = 0.0, clip: float | None = None) -> Any:
    def build() -> Any:
        ember.manual_seed(3)
        model = nn.Sequential(
            nn.Linear(6, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 3)
        ).double()
        opt = opt_factory(model.parameters())
        x = ember.randn(12, 6, dtype=ember.float64)
        y = ember.randint(0, 3, (12,))

        def step() -> ember.Tensor:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            return loss

        return model, opt, step

    return build


OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "sgd_momentum_nesterov_wd": lambda p: optim.SGD(
        p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3
    ),
    "adam": lambda p: optim.Adam(p, lr=0.01),
    "adam_amsgrad": lambda p: optim.Adam(p, lr=0.01, amsgrad=True, weight_decay=1e-2),
    "adamw": lambda p: optim.AdamW(p, lr=0.01),
    "rmsprop_centered_momentum": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1, lr_decay=1e-3),
    "adadelta": lambda p: optim.Adadelta(p, lr=1.0),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_compiles_to_the_eager_trajectory(name: str) -> None:
    _compare(_mlp_with(OPTIMIZERS[name]), rtol=1e-10, atol=1e-12)


def test_dropout_masks_follow_the_generator_and_clipping_compiles() -> None:
    # The masks are graph nodes drawn on every run, in eager order, from the same generator.
    _compare(_mlp_with(OPTIMIZERS["adam"], dropout=0.3, clip=0.5), rtol=1e-10, atol=1e-12)


def test_batchnorm_running_statistics_are_written_back() -> None:
    def build() -> Any:
        ember.manual_seed(5)
        model = nn.Sequential(
            nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2)
        ).double()
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x = ember.randn(5, 2, 6, 6, dtype=ember.float64)
        y = ember.randn(5, 2, dtype=ember.float64)

        def step() -> ember.Tensor:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        return model, opt, step

    _compare(build, rtol=1e-10, atol=1e-12, steps=20)
    model, _, step_fn = build()
    step = ember.compile(step_fn)
    for _ in range(3):
        step()
    bn = model[1]
    assert int(bn.num_batches_tracked.item()) == 3
    assert not np.allclose(bn.running_mean.numpy(), 0.0)


def test_learning_rate_is_read_on_every_call_and_other_hyperparameters_retrace() -> None:
    w = ember.tensor([1.0, -2.0], dtype=ember.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    @ember.compile
    def step() -> ember.Tensor:
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        opt.step()
        return loss

    want = np.array([1.0, -2.0])
    for lr in (0.1, 0.05, 0.025, 0.0125):  # a scheduler: no retrace
        step()
        sched.step()
        want = want - lr * 2 * want
        np.testing.assert_allclose(w.detach().numpy(), want, rtol=1e-15)
    assert step.traces == 1
    opt.param_groups[0]["momentum"] = 0.5  # baked into the graph: traces again
    step()
    assert step.traces == 2


def test_tensors_made_and_initialized_inside_are_fresh_on_every_call() -> None:
    def f(x: ember.Tensor) -> ember.Tensor:
        layer = nn.Linear(3, 2).double()  # a new random layer on every call, eager or not
        acc = ember.zeros(4, 2, dtype=ember.float64)
        acc += layer(x)
        return acc

    x = ember.ones(4, 3, dtype=ember.float64)
    ember.manual_seed(11)
    want = [f(x).detach().numpy() for _ in range(4)]
    ember.manual_seed(11)
    cf = ember.compile(f)
    got = [cf(x).detach().numpy() for _ in range(4)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    assert not np.allclose(want[0], want[1])


def test_compiled_module_guards_on_training_mode() -> None:
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).double()
    x = ember.randn(3, 4, dtype=ember.float64)
    cm = ember.compile(model)
    model.eval()
    np.testing.assert_allclose(cm(x).numpy(), model(x).detach().numpy(), rtol=1e-12)
    model.train()
    ember.manual_seed(7)
    want = model(x).detach().numpy()
    ember.manual_seed(7)
    np.testing.assert_allclose(cm(x).numpy(), want, rtol=1e-12)
    assert cm.traces == 2


def test_a_failed_trace_leaves_model_grads_and_optimizer_state_as_they_were() -> None:
    ember.manual_seed(0)
    model = nn.Linear(3, 2).double()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = ember.randn(4, 3, dtype=ember.float64)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    @ember.compile
    def step() -> ember.Tensor:
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()  # makes the momentum buffers from traced gradients
        if loss > 1.0:  # value-dependent Python: the trace fails here
            pass
        return loss

    with pytest.raises(ember.TracerError, match="bool"):
        step()
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    assert all(p.grad is None for p in model.parameters())
    assert all("momentum_buffer" not in s for s in opt.state.values())
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()  # eager training carries on from a clean optimizer
    assert all(isinstance(s["momentum_buffer"]._data, np.ndarray) for s in opt.state.values())


def test_a_compiled_module_reads_the_module_attributes_live() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    cm = ember.compile(model)
    cm.eval()  # acts on the model, as torch.compile's wrapper does
    assert not model.training and not cm.training
    assert [p is q for p, q in zip(cm.parameters(), model.parameters())] == [True, True]
    cm.train()
    assert model.training and cm.training
    with pytest.raises(AttributeError):
        cm.no_such_attribute  # noqa: B018


def test_parameters_sharing_one_gradient_value_are_clipped_independently() -> None:
    # add's gradient rule hands the same value to both biases (an LSTM's b_ih and b_hh):
    # each .grad is still its own tensor, so scaling one in place leaves the other alone.
    def build() -> Any:
        a = ember.tensor([1.0, 2.0], dtype=ember.float64, requires_grad=True)
        b = ember.tensor([0.5, -1.0], dtype=ember.float64, requires_grad=True)
        opt = optim.SGD([a, b], lr=0.1)
        x = ember.tensor([3.0, 4.0], dtype=ember.float64)
        holder = nn.Module()
        holder.register_parameter("a", nn.Parameter(a))
        holder.register_parameter("b", nn.Parameter(b))

        def step() -> ember.Tensor:
            opt.zero_grad()
            loss = (x * (a + b)).sum()
            loss.backward()
            nn.utils.clip_grad_norm_([a, b], 1.0)
            opt.step()
            return loss

        return holder, opt, step

    _compare(build, rtol=1e-12, atol=1e-12, steps=5)


def test_a_scheduler_step_inside_the_compiled_function_is_refused() -> None:
    w = ember.tensor([1.0], dtype=ember.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt)

    def step() -> ember.Tensor:
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        opt.step()
        sched.step()
        return loss

    with pytest.raises(ember.TracerError, match=r"StepLR.step\(\) inside ember.compile"):
        ember.compile(step)()
    assert opt.param_groups[0]["lr"] == 0.1 and w.item() == 1.0
    with pytest.raises(ember.TracerError, match="ReduceLROnPlateau"):
        ember.compile(lambda: plateau.step(1.0))()
