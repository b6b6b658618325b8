"""Every optimizer's update rule: against torch.optim over every option combination,
and against hand-written NumPy for two steps (so numerics are checked without torch).

One table drives the parity tests: each row names the ember class, the torch class
and the grid of options; ``itertools.product`` over the grid gives the cases.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import ember
import ember.optim as optim

STEPS = 20
RTOL, ATOL = 1e-10, 1e-12

# name -> (ember class, {option: values}); the torch class has the same name.
TABLE: dict[str, tuple[type, dict[str, list[Any]]]] = {
    "SGD": (
        optim.SGD,
        {
            "lr": [0.05],
            "momentum": [0.0, 0.9],
            "dampening": [0.0, 0.5],
            "nesterov": [False, True],
            "weight_decay": [0.0, 0.1],
            "maximize": [False, True],
        },
    ),
    "Adam": (
        optim.Adam,
        {
            "lr": [0.05],
            "betas": [(0.9, 0.999), (0.5, 0.8)],
            "eps": [1e-8, 1e-2],
            "weight_decay": [0.0, 0.1],
            "amsgrad": [False, True],
            "maximize": [False, True],
            "decoupled_weight_decay": [False, True],
        },
    ),
    "AdamW": (
        optim.AdamW,
        {
            "lr": [0.05],
            "betas": [(0.9, 0.999), (0.5, 0.8)],
            "eps": [1e-8, 1e-2],
            "weight_decay": [0.0, 0.1],
            "amsgrad": [False, True],
            "maximize": [False, True],
        },
    ),
    "RMSprop": (
        optim.RMSprop,
        {
            "lr": [0.01],
            "alpha": [0.99, 0.5],
            "eps": [1e-8, 1e-2],
            "weight_decay": [0.0, 0.1],
            "momentum": [0.0, 0.9],
            "centered": [False, True],
            "maximize": [False, True],
        },
    ),
    "Adagrad": (
        optim.Adagrad,
        {
            "lr": [0.1],
            "lr_decay": [0.0, 0.1],
            "weight_decay": [0.0, 0.1],
            "initial_accumulator_value": [0.0, 0.5],
            "eps": [1e-10, 1e-2],
            "maximize": [False, True],
        },
    ),
    "Adadelta": (
        optim.Adadelta,
        {
            "lr": [1.0, 0.5],
            "rho": [0.9, 0.5],
            "eps": [1e-6, 1e-2],
            "weight_decay": [0.0, 0.1],
            "maximize": [False, True],
        },
    ),
}


def _cases() -> list[Any]:
    out = []
    for name, (_, grid) in TABLE.items():
        keys = list(grid)
        for values in itertools.product(*grid.values()):
            opts = dict(zip(keys, values))
            label = ",".join(f"{k}={v}" for k, v in opts.items() if len(grid[k]) > 1)
            out.append(pytest.param(name, opts, id=f"{name}[{label}]"))
    return out


# ----------------------------------------------------------------- the problem
def problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Least squares plus a quartic, over parameters of shapes (4, 3), (3,), () and (2, 2, 2)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 4))
    y = rng.standard_normal((8, 3))
    init = [
        rng.standard_normal((4, 3)),
        rng.standard_normal(3),
        np.array(0.7),
        rng.standard_normal((2, 2, 2)),
    ]
    return x, y, init


def loss_fn(params: list[Any], x: Any, y: Any, sign: float = 1.0) -> Any:
    """The objective; ``sign=-1`` for ``maximize=True`` so that ascent stays bounded."""
    w, b, c, d = params
    r = x @ w + b * c - y
    return ((r * r).mean() + (d * d * d * d).sum() * 0.25) * sign


def groups(params: list[Any], lr: float) -> list[dict[str, Any]]:
    """Two groups: the second overrides the learning rate."""
    return [{"params": params[:2]}, {"params": params[2:], "lr": lr / 2}]


def run_ember(
    make: Callable[[list[ember.Tensor]], Any],
    steps: int = STEPS,
    closure: bool = False,
    sign: float = 1.0,
) -> list[list[np.ndarray]]:
    x, y, init = problem()
    params = [ember.from_numpy(a.copy()).requires_grad_() for a in init]
    xe, ye = ember.from_numpy(x), ember.from_numpy(y)
    opt = make(params)
    trajectory = []
    for _ in range(steps):
        if closure:

            def f() -> Any:
                opt.zero_grad()
                loss = loss_fn(params, xe, ye, sign)
                loss.backward()
                return loss

            opt.step(f)
        else:
            opt.zero_grad()
            loss_fn(params, xe, ye, sign).backward()
            opt.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


def run_torch(
    make: Callable[[list[Any]], Any], steps: int = STEPS, closure: bool = False, sign: float = 1.0
) -> list[list[np.ndarray]]:
    torch = pytest.importorskip("torch")
    x, y, init = problem()
    params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = make(params)
    trajectory = []
    for _ in range(steps):
        if closure:

            def f() -> Any:
                opt.zero_grad()
                loss = loss_fn(params, xt, yt, sign)
                loss.backward()
                return loss

            opt.step(f)
        else:
            opt.zero_grad()
            loss_fn(params, xt, yt, sign).backward()
            opt.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


def assert_same_trajectory(a: list[list[np.ndarray]], b: list[list[np.ndarray]]) -> None:
    assert len(a) == len(b)
    for step, (pa, pb) in enumerate(zip(a, b)):
        for i, (u, v) in enumerate(zip(pa, pb)):
            np.testing.assert_allclose(
                u, v, rtol=RTOL, atol=ATOL, err_msg=f"step {step + 1}, parameter {i}"
            )


def torch_kwargs(name: str, opts: dict[str, Any]) -> dict[str, Any]:
    kw = dict(opts)
    kw["foreach"] = False  # PyTorch's per-tensor loop: the reference algorithm
    return kw


# ----------------------------------------------------------------- parity with torch
@pytest.mark.torch
@pytest.mark.parametrize(("name", "opts"), _cases())
def test_matches_torch(name: str, opts: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    cls, _ = TABLE[name]
    torch_cls = getattr(torch.optim, name)
    if name == "SGD" and opts["nesterov"] and (opts["momentum"] == 0 or opts["dampening"] != 0):
        with pytest.raises(ValueError, match="Nesterov"):
            torch_cls([torch.zeros(1, requires_grad=True)], **opts)
        with pytest.raises(ValueError, match="Nesterov"):
            cls([ember.zeros(1, requires_grad=True)], **opts)
        return
    lr, sign = opts["lr"], -1.0 if opts["maximize"] else 1.0
    ours = run_ember(lambda ps: cls(groups(ps, lr), **opts), sign=sign)
    ref = run_torch(lambda ps: torch_cls(groups(ps, lr), **torch_kwargs(name, opts)), sign=sign)
    assert_same_trajectory(ours, ref)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("name", "opts"),
    [
        ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        ("Adam", {"lr": 0.05, "amsgrad": True}),
        ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ],
)
def test_closure_matches_torch(name: str, opts: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    cls, _ = TABLE[name]
    torch_cls = getattr(torch.optim, name)
    ours = run_ember(lambda ps: cls(ps, **opts), closure=True)
    ref = run_torch(lambda ps: torch_cls(ps, **torch_kwargs(name, opts)), closure=True)
    assert_same_trajectory(ours, ref)


@pytest.mark.torch
def test_float32_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    init = rng.standard_normal((5, 3)).astype(np.float32)
    target = rng.standard_normal((5, 3)).astype(np.float32)
    pe = ember.from_numpy(init.copy()).requires_grad_()
    pt = torch.tensor(init.copy(), requires_grad=True)
    oe = optim.Adam([pe], lr=0.01, weight_decay=0.1, amsgrad=True)
    ot = torch.optim.Adam([pt], lr=0.01, weight_decay=0.1, amsgrad=True, foreach=False)
    te, tt = ember.from_numpy(target), torch.from_numpy(target)
    for _ in range(STEPS):
        oe.zero_grad()
        ot.zero_grad()
        ((pe - te) ** 2).sum().backward()
        ((pt - tt) ** 2).sum().backward()
        oe.step()
        ot.step()
    assert pe.dtype == ember.float32
    assert oe.state[pe]["exp_avg"].dtype == ember.float32
    np.testing.assert_allclose(pe.detach().numpy(), pt.detach().numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- NumPy references
def two_steps(
    opt_factory: Callable[[list[ember.Tensor]], Any], p0: np.ndarray, grads: list[np.ndarray]
) -> list[np.ndarray]:
    """Run two steps with the given gradients set by hand; return p after each."""
    p = ember.from_numpy(p0.copy()).requires_grad_()
    opt = opt_factory([p])
    out = []
    for g in grads:
        p.grad = ember.from_numpy(g.copy())
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


P0 = np.array([1.0, -2.0, 0.5])
G = [np.array([0.3, -1.0, 2.0]), np.array([-0.5, 0.25, 1.5])]


def check(ours: list[np.ndarray], expected: list[np.ndarray]) -> None:
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)


def test_sgd_reference() -> None:
    lr, mu, damp, wd = 0.1, 0.9, 0.2, 0.01
    ours = two_steps(lambda ps: optim.SGD(ps, lr, mu, damp, wd), P0, G)
    g1 = G[0] + wd * P0
    b1 = g1
    p1 = P0 - lr * b1
    g2 = G[1] + wd * p1
    b2 = mu * b1 + (1 - damp) * g2
    p2 = p1 - lr * b2
    check(ours, [p1, p2])
    nes = two_steps(lambda ps: optim.SGD(ps, lr, mu, nesterov=True, maximize=True), P0, G)
    b1 = -G[0]
    p1 = P0 - lr * (-G[0] + mu * b1)
    b2 = mu * b1 - G[1]
    p2 = p1 - lr * (-G[1] + mu * b2)
    check(nes, [p1, p2])


def _adam_reference(amsgrad: bool, decoupled: bool) -> list[np.ndarray]:
    lr, (b1, b2), eps, wd = 0.1, (0.8, 0.9), 1e-3, 0.05
    p, m, v, vmax, out = P0.copy(), 0 * P0, 0 * P0, 0 * P0, []
    for t, g in enumerate(G, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vhat = (vmax if amsgrad else v) / (1 - b2**t)
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(vhat) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_reference(amsgrad: bool) -> None:
    kw = dict(lr=0.1, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.05, amsgrad=amsgrad)
    ours = two_steps(lambda ps: optim.Adam(ps, **kw), P0, G)
    check(ours, _adam_reference(amsgrad, decoupled=False))
    ours = two_steps(lambda ps: optim.AdamW(ps, **kw), P0, G)
    check(ours, _adam_reference(amsgrad, decoupled=True))


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_reference(centered: bool) -> None:
    lr, alpha, eps, mu = 0.01, 0.9, 1e-6, 0.5
    ours = two_steps(
        lambda ps: optim.RMSprop(ps, lr, alpha, eps, momentum=mu, centered=centered), P0, G
    )
    p, v, a, buf, expected = P0.copy(), 0 * P0, 0 * P0, 0 * P0, []
    for g in G:
        v = alpha * v + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g
        avg = np.sqrt(v - a * a if centered else v) + eps
        buf = mu * buf + g / avg
        p = p - lr * buf
        expected.append(p)
    check(ours, expected)


def test_adagrad_reference() -> None:
    lr, decay, init, eps = 0.5, 0.1, 0.2, 1e-10
    ours = two_steps(lambda ps: optim.Adagrad(ps, lr, decay, 0.0, init, eps), P0, G)
    p, s, expected = P0.copy(), np.full(3, init), []
    for t, g in enumerate(G, start=1):
        s = s + g * g
        p = p - lr / (1 + (t - 1) * decay) * g / (np.sqrt(s) + eps)
        expected.append(p)
    check(ours, expected)


def test_adadelta_reference() -> None:
    lr, rho, eps, wd = 0.9, 0.8, 1e-3, 0.1
    ours = two_steps(lambda ps: optim.Adadelta(ps, lr, rho, eps, wd), P0, G)
    p, v, u, expected = P0.copy(), 0 * P0, 0 * P0, []
    for g in G:
        g = g + wd * p
        v = rho * v + (1 - rho) * g * g
        d = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * d * d
        p = p - lr * d
        expected.append(p)
    check(ours, expected)


def test_parameters_without_grad_are_skipped() -> None:
    a = ember.ones(2, requires_grad=True)
    b = ember.ones(2, requires_grad=True)
    for cls in (optim.SGD, optim.Adam, optim.RMSprop, optim.Adagrad, optim.Adadelta):
        opt = cls([a, b], lr=0.1)
        a.grad = ember.ones(2)
        b.grad = None
        opt.step()
        assert b.tolist() == [1.0, 1.0]
        assert b not in opt.state
        with ember.no_grad():
            a.fill_(1.0)


def test_update_does_not_touch_grad_or_record() -> None:
    p = ember.tensor([1.0, 2.0], requires_grad=True)
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad, optim.Adadelta):
        opt = cls([p], lr=0.1, weight_decay=0.1, maximize=True)
        p.grad = ember.tensor([0.5, -0.5])
        opt.step()
        assert p.grad.tolist() == [0.5, -0.5]
        assert p.is_leaf and p.requires_grad
