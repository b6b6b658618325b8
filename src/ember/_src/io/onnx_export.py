"""ONNX export: trace a model with ember's tracer and lower the graph op by op.

The function runs once on symbolic tensors (``ember.compile``'s tracer, in
eval mode and without grad), which records every primitive it applies. Each
primitive lowers to ONNX nodes by the rules in ``onnx_lower``; tensors the
function reads from outside (parameters, buffers, constants) become
initializers named by their ``state_dict`` key.

Dynamic axes: the trace has concrete sizes, so for each dynamic axis the
function is traced twice more, at two other sizes of that axis. Sizes that change
between the traces are fitted as ``a * axis + c`` and computed at run time from
the input's shape (``Shape`` nodes); a traced graph whose ops differ between the
sizes (Python control flow on the size) cannot be exported with that axis
dynamic, and export says so.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ember._src.compile.graph import Const, Graph, Node, Var
from ember._src.compile.trace import Tracer, trace
from ember._src.core import autograd
from ember._src.core.tensor import Tensor
from ember._src.io.atomic import atomic_write
from ember._src.io.onnx_lower import (
    NOT_EXPORTABLE,
    RULES,
    SYMBOLIC_ATTRS,
    Context,
    Dim,
    OnnxExportError,
    Size,
    tensor_type,
)
from ember._src.nn.module import Module
from ember._src.ops import registry

__all__ = ["OnnxExportError", "default_opset", "export"]

MIN_OPSET = 18  # reductions take their axes as inputs; BitwiseAnd, Col2Im... exist


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ember.onnx.export needs the 'onnx' package: pip install 'ember[onnx]'"
        ) from None
    return onnx


@functools.cache
def default_opset() -> int:
    """The opset ``export`` writes: the installed onnx's newest, capped to onnxruntime's.

    onnx often knows a newer opset than the installed onnxruntime runs; when
    onnxruntime is installed, the newest opset it loads is used instead.
    """
    onnx = _onnx()
    newest = int(onnx.defs.onnx_opset_version())
    try:
        import onnxruntime as ort
    except ImportError:
        return newest
    helper = onnx.helper
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    for opset in range(newest, MIN_OPSET - 1, -1):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:
            continue
        return opset
    return newest


# ----------------------------------------------------------------- tracing
class _Trace:
    """One trace: the graph, the captured tensors in ``graph.captures`` order, the outputs."""

    def __init__(self, graph: Graph, captured: list[Tensor]) -> None:
        self.graph = graph
        self.captured = captured


def _flatten(obj: Any, out: list[Tensor], where: str) -> None:
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for i, o in enumerate(obj):
            _flatten(o, out, f"{where}[{i}]")
    elif isinstance(obj, dict):
        for k, o in obj.items():
            _flatten(o, out, f"{where}[{k!r}]")
    else:
        raise OnnxExportError(
            f"the model returned {type(obj).__name__} at {where}; ONNX export needs tensors "
            "(or tuples, lists and dicts of tensors) as outputs"
        )


def _trace(fn: Callable[..., Any], inputs: Sequence[Tensor], name: str) -> _Trace:
    graph = Graph(name)
    tracer = Tracer(graph)
    symbolic = [tracer.input(t) for t in inputs]
    try:
        with autograd.no_grad():
            result = trace(fn, graph, tracer, symbolic, {})
    except registry.TracerError as e:
        raise OnnxExportError(
            f"ONNX export traces the model with ember.compile's tracer, which stopped: {e}"
        ) from None
    outs: list[Tensor] = []
    _flatten(result, outs, "output")
    if not outs:
        raise OnnxExportError("the model returned no tensors; there is nothing to export")
    registry._trace_hook = tracer.hook  # outputs that are concrete tensors get captured
    try:
        graph.outputs = [tracer.operand(t) for t in outs]
    finally:
        registry._trace_hook = None
    return _Trace(graph, [t for t, _, _ in tracer.captured.values()])


# ----------------------------------------------------------------- dynamic axes
def _normalize_axes(
    dynamic_axes: Any, input_names: list[str], output_names: list[str], inputs: Sequence[Tensor]
) -> dict[str, dict[int, str]]:
    if dynamic_axes is None:
        return {}
    if not isinstance(dynamic_axes, Mapping):
        raise TypeError(
            "dynamic_axes must be a dict {name: {axis: 'axis_name'}} or {name: [axes]}, "
            f"got {type(dynamic_axes).__name__}"
        )
    known = set(input_names) | set(output_names)
    out: dict[str, dict[int, str]] = {}
    for name, axes in dynamic_axes.items():
        if name not in known:
            raise ValueError(
                f"dynamic_axes names {name!r}, which is neither an input nor an output "
                f"(inputs {input_names}, outputs {output_names}); name them with "
                "input_names= / output_names="
            )
        if isinstance(axes, Mapping):
            named = {int(a): str(s) for a, s in axes.items()}
        elif isinstance(axes, (list, tuple)):
            named = {int(a): f"{name}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}
        else:
            raise TypeError(
                f"dynamic_axes[{name!r}] must be a dict {{axis: 'axis_name'}} or a list of axes, "
                f"got {type(axes).__name__}"
            )
        if name in input_names:
            ndim = inputs[input_names.index(name)].ndim
            fixed = {}
            for a, s in named.items():
                if not -ndim <= a < ndim:
                    raise ValueError(
                        f"dynamic_axes[{name!r}] names axis {a}, but input {name!r} has "
                        f"{ndim} dimensions"
                    )
                fixed[a % ndim] = s
            named = fixed
        out[name] = named
    return out


def _symbols(
    axes: dict[str, dict[int, str]], input_names: list[str], inputs: Sequence[Tensor]
) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """symbol -> (its size in the example, the (input, axis) pairs that carry it)."""
    out: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    for i, name in enumerate(input_names):
        for axis, sym in axes.get(name, {}).items():
            size = int(inputs[i].shape[axis])
            if sym in out and out[sym][0] != size:
                raise ValueError(
                    f"dynamic axis {sym!r} has size {out[sym][0]} in one input and {size} in "
                    f"input {name!r} axis {axis}; axes that share a name must share a size"
                )
            if size < 2:
                raise ValueError(
                    f"dynamic axis {sym!r} (input {name!r}, axis {axis}) has size {size} in the "
                    "example input; give it size 2 or more so that ember can tell it apart "
                    "from a broadcast dimension"
                )
            out.setdefault(sym, (size, []))[1].append((i, axis))
    return out


class _Probe(NamedTuple):
    """A trace with one dynamic axis at another size."""

    symbol: str
    trace: _Trace
    size: int


def _probes(
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    sym: str,
    size: int,
    where: list[tuple[int, int]],
    name: str,
) -> list[_Probe]:
    """Traces with axis ``sym`` at two other sizes (tracing reads shapes only: zeros do)."""
    probes: list[_Probe] = []
    errors: list[str] = []
    for other in (size + 1, size + 2, size - 1, size - 2):
        if other < 2 or len(probes) == 2:
            continue
        shapes = [list(t.shape) for t in inputs]
        for i, axis in where:
            shapes[i][axis] = other
        fake = [
            Tensor._wrap(t._backend.xp.zeros(tuple(s), t._data.dtype), None, False, t._backend)
            for t, s in zip(inputs, shapes)
        ]
        try:
            probes.append(_Probe(sym, _trace(fn, fake, name), other))
        except Exception as e:  # the model rejects that size: try another
            errors.append(f"size {other}: {type(e).__name__}: {str(e).splitlines()[0]}")
    if len(probes) < 2:
        raise OnnxExportError(
            f"dynamic axis {sym!r}: the model could not be traced at other sizes of that axis "
            f"({'; '.join(errors)}); export it with that axis static"
        )
    return probes


class _Symbolic:
    """Sizes, constants and attributes of the base trace, fitted against the probe traces.

    A size that changes with one axis is fitted as ``a * axis + c`` from two probes and
    checked against the third point; one that changes with several axes, or not
    linearly (a strided window over the axis), becomes ``Dim("?")``, which export
    refuses wherever its value is needed.
    """

    def __init__(self, base: _Trace, sizes: dict[str, int], probes: list[_Probe]) -> None:
        self.base = base
        self.sizes = sizes  # symbol -> its size in the example
        self.probes = probes
        self.shapes: dict[int, tuple[Size, ...]] = {}
        g = base.graph
        partners: list[dict[int, Var]] = []
        for p in probes:
            o = p.trace.graph
            if [n.op.name for n in g.nodes] != [n.op.name for n in o.nodes] or len(
                g.captures
            ) != len(o.captures):
                raise OnnxExportError(
                    f"the traced graph changes with the size of dynamic axis {p.symbol!r} "
                    f"({len(g.nodes)} ops at size {sizes[p.symbol]}, {len(o.nodes)} at size "
                    f"{p.size}): Python control flow in the model depends on that size; export "
                    "with that axis static"
                )
            pairs = list(zip(g.inputs, o.inputs)) + list(zip(g.captures, o.captures))
            pairs += [(a.out, b.out) for a, b in zip(g.nodes, o.nodes)]
            partners.append({id(a): b for a, b in pairs})
        for v in [*g.inputs, *g.captures, *(n.out for n in g.nodes)]:
            self.shapes[id(v)] = tuple(
                self.fit(d, [m[id(v)].shape[i] for m in partners]) for i, d in enumerate(v.shape)
            )

    def fit(self, v0: int, values: list[int]) -> Size:
        """``v0`` (with ``values`` at the probes) as a size that follows the axis it moves with."""
        moved = {p.symbol for p, v in zip(self.probes, values) if v != v0}
        if not moved:
            return v0
        if len(moved) == 1:
            (sym,) = moved
            points = [(p.size, v) for p, v in zip(self.probes, values) if p.symbol == sym]
            n0 = self.sizes[sym]
            n1, v1 = points[0]
            a, r = divmod(v1 - v0, n1 - n0)
            c = v0 - a * n0
            if r == 0 and all(v == a * n + c for n, v in points):
                return Dim(sym, a, c)
        return Dim("?", 0, 0)  # not expressible: fails if anything needs its value

    def merge(self, v0: Any, values: list[Any], what: str) -> Any:
        """An attribute or constant, with ints that follow a dynamic axis as :class:`Dim`."""
        if isinstance(v0, Var):
            return v0
        if isinstance(v0, (bool, np.bool_)) or v0 is None or isinstance(v0, str):
            if any(v != v0 for v in values):
                raise OnnxExportError(f"{what} changes with a dynamic axis")
            return v0
        if isinstance(v0, (int, np.integer)):
            d = self.fit(int(v0), [int(v) for v in values])
            if isinstance(d, Dim) and d.symbol == "?":
                raise OnnxExportError(
                    f"{what} depends on the dynamic axes other than as a * axis + c (a "
                    "strided window over one, or a product of two); export that axis static"
                )
            return d
        if isinstance(v0, (tuple, list)):
            if any(not isinstance(v, (tuple, list)) or len(v) != len(v0) for v in values):
                raise OnnxExportError(f"{what} changes length with a dynamic axis")
            items = [self.merge(x, [v[i] for v in values], what) for i, x in enumerate(v0)]
            return tuple(items) if isinstance(v0, tuple) else items
        if isinstance(v0, slice):
            parts = [
                self.merge(getattr(v0, k), [getattr(v, k) for v in values], what)
                for k in ("start", "stop", "step")
            ]
            return slice(*parts)
        if isinstance(v0, np.ndarray):
            if any(not np.array_equal(v0, v) for v in values):
                raise OnnxExportError(f"{what} (a constant array) changes with a dynamic axis")
            return v0
        if isinstance(v0, float):
            if any(v != v0 for v in values):
                if float(v0).is_integer() and all(float(v).is_integer() for v in values):
                    return self.merge(int(v0), [int(v) for v in values], what)
                raise OnnxExportError(
                    f"{what} (the number {v0}) changes with a dynamic axis (such as a mean "
                    "over that axis)"
                )
            return v0
        if any(v != v0 for v in values):
            raise OnnxExportError(f"{what} changes with a dynamic axis")
        return v0

    def node(self, i: int) -> tuple[list[Var | Const], dict[str, Any]]:
        """Node ``i``'s operands and attributes with sizes that follow dynamic axes as Dims."""
        n = self.base.graph.nodes[i]
        if not self.probes:
            return list(n.args), n.attrs
        peers = [p.trace.graph.nodes[i] for p in self.probes]
        args: list[Var | Const] = []
        for k, a in enumerate(n.args):
            if isinstance(a, Const):
                vals = [p.args[k].value for p in peers]  # type: ignore[union-attr]
                args.append(Const(self.merge(a.value, vals, f"{n.op.name}: operand {k}")))
            else:
                args.append(a)
        attrs = {
            k: self.merge(v, [p.attrs[k] for p in peers], f"{n.op.name}: {k}=")
            for k, v in n.attrs.items()
        }
        return args, attrs


def _has_dim(value: Any) -> bool:
    if isinstance(value, Dim):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_dim(v) for v in value)
    if isinstance(value, slice):
        return any(_has_dim(v) for v in (value.start, value.stop, value.step))
    return False


# ----------------------------------------------------------------- the model
def _param_names(model: Any) -> dict[int, str]:
    names: dict[int, str] = {}
    if isinstance(model, Module):
        for n, p in model.named_parameters():
            names.setdefault(id(p), n)
        for n, b in model.named_buffers():
            names.setdefault(id(b), n)
    return names


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _value_info(onnx: Any, name: str, dtype: Any, dims: Sequence[Any]) -> Any:
    return onnx.helper.make_tensor_value_info(name, tensor_type(onnx, dtype), list(dims))


def _dim_label(d: Size, named: str | None) -> Any:
    if not isinstance(d, Dim):
        return int(d)
    if named is not None:
        return named
    return None if d.symbol == "?" else repr(d)


def _lower(
    onnx: Any,
    base: _Trace,
    sym: _Symbolic,
    input_names: list[str],
    output_names: list[str],
    axes: dict[str, dict[int, str]],
    symbols: dict[str, tuple[int, list[tuple[int, int]]]],
    param_names: dict[int, str],
    name: str,
    opset: int,
) -> Any:
    helper = onnx.helper
    g = base.graph
    ctx = Context(onnx, sym.shapes)
    for s, (_, where) in symbols.items():
        i, axis = where[0]
        ctx.sources[s] = (input_names[i], axis)
    graph_inputs = []
    for v, n in zip(g.inputs, input_names):
        ctx.names[id(v)] = n
        named = axes.get(n, {})
        dims = [named.get(i, d) for i, d in enumerate(v.shape)]
        graph_inputs.append(_value_info(onnx, n, v.dtype, dims))
    used: set[str] = set(input_names) | set(output_names)
    others = [p.trace for p in sym.probes]
    for k, (v, t) in enumerate(zip(g.captures, base.captured)):
        moved = [o.captured[k] for o in others if o.captured[k] is not t]
        if any(
            m.shape == t.shape and not _same(np.asarray(m._data), np.asarray(t._data))
            for m in moved
        ):
            raise OnnxExportError(
                f"the model makes a tensor of shape {list(t.shape)} whose values depend on the "
                "size of a dynamic axis; export with that axis static"
            )
        array = np.array(t._data, order="C")  # CPU only (the tracer captures no other)
        shape = sym.shapes[id(v)]
        if any(isinstance(d, Dim) for d in shape):  # a constant the model made at the input's size
            flat = array.reshape(-1)
            seen = [flat] + [np.asarray(o.captured[k]._data).reshape(-1) for o in others]
            fill_value = next((f[0] for f in seen if f.size), np.zeros((), array.dtype))
            if any(f.size and not (f == fill_value).all() for f in seen):
                raise OnnxExportError(
                    f"the model makes a tensor of shape {list(array.shape)} from the size of a "
                    "dynamic axis and fills it with varying values (arange?); ONNX export "
                    "supports such tensors only when they are constant-filled (zeros, ones, "
                    "full); export with that axis static"
                )
            fill = ctx.const(np.asarray(fill_value, array.dtype))
            ctx.node_name = "constant_fill"
            ctx.names[id(v)] = ctx.emit("Expand", [fill, ctx.shape_value(shape)])
            continue
        init = param_names.get(id(t))
        if init is None or init in used:
            init = ctx.fresh("const")
        used.add(init)
        ctx.initializers.append(onnx.numpy_helper.from_array(array, init))
        ctx.names[id(v)] = init
    for i, node in enumerate(g.nodes):
        op = node.op.name
        rule = RULES.get(op)
        if rule is None:
            why = NOT_EXPORTABLE.get(op, "it has no ONNX lowering yet")
            raise OnnxExportError(f"cannot export op {op!r}: {why}\n  node: {node}")
        args, attrs = sym.node(i)
        if op not in SYMBOLIC_ATTRS and any(_has_dim(v) for v in attrs.values()):
            raise OnnxExportError(
                f"cannot export op {op!r} with a dynamic axis: its attributes {attrs} change "
                f"with the axis size\n  node: {node}; export with that axis static"
            )
        ctx.node_name = f"{op}_{i}"
        try:
            out = rule(ctx, Node(node.op, args, node.attrs, node.out), attrs)
        except OnnxExportError as e:
            raise OnnxExportError(f"cannot export op {op!r}: {e}\n  node: {node}") from None
        ctx.names[id(node.out)] = out
    graph_outputs = []
    for k, (v, n) in enumerate(zip(g.outputs, output_names)):
        ctx.node_name = f"output_{k}"
        ctx.nodes.append(helper.make_node("Identity", [ctx.name(v)], [n], name=f"output_{k}"))
        named = axes.get(n, {})
        shape = sym.shapes.get(id(v), v.shape)
        dims = [_dim_label(d, named.get(i)) for i, d in enumerate(shape)]
        graph_outputs.append(_value_info(onnx, n, v.dtype, dims))
    graph = helper.make_graph(
        ctx.nodes, name, graph_inputs, graph_outputs, initializer=ctx.initializers
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="ember")
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model


# ----------------------------------------------------------------- public
def export(
    model_or_fn: Callable[..., Any],
    example_inputs: Any,
    path: str | os.PathLike[str] | None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_axes: Mapping[str, Any] | None = None,
    opset: int | None = None,
) -> Any:
    """Export a model (or a function of tensors) to an ONNX file.

    The model runs once on symbolic tensors shaped like ``example_inputs``
    (``ember.compile``'s tracer); every op it applies is written as ONNX
    nodes and every tensor it reads from outside (parameters, buffers) as an
    initializer named by its ``state_dict`` key. A Module is exported in eval
    mode (dropout off, batch norm with running statistics) and without grad;
    the training flags of it and its submodules are restored afterwards.
    Python control flow runs at trace time: loops (an RNN's time steps) are
    unrolled, ``if``s take the branch the example inputs take.

    Args:
        model_or_fn: an ``nn.Module`` or a function of tensors returning a
            tensor or a tuple / list / dict of tensors.
        example_inputs: a Tensor or a tuple of Tensors, the positional
            arguments to call it with (their shapes and dtypes are recorded).
        path: the file to write (atomically: a failed export leaves no file);
            None to only return the model.
        input_names: names of the graph inputs, in order (default ``input``
            for one input, else ``input_0``, ``input_1``, ...).
        output_names: names of the outputs (default ``output`` / ``output_0``...).
        dynamic_axes: as in ``torch.onnx.export``: ``{name: {axis: "axis_name"}}``
            or ``{name: [axes]}`` for inputs and outputs whose sizes may vary
            at run time (a batch axis). Inputs sharing an axis name share the size.
        opset: the ONNX opset to write; default :func:`default_opset` (the
            installed onnx's newest, capped to what onnxruntime runs). At least 18.

    Returns:
        The ``onnx.ModelProto`` (also written to ``path``).

    Raises:
        OnnxExportError: an op has no ONNX lowering (the message names it), or
            a dynamic axis changes the traced graph.

    Example:
        >>> import ember, ember.nn as nn
        >>> m = ember.onnx.export(nn.Linear(3, 2), ember.randn(4, 3), None,
        ...                       dynamic_axes={"input": {0: "batch"}})
        >>> [n.op_type for n in m.graph.node]
        ['Transpose', 'MatMul', 'Add', 'Identity']
    """
    onnx = _onnx()
    if isinstance(example_inputs, Tensor):
        inputs: tuple[Tensor, ...] = (example_inputs,)
    elif isinstance(example_inputs, (tuple, list)):
        inputs = tuple(example_inputs)
    else:
        raise TypeError(
            "example_inputs must be a Tensor or a tuple of Tensors (the positional arguments), "
            f"got {type(example_inputs).__name__}"
        )
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"example_inputs[{i}] is {type(t).__name__}; ONNX inputs must be ember Tensors "
                "(convert arrays with ember.from_numpy; bind other arguments with a lambda)"
            )
    if opset is None:
        opset = default_opset()
    newest = int(onnx.defs.onnx_opset_version())
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"opset {opset} is not supported: ember writes opsets {MIN_OPSET} to {newest} "
            f"(the installed onnx {onnx.__version__}'s newest)"
        )
    in_names = _names(input_names, len(inputs), "input")
    name = getattr(model_or_fn, "__name__", None) or type(model_or_fn).__name__
    modules = list(model_or_fn.modules()) if isinstance(model_or_fn, Module) else []
    flags = [m.training for m in modules]
    try:
        for m in modules:
            m.training = False
        base = _trace(model_or_fn, inputs, name)
        out_names = _names(output_names, len(base.graph.outputs), "output")
        axes = _normalize_axes(dynamic_axes, in_names, out_names, inputs)
        symbols = _symbols(axes, in_names, inputs)
        probes = [
            p
            for s, (size, where) in symbols.items()
            for p in _probes(model_or_fn, inputs, s, size, where, name)
        ]
    finally:
        for m, flag in zip(modules, flags):
            m.training = flag
    sym = _Symbolic(base, {s: size for s, (size, _) in symbols.items()}, probes)
    model = _lower(
        onnx, base, sym, in_names, out_names, axes, symbols, _param_names(model_or_fn), name, opset
    )
    from ember import __version__

    model.producer_version = __version__
    model.doc_string = f"{name}, exported by ember {__version__} (opset {opset})"
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise OnnxExportError(f"the exported model fails onnx.checker (ember bug): {e}") from None
    if path is not None:
        with atomic_write(path) as out:
            out.write(model.SerializeToString())
    return model


def _names(given: Sequence[str] | None, n: int, kind: str) -> list[str]:
    if given is None:
        given = []
    if isinstance(given, str):
        raise TypeError(f"{kind}_names must be a list of names, got the string {given!r}")
    names = [str(s) for s in given]
    if len(names) > n:
        raise ValueError(f"{len(names)} {kind}_names given for {n} {kind}s: {names}")
    default = [kind] if n == 1 else [f"{kind}_{i}" for i in range(n)]
    names += default[len(names) :]
    if len(set(names)) != len(names):
        raise ValueError(f"{kind}_names must be distinct, got {names}")
    return names
