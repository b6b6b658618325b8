"""The functional API without a compiler: symbolic placeholders that record layer calls.

``Input(shape)`` returns a :class:`SymbolicTensor`. Calling a layer of
``ember.models.layers`` on symbolic tensors records a node ``(layer, inputs)`` and
infers the output's shape by running the layer once on a zero batch of size 1.
``Model(inputs, outputs)`` later replays the recorded nodes eagerly on real tensors.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import ember
from ember._src.core.tensor import Tensor
from ember._src.nn.module import Module

_ids = itertools.count()


class Node:
    """One recorded call: ``outputs = layer(*inputs)``."""

    def __init__(self, layer: Module | None, inputs: tuple[SymbolicTensor, ...]) -> None:
        self.layer = layer
        self.inputs = inputs
        self.outputs: tuple[SymbolicTensor, ...] = ()
        self.args: tuple[Any, ...] = ()  # the call's argument structure (nested for Concatenate)


class SymbolicTensor:
    """A placeholder in a functional model: a shape (without the batch) and a dtype.

    Example:
        >>> import ember
        >>> x = ember.models.Input(shape=(4,))
        >>> x
        SymbolicTensor(shape=(None, 4), dtype=ember.float32, name='input_...')
    """

    def __init__(self, shape: tuple[int, ...], dtype: Any, node: Node, name: str) -> None:
        self.sample_shape = shape
        self.shape = (None, *shape)
        self.dtype = dtype
        self.node = node
        self.name = name
        self.id = next(_ids)

    def example(self) -> Tensor:
        """A zero batch of one sample of this placeholder's shape."""
        return ember.zeros(1, *self.sample_shape, dtype=self.dtype)

    def __getattr__(self, name: str) -> Any:
        # Only reached for missing attributes: usually an ember.nn module or op used on a
        # placeholder directly, which can't work without a compiler.
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"SymbolicTensor has no attribute {name!r}: it is a placeholder of a functional "
            "model, not data. Call ember.models.layers on it, and wrap any other ember.nn "
            "module or function in ember.models.layers.Lambda(...)"
        )

    def __repr__(self) -> str:
        return f"SymbolicTensor(shape={self.shape}, dtype={self.dtype}, name={self.name!r})"


def Input(shape: Sequence[int], dtype: Any = None, name: str | None = None) -> SymbolicTensor:
    """A symbolic model input of ``shape`` (one sample, without the batch dimension).

    Args:
        shape: the shape of one sample, e.g. ``(1, 8, 8)`` (ember's layers are channels-first).
        dtype: the input's dtype (the default float dtype when None).
        name: a name for summaries.

    Returns:
        A :class:`SymbolicTensor` to call layers on.

    Example:
        >>> import ember
        >>> from ember.models import Input, Model, layers
        >>> x = Input(shape=(3,))
        >>> model = Model(x, layers.Dense(2)(x))
        >>> model(ember.ones(5, 3)).shape
        (5, 2)
    """
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"Input shape {shape} has a negative size")
    dtype = ember.get_default_dtype() if dtype is None else dtype
    node = Node(None, ())
    out = SymbolicTensor(shape, dtype, node, name or f"input_{next(_ids)}")
    node.outputs = (out,)
    return out


def is_symbolic(args: Sequence[Any]) -> bool:
    """Whether a call's arguments are symbolic; mixing symbolic and real is an error."""
    flat = list(_flatten(args))
    kinds = {isinstance(a, SymbolicTensor) for a in flat}
    if kinds == {True, False}:
        raise TypeError(
            "a layer was called on symbolic placeholders and real values together; "
            "pass only outputs of ember.models.Input(...) and layers called on them"
        )
    return kinds == {True}


def _flatten(args: Any) -> Any:
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _flatten(a)
        else:
            yield a


def symbolic_call(layer: Module, args: tuple[Any, ...], call: Any) -> Any:
    """Record ``layer(*args)`` on symbolic tensors; returns symbolic outputs.

    ``call(*real_args)`` runs the layer; it is used once, on zero batches of size 1,
    to build lazy parameters and learn the output shapes.
    """
    inputs = tuple(_flatten(args))
    examples = {id(t): t.example() for t in inputs}

    def concrete(a: Any) -> Any:
        if isinstance(a, (list, tuple)):
            return type(a)(concrete(x) for x in a)
        return examples[id(a)]

    was_training = layer.training
    layer.eval()  # no dropout or batch-statistics updates from the probe
    try:
        with ember.no_grad():
            out = call(*[concrete(a) for a in args])
    finally:
        layer.train(was_training)
    node = Node(layer, inputs)
    outs = out if isinstance(out, (list, tuple)) else (out,)
    name = type(layer).__name__.lower()
    node.outputs = tuple(
        SymbolicTensor(tuple(o.shape[1:]), o.dtype, node, f"{name}_{next(_ids)}") for o in outs
    )
    node.args = args
    return node.outputs if isinstance(out, (list, tuple)) else node.outputs[0]


def topological_nodes(outputs: Sequence[SymbolicTensor]) -> list[Node]:
    """The nodes that ``outputs`` depend on, each after the nodes it reads."""
    order: list[Node] = []
    seen: set[int] = set()

    def visit(node: Node) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for t in node.inputs:
            visit(t.node)
        order.append(node)

    for t in outputs:
        visit(t.node)
    return order


def run_graph(
    nodes: Sequence[Node],
    inputs: Sequence[SymbolicTensor],
    outputs: Sequence[SymbolicTensor],
    values: Sequence[Any],
) -> list[Any]:
    """Replay the recorded ``nodes`` eagerly with ``values`` fed to ``inputs``."""
    env: dict[int, Any] = {t.id: v for t, v in zip(inputs, values)}

    def real(a: Any) -> Any:
        if isinstance(a, (list, tuple)):
            return type(a)(real(x) for x in a)
        return env[a.id]

    for node in nodes:
        if node.layer is None:
            continue
        out = node.layer(*real(node.args))
        outs = out if isinstance(out, (list, tuple)) else (out,)
        for t, v in zip(node.outputs, outs):
            env[t.id] = v
    return [env[t.id] for t in outputs]
