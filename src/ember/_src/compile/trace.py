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

from ember._src.core import autograd, creation
from ember._src.core import dtype as dt
from ember._src.core import tensor as tensor_module
from ember._src.core.aval import AVal
from ember._src.core.backend import CPU
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
        # Functionalization. id(tensor) -> (tensor, data, node, requires_grad) before the
        # trace rebound it to a Var (an in-place update of a tensor from outside).
        self.lifted: dict[int, tuple[Tensor, Any, Any, bool]] = {}
        # id(tensor) -> (tensor, .grad before the trace, whether the trace read it first)
        self.grads: dict[int, tuple[Tensor, Any, bool]] = {}
        self.created: set[int] = set()  # ids of concrete tensors made during the trace
        # Aliasing: (id(Var), id(version counter)) -> (the counter, its value when the Var
        # was made) for Vars held by tensors that share memory with views. A Var read
        # through that counter after it moved on is stale: an in-place update went to
        # another alias of the memory. (One Var may be held by unrelated tensors, each
        # with its own counter: two parameters given the same gradient value.)
        self.births: dict[tuple[int, int], tuple[list[int], int]] = {}
        self.optimizers: dict[int, Any] = {}  # optimizers stepped in the trace (guards)
        # (0-d tensor, dict, key): a Python number the runner copies in before each call
        self.dynamics: list[tuple[Tensor, dict[str, Any], str]] = []
        self.updates = Updates()  # filled in when the trace ends

    def input(self, t: Tensor) -> Tensor:
        """A symbolic stand-in for the call argument ``t``."""
        v = self.graph.add_input(tuple(t.shape), t._data.dtype, captured=False)
        self.vars.add(id(v))
        s = Tensor._wrap(v, None, False, t._backend)
        s._requires_grad = t._requires_grad
        s._grad = t._grad  # backward() into the argument accumulates into its .grad
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
            born = self.births.get((id(d), id(t._version)))
            if born is not None and born[0][0] != born[1]:
                raise TracerError(
                    "this tensor shares memory with a view or base (reshape, transpose, slice, "
                    "...) that was updated in place after it was made; ember.compile does not "
                    f"carry in-place updates between views and their base\n  at {user_frame()}\n"
                    "  fix: take the view again after the update, update the tensor you read "
                    "instead of its alias, or use out-of-place ops"
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
        if op.view:  # it shares first's version counter (apply's share_version)
            born = (first._version, first._version[0])
            self.births[(id(out), id(first._version))] = born
            if type(first._data) is Var:
                self.births.setdefault((id(first._data), id(first._version)), born)
        return Tensor._wrap(out, None, False, first._backend)

    # ----------------------------------------------------------- functionalization
    def lift(self, t: Tensor) -> None:
        """Before an in-place update: a concrete ``t`` now holds its captured Var."""
        if type(t._data) is not Var:
            v = self.operand(t)
            self._remember(t)
            t._data = v

    def rebind(self, t: Tensor, value: Tensor, what: str) -> None:
        """An in-place update of ``t`` to ``value``: ``t`` now holds ``value``'s Var; the
        runner writes the final value back into ``t`` after each call."""
        d = t._data
        if value.dtype != t.dtype:
            value = value.to(t.dtype)
        v = value._data
        if type(v) is not Var:  # a concrete value (zero_, fill_): a captured constant
            v = self.operand(value)
        if type(d) is not Var:
            self._remember(t)
        t._data = v
        if t._version[1]:  # aliased: its views and base are stale from here (_commit counts)
            self.births[(id(v), id(t._version))] = (t._version, t._version[0] + 1)

    def _remember(self, t: Tensor) -> None:
        if id(t) not in self.lifted:
            self.lifted[id(t)] = (t, t._data, t._node, t._requires_grad)

    def dynamic(self, owner: dict[str, Any], key: str) -> Tensor:
        """``owner[key]`` (a Python number, e.g. a learning rate) as a float64 graph input
        whose value is read from ``owner`` on every call instead of baked in."""
        t = Tensor._wrap(np.array(float(owner[key])), None, False, CPU)
        self.operand(t)
        self.dynamics.append((t, owner, key))
        return t

    def watch_grad(self, t: Tensor, reading: bool) -> None:
        """Every read and write of a ``.grad`` while tracing: remember the first."""
        if id(t) not in self.grads:
            self.grads[id(t)] = (t, t._grad, reading)

    def made(self, t: Tensor) -> None:
        """A concrete tensor made by a creation function during the trace."""
        self.created.add(id(t))

    def random(
        self,
        draw: Callable[..., Any],
        shape: tuple[int, ...],
        dtype: dt.dtype,
        device: Any,
        requires_grad: bool,
        generator: Any,
    ) -> Tensor:
        """A random draw while tracing: a graph node that draws on every run, from the same
        generator and in the same order as eager code would."""
        if device is not None and str(device) != "cpu":
            raise TracerError(
                f"ember.compile traces CPU tensors only for now; got device={device}\n"
                f"  at {user_frame()}"
            )
        attrs = {"draw": _Draw(draw), "shape": shape, "dtype": dtype.np, "generator": generator}
        out = self.graph.add(RANDOM, (), attrs, shape, dtype.np)
        self.vars.add(id(out))
        t = Tensor._wrap(out, None, False, CPU)
        if requires_grad:
            t.requires_grad_(True)
        return t

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


class _Draw:
    """A random node's sampler (a function of a NumPy Generator and a shape), shown by name."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, rng: Any, shape: tuple[int, ...]) -> Any:
        return self.fn(rng, shape)

    def __repr__(self) -> str:
        return self.fn.__qualname__.split(".")[0]  # rand, randn, randint, normal


def _draw(xp: Any, *, draw: _Draw, shape: tuple[int, ...], dtype: Any, generator: Any) -> Any:
    return xp.asarray(np.asarray(draw(generator.numpy, shape)).astype(dtype, copy=False))


def _draw_infer(*, draw: _Draw, shape: tuple[int, ...], dtype: Any, generator: Any) -> AVal:
    return AVal(shape, dt.from_numpy_dtype(dtype))


# Random draws inside a compiled function: drawn when the graph runs, never folded or merged.
RANDOM = Op("random", _draw, infer=_draw_infer, kind="custom", effectful=True)


class Updates:
    """What a trace changed outside the function, for the runner to write back per call.

    ``data``: (tensor, Var) — the tensor's memory gets the Var's value (parameters,
    buffers, optimizer state updated in place). ``grads``: (tensor, Var or None) — its
    ``.grad`` gets the value, or None. ``grad_guards``: (tensor, .grad object) — the trace
    read that ``.grad`` before writing it, so later calls need the same object (or None).
    ``made_state``: a tensor made during the trace was updated in place, or optimizer state
    was set to a traced value (state created on the first step), so this call must run
    eagerly.
    """

    def __init__(self) -> None:
        self.data: list[tuple[Tensor, Var]] = []
        self.grads: list[tuple[Tensor, Var | None]] = []
        self.grad_guards: list[tuple[Tensor, Any]] = []
        self.made_state = False
        self.escaped = False  # optimizer state was set to traced values (and dropped)


def trace(
    fn: Callable[..., Any],
    graph: Graph,
    tracer: Tracer,
    args: Any,
    kwargs: Any,
    outputs: Callable[[Any], list[Tensor]] | None = None,
) -> Any:
    """Run ``fn`` with the tracer's hooks installed; with ``outputs``, make
    ``outputs(result)`` the graph's outputs. Every tensor ``fn`` updated in place and every
    ``.grad`` it wrote is restored afterwards and listed in ``tracer.updates``."""
    if registry._trace_hook is not None:
        raise TracerError("ember.compile cannot trace while another trace is running")
    registry._trace_hook = tracer.hook
    registry._tracer = tracer
    tensor_module._grad_watch = tracer.watch_grad
    creation._trace_random = tracer.random
    creation._trace_created = tracer.made
    autograd._tracing[0] = True
    try:
        result = fn(*args, **kwargs)
        if outputs is not None:  # before anything is restored: an output may be a tensor
            graph.outputs = [tracer.operand(t) for t in outputs(result)]  # updated in place
    finally:
        registry._trace_hook = None
        registry._tracer = None
        tensor_module._grad_watch = None
        creation._trace_random = None
        creation._trace_created = None
        autograd._tracing[0] = False
        final_data = [(t, t._data) for t, *_ in tracer.lifted.values()]
        final_grads = [(t, t._grad) for t, *_ in tracer.grads.values()]
        for t, data, node, requires_grad in tracer.lifted.values():
            t._data, t._node, t._requires_grad = data, node, requires_grad
        for t, g, _ in tracer.grads.values():
            t._grad = g
        escaped = False
        for opt in tracer.optimizers.values():
            # State made from traced values on a first step (SGD's momentum buffer starts
            # as a clone of the gradient) would hold a Var: drop it, as if the step had not
            # run (also when the trace failed).
            for st in opt.state.values():
                for k in [
                    k for k, v in st.items() if isinstance(v, Tensor) and type(v._data) is Var
                ]:
                    del st[k]
                    escaped = True
    tracer.updates = _updates(tracer, final_data, final_grads)
    if escaped:
        tracer.updates.made_state = tracer.updates.escaped = True
    return result


def _updates(
    tracer: Tracer, final_data: list[tuple[Tensor, Any]], final_grads: list[tuple[Tensor, Any]]
) -> Updates:
    u = Updates()
    for t, v in final_data:
        hit = tracer.captured.get(id(t))
        if hit is not None and hit[1] is v:
            continue  # lifted but never changed
        if id(t) in tracer.created:
            u.made_state = True  # a temporary, or state made on a first step: see Updates
            continue
        u.data.append((t, v))
    for t, g in final_grads:
        start, read_first = tracer.grads[id(t)][1:]
        if read_first:
            u.grad_guards.append((t, start))
        if g is start:
            continue
        if g is None:
            u.grads.append((t, None))
        else:
            u.grads.append((t, g._data if type(g._data) is Var else tracer.operand(g)))
    return u
