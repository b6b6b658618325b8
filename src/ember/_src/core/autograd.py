"""The tape: grad mode, graph nodes and the backward engine.

Every differentiable op run with grad enabled makes one :class:`Node` for its
output. A node keeps the op record, its attributes, what the gradient rules
need (the inputs, and the output's array if the op asks for it) and one edge
per input: the producing node, the leaf tensor itself, or None. Backward is a
topological sort of the nodes reachable from the roots and one loop that calls
each op's gradient rules, which are written in ember ops, so that with
``create_graph=True`` the backward pass itself is recorded and can be
differentiated again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember._src.core.tensor import Tensor


class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()
# [True] while ember.compile traces (set by the compile layer).
_tracing = [False]


def is_grad_enabled() -> bool:
    """Whether ops record the tape in this thread."""
    return _mode.enabled


class set_grad_enabled:
    """Turn recording on or off; a function, a context manager or a decorator.

    Example:
        >>> import ember
        >>> with ember.set_grad_enabled(False):
        ...     ember.is_grad_enabled()
        False
    """

    def __init__(self, mode: bool) -> None:
        self.prev = _mode.enabled
        self.mode = bool(mode)
        _mode.enabled = self.mode

    def __enter__(self) -> None:
        _mode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self.prev

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        mode = self.mode
        _mode.enabled = self.prev

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = fn.__doc__
        return wrapper


class _Switch:
    mode = True

    def __init__(self) -> None:
        self.prev: list[bool] = []

    def __enter__(self) -> None:
        self.prev.append(_mode.enabled)
        _mode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self.prev.pop()

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        mode = self.mode

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = _mode.enabled
            _mode.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _mode.enabled = prev

        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = fn.__doc__
        return wrapper


class no_grad(_Switch):
    """Context manager and decorator that stops recording the tape.

    Example:
        >>> import ember
        >>> x = ember.ones(2, requires_grad=True)
        >>> with ember.no_grad():
        ...     (x * 2).requires_grad
        False
    """

    mode = False


class enable_grad(_Switch):
    """Context manager and decorator that turns recording back on inside ``no_grad``."""

    mode = True


class Node:
    """One recorded op application: the ``grad_fn`` of its output tensor."""

    __slots__ = (
        "__weakref__",
        "attrs",
        "edges",
        "hooks",
        "inputs",
        "op",
        "out_data",
        "out_version",
        "retained",
        "versions",
    )

    def __init__(
        self,
        op: Any,
        attrs: dict[str, Any],
        inputs: tuple[Any, ...],
        edges: tuple[Any, ...],
        out_data: Any,
        out_version: list[int] | None,
        versions: tuple[int, ...] | None,
    ) -> None:
        self.op = op
        self.attrs = attrs
        self.inputs: tuple[Any, ...] | None = inputs
        self.edges = edges
        self.out_data = out_data
        self.out_version = out_version
        # Saved tensors' versions now, to detect in-place changes before backward.
        self.versions = versions
        self.hooks: list[Callable[[Tensor], Tensor | None]] | None = None
        self.retained: Any = None

    def name(self) -> str:
        return "".join(p.capitalize() for p in self.op.name.split("_")) + "Backward0"

    @property
    def next_functions(self) -> tuple[tuple[Any, int], ...]:
        return tuple((e, 0) for e in self.edges)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"


class GradError(RuntimeError):
    """Backward could not run: freed graph, in-place modification, bad gradient shape."""


def _saved(node: Node) -> tuple[Any, ...]:
    """The node's saved inputs, after checking none was modified in place since forward."""
    inputs = node.inputs
    if inputs is None:
        raise GradError(
            f"trying to backward through {node.name()} a second time (or to read its saved "
            "values after they were freed); pass retain_graph=True to the first backward "
            "if you need to run backward twice"
        )
    for i, (x, v) in enumerate(zip(inputs, node.versions or ())):
        xv = getattr(x, "_version", None)
        if xv is not None and xv[0] != v:
            raise GradError(
                f"one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: input {i} of {node.name()} (shape {tuple(x.shape)}, "
                f"{x.dtype}) is at version {xv[0]}; expected version {v}. Use the out-of-place "
                "op (e.g. `x = x + y` instead of `x += y`) or clone() before modifying it"
            )
    if node.out_version is not None and node.out_version[0] != 0:
        raise GradError(
            f"one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: the output of {node.name()} is at version "
            f"{node.out_version[0]}; expected version 0. Clone it before modifying it in place"
        )
    return inputs


def _toposort(roots: Sequence[Node]) -> list[Node]:
    """Nodes reachable from roots, each after every node that feeds it a gradient."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in roots:
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack: list[tuple[Node, Iterator[Any]]] = [(root, iter(root.edges))]
        while stack:
            node, it = stack[-1]
            for e in it:
                if type(e) is Node and id(e) not in seen:
                    seen.add(id(e))
                    stack.append((e, iter(e.edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def run_backward(
    roots: Sequence[Tensor],
    grad_roots: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
    allow_unused: bool = False,
) -> list[Tensor | None] | None:
    """Propagate ``grad_roots`` back from ``roots``.

    With ``capture`` None, gradients accumulate into leaves' ``.grad``; otherwise
    the gradients with respect to the ``capture`` tensors are returned and no
    ``.grad`` is touched (``ember.grad``).
    """
    from ember._src.core.tensor import Tensor

    prev = _mode.enabled
    _mode.enabled = create_graph
    try:
        grads: dict[int, Tensor] = {}  # node or leaf id -> summed gradient
        leaves: dict[int, Tensor] = {}
        root_nodes: list[Node] = []
        for t, g in zip(roots, grad_roots):
            key = t._node if t._node is not None else t
            if t._node is not None:
                root_nodes.append(t._node)
            else:
                leaves[id(t)] = t
            _accumulate(grads, id(key), g)

        want: dict[int, int] | None = None
        captured: list[Tensor | None] = []
        if capture is not None:
            want = {}
            for i, t in enumerate(capture):
                want.setdefault(id(t._node) if t._node is not None else id(t), i)
            captured = [None] * len(capture)

        for node in _toposort(root_nodes):
            if id(node) not in grads:
                continue
            g = _dense(grads.pop(id(node)))
            if node.hooks:
                for hook in node.hooks:
                    new = hook(g)
                    if new is not None:
                        g = new
            if node.retained is not None:
                t = node.retained()
                if t is not None and capture is None:
                    t.grad = g if create_graph else g.detach()
            if want is not None and id(node) in want:
                for i, t in enumerate(capture or ()):
                    if t._node is node:
                        captured[i] = g
            inputs = _saved(node)
            out = None
            if node.out_data is not None:
                out = Tensor._wrap(node.out_data, node, True)
            op = node.op
            for i, e in enumerate(node.edges):
                if e is None:
                    continue
                gi = op.rule(i)(g, out, *inputs, **node.attrs)
                if gi is None:
                    continue
                in_dtype = inputs[i].dtype
                if type(gi) is not IndexGrad and gi.dtype is not in_dtype:
                    gi = gi.to(in_dtype)  # a promoted input gets its own dtype back
                if type(e) is not Node:
                    leaves[id(e)] = e
                _accumulate(grads, id(e), gi)
            if not retain_graph:
                node.inputs = None
                node.out_data = None

        if capture is not None:
            for i, t in enumerate(capture):
                if t._node is None:
                    captured[i] = _dense(grads.get(id(t)))
                if captured[i] is None and not allow_unused:
                    raise GradError(
                        f"input {i} of ember.grad (shape {tuple(t.shape)}) was not used to "
                        "compute the outputs; pass allow_unused=True to get None for it"
                    )
            return captured

        _to_leaves(grads, leaves, create_graph)
        return None
    finally:
        _mode.enabled = prev


class IndexGrad:
    """A gradient that is zero except at some indices of a ``shape``-shaped tensor.

    The gradient of ``x[index]`` without ``create_graph``: the engine keeps the
    (index, values) parts and builds one dense array when the gradient is used,
    so backward through T slices of a tensor costs O(T) rather than T full-size
    zero arrays. This is accumulation bookkeeping on arrays; no graph is recorded.
    """

    __slots__ = ("parts", "shape")

    def __init__(self, shape: tuple[int, ...], index: tuple[Any, ...], values: Tensor) -> None:
        self.shape = shape
        self.parts: list[tuple[tuple[Any, ...], Tensor]] = [(index, values)]

    def dense(self, base: Tensor | None = None) -> Tensor:
        first = self.parts[0][1]
        xp = first._backend.xp
        out = base._data.copy() if base is not None else xp.zeros(self.shape, first._data.dtype)
        for index, values in self.parts:
            if any(getattr(v, "dtype", None) is not None and v.dtype.kind in "iu" for v in index):
                xp.add.at(out, index, values._data)  # integer indices may repeat
            else:
                out[index] += values._data
        return type(first)._wrap(out, None, False, first._backend)


def _dense(g: Any) -> Any:
    return g.dense() if type(g) is IndexGrad else g


def _accumulate(grads: dict[int, Any], key: int, g: Any) -> None:
    old = grads.get(key)
    if old is None:
        grads[key] = g
    elif type(g) is IndexGrad:
        if type(old) is IndexGrad:
            old.parts.extend(g.parts)
        else:
            grads[key] = g.dense(old)
    elif type(old) is IndexGrad:
        grads[key] = old.dense(g)
    else:
        grads[key] = old + g


def _to_leaves(grads: dict[int, Tensor], leaves: dict[int, Tensor], create_graph: bool) -> None:
    stored: set[int] = set()
    tracing = _tracing[0]  # ember.compile: gradients are symbolic, accumulate out of place
    for key, leaf in leaves.items():
        g = _dense(grads.get(key))
        if g is None or not leaf._requires_grad:
            continue
        if leaf._hooks:
            for hook in leaf._hooks:
                new = hook(g)
                if new is not None:
                    g = new
        if g.shape != leaf.shape:
            raise GradError(
                f"gradient of shape {tuple(g.shape)} cannot accumulate into a leaf of shape "
                f"{tuple(leaf.shape)}"
            )
        if tracing:
            # A symbolic value is never written in place, so it needs no copy, but each
            # .grad gets its own version counter, as its own memory would in eager mode.
            g = type(g)._wrap(g._data, None, False, g._backend)
        elif not create_graph:
            g = g.detach()
            arr = g._data
            # .grad must own its memory: optimizers and clipping update it in place.
            if id(arr) in stored or arr.base is not None or not arr.flags.writeable:
                g = type(g)._wrap(arr.copy(), None, False)
            stored.add(id(g._data))
        if leaf.grad is None:
            leaf.grad = g
        elif create_graph or tracing:
            leaf.grad = leaf.grad + g
        else:
            leaf.grad._data += g._data
            leaf.grad._version[0] += 1
