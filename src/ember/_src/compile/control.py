"""Graph-level control flow: ``ember.cond`` and ``ember.scan``.

Eagerly both just run: ``cond`` reads the predicate and calls one branch,
``scan`` loops. While ``ember.compile`` traces (or on symbolic tensors from
``ember.placeholder``) the predicate has no value, so ``cond`` runs *both*
branches and selects each output with ``ember.where``: the graph holds both
and picks per call, and gradients flow only through the selected branch.
``scan`` unrolls its loop over the static length of ``xs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ember._src.core.tensor import Tensor
from ember._src.ops import registry
from ember._src.ops.elementwise import where
from ember._src.ops.registry import TracerError, user_frame
from ember._src.ops.shape import stack

from .symbolic import Dim, Symbol


def _leaves(tree: Any, out: list[Any]) -> Any:
    """The structure of ``tree`` (tuples, lists, dicts, namedtuples) with leaves cut out."""
    if isinstance(tree, (tuple, list)):
        return (type(tree), tuple(_leaves(t, out) for t in tree))
    if type(tree) is dict:
        return (dict, tuple((k, _leaves(v, out)) for k, v in tree.items()))
    out.append(tree)
    return None


def _build(skeleton: Any, leaves: Any) -> Any:
    if skeleton is None:
        return next(leaves)
    kind, items = skeleton
    if kind is dict:
        return {k: _build(v, leaves) for k, v in items}
    built = [_build(s, leaves) for s in items]
    return kind(*built) if hasattr(kind, "_fields") else kind(built)


def _graph_mode(values: list[Any]) -> bool:
    """Whether a choice must stay in the graph: tracing, or a symbolic tensor among values."""
    if registry.is_tracing():
        return True
    return any(isinstance(v, Tensor) and type(v._data) is Symbol for v in values)


def cond(
    pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], *operands: Any
) -> Any:
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``, also inside graphs.

    Eagerly only the chosen branch runs. Under ``ember.compile`` (and on
    symbolic tensors) both branches run and each output is
    ``ember.where(pred, true_out, false_out)``: the compiled graph picks the
    branch per call from ``pred``'s value, without retracing, and gradients
    flow only through the picked branch (a NaN or inf in the other branch's
    gradient still propagates, as with ``ember.where``). With a symbolic
    operand the choice stays in the graph even for a concrete ``pred`` (a
    shared flag, read on every call of the ``ember.function``); branches that
    only close over placeholders, with a concrete ``pred`` and concrete
    operands, are chosen once, when ``cond`` runs.

    Args:
        pred: a one-element tensor (bool or number) or a Python bool.
        true_fn, false_fn: functions of ``operands`` returning tensors (or
            tuples, lists, dicts of them) of the same structure, shapes and
            dtypes.
        *operands: passed to the branch.

    Returns:
        The selected branch's outputs.

    Example:
        >>> import ember
        >>> f = ember.compile(lambda p, x: ember.cond(p, lambda v: v * 2.0, lambda v: -v, x))
        >>> x = ember.tensor([1.0, 2.0])
        >>> f(ember.tensor(True), x), f(ember.tensor(False), x)
        (tensor([2., 4.]), tensor([-1., -2.]))
    """
    if not isinstance(pred, Tensor):
        if isinstance(pred, (bool, int, np.bool_, np.integer)):
            return true_fn(*operands) if pred else false_fn(*operands)
        raise TypeError(f"cond: pred must be a one-element tensor or a bool, got {type(pred)}")
    if len(pred.shape) > 0 and any(type(d) is Dim or d != 1 for d in pred.shape):
        raise ValueError(
            f"cond: pred must have one element, got shape {tuple(pred.shape)}; reduce it first "
            "(pred.all(), pred.any()) or use ember.where for elementwise choices"
        )
    leaves: list[Any] = []
    _leaves(operands, leaves)
    if not _graph_mode([pred, *leaves]):
        return true_fn(*operands) if bool(pred) else false_fn(*operands)
    p = pred.reshape(()) if pred.ndim else pred
    if p.dtype.category != 0:  # not bool
        p = p != 0
    t_leaves: list[Any] = []
    f_leaves: list[Any] = []
    t_tree = _leaves(true_fn(*operands), t_leaves)
    f_tree = _leaves(false_fn(*operands), f_leaves)
    if t_tree != f_tree:
        raise TypeError(
            "cond: true_fn and false_fn must return the same structure (tuples, lists, dicts) "
            f"of tensors\n  at {user_frame()}"
        )
    out = []
    for i, (a, b) in enumerate(zip(t_leaves, f_leaves)):
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            if tuple(a.shape) != tuple(b.shape) or a.dtype is not b.dtype:
                raise TypeError(
                    f"cond: output {i} of the branches differs: true_fn gives "
                    f"{a.dtype}{list(a.shape)}, false_fn {b.dtype}{list(b.shape)}; both "
                    f"branches must give the same shapes and dtypes\n  at {user_frame()}"
                )
            out.append(where(p, a, b))
        elif isinstance(a, Tensor) or isinstance(b, Tensor):
            other = b if isinstance(a, Tensor) else a
            raise TypeError(
                f"cond: output {i} is a tensor in one branch and a {type(other).__name__} in "
                f"the other; return tensors from both\n  at {user_frame()}"
            )
        elif a is b or a == b:
            out.append(a)
        else:
            raise TypeError(
                f"cond: output {i} is the Python value {a!r} in one branch and {b!r} in the "
                f"other; under tracing return tensors so the choice can be made per call\n"
                f"  at {user_frame()}"
            )
    return _build(t_tree, iter(out))


def scan(
    fn: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
) -> tuple[Any, Any]:
    """Loop ``carry, y = fn(carry, x)`` over the leading axis of ``xs`` (JAX's ``lax.scan``).

    Eagerly it is a Python loop; under ``ember.compile`` (and on symbolic
    tensors) the loop is unrolled over the static length of ``xs``, so the
    graph holds one copy of ``fn``'s ops per step and gradients flow through
    all of them.

    Args:
        fn: ``(carry, x) -> (carry, y)``; the carry keeps its structure,
            shapes and dtypes from step to step; ``y`` may be None.
        init: the initial carry (a tensor or a tuple, list, dict of them).
        xs: tensors (or a structure of them) sliced along their first axis,
            one slice per step; None to loop ``length`` times with ``x=None``.
        length: the number of steps; needed when ``xs`` is None, checked
            against ``xs`` otherwise.
        reverse: run from the last slice to the first (``ys`` keep ``xs``'s
            order).

    Returns:
        ``(final carry, ys)`` with the ``y`` of every step stacked along a
        new first axis (None when ``fn`` returns None for ``y``).

    Example:
        >>> import ember
        >>> total, sums = ember.scan(lambda c, x: (c + x, c + x), ember.tensor(0.0),
        ...                          ember.tensor([1.0, 2.0, 3.0]))
        >>> total, sums
        (tensor(6.), tensor([1., 3., 6.]))
    """
    x_leaves: list[Any] = []
    x_tree = _leaves(xs, x_leaves) if xs is not None else None
    n = length
    for leaf in x_leaves:
        if not isinstance(leaf, Tensor) or leaf.ndim == 0:
            raise TypeError("scan: xs must be tensors with a leading axis (or a structure of them)")
        size = leaf.shape[0]
        if type(size) is Dim:
            raise TracerError(
                "scan: the length comes from a placeholder's None dimension, but scan unrolls "
                f"over a static length\n  at {user_frame()}\n"
                "  fix: give that placeholder dimension a fixed size"
            )
        if n is None:
            n = size
        elif n != size:
            raise ValueError(
                f"scan: xs have leading axes of different lengths ({n} and {size}) or not "
                "the given length"
            )
    if n is None:
        raise ValueError("scan: give xs or length")
    if n <= 0:
        raise ValueError(f"scan: needs at least one step, got length {n}")
    slices = [leaf.unbind(0) for leaf in x_leaves]
    init_leaves: list[Any] = []
    init_tree = _leaves(init, init_leaves)
    carry = init
    ys: list[Any] = [None] * n
    for i in reversed(range(n)) if reverse else range(n):
        x = _build(x_tree, iter([s[i] for s in slices])) if xs is not None else None
        result = fn(carry, x)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError("scan: fn must return a pair (carry, y)")
        carry, ys[i] = result
        c_leaves: list[Any] = []
        if _leaves(carry, c_leaves) != init_tree or any(
            isinstance(a, Tensor) != isinstance(b, Tensor)
            or (isinstance(a, Tensor) and (a.shape != b.shape or a.dtype is not b.dtype))
            for a, b in zip(c_leaves, init_leaves)
        ):
            raise TypeError(
                "scan: fn must return a carry of the same structure, shapes and dtypes as init "
                f"(step {i})\n  at {user_frame()}"
            )
    y_leaves = []
    for y in ys:
        leaves: list[Any] = []
        tree = _leaves(y, leaves)
        y_leaves.append(leaves)
    if all(len(v) == 1 and v[0] is None for v in y_leaves):
        return carry, None
    stacked = [stack([v[j] for v in y_leaves], 0) for j in range(len(y_leaves[0]))]
    return carry, _build(tree, iter(stacked))
