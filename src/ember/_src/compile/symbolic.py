"""The symbolic API (TensorFlow 1 / Theano style): placeholders, symbolic gradients, functions.

``ember.placeholder(shape)`` is a Tensor around a :class:`Symbol`: a shape (a
``None`` dimension is fixed only when the function is called), a dtype, and
the expression that computes it. Ordinary ember ops on symbolic tensors reach
``registry.apply``, which hands them to :func:`_record` (installed as
``registry._symbolic_hook`` once a placeholder exists): the op is appended to
an expression DAG ``(op, operands, attrs)``, nothing is computed.

Gradient rules bake shapes into their ops (``sum``'s rule expands to the
input's shape), so they cannot run while a dimension is unknown. Each recorded
op therefore gets a tape node whose rules are *deferred*: ``ember.grad`` runs
the ordinary backward engine over the symbolic tape, and every rule call
records a ``vjp`` expression that calls the real rule later, on concrete
shapes. The engine's accumulation order is kept, so symbolic gradients run
the same computation as eager ones.

``ember.function(inputs, outputs, updates=...)`` replays the DAG inside a
function handed to ``ember.compile``: it traces once per concrete input
signature (a new batch size traces again, then is cached) and runs generated
code afterwards. Tensors from outside (parameters, shared variables) are read
afresh on every call and written by ``updates`` after it.

A ``None`` dimension reads as a :class:`Dim` while the graph is built: an int
whose value is a stand-in (``_PROBE``) for Python-level shape arithmetic
(``mean`` divides by it, ``reshape`` takes it) and which the DAG keeps as an
expression, evaluated from the concrete shapes on every trace.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ember._src.core import autograd
from ember._src.core import dtype as dt
from ember._src.core.autograd import IndexGrad, Node
from ember._src.core.aval import AVal
from ember._src.core.backend import _BY_ARRAY_TYPE, CPU
from ember._src.core.tensor import Tensor
from ember._src.ops import registry
from ember._src.ops.registry import Op, ShapeError, TracerError, user_frame

from .compiled import compile as _compile
from .graph import StandIn

# Stand-in values of a None dimension while the graph is built. Shape rules run with both:
# an output dimension that differs between the two depends on the None dimension.
_PROBE, _PROBE2 = 1009, 1013
_order = itertools.count()


class Dim(int):
    """A dimension known only when the function is called.

    It acts as an int with the stand-in value 1009 for Python shape arithmetic
    while the graph is built; where it reaches an op (an attribute, a scalar
    operand) the op keeps the expression and evaluates it per call. Sizing a
    new tensor with it (``ember.zeros(x.shape)``), ``int()`` and ``float()``
    raise, since those would bake the stand-in value in.
    """

    alt: int
    expr: tuple[Any, ...]

    def __new__(cls, value: int, alt: int, expr: tuple[Any, ...]) -> Dim:
        d = super().__new__(cls, value)
        d.alt = alt
        d.expr = expr
        return d

    def __repr__(self) -> str:
        return "None"

    __str__ = __repr__

    def __int__(self) -> int:
        raise _dim_error("int() of it (to size a new tensor, or as a Python index)")

    def __float__(self) -> float:
        raise _dim_error("float() of it")

    def __truediv__(self, other: Any) -> Any:
        raise _dim_error("dividing it with `/` (a float)")

    __rtruediv__ = __truediv__


def _arith(fn: Callable[[int, int], int], reflected: bool = False) -> Callable[[Any, Any], Any]:
    def method(self: Dim, other: Any) -> Any:
        if type(other) is bool or not isinstance(other, int):
            if isinstance(other, float):
                raise _dim_error("arithmetic with a float")
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        return Dim(fn(_value(a), _value(b)), fn(_alt(a), _alt(b)), ("arith", fn, a, b))

    return method


for _name, _fn in [
    ("add", operator.add),
    ("sub", operator.sub),
    ("mul", operator.mul),
    ("floordiv", operator.floordiv),
    ("mod", operator.mod),
]:
    setattr(Dim, f"__{_name}__", _arith(_fn))
    setattr(Dim, f"__r{_name}__", _arith(_fn, reflected=True))


def _neg(self: Dim) -> Dim:
    return Dim(-_value(self), -self.alt, ("arith", operator.sub, 0, self))


Dim.__neg__ = _neg  # type: ignore[method-assign,assignment]


def _value(d: Any) -> int:
    return int.__int__(d)


def _alt(d: Any) -> int:
    return d.alt if type(d) is Dim else d


def _dim_error(what: str) -> TracerError:
    return TracerError(
        f"{what} needs the size of a placeholder's None dimension, which is known only when "
        f"the ember.function is called\n  at {user_frame()}\n"
        "  fix: give the placeholder a fixed size, or use ops that keep the dimension "
        "(reshape(-1, n), mean(), x * 0 instead of zeros(x.shape), x[-1] instead of "
        "x[x.shape[0] - 1])"
    )


class Symbol(StandIn):
    """A symbolic array: shape (ints and :class:`Dim`), NumPy dtype and its expression.

    ``expr`` is ``("placeholder",)``, ``("op", op, operands, attrs)`` or
    ``("vjp", op, i, g, out, inputs, attrs)``; operands are Symbols, concrete
    Tensors (read when the function runs) and Python values.
    """

    __slots__ = ("dtype", "expr", "name", "order", "shape")

    def __init__(
        self, shape: tuple[Any, ...], dtype: np.dtype[Any], expr: tuple[Any, ...], name: str
    ) -> None:
        self.shape = shape
        self.dtype = dtype
        self.expr = expr
        self.name = name
        self.order = next(_order)

    def __repr__(self) -> str:
        return f"<Symbol {self.name}: {self.type}>"

    def describe_tensor(self) -> str:
        """What ``repr`` of a Tensor holding this Symbol shows (it has no values)."""
        return f"<symbolic tensor {self.name}: {self.type}>"

    def __getattr__(self, name: str) -> Any:
        what = "converting it to an array" if name.startswith("__array") else f"reading .{name}"
        raise _value_error(self, what)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise _value_error(self, "converting it to a NumPy array")

    def __setitem__(self, index: Any, value: Any) -> None:
        raise _value_error(self, "writing into it in place")

    def __getitem__(self, index: Any) -> Any:
        raise _value_error(self, "indexing its array")

    def __bool__(self) -> bool:
        raise _value_error(self, "bool() of it (an `if` or `while` on a tensor)")

    def __float__(self) -> float:
        raise _value_error(self, "float() of it")

    def __int__(self) -> int:
        raise _value_error(self, "int() of it")

    def __index__(self) -> int:
        raise _value_error(self, "using it as a Python int")

    def __len__(self) -> int:
        raise _value_error(self, "len() of its array")

    def _compare(self, other: Any) -> Any:
        raise _value_error(self, "comparing its array")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _compare
    __hash__ = object.__hash__


# Tensors made around a Symbol without a backend (detach, the backward engine) are on the CPU.
_BY_ARRAY_TYPE[Symbol] = CPU


def _value_error(sym: Symbol, what: str) -> TracerError:
    return TracerError(
        f"{what} needs values, but this tensor is symbolic ({sym.name}: {sym.type}, built from "
        f"ember.placeholder)\n  at {user_frame()}\n"
        "  fix: compile the graph with f = ember.function([placeholders], outputs) and call "
        "f(arrays); use ember.grad(loss, params) for gradients (not backward()), ember.where "
        "or ember.cond for value-dependent choices"
    )


def _is_symbolic(t: Any) -> bool:
    return isinstance(t, Tensor) and type(t._data) is Symbol


def _wrap(sym: Symbol) -> Tensor:
    return Tensor._wrap(sym, None, False, CPU)


# ------------------------------------------------------------------ recording
def _record(op: Op, args: tuple[Any, ...], attrs: dict[str, Any]) -> Tensor | None:
    """``registry._symbolic_hook``: record ``op`` if an operand is symbolic, else None."""
    for a in args:
        if isinstance(a, Tensor) and type(a._data) is Symbol:
            break
    else:
        return None
    _check_attrs(op, attrs)
    operands = tuple(a._data if _is_symbolic(a) else a for a in args)
    shape, dtype = _infer(op, args, attrs)
    sym = Symbol(shape, dtype, ("op", op, operands, attrs), f"{op.name}_{next(_order)}")
    sym.shape = tuple(
        Dim(d, alt, ("dim", sym, k)) if alt is not None else d for k, (d, alt) in enumerate(shape)
    )
    t = _wrap(sym)
    vjp = op.vjp
    if vjp is None or not autograd._mode.enabled or dtype.kind not in "fcV":
        return t
    edges: list[Any] = []
    for a in args if op.variadic else args[: len(vjp)]:
        if isinstance(a, Tensor) and a._requires_grad:
            edges.append(a._node if a._node is not None else a)
        else:
            edges.append(None)
    if any(e is not None for e in edges):
        t._requires_grad = True
        t._node = Node(_Deferred(op, sym), attrs, args, tuple(edges), None, None, None)
    return t


def _items(v: Any) -> Iterator[Any]:
    """The values in ``v`` that are not containers: through tuples, lists, dict values
    and slices' bounds."""
    if isinstance(v, (tuple, list)):
        for x in v:
            yield from _items(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from _items(x)
    elif isinstance(v, slice):
        yield from _items((v.start, v.stop, v.step))
    else:
        yield v


def _check_attrs(op: Op, attrs: dict[str, Any]) -> None:
    for v in _items(attrs):
        if type(v) is Symbol or _is_symbolic(v):
            raise TracerError(
                f"{op.name}: a symbolic tensor used as an index or attribute is not supported by "
                f"the symbolic API\n  at {user_frame()}\n"
                "  fix: use ops that take the index as a tensor operand (gather, ember.where), "
                "or index inside a function given to ember.compile"
            )


def _probe(value: Any, second: bool) -> Any:
    """``value`` with every Dim replaced by its stand-in int (the first or second one)."""
    if type(value) is Dim:
        return value.alt if second else _value(value)
    if isinstance(value, tuple):
        return tuple(_probe(v, second) for v in value)
    if isinstance(value, list):
        return [_probe(v, second) for v in value]
    if isinstance(value, slice):
        return slice(*_probe((value.start, value.stop, value.step), second))
    return value


def _has_dim(value: Any) -> bool:
    return any(type(v) is Dim for v in _items(value))


def _infer(
    op: Op, args: tuple[Any, ...], attrs: dict[str, Any]
) -> tuple[tuple[tuple[int, int | None], ...], np.dtype[Any]]:
    """The output's dims, each ``(value, alt)`` with alt None when it is static, and dtype."""
    results = []
    for second in (False, True):
        avals = [
            AVal(_probe(tuple(a._data.shape), second), dt.from_numpy_dtype(a._data.dtype))
            if isinstance(a, Tensor)
            else _probe(a, second)
            for a in args
        ]
        try:
            results.append(op.infer(*avals, **{k: _probe(v, second) for k, v in attrs.items()}))
        except Exception as e:
            if not (_has_dim(args) or _has_dim(attrs) or _has_dim([_shape(a) for a in args])):
                raise
            stand_in = _PROBE2 if second else _PROBE
            raise ShapeError(
                f"{e}\n  (the placeholders' None dimensions were checked as {stand_in}: "
                "these shapes must fit for every size of a None dimension)"
            ) from None
    a, b = results
    dims = tuple((int(x), None if x == y else int(y)) for x, y in zip(a.shape, b.shape))
    return dims, a.dtype.np


def _shape(a: Any) -> tuple[Any, ...]:
    return tuple(a._data.shape) if isinstance(a, Tensor) else ()


class _Deferred:
    """The op of a symbolic tape node: each gradient rule records a ``vjp`` expression."""

    __slots__ = ("name", "op", "out")

    def __init__(self, op: Op, out: Symbol) -> None:
        self.op = op
        self.out = out
        self.name = op.name

    def rule(self, i: int) -> Callable[..., Tensor]:
        def deferred(g: Any, out: Any, *inputs: Any, **attrs: Any) -> Tensor:
            if autograd._mode.enabled:
                raise TracerError(
                    "ember.grad(..., create_graph=True) of symbolic tensors (a gradient of a "
                    f"gradient) is not supported by the symbolic API\n  at {user_frame()}\n"
                    "  fix: take higher-order gradients inside a function given to ember.compile"
                )
            x = inputs[i]
            refs = tuple(a._data if _is_symbolic(a) else a for a in inputs)
            g = g._data if _is_symbolic(g) else g
            expr = ("vjp", self.op, i, g, self.out, refs, attrs)
            return _wrap(Symbol(tuple(x._data.shape), x._data.dtype, expr, f"d_{self.name}"))

        return deferred


# ------------------------------------------------------------------ placeholders
def placeholder(
    shape: Sequence[int | None] | int,
    dtype: Any = None,
    name: str | None = None,
    requires_grad: bool | None = None,
) -> Tensor:
    """A symbolic input: ops on it build a graph that ``ember.function`` compiles.

    Args:
        shape: the input's shape; ``None`` marks a dimension (a batch) fixed
            only when the function is called.
        dtype: an ember dtype (default: the default float dtype).
        name: shown when printed and in error messages.
        requires_grad: whether ``ember.grad`` may differentiate with respect to
            it (default: True for floating dtypes, as in TensorFlow and Theano).

    Returns:
        A symbolic Tensor. It has a shape and dtype but no values.

    Example:
        >>> import ember
        >>> x = ember.placeholder((None, 3), name="x")
        >>> x
        <symbolic tensor x: float32[None, 3]>
        >>> f = ember.function([x], (x * 2.0).sum(dim=1))
        >>> f([[1.0, 2.0, 3.0]])
        array([12.], dtype=float32)
    """
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    for d in dims:
        if d is not None and (not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0):
            raise ValueError(
                f"placeholder: shape entries must be non-negative ints or None, got {shape!r}"
            )
    d_type = dt.get_default_dtype() if dtype is None else dt.to_dtype(dtype)
    if name is None:
        name = f"placeholder_{next(_order)}"
    sym = Symbol((), d_type.np, ("placeholder",), name)
    sym.shape = tuple(
        Dim(_PROBE, _PROBE2, ("dim", sym, k)) if d is None else int(d) for k, d in enumerate(dims)
    )
    registry._symbolic_hook = _record
    t = _wrap(sym)
    if requires_grad is None:
        requires_grad = d_type.is_floating_point
    if requires_grad:
        t.requires_grad_(True)
    return t


# ------------------------------------------------------------------ replay
def _deps(sym: Symbol, givens: dict[int, Any]) -> list[Symbol]:
    """The Symbols ``sym``'s expression reads (operands, and those its Dims refer to)."""
    out: list[Symbol] = []

    def walk(v: Any) -> None:
        for x in _items(v):
            if type(x) is Symbol:
                out.append(x)
            elif type(x) is Dim:
                e = x.expr
                if e[0] == "dim":
                    out.append(e[1])
                else:
                    walk((e[2], e[3]))

    e = sym.expr
    if e[0] == "placeholder":
        given = givens.get(id(sym))
        if given is not None:
            walk(given)
    elif e[0] == "op":
        walk(e[2])
        walk(e[3])
    else:
        walk(e[3:])
    return out


def _schedule(targets: Sequence[Symbol], givens: dict[int, Any]) -> list[Symbol]:
    """Every Symbol the targets need, each after the ones it reads (iterative post-order)."""
    order: list[Symbol] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done
    for root in targets:
        if id(root) in state:
            continue
        stack = [(root, iter(_deps(root, givens)))]
        state[id(root)] = 1
        while stack:
            sym, it = stack[-1]
            for d in it:
                s = state.get(id(d))
                if s is None:
                    state[id(d)] = 1
                    stack.append((d, iter(_deps(d, givens))))
                    break
                if s == 1:
                    raise ValueError(
                        f"ember.function: givens make {d.name} depend on itself; a given's "
                        "value cannot be computed from the placeholder it replaces"
                    )
            else:
                stack.pop()
                state[id(sym)] = 2
                order.append(sym)
    return order


def _evaluate(order: list[Symbol], env: dict[int, Any], givens: dict[int, Any]) -> None:
    """Run the schedule on concrete (or traced) tensors; ``env`` maps Symbol ids to them."""

    def ev(v: Any) -> Any:
        if type(v) is Symbol:
            return env[id(v)]
        if type(v) is Dim:
            e = v.expr
            if e[0] == "dim":
                return int(env[id(e[1])].shape[e[2]])
            return e[1](ev(e[2]), ev(e[3]))
        if isinstance(v, tuple):
            return tuple(ev(x) for x in v)
        if isinstance(v, list):
            return [ev(x) for x in v]
        if isinstance(v, dict):
            return {k: ev(x) for k, x in v.items()}
        if isinstance(v, slice):
            return slice(ev(v.start), ev(v.stop), ev(v.step))
        return v

    for sym in order:
        key = id(sym)
        e = sym.expr
        if e[0] == "placeholder":
            if key not in env:
                env[key] = ev(givens[key])
            continue
        if e[0] == "op":
            env[key] = registry.apply(e[1], *ev(e[2]), **ev(e[3]))
            continue
        _, op, i, g, out, inputs, attrs = e
        x = ev(inputs[i])
        r = op.rule(i)(ev(g), ev(out), *ev(inputs), **ev(attrs))
        if type(r) is IndexGrad:
            r = r.dense()
        elif r is None:
            r = x * 0
        if r.dtype is not x.dtype:
            r = r.to(x.dtype)
        env[key] = r


class Function:
    """A graph of symbolic tensors compiled into a callable on NumPy arrays (``ember.function``)."""

    def __init__(
        self,
        inputs: Sequence[Tensor],
        outputs: Any,
        updates: Any = None,
        givens: Any = None,
        name: str | None = None,
    ) -> None:
        if isinstance(inputs, Tensor) or not isinstance(inputs, (list, tuple)):
            raise TypeError("ember.function: inputs must be a list of ember.placeholder tensors")
        self.inputs = list(inputs)
        seen: set[int] = set()
        for i, x in enumerate(self.inputs):
            if not (_is_symbolic(x) and x._data.expr[0] == "placeholder"):
                raise TypeError(
                    f"ember.function: inputs[{i}] is not an ember.placeholder (got "
                    f"{_describe(x)}); list the placeholders the outputs are computed from"
                )
            if id(x._data) in seen:
                raise ValueError(f"ember.function: placeholder {x._data.name} is listed twice")
            seen.add(id(x._data))
        self.single = isinstance(outputs, Tensor)
        outs = [] if outputs is None else [outputs] if self.single else list(outputs)
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                raise TypeError(f"ember.function: outputs[{i}] is not a Tensor: {_describe(o)}")
        self.outputs = outs
        self.updates = _updates(updates)
        self.givens = _givens(givens, seen)
        targets = [o._data for o in outs if _is_symbolic(o)]
        targets += [v._data for _, v in self.updates if _is_symbolic(v)]
        self._order = _schedule(targets, self.givens)
        # Tensors with values the graph reads: outputs must not hand out their memory.
        self._concrete = _concrete_tensors(self._order, self.givens)
        self._concrete += [o for o in outs if not _is_symbolic(o)]
        self._concrete += [s for s, _ in self.updates]
        wanted = {id(x._data) for x in self.inputs}
        for sym in self._order:
            if sym.expr[0] == "placeholder" and id(sym) not in wanted | set(self.givens):
                raise ValueError(
                    f"ember.function: the outputs depend on placeholder {sym.name} ({sym.type}), "
                    "which is not in inputs; add it to inputs (or to givens)"
                )
        self.name = name or "function"

        def run(*tensors: Tensor) -> tuple[Tensor, ...]:
            return self._run(*tensors)

        run.__name__ = run.__qualname__ = self.name  # the graph's name in .graph and traces
        self._compiled = _compile(run)

    @property
    def traces(self) -> int:
        """How many concrete input signatures have been traced so far."""
        return self._compiled.traces

    @property
    def graph(self) -> Any:
        """The traced graph of the most recent call's signature."""
        return self._compiled.graph

    def _run(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        env: dict[int, Any] = {id(x._data): t for x, t in zip(self.inputs, tensors)}
        _evaluate(self._order, env, self.givens)
        outs = [env[id(o._data)] if _is_symbolic(o) else o for o in self.outputs]
        outs += [env[id(v._data)] if _is_symbolic(v) else v for _, v in self.updates]
        return tuple(outs)

    def __call__(self, *args: Any) -> Any:
        if len(args) != len(self.inputs):
            names = ", ".join(x._data.name for x in self.inputs)
            raise TypeError(
                f"ember.function takes {len(self.inputs)} inputs ({names}), got {len(args)}"
            )
        tensors = [_feed(i, x._data, a) for i, (x, a) in enumerate(zip(self.inputs, args))]
        with autograd.no_grad():
            results = self._compiled(*tensors)
        n = len(self.outputs)
        feeds = [t._data for t in tensors]
        held = feeds + [t._data for t in self._concrete]
        outs = []
        for r in results[:n]:
            a = r._data
            if any(np.may_share_memory(a, b) for b in held):
                a = a.copy()  # never hand out memory of an input, a parameter or an update
            outs.append(a)
        news = []
        for (s, _), r in zip(self.updates, results[n:]):
            new = np.array(r._data, dtype=s._data.dtype, copy=True)
            if new.shape != s._data.shape:
                raise ValueError(
                    f"ember.function: the update of a {_describe(s)} computed shape "
                    f"{new.shape}; nothing was updated"
                )
            news.append(new)
        for (s, _), new in zip(self.updates, news):
            s._data[...] = new
            s._version[0] += 1
        if self.single:
            return outs[0]
        return outs

    def __repr__(self) -> str:
        names = ", ".join(x._data.name for x in self.inputs)
        return f"<ember.function {self.name}({names}), {self.traces} traces>"


def _concrete_tensors(order: list[Symbol], givens: dict[int, Any]) -> list[Tensor]:
    """The distinct tensors with values that the scheduled expressions read."""
    found: dict[int, Tensor] = {}

    for sym in order:
        e = sym.expr
        for v in _items(givens.get(id(sym)) if e[0] == "placeholder" else e[2:]):
            if isinstance(v, Tensor) and type(v._data) is not Symbol:
                found.setdefault(id(v), v)
    return list(found.values())


def _describe(x: Any) -> str:
    if isinstance(x, Tensor):
        kind = "symbolic " if type(x._data) is Symbol else ""
        d = x._data
        return f"{kind}tensor {d.dtype.name}{list(d.shape)}"
    return type(x).__name__


def _updates(updates: Any) -> list[tuple[Tensor, Tensor]]:
    if updates is None:
        return []
    pairs = list(updates.items()) if isinstance(updates, dict) else list(updates)
    out = []
    seen: set[int] = set()
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(
                f"ember.function: updates[{i}] must be a (tensor, new_value) pair, got {pair!r}"
            )
        s, v = pair
        if not isinstance(s, Tensor) or _is_symbolic(s):
            raise TypeError(
                f"ember.function: updates[{i}] assigns to {_describe(s)}; only tensors with "
                "values (parameters, shared tensors) can be updated"
            )
        if s._backend.name != "cpu":
            raise TypeError(f"ember.function: updates[{i}]: only CPU tensors can be updated")
        if not isinstance(v, Tensor):
            raise TypeError(
                f"ember.function: updates[{i}]'s new value must be a Tensor, got {_describe(v)}"
            )
        if id(s) in seen:
            raise ValueError(f"ember.function: updates[{i}] updates the same tensor twice")
        seen.add(id(s))
        want, got = tuple(s._data.shape), tuple(v._data.shape)
        fits = len(want) == len(got) and all(type(b) is Dim or a == b for a, b in zip(want, got))
        if not fits:
            raise ValueError(
                f"ember.function: updates[{i}] assigns a value of shape {got} to a tensor of "
                f"shape {want}"
            )
        if not np.can_cast(v._data.dtype, s._data.dtype, "same_kind"):
            raise TypeError(
                f"ember.function: updates[{i}] assigns {v._data.dtype} values to a "
                f"{s._data.dtype} tensor"
            )
        if not s._data.flags.writeable:
            raise ValueError(f"ember.function: updates[{i}] assigns to a read-only tensor")
        out.append((s, v))
    return out


def _givens(givens: Any, inputs: set[int]) -> dict[int, Any]:
    if givens is None:
        return {}
    pairs = list(givens.items()) if isinstance(givens, dict) else list(givens)
    out: dict[int, Any] = {}
    for ph, value in pairs:
        if not (_is_symbolic(ph) and ph._data.expr[0] == "placeholder"):
            raise TypeError(
                f"ember.function: givens keys must be placeholders, got {_describe(ph)}"
            )
        if id(ph._data) in inputs:
            raise ValueError(
                f"ember.function: placeholder {ph._data.name} is both an input and in givens"
            )
        if not isinstance(value, Tensor):
            raise TypeError(
                f"ember.function: givens values must be Tensors, got {_describe(value)}"
            )
        want, got = ph._data.shape, value._data.shape
        if len(want) != len(got) or any(
            type(a) is not Dim and type(b) is not Dim and a != b for a, b in zip(want, got)
        ):
            raise ValueError(
                f"ember.function: givens replaces {ph._data.name} ({ph._data.type}) with a tensor "
                f"of shape {list(got)}"
            )
        out[id(ph._data)] = value._data if _is_symbolic(value) else value
    return out


def _feed(i: int, sym: Symbol, value: Any) -> Tensor:
    """The array for placeholder ``sym``, cast to its dtype and checked against its shape."""
    if isinstance(value, Tensor):
        if type(value._data) is Symbol:
            raise TypeError(f"ember.function: input {i} ({sym.name}) got a symbolic tensor")
        a = value._backend.to_numpy(value._data)
    else:
        a = np.asarray(value)
    if a.dtype != sym.dtype:
        if not np.can_cast(a.dtype, sym.dtype, "same_kind"):
            raise TypeError(
                f"ember.function: input {i} ({sym.name}: {sym.type}) got a {a.dtype} array; "
                f"convert it to {sym.dtype} first"
            )
        a = a.astype(sym.dtype)
    if a.ndim != len(sym.shape) or any(
        type(d) is not Dim and d != s for d, s in zip(sym.shape, a.shape)
    ):
        raise ValueError(
            f"ember.function: input {i} ({sym.name}: {sym.type}) got an array of shape "
            f"{list(a.shape)}"
        )
    return Tensor._wrap(a, None, False, CPU)


def function(
    inputs: Sequence[Tensor],
    outputs: Any = None,
    updates: Any = None,
    givens: Any = None,
    name: str | None = None,
) -> Function:
    """Compile a graph of symbolic tensors into a function of NumPy arrays (Theano's ``function``).

    The graph is replayed inside ``ember.compile``: it traces once per input
    shape signature (a new batch size traces again, then is cached) and runs
    generated code afterwards. Tensors from outside the graph (parameters)
    are read on every call.

    Args:
        inputs: the placeholders, in the order the call passes arrays.
        outputs: a Tensor (the call returns one array) or a list of Tensors
            (the call returns a list of arrays).
        updates: ``[(shared, new_value), ...]`` or a dict: after each call,
            every ``shared`` tensor (a parameter or other tensor with values)
            is overwritten in place with ``new_value`` computed in that call
            (all new values are computed before any is written).
        givens: ``{placeholder: tensor}``: compute the placeholder from this
            tensor (symbolic or concrete) instead of taking it as an input.
        name: shown in the graph and traces.

    Returns:
        A :class:`Function`; call it with arrays (or anything ``np.asarray``
        takes) for the inputs. Arrays are cast to each placeholder's dtype
        when NumPy calls the cast ``same_kind`` (float64 data for float32
        placeholders); others raise.

    Example:
        >>> import ember
        >>> x = ember.placeholder((None,), ember.float64, name="x")
        >>> w = ember.tensor([2.0], dtype=ember.float64, requires_grad=True)
        >>> loss = ((x * w - 1.0) ** 2).mean()
        >>> (gw,) = ember.grad(loss, [w])
        >>> step = ember.function([x], loss, updates=[(w, w - 0.1 * gw)])
        >>> step([1.0, 2.0])
        array(5.)
        >>> w
        tensor([1.3000], dtype=ember.float64, requires_grad=True)
    """
    return Function(inputs, outputs, updates, givens, name)
