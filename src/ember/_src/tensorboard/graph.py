"""``add_graph``'s converter: trace a model with ember's tracer, describe it as a GraphDef.

The model runs once on symbolic tensors (``ember.compile``'s tracer, in eval mode and without
gradients, as PyTorch's ``add_graph`` does), so every primitive op becomes a node. Each node is
named by the module whose ``forward`` applied it (``Net/Linear[fc1]/matmul``); TensorBoard
folds the nodes of a module into one box, which opens into the ops. Parameters and buffers are
named by their module path (``Net/Linear[fc1]/weight``). Every node carries its output's shape
(``_output_shapes``, drawn on the edges) and dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ember._src.compile.graph import Const, Graph, Node, Var
from ember._src.compile.trace import Tracer, trace
from ember._src.core.autograd import no_grad
from ember._src.core.creation import from_numpy
from ember._src.core.tensor import Tensor
from ember._src.nn.module import Module
from ember._src.ops import registry

#: TensorBoard's DataType numbers (tensorflow/core/framework/types.proto) by NumPy name.
_DATA_TYPES = {
    "float32": 1,
    "float64": 2,
    "int32": 3,
    "uint8": 4,
    "int16": 5,
    "int8": 6,
    "complex64": 8,
    "int64": 9,
    "bool": 10,
    "bfloat16": 14,
    "uint16": 17,
    "complex128": 18,
    "float16": 19,
    "uint32": 22,
    "uint64": 23,
}


class TracedModel:
    """A model's traced graph and the TensorBoard name of each of its values.

    ``names`` maps ``id(var)`` to a node name, for the graph's inputs, captures and op
    outputs; ``kinds`` the captures' ``id(var)`` to ``"Parameter"``, ``"Buffer"`` or
    ``"Constant"``.
    """

    def __init__(self, graph: Graph, names: dict[int, str], kinds: dict[int, str]) -> None:
        self.graph = graph
        self.names = names
        self.kinds = kinds


class _ScopedGraph(Graph):
    """A graph that notes which module's ``forward`` was running when each node was added."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.stack = [root]  # the scopes of the modules whose forward is running
        self.scopes: dict[int, str] = {}  # id(node.out) -> scope

    def add(self, *args: Any, **kwargs: Any) -> Var:
        out = super().add(*args, **kwargs)
        self.scopes[id(out)] = self.stack[-1]
        return out

    def scope(self, node: Node) -> str:
        return self.scopes.get(id(node.out), self.name)


def _scopes(module: Module, scope: str, out: dict[int, str]) -> dict[int, str]:
    """``id(module)`` -> ``Root/Child[attr]/Grandchild[attr]``, PyTorch's scope names; a module
    reachable by several paths keeps the first, as in ``named_modules``."""
    out[id(module)] = scope
    for attr, child in module.named_children():
        if id(child) not in out:
            _scopes(child, f"{scope}/{type(child).__name__}[{attr}]", out)
    return out


@contextmanager
def _module_scopes(model: Module, graph: _ScopedGraph) -> Iterator[dict[int, str]]:
    """Push each module's scope on ``graph.stack`` while its ``forward`` runs; eval mode."""
    scopes = _scopes(model, graph.name, {})
    modules = list(model.modules())
    training = [m.training for m in modules]

    def enter(module: Module, args: Any) -> None:
        graph.stack.append(scopes[id(module)])

    def leave(module: Module, args: Any, output: Any) -> None:
        graph.stack.pop()

    handles = [m.register_forward_pre_hook(enter) for m in modules]
    handles += [m.register_forward_hook(leave) for m in modules]
    model.eval()
    try:
        yield scopes
    finally:
        for handle in handles:
            handle.remove()
        for m, was in zip(modules, training):
            m.training = was


def _example_inputs(input_to_model: Any) -> tuple[Tensor, ...]:
    if input_to_model is None:
        raise ValueError(
            "add_graph needs an example input to trace the model with, e.g. "
            "add_graph(model, ember.randn(1, 784)); pass a tuple for several inputs"
        )
    items = input_to_model if isinstance(input_to_model, (tuple, list)) else (input_to_model,)
    inputs = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            item = from_numpy(item)
        if not isinstance(item, Tensor):
            raise TypeError(
                f"add_graph: input_to_model[{i}] is a {type(item).__name__}; pass a Tensor or "
                "NumPy array, or a tuple of them (one per positional argument of forward)"
            )
        inputs.append(item)
    return tuple(inputs)


def _leaves(obj: Any) -> Iterator[Tensor]:
    """The tensors in a forward's result (nested tuples, lists and dicts)."""
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _leaves(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _leaves(o)


def trace_model(model: Callable[..., Any], input_to_model: Any) -> TracedModel:
    """Trace ``model(*input_to_model)`` and name every value of the graph for TensorBoard.

    Raises:
        TracerError: ``forward`` needs the data (an ``if`` on a tensor, ``.item()``), which the
            tracer does not have.
    """
    inputs = _example_inputs(input_to_model)
    root = type(model).__name__ if isinstance(model, Module) else getattr(model, "__name__", "fn")
    graph = _ScopedGraph(root)
    tracer = Tracer(graph)
    symbolic = [tracer.input(t) for t in inputs]
    if isinstance(model, Module):
        with _module_scopes(model, graph) as scopes, no_grad():
            result = trace(model, graph, tracer, symbolic, {})
        owners = [(scopes[id(m)], m) for m in model.modules()]
    else:
        with no_grad():
            result = trace(model, graph, tracer, symbolic, {})
        owners = []
    # id(tensor) -> (kind, node name); a tensor shared by several modules keeps the first.
    owned: dict[int, tuple[str, str]] = {}
    for scope, m in owners:
        for leaf, p in m.named_parameters(recurse=False, remove_duplicate=False):
            owned.setdefault(id(p), ("Parameter", f"{scope}/{leaf}"))
        for leaf, b in m.named_buffers(recurse=False, remove_duplicate=False):
            owned.setdefault(id(b), ("Buffer", f"{scope}/{leaf}"))
    outs = list(_leaves(result))
    if not outs:
        raise TypeError(
            f"add_graph: {root}'s forward returned {type(result).__name__}, with no tensor in it; "
            "the graph needs tensor outputs"
        )
    registry._trace_hook = tracer.hook  # outputs that are concrete tensors get captured
    try:
        graph.outputs = [tracer.operand(t) for t in outs]
    finally:
        registry._trace_hook = None

    names: dict[int, str] = {}
    kinds: dict[int, str] = {}
    used: set[str] = set()

    def unique(name: str) -> str:
        base, k = name, 0
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        return name

    for i, v in enumerate(graph.inputs):
        names[id(v)] = unique(f"input/input{i}")
    first_user: dict[int, str] = {}  # a capture's first consumer's scope, for constants
    for node in graph.nodes:
        for v in _vars(node):
            first_user.setdefault(id(v), graph.scope(node))
    captured = {id(v): id(t) for t, v, _ in tracer.captured.values()}
    for v in graph.captures:
        constant = ("Constant", f"{first_user.get(id(v), root)}/constant")
        kind, name = owned.get(captured.get(id(v), 0), constant)
        names[id(v)] = unique(name)
        kinds[id(v)] = kind
    for node in graph.nodes:
        names[id(node.out)] = unique(f"{graph.scope(node)}/{node.op.name}")
    return TracedModel(graph, names, kinds)


def _vars(node: Node) -> list[Var]:
    """A node's inputs: its tensor operands, then the index tensors among its attributes."""
    found = [a for a in node.args if isinstance(a, Var)]

    def walk(value: Any) -> None:
        if type(value) is Var:
            found.append(value)
        elif isinstance(value, (tuple, list)):
            for v in value:
                walk(v)

    for value in node.attrs.values():
        walk(value)
    return found


def graph_def(traced: TracedModel) -> Any:
    """The traced graph as tensorboardX's ``GraphDef`` (TensorFlow's graph protobuf)."""
    from tensorboardX.proto.attr_value_pb2 import AttrValue
    from tensorboardX.proto.graph_pb2 import GraphDef
    from tensorboardX.proto.node_def_pb2 import NodeDef
    from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboardX.proto.versions_pb2 import VersionDef

    names = traced.names

    def node(name: str, op: str, var: Var, inputs: list[str], attrs: dict[str, str]) -> Any:
        shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=d) for d in var.shape])
        attr = {
            "_output_shapes": AttrValue(list=AttrValue.ListValue(shape=[shape])),
            "dtype": AttrValue(type=_DATA_TYPES.get(var.dtype.name, 0)),
        }
        for key, text in attrs.items():
            attr[key if key not in attr else f"attr_{key}"] = AttrValue(s=text.encode())
        return NodeDef(name=name, op=op, input=inputs, attr=attr)

    def show(value: Any) -> str:
        if type(value) is Var:
            return names[id(value)]
        if isinstance(value, np.ndarray):
            return f"array<{value.dtype.name}{list(value.shape)}>"
        if isinstance(value, (tuple, list)):
            inner = ", ".join(show(v) for v in value)
            return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
        return repr(value)

    graph = traced.graph
    nodes = [node(names[id(v)], "IO Node", v, [], {}) for v in graph.inputs]
    nodes += [node(names[id(v)], traced.kinds[id(v)], v, [], {}) for v in graph.captures]
    for n in graph.nodes:
        attrs = {f"arg{i}": show(a.value) for i, a in enumerate(n.args) if isinstance(a, Const)}
        attrs.update({k: show(v) for k, v in n.attrs.items()})
        inputs = [names[id(v)] for v in _vars(n)]
        nodes.append(node(names[id(n.out)], n.op.name, n.out, inputs, attrs))
    nodes += [
        node(f"output/output{i}", "IO Node", v, [names[id(v)]], {})
        for i, v in enumerate(graph.outputs)
    ]
    return GraphDef(node=nodes, versions=VersionDef(producer=22))
