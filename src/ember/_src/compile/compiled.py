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
    ) -> None:
        self.graph = graph
        self.source = source
        self.run = run
        self.captured = captured
        self.out_skeleton = out_skeleton
        self.backend = backend

    def stale(self) -> str | None:
        """Why the captured tensors no longer match the trace, or None."""
        for t, v, rg in self.captured:
            d = t._data
            if d.shape != v.shape or d.dtype != v.dtype or t._requires_grad != rg:
                was = f"{v.type}, requires_grad={rg}"
                now = f"{d.dtype.name}{list(d.shape)}, requires_grad={t._requires_grad}"
                return f"captured tensor {v.name} changed: {was} -> {now}"
        return None

    def __call__(self, leaves: list[Tensor]) -> Any:
        arrays = [t._data for t in leaves]
        arrays += [t._data for t, _, _ in self.captured]
        outs = self.run(*arrays)
        backend = self.backend
        wrapped = (Tensor._wrap(a, None, False, backend) for a in outs)
        return _unflatten(self.out_skeleton, wrapped)


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
        functools.update_wrapper(self, fn)

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
            why = entry.stale()
        if entry is None or why is not None:
            entry = self._trace(key, leaves, why)
        self._last = (key, entry)
        return entry(leaves)

    def _trace(self, key: Any, leaves: list[Tensor], why: str | None) -> _Entry:
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
        result = trace(self.fn, graph, tracer, args, kwargs)
        outs: list[Tensor] = []
        out_skeleton = _flatten(result, outs)
        registry._trace_hook = tracer.hook  # outputs that are concrete tensors get captured
        try:
            graph.outputs = [tracer.operand(t) for t in outs]
        finally:
            registry._trace_hook = None
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
        entry = _Entry(graph, source, run, captured, out_skeleton, backend)
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
