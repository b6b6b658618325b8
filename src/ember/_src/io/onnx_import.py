"""ONNX import: read a model (protobuf only, never pickle), check it, run it with ember ops.

``load`` validates the model with ``onnx.checker``, turns the initializers into ember
tensors and orders the nodes; ``OnnxModel`` interprets the graph node by node with the
handlers of ``onnx_ops`` (ember's executor until the compiler takes over), and
``OnnxModel.as_module`` wraps the same graph as an ``nn.Module`` whose floating point
initializers are Parameters, so gradients flow through the ember ops for fine-tuning.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import ember
from ember._src.core.tensor import Tensor
from ember._src.io.onnx_ops import ONNX_DTYPES, OPS, Node, OnnxImportError
from ember._src.nn.module import Module, Parameter

if TYPE_CHECKING:
    import onnx

__all__ = ["OnnxImportError", "OnnxModel", "load"]

_MIN_IR_VERSION = 3  # the first IR version with opset imports


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ember.onnx needs the 'onnx' package: pip install 'ember[onnx]'"
        ) from None
    return onnx


def to_tensor(proto: Any, what: str) -> Tensor:
    """An ONNX TensorProto as an ember tensor (copied out of the protobuf)."""
    onnx = _onnx()
    if proto.data_type not in ONNX_DTYPES:
        name = onnx.TensorProto.DataType.Name(proto.data_type)
        raise OnnxImportError(f"{what} has data type {name}, which ember does not support")
    try:
        array = onnx.numpy_helper.to_array(proto)
    except Exception as e:
        raise OnnxImportError(f"{what} could not be read: {e}") from None
    return ember.tensor(np.array(array, copy=True), dtype=ONNX_DTYPES[proto.data_type])


def _attributes(node: Any, onnx: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            attrs[a.name] = to_tensor(a.t, f"attribute {a.name!r} of node {node.name!r}")
        elif a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            attrs[a.name] = None  # subgraphs: no handler uses them yet
        else:
            value = onnx.helper.get_attribute_value(a)
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, list) and value and isinstance(value[0], bytes):
                value = [v.decode() for v in value]
            attrs[a.name] = value
    return attrs


def _read(source: Any, onnx: Any) -> Any:
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        where = "the given bytes"
    elif isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        if not os.path.isfile(where):
            raise FileNotFoundError(f"ember.onnx.load: no such file {where!r}")
        with open(where, "rb") as f:
            data = f.read()
    else:
        raise TypeError(
            "ember.onnx.load takes a path, bytes or an onnx.ModelProto, "
            f"got {type(source).__name__}"
        )
    if not data:
        raise OnnxImportError(f"{where} is empty, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:
        raise OnnxImportError(
            f"{where} is not a valid ONNX model (truncated or not a protobuf?): {e}"
        ) from None
    if isinstance(source, (str, os.PathLike)):
        try:
            onnx.external_data_helper.load_external_data_for_model(
                model, os.path.dirname(os.path.abspath(where))
            )
        except Exception as e:
            raise OnnxImportError(f"{where}: external tensor data could not be read: {e}") from None
    return model


def _check(model: Any, onnx: Any) -> None:
    if model.ir_version < _MIN_IR_VERSION:
        raise OnnxImportError(
            f"ONNX IR version {model.ir_version} is not supported: ember reads IR version "
            f"{_MIN_IR_VERSION} to {onnx.IR_VERSION} (is the file an ONNX model?)"
        )
    if model.ir_version > onnx.IR_VERSION:
        raise OnnxImportError(
            f"ONNX IR version {model.ir_version} is newer than the installed onnx "
            f"{onnx.__version__} understands (up to {onnx.IR_VERSION}); upgrade onnx"
        )
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise OnnxImportError(f"the ONNX model is invalid: {e}") from None


def _opsets(model: Any) -> dict[str, int]:
    return {(o.domain or "ai.onnx"): o.version for o in model.opset_import}


def _ordered(graph: Any, known: set[str]) -> list[Any]:
    """The graph's nodes in an order where every input is produced before it is read."""
    produced = set(known) | {""}
    pending = list(graph.node)
    order: list[Any] = []
    while pending:
        ready = [n for n in pending if all(i in produced for i in n.input)]
        if not ready:
            n = pending[0]
            missing = [i for i in n.input if i not in produced]
            for m in missing:
                if not any(m in p.output for p in pending):
                    raise OnnxImportError(
                        f"ONNX {n.op_type} node {n.name!r} reads {m!r}, which is neither a "
                        "graph input, an initializer nor any node's output (missing initializer?)"
                    )
            raise OnnxImportError(f"the ONNX graph has a cycle through node {n.name!r}")
        ready_ids = {id(n) for n in ready}
        for n in ready:
            order.append(n)
            produced.update(n.output)
        pending = [n for n in pending if id(n) not in ready_ids]
    return order


class OnnxModel:
    """A loaded ONNX model, run node by node with ember ops.

    Call it with the graph inputs positionally (in graph order) or by name; it returns
    the single output, or a tuple of outputs. ``initializers`` maps names to tensors.
    """

    def __init__(self, model: onnx.ModelProto) -> None:
        onnx = _onnx()
        graph = model.graph
        opsets = _opsets(model)
        self.opset: int = opsets.get("ai.onnx", 0)
        self.initializers: dict[str, Tensor] = {
            t.name: to_tensor(t, f"initializer {t.name!r}") for t in graph.initializer
        }
        self.input_names: list[str] = [
            i.name for i in graph.input if i.name not in self.initializers
        ]
        self.output_names: list[str] = [o.name for o in graph.output]
        self._nodes: list[tuple[Node, list[str], list[str]]] = []
        for proto in _ordered(graph, set(self.input_names) | set(self.initializers)):
            domain = proto.domain or "ai.onnx"
            node = Node(
                proto.op_type,
                proto.name,
                opsets.get(domain, 0),
                _attributes(proto, onnx),
                len(proto.output),
            )
            if domain != "ai.onnx" or proto.op_type not in OPS:
                where = "" if domain == "ai.onnx" else f" in domain {domain!r}"
                raise node.error(
                    f"operator {proto.op_type}{where} is not supported by ember's ONNX import"
                )
            self._nodes.append((node, list(proto.input), list(proto.output)))
        for name in self.output_names:
            if (
                name not in self.initializers
                and name not in self.input_names
                and not any(name in outs for _, _, outs in self._nodes)
            ):
                raise OnnxImportError(f"graph output {name!r} is never produced")

    def _feeds(self, inputs: Sequence[Any], named: dict[str, Any]) -> dict[str, Tensor]:
        if len(inputs) > len(self.input_names):
            raise TypeError(
                f"the ONNX model takes {len(self.input_names)} inputs "
                f"({', '.join(self.input_names)}), got {len(inputs)}"
            )
        feeds = dict(zip(self.input_names, inputs))
        for k, v in named.items():
            if k not in self.input_names:
                raise TypeError(f"unknown input {k!r}; the inputs are {self.input_names}")
            if k in feeds:
                raise TypeError(f"input {k!r} given twice")
            feeds[k] = v
        missing = [k for k in self.input_names if k not in feeds]
        if missing:
            raise TypeError(f"missing ONNX model inputs: {missing}")
        return {
            k: v if isinstance(v, Tensor) else ember.tensor(np.asarray(v)) for k, v in feeds.items()
        }

    def run(self, feeds: dict[str, Tensor], weights: dict[str, Tensor]) -> list[Tensor]:
        """Run the graph on named inputs with the given initializer tensors."""
        env: dict[str, Any] = {**weights, **feeds}
        with np.errstate(all="ignore"):  # ONNX computes in IEEE arithmetic: inf/nan are results
            self._execute(env)
        return [env[name] for name in self.output_names]

    def _execute(self, env: dict[str, Any]) -> None:
        for node, ins, outs in self._nodes:
            args = [env[i] if i else None for i in ins]
            while args and args[-1] is None:
                args.pop()
            try:
                result = OPS[node.op_type](node, *args)
            except OnnxImportError:
                raise
            except Exception as e:
                raise node.error(f"{type(e).__name__}: {e}") from e
            results = result if isinstance(result, (tuple, list)) else (result,)
            for name, value in zip(outs, results):
                if name:
                    env[name] = value

    def __call__(self, *inputs: Any, **named: Any) -> Any:
        outs = self.run(self._feeds(inputs, named), self.initializers)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def as_module(self) -> OnnxModule:
        """An ``nn.Module`` running this graph, its float initializers as Parameters."""
        return OnnxModule(self)

    def __repr__(self) -> str:
        return (
            f"OnnxModel(inputs={self.input_names}, outputs={self.output_names}, "
            f"nodes={len(self._nodes)}, opset={self.opset})"
        )


def _attribute_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", name) or "_"
    if base[0].isdigit():
        base = "_" + base
    out, i = base, 1
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    taken.add(out)
    return out


class OnnxModule(Module):
    """An ONNX graph as a Module: float initializers are Parameters, the rest buffers.

    ``onnx_names`` maps each attribute name back to the initializer's ONNX name
    (characters that are not valid in an attribute name become ``_``).
    """

    def __init__(self, model: OnnxModel) -> None:
        super().__init__()
        self.model = model
        self.onnx_names: dict[str, str] = {}
        taken: set[str] = set()
        for onnx_name, value in model.initializers.items():
            attr = _attribute_name(onnx_name, taken)
            self.onnx_names[attr] = onnx_name
            if value.dtype.is_floating_point:
                self.register_parameter(attr, Parameter(value.clone()))
            else:
                self.register_buffer(attr, value)

    def _weights(self) -> Iterator[tuple[str, Tensor]]:
        for attr, onnx_name in self.onnx_names.items():
            yield onnx_name, getattr(self, attr)

    def forward(self, *inputs: Any, **named: Any) -> Any:
        outs = self.model.run(self.model._feeds(inputs, named), dict(self._weights()))
        return outs[0] if len(outs) == 1 else tuple(outs)


def load(source: Any) -> OnnxModel:
    """Load an ONNX model (a path, bytes or an ``onnx.ModelProto``) to run with ember ops.

    Args:
        source: a file path, the serialized model bytes, or a ModelProto.

    Returns:
        An :class:`OnnxModel`; call it with the inputs, or ``.as_module()`` to fine-tune.

    Raises:
        OnnxImportError: the bytes are not an ONNX model, the IR version is unsupported,
            the model fails ``onnx.checker``, a node reads a value nothing defines, or a
            node uses an operator ember does not implement (named with node and opset).

    Example:
        >>> import onnx, ember
        >>> from onnx import helper, TensorProto
        >>> g = helper.make_graph(
        ...     [helper.make_node("Relu", ["x"], ["y"])], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
        >>> m = ember.onnx.load(helper.make_model(g).SerializeToString())
        >>> m(ember.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """
    onnx = _onnx()
    model = _read(source, onnx)
    _check(model, onnx)
    return OnnxModel(model)
