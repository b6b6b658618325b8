"""Straight-line Python from a :class:`Graph`: one ``compute`` call per node.

The generated function takes the graph's inputs (call tensors, then captured
tensors) as backend arrays and returns its outputs as a tuple. Ops, attributes
and constants that have no exact literal live in the function's namespace.
"""

from __future__ import annotations

import linecache
import math
import re
from collections.abc import Callable
from typing import Any

from ember._src.ops.registry import compute

from .graph import Const, Graph, Var

_EMPTY: dict[str, Any] = {}
_generated = 0


def generate(graph: Graph, backend: Any) -> tuple[str, Callable[..., tuple[Any, ...]]]:
    """The source of ``graph`` as a Python function, and that function."""
    global _generated
    names: dict[str, Any] = {
        "compute": compute,
        "backend": backend,
        "fill": fill,
        "no_attrs": _EMPTY,
    }

    counts: dict[str, int] = {}

    def bind(prefix: str, value: Any) -> str:
        counts[prefix] = counts.get(prefix, -1) + 1
        name = f"{prefix}{counts[prefix]}"
        names[name] = value
        return name

    ops: dict[int, str] = {}
    lines = []
    for node in graph.nodes:
        op = node.op
        if id(op) not in ops:
            ops[id(op)] = "op_" + re.sub(r"\W", "_", op.name) + f"_{len(ops)}"
            names[ops[id(op)]] = op
        args = [a.name if isinstance(a, Var) else _literal(a, bind) for a in node.args]
        operands = "(" + ", ".join(args) + ("," if len(args) == 1 else "") + ")"
        attrs = bind("attrs", node.attrs) if node.attrs else "no_attrs"
        held = _vars_in(node.attrs)
        if held:  # an attribute holds graph values (an index tensor): fill them in per call
            env = ", ".join(f"{v.name!r}: {v.name}" for v in held)
            attrs = f"fill({attrs}, {{{env}}})"
        lines.append(
            f"    {node.out.name} = compute({ops[id(op)]}, backend, {operands}, {attrs})"
            f"  # {node.out.type}"
        )
    params = ", ".join(v.name for v in graph.inputs + graph.captures)
    outs = ", ".join(v.name for v in graph.outputs) + ("," if len(graph.outputs) == 1 else "")
    fname = re.sub(r"\W", "_", graph.name) or "fn"
    source = "\n".join([f"def {fname}({params}):", *lines, f"    return ({outs})", ""])
    _generated += 1
    filename = f"<ember.compile {graph.name} #{_generated}>"
    # Tracebacks through generated code show its lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), names)
    return source, names[fname]


def _literal(c: Const, bind: Callable[[str, Any], str]) -> str:
    v = c.value
    if v is None or type(v) in (bool, int) or (type(v) is float and math.isfinite(v)):
        return repr(v)  # repr of a finite float reads back exactly
    return bind("const", v)


def _vars_in(value: Any) -> list[Var]:
    if type(value) is Var:
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _vars_in(item)]
    return []


def fill(value: Any, env: dict[str, Any]) -> Any:
    """``value`` (attributes) with each Var replaced by its array in ``env``."""
    if type(value) is Var:
        return env[value.name]
    if isinstance(value, dict):
        return {k: fill(v, env) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(fill(v, env) for v in value)
    return value
