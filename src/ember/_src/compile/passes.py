"""Graph passes: dead code, common subexpressions, constants, algebraic identities.

Each pass is a function ``Graph -> Graph`` that returns a new graph (a shallow
copy: the same Vars, new node and output lists) and leaves its argument as it
was. :func:`optimize` runs them in order until nothing changes.

What every pass keeps:

* the graph's outputs, as the same Var objects in the same order: an output
  that a pass would replace by another value becomes ``clone`` of it instead,
  so it still gets its own fresh array (the runner may write outputs back into
  parameters and optimizer state);
* effectful nodes (``getattr(op, "effectful", False)``, e.g. random draws):
  never removed, merged or folded;
* inputs and captured tensors: never folded (captured tensors are read afresh
  on every call, they are not constants);
* uses of Vars inside attributes (index tensors) count like operand uses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ember._src.core.aval import AVal
from ember._src.core.backend import CPU
from ember._src.ops.registry import REGISTRY, Op, compute
from ember._src.ops.shape import clone_op

from .graph import Const, Graph, Node, Var

Pass = Callable[[Graph], Graph]


def effectful(node: Node) -> bool:
    """Whether a node must run even when its result looks unused or repeated (random draws)."""
    return bool(getattr(node.op, "effectful", False))


def registered(node: Node) -> bool:
    """Whether ``node``'s op is the registry's op of its name: the rewrites below know those
    ops' meaning, not that of an unrelated op sharing a name."""
    return REGISTRY.get(node.op.name) is node.op


def vars_in(value: Any) -> Iterator[Var]:
    """The Vars held in an operand or attribute, at any depth of tuples, lists and dicts."""
    if type(value) is Var:
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from vars_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from vars_in(v)


def uses(node: Node) -> Iterator[Var]:
    """Every Var a node reads: its operands, then those inside its attributes."""
    for a in node.args:
        if type(a) is Var:
            yield a
    for v in node.attrs.values():
        yield from vars_in(v)


def _replace(value: Any, sub: Callable[[Var], Any]) -> Any:
    """``value`` with each Var ``v`` in it replaced by ``sub(v)``."""
    if type(value) is Var:
        return sub(value)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_replace(v, sub) for v in value)
    if isinstance(value, list):
        return [_replace(v, sub) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, sub) for k, v in value.items()}
    return value


class _Rewriter:
    """Builds a pass's new graph: substitutes replaced values in later nodes and outputs."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.nodes: list[Node] = []
        self.subst: dict[int, Var | Const] = {}  # id(Var) -> its replacement
        self.outputs = {id(v) for v in graph.outputs}

    def get(self, v: Var) -> Var | Const:
        return self.subst.get(id(v), v)

    def rewrite(self, node: Node) -> Node:
        """``node`` with its operands and attributes substituted (the same node if none were)."""
        if not self.subst:
            return node
        args = tuple(self.get(a) if type(a) is Var else a for a in node.args)
        attrs = node.attrs
        if any(True for _ in vars_in(attrs)):
            attrs = {k: _replace(v, self._attr_value) for k, v in attrs.items()}
        if all(a is b for a, b in zip(args, node.args)) and attrs is node.attrs:
            return node
        return Node(node.op, args, attrs, node.out)

    def _attr_value(self, v: Var) -> Any:
        r = self.get(v)
        return r.value if isinstance(r, Const) else r  # a folded index is its array

    def replace(self, node: Node, by: Var | Const) -> None:
        """Drop ``node``: its value is ``by``. A graph output stays, as a copy of ``by``."""
        if id(node.out) in self.outputs:
            if isinstance(by, Const):  # an output gets a fresh array on every call
                self.nodes.append(node)
                return
            self.nodes.append(Node(clone_op, (by,), {}, node.out))
            return
        self.subst[id(node.out)] = by

    def keep(self, node: Node) -> None:
        self.nodes.append(node)

    def result(self) -> Graph:
        g = copy.copy(self.graph)  # keeps any other fields the graph carries
        g.inputs = list(self.graph.inputs)
        g.captures = list(self.graph.captures)
        g.nodes = self.nodes
        g.outputs = list(self.graph.outputs)
        return g


# ----------------------------------------------------------------- dead code
def dce(graph: Graph) -> Graph:
    """Dead-code elimination: drop nodes whose values no output needs (effectful ones stay)."""
    live = {id(v) for v in graph.outputs}
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if id(node.out) in live or effectful(node):
            kept.append(node)
            live.update(id(v) for v in uses(node))
    g = _Rewriter(graph).result()
    g.nodes = kept[::-1]
    return g


# ----------------------------------------------------------------- common subexpressions
def _key(v: Any) -> Any:
    """A hashable key that is equal only for operands and attributes known to be equal."""
    if type(v) is Var:
        return ("var", id(v))
    if isinstance(v, Const):
        return ("const", _key(v.value))
    if v is None or type(v) in (bool, int, str):
        return (type(v), v)
    if type(v) is float:
        return (float, repr(v))  # 0.0 and -0.0 differ; every nan is the same nan
    if isinstance(v, (tuple, list)):
        return (type(v), tuple(_key(x) for x in v))
    if isinstance(v, dict):
        return (dict, tuple((k, _key(x)) for k, x in v.items()))
    if isinstance(v, slice):
        return (slice, _key(v.start), _key(v.stop), _key(v.step))
    if isinstance(v, np.ndarray):
        return ("object", id(v))  # arrays: only the same object (their values may differ)
    try:
        hash(v)
    except TypeError:
        return ("object", id(v))
    return (type(v), v)


def cse(graph: Graph) -> Graph:
    """Common-subexpression elimination: one node per (op, operands, attributes)."""
    rw = _Rewriter(graph)
    seen: dict[Any, Var] = {}
    for node in graph.nodes:
        node = rw.rewrite(node)
        if effectful(node):
            rw.keep(node)
            continue
        key = (id(node.op), _key(node.args), _key(node.attrs))
        first = seen.get(key)
        if first is None:
            seen[key] = node.out
            rw.keep(node)
        else:
            rw.replace(node, first)
    return rw.result()


# ----------------------------------------------------------------- constants
def fold(graph: Graph) -> Graph:
    """Constant folding: a node whose operands are all constants runs once, now.

    Its value becomes a constant operand of the nodes that read it. Inputs and
    captured tensors are never constants; nor are effectful nodes or outputs
    (an output gets a fresh array on every call).
    """
    rw = _Rewriter(graph)
    for node in graph.nodes:
        node = rw.rewrite(node)
        foldable = (
            not effectful(node)
            and id(node.out) not in rw.outputs
            and all(type(a) is Const for a in node.args)
            and not any(True for _ in vars_in(node.attrs))
        )
        if not foldable:
            rw.keep(node)
            continue
        value = compute(node.op, CPU, [a.value for a in node.args], node.attrs)  # type: ignore[union-attr]
        rw.replace(node, Const(value))
    return rw.result()


# ----------------------------------------------------------------- algebraic identities
def _is(c: Any, number: float) -> bool:
    return type(c) is Const and type(c.value) in (int, float) and c.value == number


def _same_aval(a: Any, out: Var) -> bool:
    return type(a) is Var and a.shape == out.shape and a.dtype == out.dtype


def _identity(node: Node) -> Var | None:
    """The operand that ``node`` returns unchanged, if any."""
    name, args, out = node.op.name, node.args, node.out
    if not registered(node):
        return None
    if name in ("mul", "add", "sub", "div", "pow") and len(args) == 2:
        a, b = args
        unit = 0 if name in ("add", "sub") else 1
        if _is(b, unit) and _same_aval(a, out):
            return a  # type: ignore[return-value]
        if name in ("mul", "add") and _is(a, unit) and _same_aval(b, out):
            return b  # type: ignore[return-value]
        return None
    if name in ("reshape", "cast") and _same_aval(args[0], out):
        return args[0]  # type: ignore[return-value]
    if name == "permute" and tuple(node.attrs["dims"]) == tuple(range(out.ndim)):
        return args[0]  # type: ignore[return-value]
    return None


def simplify(graph: Graph) -> Graph:
    """Algebraic simplification.

    ``x * 1``, ``x + 0``, ``x - 0``, ``x / 1``, ``x ** 1`` (when the result has
    ``x``'s shape and dtype) are ``x``; a cast to ``x``'s own dtype and a
    reshape to its own shape are ``x``; ``permute(permute(x, a), b)`` is one
    permute (or ``x``); ``reshape(reshape(x, a), b)`` is one reshape.
    ``x + 0`` turns ``-0.0`` into ``0.0`` where it is removed, as XLA and
    TorchInductor also allow.
    """
    rw = _Rewriter(graph)
    producer: dict[int, Node] = {}
    for node in graph.nodes:
        node = rw.rewrite(node)
        name = node.op.name
        src = producer.get(id(node.args[0])) if node.args and type(node.args[0]) is Var else None
        merge = name in ("permute", "reshape") and registered(node)
        if src is not None and src.op is node.op and merge:
            if name == "permute":  # y = x.transpose(a); y.transpose(b) = x.transpose(a[b])
                inner = src.attrs["dims"]
                attrs = {**node.attrs, "dims": tuple(inner[d] for d in node.attrs["dims"])}
            else:
                attrs = dict(node.attrs)
            node = Node(node.op, (src.args[0],), attrs, node.out)
        same = _identity(node)
        if same is not None:
            rw.replace(node, same)
            continue
        producer[id(node.out)] = node
        rw.keep(node)
    return rw.result()


# ----------------------------------------------------------------- sums of scatters
def accumulate(z: Any, g: Any, index: tuple[Any, ...]) -> None:
    """``z[index] += g``, summing repeated integer indices as ``index_scatter`` does."""
    if any(hasattr(v, "dtype") and v.dtype.kind in "iu" for v in index):
        np.add.at(z, index, g)
    else:
        z[index] += g


def scatter_sum_forward(
    xp: Any, *operands: Any, shape: tuple[int, ...], indices: tuple[Any, ...], base: bool
) -> Any:
    """``base`` (or zeros of ``shape``) plus each gradient scattered at its index."""
    grads = operands[1:] if base else operands
    z = operands[0].copy() if base else xp.zeros(shape, dtype=grads[0].dtype)
    for g, index in zip(grads, indices):
        accumulate(z, g, index)
    return z


# The sum of slice gradients (an LSTM's four gates, the time steps of a sequence): one
# array written slice by slice, as the eager engine's sparse IndexGrad sums them, instead
# of a zero-filled array per slice and an add per pair. A graph-only op: never on a tape.
scatter_sum_op = Op(
    "scatter_sum",
    scatter_sum_forward,
    infer=lambda *a, shape, indices, base: AVal(shape, a[0].dtype),
    kind="custom",
)


def merge_scatters(graph: Graph) -> Graph:
    """``add`` of ``index_scatter`` results (and at most one dense term) into one
    ``scatter_sum`` node, when each scatter is read by that add only."""
    count: dict[int, int] = {}
    for node in graph.nodes:
        for v in uses(node):
            count[id(v)] = count.get(id(v), 0) + 1
    for v in graph.outputs:
        count[id(v)] = count.get(id(v), 0) + 2
    rw = _Rewriter(graph)
    parts: dict[int, tuple[Any, list[Var], list[Any]]] = {}  # (base or None, grads, indices)
    for node in graph.nodes:
        node = rw.rewrite(node)
        out = node.out
        name = node.op.name if registered(node) else None
        if name == "index_scatter" and count.get(id(out)) == 1:
            parts[id(out)] = (None, [node.args[0]], [node.attrs["index"]])  # type: ignore[list-item]
        elif name == "add" and out.dtype.kind == "f" and len(node.args) == 2:
            a, b = node.args
            pa, pb = parts.get(id(a)), parts.get(id(b))
            dense = [x for x, p in ((a, pa), (b, pb)) if p is None]
            if pa is not None or pb is not None:
                base = dense[0] if dense else None
                ok = base is None or _same_aval(base, out)
                grads = [g for p in (pa, pb) if p is not None for g in p[1]]
                indices = [i for p in (pa, pb) if p is not None for i in p[2]]
                bases = [p[0] for p in (pa, pb) if p is not None and p[0] is not None]
                if bases:
                    ok = ok and base is None and len(bases) == 1
                    base = bases[0]
                ok = ok and all(type(g) is Var and g.dtype == out.dtype for g in grads)
                if ok:
                    if count.get(id(out)) == 1:  # merged into the next add too
                        parts[id(out)] = (base, grads, indices)
                    attrs = {
                        "shape": out.shape,
                        "indices": tuple(indices),
                        "base": base is not None,
                    }
                    args = ([base] if base is not None else []) + grads
                    node = Node(scatter_sum_op, args, attrs, out)
        rw.keep(node)
    return dce(rw.result())


# ----------------------------------------------------------------- all of them
PASSES: tuple[Pass, ...] = (simplify, fold, cse, merge_scatters, dce)


def optimize(graph: Graph, passes: tuple[Pass, ...] = PASSES, rounds: int = 4) -> Graph:
    """Run ``passes`` in order, again while a round shrinks the graph (at most ``rounds``)."""
    for _ in range(rounds):
        before = (len(graph.nodes), _fingerprint(graph))
        for p in passes:
            graph = p(graph)
        if (len(graph.nodes), _fingerprint(graph)) == before:
            break
    return graph


def _fingerprint(graph: Graph) -> int:
    return hash(tuple((id(n.op), id(n.out), _key(n.args)) for n in graph.nodes))
