"""Straight-line Python from a :class:`Graph`.

The generated function takes the graph's inputs (call tensors, then captured
tensors) as backend arrays and returns its outputs as a tuple. Ops, attributes
and constants that have no exact literal live in the function's namespace.

Without optimization every node is one ``compute(...)`` call (what eager
``apply`` runs). With it, on the CPU, nodes that need no dtype handling are
direct NumPy calls (:mod:`.kernels`) and, following the memory plan
(:mod:`.memory`), write into buffers kept between calls through ``out=``. The
buffers belong to the compiled function: a call made while another is running
(another thread) gets buffers of its own.
"""

from __future__ import annotations

import functools
import keyword
import linecache
import math
import re
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ember._src.ops.registry import compute

from .graph import Const, Graph, Var
from .kernels import kernel_for
from .memory import plan as memory_plan

_EMPTY: dict[str, Any] = {}
_generated = 0


def generate(
    graph: Graph, backend: Any, optimize: bool = False
) -> tuple[str, Callable[..., tuple[Any, ...]]]:
    """The source of ``graph`` as a Python function, and that function.

    ``optimize``: direct NumPy calls and the memory plan (CPU backend only).
    """
    global _generated
    names: dict[str, Any] = {
        "compute": compute,
        "backend": backend,
        "fill": fill,
        "no_attrs": _EMPTY,
        "np": np,
    }

    counts: dict[str, int] = {}

    def bind(prefix: str, value: Any) -> str:
        counts[prefix] = counts.get(prefix, -1) + 1
        name = f"{prefix}{counts[prefix]}"
        names[name] = value
        return name

    direct = optimize and getattr(backend, "name", None) == "cpu"
    planned = memory_plan(graph) if direct else None
    slot = planned.slot if planned else {}
    views: dict[tuple[Any, ...], str] = {}  # (buffer, shape, dtype) -> parameter name
    ops: dict[int, str] = {}
    lines = []
    for node in graph.nodes:
        args = [a.name if isinstance(a, Var) else _literal(a, bind) for a in node.args]
        k = slot.get(node.out.name)
        out = None
        if k is not None:
            out = views.setdefault((k, node.out.shape, node.out.dtype), f"s{len(views)}")
        kernel = kernel_for(node) if direct else None
        comment = f"  # {node.out.type}" + ("" if k is None else f" in b{k}")
        if kernel is not None and (out is not None or node.out.ndim > 0):
            body = kernel.emit(node, args, out, bind)
            lines += [f"    {s}" for s in body[:-1]] + [f"    {body[-1]}{comment}"]
            continue
        op = node.op
        if id(op) not in ops:
            ops[id(op)] = "op_" + re.sub(r"\W", "_", op.name) + f"_{len(ops)}"
            names[ops[id(op)]] = op
        operands = "(" + ", ".join(args) + ("," if len(args) == 1 else "") + ")"
        attrs = bind("attrs", node.attrs) if node.attrs else "no_attrs"
        held = _vars_in(node.attrs)
        if held:  # an attribute holds graph values (an index tensor): fill them in per call
            env = ", ".join(f"{v.name!r}: {v.name}" for v in held)
            attrs = f"fill({attrs}, {{{env}}})"
        lines.append(f"    {node.out.name} = compute({ops[id(op)]}, backend, {operands}, {attrs})"
                     + comment)  # fmt: skip
    params = ", ".join(v.name for v in graph.inputs + graph.captures)
    outs = ", ".join(v.name for v in graph.outputs) + ("," if len(graph.outputs) == 1 else "")
    fname = re.sub(r"\W", "_", graph.name) or "fn"
    if fname[0].isdigit() or keyword.iskeyword(fname):
        fname = "_" + fname
    taken = set(names) | {"views", "held", "lock"}  # the function's own name must not shadow
    while fname in taken or f"{fname}_planned" in taken:
        fname += "_"
    if views:
        assert planned is not None
        names["views"] = functools.partial(_views, planned.buffers, list(views))
        names["held"] = names["views"]()  # the buffers kept between calls, as views
        names["lock"] = threading.Lock()
        inner = f"{fname}_planned"
        head = [
            f"def {inner}({', '.join([params, *views.values()] if params else views.values())}):"
        ]
        call = f"{params}, " if params else ""
        tail = [
            "",
            f"def {fname}({params}):",
            "    if lock.acquire(False):",
            "        try:",
            f"            return {inner}({call}*held)",
            "        finally:",
            "            lock.release()",
            f"    return {inner}({call}*views())  # another call is running: new buffers",
        ]
    else:
        head, tail = [f"def {fname}({params}):"], []
    source = "\n".join([*head, *lines, f"    return ({outs})", *tail, ""])
    _generated += 1
    filename = f"<ember.compile {graph.name} #{_generated}>"
    # Tracebacks through generated code show its lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), names)
    return source, names[fname]


def _views(sizes: list[int], views: list[tuple[Any, ...]]) -> list[Any]:
    """New buffers of ``sizes`` bytes, and a view of the start of one per ``(buffer, shape,
    dtype)``: the arrays the planned code writes into."""
    raw = [np.empty(n, np.uint8) for n in sizes]
    out = []
    for k, shape, dtype in views:
        n = math.prod(shape) * dtype.itemsize
        out.append(raw[k][:n].view(dtype).reshape(shape))
    return out


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
