"""``ember.compile``: trace once per signature, then run generated code.

The cache key is the call's signature: for every tensor argument (at any depth
of tuples, lists and dicts) its shape, dtype, device and ``requires_grad``;
every other argument by type and value; grad mode; and a module's
``training`` flag. A new signature traces; ``verbose=True`` (or
``EMBER_COMPILE_VERBOSE=1``) prints which guard changed.
"""

from __future__ import annotations

import functools
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from ember._src.core import autograd
from ember._src.core.tensor import Tensor
from ember._src.ops import registry
from ember._src.ops.registry import TracerError

from .codegen import generate
from .dot import to_dot
from .graph import Graph, Var
from .memory import Plan, plan
from .passes import optimize
from .trace import Tracer, trace

_LEAF = object()  # a tensor's place in a flattened structure


def _flatten(obj: Any, leaves: list[Tensor]) -> Any:
    """A hashable skeleton of ``obj`` with tensors (appended to ``leaves``) cut out."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return _LEAF
    if isinstance(obj, (tuple, list)):  # namedtuples too (sort, max(dim=...))
        return (type(obj), tuple(_flatten(o, leaves) for o in obj))
    if type(obj) is dict:
        return (dict, tuple((k, _flatten(v, leaves)) for k, v in obj.items()))
    return ("value", type(obj), obj)


def _unflatten(skeleton: Any, leaves: Iterator[Any]) -> Any:
    if skeleton is _LEAF:
        return next(leaves)
    kind = skeleton[0]
    if kind == "value":
        return skeleton[2]
    if kind is dict:
        return {k: _unflatten(v, leaves) for k, v in skeleton[1]}
    items = [_unflatten(s, leaves) for s in skeleton[1]]
    return kind(*items) if hasattr(kind, "_fields") else kind(items)


def _tensor_key(t: Tensor) -> tuple[Any, ...]:
    return (tuple(t.shape), t._data.dtype, t._backend.name, t._requires_grad)


class _Entry:
    """One traced signature: its graph, generated code and what the runner needs."""

    def __init__(
        self,
        graph: Graph,
        source: str,
        run: Callable[..., tuple[Any, ...]],
        captured: list[tuple[Tensor, Var, bool]],
        out_skeleton: Any,
        backend: Any,
        state: _State,
    ) -> None:
        self.graph = graph
        self.source = source
        self.run = run
        self.captured = captured
        self.out_skeleton = out_skeleton
        self.backend = backend
        self.state = state

    def stale(self) -> str | None:
        """Why the captured tensors no longer match the trace, or None."""
        for t, v, rg in self.captured:
            d = t._data
            if d.shape != v.shape or d.dtype != v.dtype or t._requires_grad != rg:
                was = f"{v.type}, requires_grad={rg}"
                now = f"{d.dtype.name}{list(d.shape)}, requires_grad={t._requires_grad}"
                return f"captured tensor {v.name} changed: {was} -> {now}"
        return self.state.stale()

    def __call__(self, leaves: list[Tensor]) -> Any:
        for t, owner, key in self.state.dynamics:
            t._data[()] = owner[key]
        arrays = [t._data for t in leaves]
        arrays += [t._data for t, _, _ in self.captured]
        outs = self.run(*arrays)
        backend = self.backend
        self.state.write_back(outs, leaves, backend)
        wrapped = (Tensor._wrap(a, None, False, backend) for a in outs)
        return _unflatten(self.out_skeleton, wrapped)


class _State:
    """A trace's updates outside the function (functionalization), by output index: the
    runner writes them back after each call, as the eager function would have."""

    def __init__(self, tracer: Tracer, symbolic: list[Tensor], graph: Graph) -> None:
        u = tracer.updates
        outputs = graph.outputs

        def index(v: Var) -> int:
            outputs.append(v)
            return len(outputs) - 1

        arg = {id(s): i for i, s in enumerate(symbolic)}  # the call's tensors, by stand-in
        self.data = [(t, index(v)) for t, v in u.data]
        self.grads = [(t, None if v is None else index(v)) for t, v in u.grads if id(t) not in arg]
        self.inputs = [  # call arguments updated in place
            (i, index(s._data))
            for i, (s, v) in enumerate(zip(symbolic, graph.inputs))
            if s._data is not v
        ]
        # .grad of call arguments (backward() into an input): written into the argument
        self.input_grads = [
            (arg[id(t)], None if v is None else index(v)) for t, v in u.grads if id(t) in arg
        ]
        self.grad_guards = [(t, g) for t, g in u.grad_guards if id(t) not in arg]
        # the trace read an argument's .grad: later calls need the same one (or None)
        self.input_grad_guards = [(arg[id(t)], g) for t, g in u.grad_guards if id(t) in arg]
        self.optimizers = [(opt, _hyperparameters(opt)) for opt in tracer.optimizers.values()]
        self.dynamics = tracer.dynamics

    def stale(self) -> str | None:
        for t, g in self.grad_guards:
            if t._grad is not g:
                was = "None" if g is None else "a tensor"
                return f"a .grad that the function reads changed (was {was} when traced)"
        for opt, hyper in self.optimizers:
            now = _hyperparameters(opt)
            if now != hyper:
                return f"{type(opt).__name__} hyperparameters changed: {hyper} -> {now}"
        return None

    def stale_inputs(self, leaves: list[Tensor]) -> str | None:
        for i, g in self.input_grad_guards:
            if leaves[i]._grad is not g:
                return f"the .grad of tensor argument {i}, which the function reads, changed"
        return None

    def write_back(self, outs: tuple[Any, ...], leaves: list[Tensor], backend: Any) -> None:
        for t, i in self.data:
            t._data[...] = outs[i]
            t._version[0] += 1
        for t, j in self.grads:
            _set_grad(t, None if j is None else outs[j], backend)
        for k, i in self.inputs:
            leaves[k]._data[...] = outs[i]
            leaves[k]._version[0] += 1
        for k, j in self.input_grads:
            _set_grad(leaves[k], None if j is None else outs[j], backend)


def _set_grad(t: Tensor, a: Any, backend: Any) -> None:
    g = t._grad
    if a is None:
        t._grad = None
    elif g is not None and g._data.shape == a.shape and g._data.dtype == a.dtype:
        g._data[...] = a  # keeps the .grad object, as in-place accumulation does
        g._version[0] += 1
    else:
        t._grad = Tensor._wrap(a, None, False, backend)


def _hyperparameters(opt: Any) -> list[dict[str, Any]]:
    """What a traced step baked in: every group's hyperparameters but ``lr`` (an input)."""
    return [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in opt.param_groups]


class Compiled:
    """A function compiled by :func:`compile`; call it like the function."""

    def __init__(
        self, fn: Callable[..., Any], verbose: bool, recompile_limit: int, optimize: bool = True
    ) -> None:
        self.fn = fn
        self.optimize = optimize and os.environ.get("EMBER_COMPILE_OPTIMIZE", "") != "0"
        self.verbose = verbose or os.environ.get("EMBER_COMPILE_VERBOSE", "") not in ("", "0")
        self.recompile_limit = recompile_limit
        self.traces = 0
        self._cache: dict[Any, _Entry] = {}
        self._last: tuple[Any, _Entry] | None = None
        self._made_state: set[Any] = set()  # signatures whose first trace created state
        if isinstance(fn, (types.FunctionType, types.MethodType)):
            functools.update_wrapper(self, fn)
        # A module (or other callable object) is not copied: its attributes are read
        # through __getattr__, so compile(model).eval(), .parameters() act on the model.

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "fn":
            raise AttributeError(name)
        return getattr(self.fn, name)

    @property
    def graph(self) -> Graph:
        """The graph of the most recent call's signature."""
        return self._entry().graph

    @property
    def source(self) -> str:
        """The generated Python of the most recent call's signature."""
        return self._entry().source

    def to_dot(self) -> str:
        """Graphviz DOT text of :attr:`graph` (render with ``dot -Tsvg``)."""
        return to_dot(self.graph)

    def memory_plan(self) -> Plan:
        """The buffer reuse of the most recent signature's code: peak bytes planned vs naive.

        Printable; with ``optimize=False`` no buffer is reused.
        """
        return plan(self.graph, enabled=self.optimize)

    def _entry(self) -> _Entry:
        if self._last is None:
            raise RuntimeError("call the compiled function once first: it traces on the first call")
        return self._last[1]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if registry._trace_hook is not None:  # called inside another trace: trace through
            return self.fn(*args, **kwargs)
        leaves: list[Tensor] = []
        skeleton = _flatten((args, kwargs), leaves)
        key = (
            skeleton,
            tuple(_tensor_key(t) for t in leaves),
            autograd._mode.enabled,
            getattr(self.fn, "training", None),
        )
        try:
            entry = self._cache.get(key)
        except TypeError:
            name = getattr(self.fn, "__name__", "fn")
            raise TypeError(
                f"ember.compile({name}): every argument must be a Tensor or a hashable "
                "value (a tuple, number, string); convert arrays with ember.from_numpy"
            ) from None
        why = None
        if entry is not None:
            why = entry.stale() or entry.state.stale_inputs(leaves)
        if entry is None or why is not None:
            entry = self._trace(key, leaves, why)
            if entry is None:  # the trace made state (see _trace): this call runs eagerly
                return self.fn(*args, **kwargs)
        self._last = (key, entry)
        return entry(leaves)

    def _trace(self, key: Any, leaves: list[Tensor], why: str | None) -> _Entry | None:
        self.traces += 1
        name = getattr(self.fn, "__name__", "fn")
        if self.verbose:
            reason = why or self._changed(key)
            print(f"ember.compile({name}): trace #{self.traces}: {reason}", file=sys.stderr)
        if self.traces > self.recompile_limit:
            warnings.warn(
                f"ember.compile({name}) has traced {self.traces} times (recompile_limit="
                f"{self.recompile_limit}): its inputs keep changing shape, dtype or value; "
                "pass verbose=True to see which, and keep those fixed (pad batches to one size)",
                RuntimeWarning,
                stacklevel=3,
            )
        graph = Graph(name)
        tracer = Tracer(graph)
        symbolic = [tracer.input(t) for t in leaves]
        args, kwargs = _unflatten(key[0], iter(symbolic))
        outs: list[Tensor] = []
        skeleton: list[Any] = []

        def outputs(result: Any) -> list[Tensor]:
            skeleton.append(_flatten(result, outs))
            return outs

        trace(self.fn, graph, tracer, args, kwargs, outputs)
        out_skeleton = skeleton[0]
        if tracer.updates.escaped and key in self._made_state:
            raise TracerError(
                f"ember.compile({name}): an optimizer's state was set to a value computed "
                "inside the compiled function on every trace; ember.compile can only update "
                "existing state tensors in place"
            )
        if tracer.updates.made_state and key not in self._made_state:
            # Tensors made in this trace were updated in place: state created on a first
            # step (an optimizer's moments). The trace left them at their initial values;
            # this call runs eagerly from there, and the next one traces with the state.
            self._made_state.add(key)
            if self.verbose:
                print(
                    f"ember.compile({name}): trace #{self.traces} created state (e.g. optimizer "
                    "moments); this call runs eagerly, the next one traces again",
                    file=sys.stderr,
                )
            return None
        state = _State(tracer, symbolic, graph)
        captured = [(t, v, t._requires_grad) for t, v, _ in tracer.captured.values()]
        for t, _, _ in captured:
            if type(t._data) is Var:
                raise TracerError(
                    f"ember.compile({name}): a tensor from outside the function now holds a "
                    "traced value (was it rebound with .data = ...?); this is not supported yet"
                )
        backend = leaves[0]._backend if leaves else (captured[0][0]._backend if captured else None)
        if self.optimize:
            graph = optimize(graph)
        source, run = generate(graph, backend, self.optimize)
        entry = _Entry(graph, source, run, captured, out_skeleton, backend, state)
        self._cache[key] = entry
        return entry

    def _changed(self, key: Any) -> str:
        """Which guard differs from the previous call's signature."""
        if self._last is None:
            return "first call"
        old = self._last[0]
        if old[2] != key[2]:
            return f"grad mode changed: {old[2]} -> {key[2]}"
        if old[3] != key[3]:
            return f"training changed: {old[3]} -> {key[3]}"
        if old[0] != key[0] or len(old[1]) != len(key[1]):
            return "the arguments' structure or non-tensor values changed"
        paths: list[str] = []
        _paths(key[0], "", paths)
        fields = ("shape", "dtype", "device", "requires_grad")
        for p, a, b in zip(paths, old[1], key[1]):
            for f, x, y in zip(fields, a, b):
                if x != y:
                    return f"{p} {f} changed: {x} -> {y}"
        return "new signature"

    def __repr__(self) -> str:
        return f"<ember.compile({getattr(self.fn, '__name__', 'fn')}), {self.traces} traces>"


def _paths(skeleton: Any, path: str, out: list[str]) -> None:
    """Readable names (``args[0]``, ``kwargs['y']``) of the tensors in a skeleton."""
    if skeleton is _LEAF:
        out.append(path or "argument")
        return
    kind = skeleton[0]
    if kind == "value":
        return
    if kind is dict:
        for k, v in skeleton[1]:
            _paths(v, f"{path}[{k!r}]" if path else str(k), out)
    else:
        for i, s in enumerate(skeleton[1]):
            _paths(s, f"{path}[{i}]" if path else ("args", "kwargs")[i], out)


def compile(
    fn: Callable[..., Any] | None = None,
    *,
    verbose: bool = False,
    recompile_limit: int = 8,
    optimize: bool = True,
) -> Any:
    """Compile ``fn`` to straight-line code, traced once per argument signature.

    The first call with a new signature (tensor shapes, dtypes, devices,
    ``requires_grad``; other arguments' values) runs ``fn`` on symbolic
    tensors and records every op into a graph; later calls with that
    signature run generated Python that calls each op's array computation
    directly, with no dispatch or tape. Tensors from outside ``fn``
    (parameters) are read afresh on every call. ``ember.grad`` and
    ``backward()`` inside ``fn`` compile the backward pass too.

    Args:
        fn: a function of tensors (and hashable values) returning tensors,
            tuples, lists or dicts of them. Omit it to use ``compile`` as a
            decorator with options.
        verbose: print why each trace happened (which guard changed).
        recompile_limit: warn once a function has traced more often than this.
        optimize: run the graph passes, direct NumPy calls and the memory plan
            (``EMBER_COMPILE_OPTIMIZE=0`` turns them off everywhere).

    Returns:
        A callable with ``.graph`` (the IR), ``.source`` (the generated code),
        ``.traces`` (how many traces so far), ``.to_dot()`` and ``.memory_plan()``.

    Example:
        >>> import ember
        >>> @ember.compile
        ... def f(x, y):
        ...     return (x * y + 1.0).sum()
        >>> f(ember.ones(3), ember.ones(3))
        tensor(6.)
        >>> print(f.graph)
        graph f(x0: float32[3], x1: float32[3])
          v2: float32[3] = mul(x0, x1)
          v3: float32[3] = add(v2, 1.0)
          v4: float32[] = sum(v3, dim=None, keepdim=False)
          return v4
    """
    if fn is None:
        return lambda f: Compiled(f, verbose, recompile_limit, optimize)
    return Compiled(fn, verbose, recompile_limit, optimize)
