"""Numerical gradient checks: ember's backward against float64 central differences.

``gradcheck`` builds, for every floating output and every input that requires
grad, the full Jacobian twice: once from ember's backward (one vector-Jacobian
product per output element, with one-hot cotangents) and once from central
differences ``(f(x + eps) - f(x - eps)) / (2 eps)`` in float64. ``gradgradcheck``
runs the same check on the function that maps the inputs and a cotangent to
the gradient, built with ``ember.grad(..., create_graph=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core.creation import from_numpy, zeros_like
from ember._src.core.tensor import Tensor, grad


class GradcheckError(AssertionError):
    """A gradient computed by backward disagrees with the numerical one."""


def gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Check the gradients of ``fn`` against float64 central differences.

    Every floating Tensor in ``inputs`` that requires grad is copied to a
    float64 leaf; the other arguments (integer index tensors, bool masks,
    Python numbers) are passed through unchanged. ``fn`` may return a Tensor
    or a (nested) tuple/list of Tensors; its non-floating outputs (indices)
    are ignored. An entry passes when
    ``|analytic - numerical| <= atol + rtol * |numerical|``.

    Args:
        fn: the function to check, called as ``fn(*inputs)``.
        inputs: a Tensor or a sequence of arguments for ``fn``.
        eps: the finite-difference step.
        atol: absolute tolerance.
        rtol: relative tolerance, scaled by the numerical value.
        raise_exception: raise :class:`GradcheckError` on a mismatch (naming the
            output, the input, the element and both values) instead of
            returning False.

    Returns:
        True when every gradient matches (False on a mismatch when
        ``raise_exception`` is False).

    Example:
        >>> import ember
        >>> from ember.testing import gradcheck
        >>> x = ember.tensor([[0.5, -1.0], [2.0, 0.3]], requires_grad=True)
        >>> gradcheck(lambda t: (t.sin() * t).sum(dim=0), (x,))
        True
        >>> gradcheck(lambda t: t.detach() * t, (x,), raise_exception=False)
        False
    """
    args = _as_args(inputs)
    wrt = _differentiable(args, "gradcheck")
    x64 = [_leaf64(a) if i in wrt else a for i, a in enumerate(args)]
    names = [f"input {i}" for i in range(len(args))]
    return _check(fn, x64, wrt, names, eps, atol, rtol, raise_exception, "gradcheck")


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check second derivatives: ``gradcheck`` of the gradient of ``fn``.

    The checked function maps ``(inputs, grad_outputs)`` to
    ``ember.grad(fn(*inputs), inputs, grad_outputs, create_graph=True)``, so
    both the dependence of the gradient on the inputs and on the cotangent
    are verified. Without ``grad_outputs``, random float64 cotangents (drawn
    from ``seed``) are used, one per floating output of ``fn``.

    Args:
        fn: the function to check, called as ``fn(*inputs)``.
        inputs: a Tensor or a sequence of arguments for ``fn``.
        grad_outputs: cotangents for ``fn``'s floating outputs, or None.
        eps: the finite-difference step.
        atol: absolute tolerance.
        rtol: relative tolerance, scaled by the numerical value.
        raise_exception: raise :class:`GradcheckError` on a mismatch instead of
            returning False.
        seed: seeds the random cotangents.

    Returns:
        True when every second derivative matches (False on a mismatch when
        ``raise_exception`` is False).

    Example:
        >>> import ember
        >>> from ember.testing import gradgradcheck
        >>> x = ember.tensor([0.5, 1.5, -2.0], requires_grad=True)
        >>> gradgradcheck(lambda t: (t**3).sum(), (x,))
        True
    """
    args = _as_args(inputs)
    wrt = _differentiable(args, "gradgradcheck")
    x64 = [_leaf64(a) if i in wrt else a for i, a in enumerate(args)]
    outs = _float_outputs(fn(*x64))
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        vs = [_leaf64(from_numpy(rng.standard_normal(o.shape)).to(o.device)) for o in outs]
    else:
        vs = [_leaf64(v) for v in _as_args(grad_outputs)]
        if len(vs) != len(outs) or any(v.shape != o.shape for v, o in zip(vs, outs)):
            raise ValueError(
                f"gradgradcheck: grad_outputs of shapes {[tuple(v.shape) for v in vs]} do not "
                f"match fn's floating outputs of shapes {[tuple(o.shape) for o in outs]}"
            )
    n = len(args)

    def first_derivative(*flat: Any) -> tuple[Tensor, ...]:
        xs, cotangents = flat[:n], flat[n:]
        ys = _float_outputs(fn(*xs))
        wrt_inputs = [xs[i] for i in wrt]
        live = [(y, v) for y, v in zip(ys, cotangents) if y.requires_grad]
        if not live:  # no output depends on the inputs: the gradient is zero
            return tuple(zeros_like(x) for x in wrt_inputs)
        gs = grad(
            [y for y, _ in live],
            wrt_inputs,
            [v for _, v in live],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(zeros_like(x) if g is None else g for g, x in zip(gs, wrt_inputs))

    names = [f"input {i}" for i in range(n)] + [f"grad_outputs[{k}]" for k in range(len(vs))]
    flat_wrt = list(wrt) + list(range(n, n + len(vs)))
    return _check(
        first_derivative,
        [*x64, *vs],
        flat_wrt,
        names,
        eps,
        atol,
        rtol,
        raise_exception,
        "gradgradcheck",
    )


# ----------------------------------------------------------------- helpers
def _as_args(inputs: Any) -> list[Any]:
    if isinstance(inputs, Tensor):
        return [inputs]
    if isinstance(inputs, (tuple, list)):
        return list(inputs)
    raise TypeError(
        f"inputs must be a Tensor or a tuple/list of arguments, got {type(inputs).__name__}"
    )


def _differentiable(args: Sequence[Any], what: str) -> list[int]:
    wrt = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not wrt:
        raise ValueError(
            f"{what}: no input requires grad, so there is nothing to check; call "
            "requires_grad_() on the floating inputs whose gradients should be checked"
        )
    return wrt


def _leaf64(t: Tensor) -> Tensor:
    """A float64 leaf copy of ``t`` that requires grad, keeping its memory layout."""
    host = np.array(t.detach().to("cpu").numpy(), dtype=np.float64, copy=True, order="K")
    return from_numpy(host).to(t.device).requires_grad_()


def _float_outputs(result: Any) -> list[Tensor]:
    if isinstance(result, Tensor):
        return [result] if result.dtype.category == dt.FLOAT else []
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in _float_outputs(r)]
    raise TypeError(
        f"fn must return a Tensor or a tuple/list of Tensors, got {type(result).__name__}"
    )


def _host64(t: Tensor) -> np.ndarray:
    return np.asarray(t.detach().to("cpu").numpy(), dtype=np.float64).reshape(-1)


def _analytic(
    outs: Sequence[Tensor], xs: Sequence[Tensor], names: Sequence[str], what: str
) -> list[list[np.ndarray]]:
    """``J[p][k]``: d output p / d input k, one row per output element, from backward."""
    jac = [[np.zeros((o.numel(), x.numel())) for x in xs] for o in outs]
    for p, o in enumerate(outs):
        if not o.requires_grad:  # fn's output is not connected to the tape: zero rows
            continue
        for j in range(o.numel()):
            onehot = np.zeros(o.numel(), dtype=o.dtype.np)
            onehot[j] = 1
            cot = from_numpy(onehot.reshape(o.shape)).to(o.device)
            gs = grad([o], list(xs), [cot], retain_graph=True, allow_unused=True)
            for k, (g, x) in enumerate(zip(gs, xs)):
                if g is None:
                    continue
                if g.shape != x.shape or g.dtype != x.dtype:
                    raise GradcheckError(
                        f"{what}: the gradient for {names[k]} has shape {tuple(g.shape)} and "
                        f"dtype {g.dtype}, but the input has shape {tuple(x.shape)} and dtype "
                        f"{x.dtype}"
                    )
                jac[p][k][j] = _host64(g)
    return jac


def _numerical(
    fn: Callable[..., Any],
    args: Sequence[Any],
    wrt: Sequence[int],
    sizes: Sequence[int],
    eps: float,
) -> list[list[np.ndarray]]:
    """``J[p][k]`` from central differences, one column per input element."""
    jac = [[np.zeros((m, args[i].numel())) for i in wrt] for m in sizes]
    for k, i in enumerate(wrt):
        x = args[i]
        base = np.array(x.detach().to("cpu").numpy(), dtype=np.float64, copy=True, order="K")
        for col, idx in enumerate(np.ndindex(*base.shape)):
            sides = []
            for step in (eps, -eps):
                moved = base.copy(order="K")
                moved[idx] += step
                probe = list(args)
                probe[i] = from_numpy(moved).to(x.device).requires_grad_()
                sides.append([_host64(o) for o in _float_outputs(fn(*probe))])
            for p, (hi, lo) in enumerate(zip(*sides)):
                jac[p][k][:, col] = (hi - lo) / (2 * eps)
    return jac


def _check(
    fn: Callable[..., Any],
    args: list[Any],
    wrt: Sequence[int],
    names: Sequence[str],
    eps: float,
    atol: float,
    rtol: float,
    raise_exception: bool,
    what: str,
) -> bool:
    outs = _float_outputs(fn(*args))
    if not outs:
        raise ValueError(f"{what}: fn returned no floating point Tensor to differentiate")
    xs = [args[i] for i in wrt]
    wrt_names = [names[i] for i in wrt]
    try:
        analytic = _analytic(outs, xs, wrt_names, what)
        numerical = _numerical(fn, args, wrt, [o.numel() for o in outs], eps)
        for p, o in enumerate(outs):
            for k, x in enumerate(xs):
                _compare(analytic[p][k], numerical[p][k], atol, rtol, what, p, o, wrt_names[k], x)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _compare(
    a: np.ndarray,
    n: np.ndarray,
    atol: float,
    rtol: float,
    what: str,
    p: int,
    out: Tensor,
    name: str,
    x: Tensor,
) -> None:
    diff = np.abs(a - n)
    tol = atol + rtol * np.abs(n)
    bad = ~(diff <= tol) & ~(np.isnan(a) & np.isnan(n))
    if not bad.any():
        return
    excess = np.where(bad, np.nan_to_num(diff - tol, nan=np.inf), -np.inf)
    row, col = np.unravel_index(int(np.argmax(excess)), a.shape)
    where_in = tuple(int(v) for v in np.unravel_index(col, x.shape))
    where_out = tuple(int(v) for v in np.unravel_index(row, out.shape))
    lines = [
        f"{what}: Jacobian mismatch for output {p} with respect to {name} (shape {tuple(x.shape)})",
        f"  at {name} element {where_in}, output element {where_out}: "
        f"analytic {float(a[row, col])!r} vs numerical {float(n[row, col])!r} "
        f"(|difference| {diff[row, col]:.3g} > atol + rtol * |numerical| = {tol[row, col]:.3g})",
        f"  {int(bad.sum())} of {a.size} Jacobian entries differ",
    ]
    if a.size <= 64:
        with np.printoptions(precision=6, suppress=True, linewidth=100):
            lines += [
                "  analytic Jacobian (rows: output elements, columns: input elements):",
                f"{a}",
                "  numerical Jacobian:",
                f"{n}",
            ]
    raise GradcheckError("\n".join(lines))
