"""The tracer: runs a function on symbolic tensors and records a :class:`Graph`.

While tracing, ``registry.apply`` hands every op to :meth:`Tracer.hook`, which
appends a graph node and returns a Tensor around the node's output
:class:`Var`; ``apply``'s recording tail then runs as usual, so the tape (and
``backward()`` / ``ember.grad`` inside the function) works on symbolic tensors
and records the backward pass through the same gradient rules.

Concrete tensors met during tracing (parameters, tensors made inside the
function) are captured: each distinct Tensor object becomes an implicit graph
input, read from that object's ``_data`` on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core.aval import AVal
from ember._src.core.tensor import Tensor
from ember._src.ops import registry
from ember._src.ops.registry import Op, TracerError, user_frame

from .graph import Const, Graph, Var


class Tracer:
    """Records the ops of one trace into ``graph``."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.vars: set[int] = set()  # ids of this graph's Vars
        # id(tensor) -> (tensor, its Var, its .grad when captured)
        self.captured: dict[int, tuple[Tensor, Var, Any]] = {}

    def input(self, t: Tensor) -> Tensor:
        """A symbolic stand-in for the call argument ``t``."""
        v = self.graph.add_input(tuple(t.shape), t._data.dtype, captured=False)
        self.vars.add(id(v))
        s = Tensor._wrap(v, None, False, t._backend)
        s._requires_grad = t._requires_grad
        return s

    def operand(self, t: Tensor) -> Var:
        """The Var that ``t`` holds, capturing ``t`` if it is a concrete tensor."""
        d = t._data
        if type(d) is Var:
            if id(d) not in self.vars:
                raise TracerError(
                    "a tensor from another ember.compile trace is used here (did a traced "
                    f"tensor escape, e.g. into a global?)\n  at {user_frame()}"
                )
            return d
        hit = self.captured.get(id(t))
        if hit is not None:
            return hit[1]
        if t._backend.name != "cpu":
            raise TracerError(
                f"ember.compile traces CPU tensors only for now; got one on {t.device}\n"
                f"  at {user_frame()}"
            )
        v = self.graph.add_input(tuple(d.shape), d.dtype, captured=True)
        self.vars.add(id(v))
        self.captured[id(t)] = (t, v, t.grad)
        return v

    def hook(self, op: Op, args: tuple[Any, ...], attrs: dict[str, Any], first: Tensor) -> Tensor:
        """``apply`` under tracing: infer the output, append a node, return its Tensor."""
        operands: list[Var | Const] = []
        avals: list[Any] = []
        for a in args:
            if isinstance(a, Tensor):
                v = self.operand(a)
                operands.append(v)
                avals.append(AVal(v.shape, dt.from_numpy_dtype(v.dtype)))
            else:
                operands.append(Const(a))
                avals.append(a)
        # Tensors in attributes (integer index arrays) are graph values too.
        attrs = {k: self._attr(v) for k, v in attrs.items()}
        aval = op.infer(*avals, **{k: _probe(op, v) for k, v in attrs.items()})
        shape = tuple(int(s) for s in aval.shape)
        out = self.graph.add(op, operands, attrs, shape, aval.dtype.np)
        self.vars.add(id(out))
        return Tensor._wrap(out, None, False, first._backend)

    def _attr(self, value: Any) -> Any:
        if type(value) is Var and id(value) not in self.vars:
            raise TracerError(
                "an index from another ember.compile trace is used here (did a traced tensor "
                f"escape, e.g. into a global?)\n  at {user_frame()}"
            )
        if isinstance(value, tuple):
            return tuple(self._attr(v) for v in value)
        return value


def _probe(op: Op, value: Any) -> Any:
    """An attribute as the shape rule may read it: an integer index Var becomes zeros of its
    shape (the result's shape does not depend on integer indices' values)."""
    if type(value) is Var:
        if value.dtype.kind == "b":
            raise TracerError(
                f"{op.name}: a boolean mask made inside the compiled function gives a result "
                "whose shape depends on the mask's values, which ember.compile cannot trace\n"
                f"  at {user_frame()}\n"
                "  fix: use ember.where(mask, x, other) or masked_fill, which keep the shape"
            )
        return np.zeros(value.shape, value.dtype)
    if isinstance(value, tuple):
        return tuple(_probe(op, v) for v in value)
    return value


def holds_var(value: Any) -> bool:
    """Whether an attribute refers to a graph value (it is then filled in at run time)."""
    if type(value) is Var:
        return True
    if isinstance(value, (tuple, list)):
        return any(holds_var(v) for v in value)
    return False


def trace(fn: Callable[..., Any], graph: Graph, tracer: Tracer, args: Any, kwargs: Any) -> Any:
    """Run ``fn`` with the tracer's hook installed; the captured tensors are left as found."""
    if registry._trace_hook is not None:
        raise TracerError("ember.compile cannot trace while another trace is running")
    registry._trace_hook = tracer.hook
    try:
        result = fn(*args, **kwargs)
    finally:
        registry._trace_hook = None
        wrote_grad = [t for t, _, g in tracer.captured.values() if t.grad is not g]
        for t, _, g in tracer.captured.values():
            t.grad = g
    if wrote_grad:
        raise TracerError(
            "backward() inside ember.compile accumulated into .grad of a tensor from outside "
            "the compiled function (a parameter); writing .grad back is not supported yet\n"
            "  fix: compute the gradients with ember.grad(loss, params) and return them"
        )
    return result
