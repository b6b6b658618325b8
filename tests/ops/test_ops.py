"""Tests generated from the op table (``op_table.py``).

For every op and dtype: the forward pass against the NumPy reference; the
gradient against float64 central differences (``ember.testing.gradcheck``);
the second derivative (``gradgradcheck``); values and gradients against
PyTorch when it is installed; every primitive's ``infer`` against the eager
result; and the in-place variants against NumPy and against the out-of-place
gradient. ``test_every_primitive_is_tested`` fails when a registered
primitive is not reached by any table entry.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import ember
from ember._src.core.aval import AVal
from ember._src.ops import registry
from ember.testing import gradcheck, gradgradcheck

from .op_table import OPS, OpInfo, Sample

FLOAT_DTYPES = ("float32", "float64")
# (rtol, atol) for gradients compared with PyTorch's.
TORCH_GRAD_TOL = {"float32": (1e-4, 1e-5), "float64": (1e-8, 1e-10)}
# Second derivatives are checked on the first few small samples to keep the suite fast.
GRADGRAD_SAMPLES, GRADGRAD_MAX_NUMEL = 3, 32


def cases(select: Callable[[OpInfo], bool] = lambda info: True, dtypes: Any = None) -> list[Any]:
    return [
        pytest.param(info, dtype, id=f"{info.name}-{dtype}")
        for info in OPS
        if select(info)
        for dtype in info.dtypes
        if dtypes is None or dtype in dtypes
    ]


def ops(select: Callable[[OpInfo], bool]) -> list[Any]:
    return [pytest.param(info, id=info.name) for info in OPS if select(info)]


# ----------------------------------------------------------------- helpers
def to_ember(a: Any, requires_grad: bool = False) -> Any:
    """A NumPy array as an ember tensor sharing its memory (and strides)."""
    if not isinstance(a, np.ndarray):
        return a
    t = ember.from_numpy(a)
    if requires_grad and a.dtype.kind == "f":
        t = ember.from_numpy(np.array(a, copy=True, order="K")).requires_grad_()
    return t


def to_torch(a: Any, requires_grad: bool = False) -> Any:
    import torch

    if not isinstance(a, np.ndarray):
        return a
    t = torch.from_numpy(np.array(a, copy=True, order="K"))
    return t.requires_grad_() if requires_grad and a.dtype.kind == "f" else t


def copies(args: tuple[Any, ...]) -> list[Any]:
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def flat(result: Any) -> list[Any]:
    if isinstance(result, (tuple, list)):
        return [y for r in result for y in flat(r)]
    return [result]


@contextlib.contextmanager
def context(info: OpInfo, sample: Sample, dtype: str = "") -> Iterator[None]:
    """Name the op, dtype and sample in any failure raised inside."""
    where = f"{info.name} [{dtype}] {sample!r}"
    try:
        yield
    except pytest.skip.Exception:
        raise
    except AssertionError as e:
        raise AssertionError(f"{where}\n{e}") from None
    except Exception as e:
        raise AssertionError(f"{where}\nraised {type(e).__name__}: {e}") from e


def assert_matches(got: Any, want: Any, rtol: float, atol: float) -> None:
    """Compare ember outputs with reference outputs (NumPy arrays or scalars)."""
    gots, wants = flat(got), flat(want)
    assert len(gots) == len(wants), f"{len(gots)} outputs, expected {len(wants)}"
    for k, (g, w) in enumerate(zip(gots, wants)):
        w = np.asarray(w)
        assert isinstance(g, ember.Tensor), f"output {k} is a {type(g).__name__}, not a Tensor"
        assert g.shape == w.shape, f"output {k}: shape {g.shape}, expected {w.shape}"
        assert g.dtype.np == w.dtype, f"output {k}: dtype {g.dtype}, expected {w.dtype}"
        a = g.detach().numpy()
        if w.dtype.kind == "f":
            np.testing.assert_allclose(a, w, rtol=rtol, atol=atol, err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(a, w, err_msg=f"output {k}")


def float_outputs(result: Any) -> list[Any]:
    return [t for t in flat(result) if hasattr(t, "dtype") and t.dtype.is_floating_point]


def grad_dtype(info: OpInfo) -> str | None:
    return next((d for d in ("float64", "float32") if d in info.dtypes), None)


def grad_inputs(args: list[Any]) -> list[Any]:
    return [a for a in args if isinstance(a, ember.Tensor) and a.requires_grad]


# ----------------------------------------------------------------- forward vs NumPy
@pytest.mark.parametrize("info, dtype", cases())
def test_forward_matches_numpy(info: OpInfo, dtype: str) -> None:
    rtol, atol = info.tolerance(dtype)
    for s in info.make_samples(dtype):
        with context(info, s, dtype):
            want = info.ref(*copies(s.args), **s.kwargs)
            got = info.op(*[to_ember(a) for a in s.args], **s.kwargs)
            assert_matches(got, want, rtol, atol)


# ----------------------------------------------------------------- gradients
def fd_samples(info: OpInfo) -> Iterator[tuple[Sample, list[Any]]]:
    """Samples smooth enough for finite differences, as ember args with grad leaves."""
    dtype = grad_dtype(info)
    assert dtype is not None, f"{info.name} is marked differentiable but has no float dtype"
    for s in info.make_samples(dtype):
        args = [to_ember(a, requires_grad=True) for a in s.args]
        if s.fd and grad_inputs(args):
            yield s, args


@pytest.mark.parametrize("info", ops(lambda i: i.grad))
def test_grad_matches_finite_differences(info: OpInfo) -> None:
    atol, rtol = info.grad_tol
    checked = 0
    for s, args in fd_samples(info):
        with context(info, s, "float64"):
            fn = lambda *xs: info.op(*xs, **s.kwargs)  # noqa: B023
            if not float_outputs(fn(*args)):
                continue
            gradcheck(fn, args, atol=atol, rtol=rtol)
            checked += 1
    assert checked, f"{info.name}: no sample has a differentiable input and output"


@pytest.mark.parametrize("info", ops(lambda i: i.grad and i.gradgrad))
def test_gradgrad_matches_finite_differences(info: OpInfo) -> None:
    atol, rtol = info.grad_tol
    checked = 0
    for s, args in fd_samples(info):
        numel = sum(a.numel() for a in grad_inputs(args))
        if checked == GRADGRAD_SAMPLES or not 0 < numel <= GRADGRAD_MAX_NUMEL:
            continue
        with context(info, s, "float64"):
            fn = lambda *xs: info.op(*xs, **s.kwargs)  # noqa: B023
            if not float_outputs(fn(*args)):
                continue
            gradgradcheck(fn, args, atol=atol, rtol=rtol)
            checked += 1
    assert checked, f"{info.name}: no small sample has a differentiable input and output"


# ----------------------------------------------------------------- PyTorch parity
def torch_dtype_name(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


@pytest.mark.torch
@pytest.mark.parametrize("info, dtype", cases(lambda i: i.torch is not None))
def test_forward_matches_torch(info: OpInfo, dtype: str) -> None:
    pytest.importorskip("torch")
    fn = info.torch_fn()
    assert fn is not None
    rtol, atol = info.torch_tolerance(dtype)
    for s in info.make_samples(dtype):
        if not s.torch:
            continue
        with context(info, s, dtype):
            got = flat(info.op(*[to_ember(a) for a in s.args], **s.kwargs))
            want = flat(fn(*[to_torch(a) for a in s.args], **s.kwargs))
            assert len(got) == len(want), f"{len(got)} outputs, torch gives {len(want)}"
            for k, (g, w) in enumerate(zip(got, want)):
                assert g.dtype.name == torch_dtype_name(w), (
                    f"output {k}: dtype {g.dtype.name}, torch gives {torch_dtype_name(w)}"
                )
                assert g.shape == tuple(w.shape), f"output {k}: shape {g.shape} vs {w.shape}"
                np.testing.assert_allclose(
                    g.detach().numpy(), w.detach().numpy(), rtol=rtol, atol=atol
                )


@pytest.mark.torch
@pytest.mark.parametrize(
    "info, dtype",
    cases(lambda i: i.torch is not None and i.grad and i.torch_grad, FLOAT_DTYPES),
)
def test_grad_matches_torch(info: OpInfo, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    fn = info.torch_fn()
    assert fn is not None
    rtol, atol = TORCH_GRAD_TOL[dtype]
    rng = np.random.default_rng(0)
    for s in info.make_samples(dtype):
        if not (s.torch and s.torch_grad):
            continue
        e_args = [to_ember(a, requires_grad=True) for a in s.args]
        t_args = [to_torch(a, requires_grad=True) for a in s.args]
        e_in, t_in = grad_inputs(e_args), [a for a in t_args if getattr(a, "requires_grad", 0)]
        if not e_in:
            continue
        with context(info, s, dtype):
            e_out = float_outputs(info.op(*e_args, **s.kwargs))
            t_out = [t for t in flat(fn(*t_args, **s.kwargs)) if t.is_floating_point()]
            assert len(e_out) == len(t_out)
            cot = [rng.standard_normal(t.shape).astype(torch_dtype_name(t)) for t in t_out]
            e_live = [(o, ember.tensor(c)) for o, c in zip(e_out, cot) if o.requires_grad]
            t_live = [(o, torch.from_numpy(c)) for o, c in zip(t_out, cot) if o.requires_grad]
            e_grads: Any = [None] * len(e_in)
            t_grads: Any = [None] * len(t_in)
            if e_live:
                outs, cots = zip(*e_live)
                e_grads = ember.grad(list(outs), e_in, list(cots), allow_unused=True)
            if t_live:
                outs, cots = zip(*t_live)
                t_grads = torch.autograd.grad(outs, t_in, cots, allow_unused=True)
            for k, (ge, gt, x) in enumerate(zip(e_grads, t_grads, e_in)):
                want = np.zeros(x.shape, dtype) if gt is None else gt.numpy()
                got = np.zeros(x.shape, dtype) if ge is None else ge.numpy()
                if ge is not None:
                    assert ge.dtype is x.dtype, f"gradient {k}: dtype {ge.dtype} for {x.dtype}"
                np.testing.assert_allclose(
                    got, want, rtol=rtol, atol=atol, err_msg=f"gradient of input {k}"
                )


# ----------------------------------------------------------------- infer vs eager
@contextlib.contextmanager
def recording() -> Iterator[list[tuple[registry.Op, tuple[Any, ...], dict[str, Any], AVal]]]:
    """Record every primitive application: (op, input avals, attrs, output aval).

    The op modules bind ``apply`` at import; each binding is swapped for a spy.
    """
    real = registry.apply
    calls: list[tuple[registry.Op, tuple[Any, ...], dict[str, Any], AVal]] = []

    def spy(op: registry.Op, *args: Any, **attrs: Any) -> Any:
        avals = tuple(AVal(a.shape, a.dtype) if isinstance(a, ember.Tensor) else a for a in args)
        out = real(op, *args, **attrs)
        calls.append((op, avals, attrs, AVal(out.shape, out.dtype)))
        return out

    modules = [
        m
        for name, m in list(sys.modules.items())
        if name.startswith("ember") and getattr(m, "apply", None) is real
    ]
    with pytest.MonkeyPatch.context() as mp:
        for m in modules:
            mp.setattr(m, "apply", spy)
        yield calls


def exercise(info: OpInfo, dtype: str, s: Sample) -> None:
    """Run the forward and, where differentiable, one recorded backward pass of a sample.

    ``create_graph=True`` makes every gradient rule run as ops on the tape (without it the
    engine may sum slice gradients sparsely, bypassing the index_scatter primitive).
    """
    args = [to_ember(a, requires_grad=info.grad) for a in s.args]
    outs = [o for o in float_outputs(info.op(*args, **s.kwargs)) if o.requires_grad]
    if outs:
        ones = [ember.ones_like(o) for o in outs]
        ember.grad(outs, grad_inputs(args), ones, allow_unused=True, create_graph=True)


@pytest.mark.parametrize("info", ops(lambda i: True))
def test_infer_matches_eager(info: OpInfo) -> None:
    for dtype in info.dtypes:
        for s in info.make_samples(dtype):
            with context(info, s, dtype), recording() as calls:
                exercise(info, dtype, s)
            for op, avals, attrs, out in calls:
                with context(info, s, dtype):
                    inferred = op.infer(*avals, **attrs)
                    assert (inferred.shape, inferred.dtype) == (out.shape, out.dtype), (
                        f"{op.name}.infer({', '.join(map(str, avals))}, {attrs}) gives "
                        f"{inferred}, eager gives {out}"
                    )


def test_every_primitive_is_tested() -> None:
    seen: set[str] = set()
    for info in OPS:
        for dtype in info.dtypes:
            for s in info.make_samples(dtype):
                with context(info, s, dtype), recording() as calls:
                    exercise(info, dtype, s)
                seen.update(op.name for op, *_ in calls)
    missing = sorted(set(registry.REGISTRY) - seen)
    assert not missing, f"primitives no op-table entry exercises: {missing}; add them to op_table"


# ----------------------------------------------------------------- in-place variants
def fits(want: Any, target: Any) -> bool:
    w = np.asarray(want)
    return w.shape == target.shape and w.dtype == target.dtype.np


@pytest.mark.parametrize("info, dtype", cases(lambda i: i.inplace is not None))
def test_inplace_matches_numpy(info: OpInfo, dtype: str) -> None:
    assert info.inplace is not None
    rtol, atol = info.tolerance(dtype)
    for s in info.make_samples(dtype):
        with context(info, s, dtype):
            want = info.ref(*copies(s.args), **s.kwargs)
            target = ember.from_numpy(np.array(s.args[0], copy=True, order="K"))
            rest = [to_ember(a) for a in s.args[1:]]
            if not fits(want, target):  # the result has another shape or dtype: refused
                with pytest.raises(RuntimeError):
                    info.inplace(target, *rest, **s.kwargs)
                continue
            version = target._version_number
            out = info.inplace(target, *rest, **s.kwargs)
            assert out is target, "an in-place op must return its target"
            assert target._version_number > version, "an in-place op must bump the version"
            assert_matches(target, want, rtol, atol)


@pytest.mark.parametrize("info", ops(lambda i: i.inplace is not None and i.grad))
def test_inplace_grad_matches_out_of_place(info: OpInfo) -> None:
    assert info.inplace is not None
    inplace = info.inplace
    rng = np.random.default_rng(0)
    checked = 0
    for s, args in fd_samples(info):
        want = info.ref(*copies(s.args), **s.kwargs)
        if not isinstance(args[0], ember.Tensor) or not fits(want, args[0]):
            continue
        with context(info, s, "float64"):
            # The in-place op runs on a non-leaf copy, as in-place ops on leaves are refused.
            fn = lambda x, *rest: inplace(x * 1.0, *rest, **s.kwargs)  # noqa: B023
            out_of_place = info.op(*args, **s.kwargs)
            in_place = fn(*args)
            cot = ember.tensor(rng.standard_normal(out_of_place.shape))
            wrt = grad_inputs(args)
            want_grads = ember.grad(out_of_place, wrt, cot, allow_unused=True)
            got_grads = ember.grad(in_place, wrt, cot, allow_unused=True)
            for k, (g, w) in enumerate(zip(got_grads, want_grads)):
                assert (g is None) == (w is None), f"gradient {k}: {g} vs {w}"
                if g is not None:
                    np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12, atol=1e-12)
            gradcheck(fn, args)
            checked += 1
    assert checked, f"{info.name}: no sample fits in place"


def test_inplace_on_a_leaf_that_requires_grad_is_refused() -> None:
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 3.0
    with ember.no_grad():
        x.add_(1.0)
    assert x.tolist() == [2.0, 3.0]


def test_inplace_writes_through_views() -> None:
    base = ember.zeros(2, 3)
    base[1].add_(2.0)
    base.T[0] = 5.0
    np.testing.assert_array_equal(base.numpy(), [[5.0, 0.0, 0.0], [5.0, 2.0, 2.0]])


def test_inplace_after_save_raises_at_backward() -> None:
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = y * y  # saves y
    y.mul_(2.0)
    with pytest.raises(ember.GradError, match="inplace"):
        z.sum().backward()


def test_fill_zero_and_copy_match_numpy() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 4))
    t = ember.from_numpy(base.copy().T)  # a non-contiguous target
    t.fill_(2.5)
    np.testing.assert_array_equal(t.numpy(), np.full((4, 3), 2.5))
    t.zero_()
    np.testing.assert_array_equal(t.numpy(), np.zeros((4, 3)))
    src = rng.standard_normal(3).astype(np.float32)  # broadcast and cast into float64
    t.copy_(ember.from_numpy(src))
    np.testing.assert_array_equal(t.numpy(), np.broadcast_to(src.astype(np.float64), (4, 3)))
    assert t.dtype is ember.float64


def test_copy_gradient_flows_to_the_source_only() -> None:
    def fn(x: Any, src: Any) -> Any:
        return (x * 1.0).copy_(src) * x

    x = ember.tensor(np.arange(6.0).reshape(2, 3) + 1, requires_grad=True)
    src = ember.tensor([0.5, -1.0, 2.0], requires_grad=True)
    assert gradcheck(fn, (x, src))
