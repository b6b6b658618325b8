"""Graphviz DOT text of a :class:`Graph` (no graphviz needed to produce it)."""

from __future__ import annotations

from .graph import Const, Graph, _show
from .passes import effectful, uses


def _label(*lines: str) -> str:
    """A quoted DOT label, one ``\\n``-separated line per argument."""
    escaped = (s.replace("\\", "\\\\").replace('"', '\\"') for s in lines)
    return '"' + "\\n".join(escaped) + '"'


def to_dot(graph: Graph) -> str:
    """The graph as a DOT digraph.

    Inputs and captured tensors (dashed) are boxes, each node an ellipse with
    its op, constant operands and attributes and its result's type, each
    output a filled box; an edge per use of a value (attributes included).
    Effectful nodes (random draws) are bold.
    """
    lines = [f"digraph {_label(graph.name)} {{", "  node [fontsize=10];"]
    for v in graph.inputs:
        lines.append(f"  {v.name} [shape=box, label={_label(f'{v.name}: {v.type}')}];")
    for v in graph.captures:
        label = _label(f"{v.name}: {v.type}", "captured")
        lines.append(f"  {v.name} [shape=box, style=dashed, label={label}];")
    for node in graph.nodes:
        detail = [_show(a.value) for a in node.args if isinstance(a, Const)]
        detail += [f"{k}={_show(v)}" for k, v in node.attrs.items()]
        head = f"{node.op.name}({', '.join(detail)})" if detail else node.op.name
        style = ", style=bold" if effectful(node) else ""
        label = _label(head, f"{node.out.name}: {node.out.type}")
        lines.append(f"  {node.out.name} [label={label}{style}];")
        lines += [f"  {v.name} -> {node.out.name};" for v in uses(node)]
    for i, v in enumerate(graph.outputs):
        lines.append(f"  out{i} [shape=box, style=filled, label={_label(f'output {i}')}];")
        lines.append(f"  {v.name} -> out{i};")
    lines.append("}")
    return "\n".join(lines) + "\n"
