"""Whole-model files: architecture as JSON in a safetensors header, weights as its tensors.

The JSON names classes only by their key in a registry (``"nn.Linear"``,
``"models.Dense"``, or the name a user registers with
:func:`register_serializable`); loading looks names up in that table and never
imports a module or runs code named in the file. A registered class records the
arguments of each instance's construction, so ``get_config`` is never needed:
the layer is rebuilt by calling the class again with the same arguments.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, TypeVar

import ember
from ember._src.core import dtype as dt
from ember._src.models import layers as layers_mod
from ember._src.models.functional import Input, SymbolicTensor
from ember._src.models.model import Model, Sequential
from ember._src.nn import (
    activation,
    attention,
    containers,
    conv,
    dropout,
    embedding,
    flatten,
    linear,
    loss,
    normalization,
    pooling,
    rnn,
    transformer,
)
from ember._src.nn.module import Module

FORMAT_VERSION = 1
METADATA_KEY = "ember_model"

_C = TypeVar("_C", bound=type)
_CLASSES: dict[str, type[Module]] = {}
_NAMES: dict[type[Module], str] = {}


class ModelFormatError(ValueError):
    """A whole-model file whose architecture JSON can't be rebuilt."""


def register_serializable(cls: _C | None = None, *, name: str | None = None) -> Any:
    """Register a Module class so ``model.save`` can write it and ``load_model`` rebuild it.

    The class's constructor arguments are recorded on every instance created after
    registration; they must be JSON values (numbers, strings, booleans, None, lists,
    tuples, dicts with string keys), ember dtypes or other registered modules.

    Args:
        cls: the class (when used as a bare ``@register_serializable``).
        name: the key written in files (default: the class's ``__qualname__``).

    Returns:
        The class, unchanged but for the recording of its constructor arguments.

    Example:
        >>> import ember
        >>> @ember.models.register_serializable(name="doc.Scale")
        ... class Scale(ember.nn.Module):
        ...     def __init__(self, factor):
        ...         super().__init__()
        ...         self.factor = factor
        ...     def forward(self, x):
        ...         return x * self.factor
        >>> ember.models.registered_class("doc.Scale") is Scale
        True
    """

    def register(c: _C) -> _C:
        _register(c, name or c.__qualname__)
        return c

    return register(cls) if cls is not None else register


def registered_class(name: str) -> type[Module]:
    """The class registered under ``name``; a ``ModelFormatError`` naming it otherwise."""
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFormatError(
            f"unknown layer class {name!r}: only registered classes can be loaded (ember never "
            "imports code named in a file). If it is your own Module, define it and decorate it "
            f"with @ember.models.register_serializable(name={name!r}) before loading"
        )
    return cls


class _InitArgs:
    """The arguments a module was constructed with.

    Copies of the module (``clone_module``, ``copy.deepcopy``) share them: they
    describe the architecture, which the copy has too, and may name modules whose
    parameters refuse to be deep-copied.
    """

    __slots__ = ("args", "kwargs")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs

    def __copy__(self) -> _InitArgs:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _InitArgs:
        return self


def _register(cls: type, name: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"register_serializable takes ember.nn.Module subclasses, got {cls!r}")
    if not isinstance(name, str) or not name:
        raise TypeError(f"a registered name must be a non-empty string, got {name!r}")
    if _NAMES.get(cls) == name:
        return
    other = _CLASSES.get(name)
    if other is not None and (other.__module__, other.__qualname__) == (
        cls.__module__,
        cls.__qualname__,
    ):
        del _NAMES[other]  # the same class defined again (a re-run notebook cell): replace it
        del _CLASSES[name]
    if name in _CLASSES or cls in _NAMES:
        other = _CLASSES.get(name)
        raise ValueError(
            f"cannot register {cls.__qualname__} as {name!r}: "
            + (f"the name is taken by {other.__qualname__}" if other else "already registered")
        )
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Module, *args: Any, **kwargs: Any) -> None:
        # Record only for the class being built, not for base classes' __init__ calls.
        if type(self) is cls:
            object.__setattr__(self, "_ember_init_args", _InitArgs(args, kwargs))
        original(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[method-assign]
    _CLASSES[name] = cls
    _NAMES[cls] = name


def _register_builtins() -> None:
    for mod in (activation, attention, containers, conv, dropout, embedding, flatten, linear,
                loss, normalization, pooling, rnn, transformer):  # fmt: skip
        for obj in vars(mod).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, Module)
                and obj.__module__ == mod.__name__
                and not obj.__name__.startswith("_")
            ):
                _register(obj, "nn." + obj.__name__)
    for cls in (layers_mod.LazyLinear, layers_mod.Dense, layers_mod.Lambda,
                layers_mod.Concatenate, layers_mod.Add, layers_mod.Flatten,
                layers_mod.Activation, Model, Sequential):  # fmt: skip
        _register(cls, "models." + cls.__name__)


_register_builtins()


# ================================================================= encoding
def _class_name(m: Module, where: str) -> str:
    name = _NAMES.get(type(m))
    if name is None:
        raise TypeError(
            f"cannot save {where}: its class {type(m).__qualname__} is not registered; decorate "
            "it with @ember.models.register_serializable (its constructor arguments must be "
            "JSON values, dtypes or registered modules)"
        )
    return name


def _encode_value(v: Any, where: str) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dt.dtype):
        return {"__dtype__": v.name}
    if isinstance(v, Module):
        return {"__module__": encode_module(v, where)}
    if isinstance(v, list):
        return [_encode_value(x, f"{where}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, tuple):
        return {"__tuple__": [_encode_value(x, f"{where}[{i}]") for i, x in enumerate(v)]}
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {"__dict__": {k: _encode_value(x, f"{where}[{k!r}]") for k, x in v.items()}}
    raise TypeError(
        f"cannot save {where}: a constructor argument is a {type(v).__name__}, which a model "
        "file can't hold (JSON values, ember dtypes and registered modules only); functions "
        "and tensors can't be saved as architecture"
    )


def encode_module(m: Module, where: str = "the model") -> dict[str, Any]:
    """The JSON-ready architecture of ``m`` (see :func:`save_model`)."""
    name = _class_name(m, where)
    if type(m) is Sequential:
        return {
            "class": name,
            "name": m.name,
            "input": _specs(m)[:1],
            "layers": [encode_module(x, f"{where}.{i}") for i, x in enumerate(m.layers)],
        }
    if type(m) is Model and m._graph is not None:
        return _encode_functional(m, name, where)
    recorded = m.__dict__.get("_ember_init_args")
    if recorded is None:
        raise TypeError(
            f"cannot save {where}: no constructor arguments were recorded for this "
            f"{type(m).__qualname__} (it was created before its class was registered)"
        )
    args, kwargs = recorded.args, recorded.kwargs
    out: dict[str, Any] = {
        "class": name,
        "args": [_encode_value(a, f"{where} argument {i}") for i, a in enumerate(args)],
        "kwargs": {k: _encode_value(v, f"{where} argument {k!r}") for k, v in kwargs.items()},
    }
    if isinstance(m, Model):
        out["input"] = _specs(m)
    return out


def _specs(m: Model) -> list[dict[str, Any]]:
    return [{"shape": list(s), "dtype": d.name} for s, d in (m._input_specs or [])]


def _encode_functional(m: Model, name: str, where: str) -> dict[str, Any]:
    assert m._graph is not None
    ins, outs, nodes = m._graph
    layers = [x for x in m._modules.values() if x is not None]
    refs: dict[int, list[int]] = {}
    for n, node in enumerate(nodes):
        for k, t in enumerate(node.outputs):
            refs[t.id] = [n, k]

    def arg(a: Any) -> Any:
        if isinstance(a, SymbolicTensor):
            return {"__tensor__": refs[a.id]}
        if isinstance(a, list):
            return [arg(x) for x in a]
        return {"__tuple__": [arg(x) for x in a]}

    encoded_nodes: list[dict[str, Any]] = []
    for node in nodes:
        if node.layer is None:
            encoded_nodes.append({"input": next(i for i, t in enumerate(ins) if t.node is node)})
        else:
            index = next(i for i, x in enumerate(layers) if x is node.layer)
            encoded_nodes.append({"layer": index, "args": [arg(a) for a in node.args]})
    return {
        "class": name,
        "name": m.name,
        "inputs": [
            {"shape": list(t.sample_shape), "dtype": t.dtype.name, "name": t.name} for t in ins
        ],
        "layers": [encode_module(x, f"{where}.{i}") for i, x in enumerate(layers)],
        "nodes": encoded_nodes,
        "outputs": [refs[t.id] for t in outs],
        "single_output": m._single_output,
    }


# ================================================================= decoding
def _check(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ModelFormatError(f"bad model architecture at {where}: {what}")


def _field(d: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    _check(isinstance(d, dict) and key in d, where, f"missing field {key!r}")
    value = d[key]
    names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    _check(isinstance(value, kind), where, f"{key!r} must be a {names}, got {value!r}")
    return value


def _dtype(name: Any, where: str) -> dt.dtype:
    _check(isinstance(name, str) and name in dt._BY_NAME, where, f"unknown dtype {name!r}")
    return dt._BY_NAME[name]


def _shape(value: Any, where: str) -> tuple[int, ...]:
    ok = isinstance(value, list) and all(type(s) is int and s >= 0 for s in value)
    _check(ok, where, f"a shape must be a list of sizes, got {value!r}")
    return tuple(value)


def _decode_value(v: Any, where: str) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, list):
        return [_decode_value(x, f"{where}[{i}]") for i, x in enumerate(v)]
    _check(isinstance(v, dict) and len(v) == 1, where, f"unexpected value {v!r}")
    ((tag, body),) = v.items()
    if tag == "__dtype__":
        return _dtype(body, where)
    if tag == "__module__":
        return decode_module(body, where)
    if tag == "__tuple__":
        _check(isinstance(body, list), where, "a tuple must hold a list")
        return tuple(_decode_value(x, f"{where}[{i}]") for i, x in enumerate(body))
    if tag == "__dict__":
        _check(isinstance(body, dict), where, "a dict must hold an object")
        return {k: _decode_value(x, f"{where}[{k!r}]") for k, x in body.items()}
    raise ModelFormatError(f"bad model architecture at {where}: unknown tag {tag!r}")


def _construct(cls: type[Module], args: list[Any], kwargs: dict[str, Any], where: str) -> Any:
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise ModelFormatError(
            f"bad model architecture at {where}: {cls.__qualname__} can't be built from the "
            f"saved arguments: {e}"
        ) from e


def decode_module(d: Any, where: str = "model") -> Module:
    """Rebuild a module from :func:`encode_module`'s JSON, using registered classes only."""
    cls = registered_class(_field(d, "class", str, where))
    if cls is Sequential and "layers" in d:
        specs = _field(d, "input", list, where)
        layers = [
            decode_module(x, f"{where}.{i}") for i, x in enumerate(_field(d, "layers", list, where))
        ]
        first: list[Any] = [Input(*_spec(s, f"{where}.input")) for s in specs[:1]]
        return _construct(cls, [first + layers], {"name": _field(d, "name", str, where)}, where)
    if cls is Model and "nodes" in d:
        return _decode_functional(d, where)
    args = _decode_value(_field(d, "args", list, where), f"{where}.args")
    kwargs = _field(d, "kwargs", dict, where)
    kwargs = {k: _decode_value(v, f"{where}.kwargs.{k}") for k, v in kwargs.items()}
    m = _construct(cls, args, kwargs, where)
    if isinstance(m, Model) and "input" in d:
        specs = [_spec(s, f"{where}.input") for s in _field(d, "input", list, where)]
        _build_lazy(m, specs)
    return m


def _spec(s: Any, where: str) -> tuple[tuple[int, ...], dt.dtype]:
    return _shape(_field(s, "shape", list, where), where), _dtype(s.get("dtype"), where)


def _build_lazy(m: Model, specs: list[tuple[tuple[int, ...], dt.dtype]]) -> None:
    if not specs or all(
        x.weight is not None for x in m.modules() if isinstance(x, layers_mod.LazyLinear)
    ):
        return
    was = m.training
    m.eval()
    with ember.no_grad():
        m(*[ember.zeros(1, *shape, dtype=d) for shape, d in specs])
    m.train(was)


def _decode_functional(d: dict[str, Any], where: str) -> Model:
    inputs = []
    for i, s in enumerate(_field(d, "inputs", list, where)):
        shape, dtype = _spec(s, f"{where}.inputs[{i}]")
        inputs.append(Input(shape, dtype=dtype, name=_field(s, "name", str, where)))
    layers = [
        decode_module(x, f"{where}.{i}") for i, x in enumerate(_field(d, "layers", list, where))
    ]
    produced: list[tuple[Any, ...]] = []

    def ref(r: Any, at: str) -> Any:
        ok = isinstance(r, list) and len(r) == 2 and all(type(i) is int for i in r)
        _check(ok and 0 <= r[0] < len(produced) and 0 <= r[1] < len(produced[r[0]]), at,
               f"bad tensor reference {r!r}")  # fmt: skip
        return produced[r[0]][r[1]]

    def arg(a: Any, at: str) -> Any:
        if isinstance(a, list):
            return [arg(x, at) for x in a]
        _check(isinstance(a, dict) and len(a) == 1, at, f"unexpected argument {a!r}")
        if "__tensor__" in a:
            return ref(a["__tensor__"], at)
        _check(isinstance(a.get("__tuple__"), list), at, f"unexpected argument {a!r}")
        return tuple(arg(x, at) for x in a["__tuple__"])

    for n, node in enumerate(_field(d, "nodes", list, where)):
        at = f"{where}.nodes[{n}]"
        if isinstance(node, dict) and "input" in node:
            i = _field(node, "input", int, at)
            _check(0 <= i < len(inputs), at, f"no input {i}")
            produced.append((inputs[i],))
            continue
        k = _field(node, "layer", int, at)
        _check(0 <= k < len(layers), at, f"no layer {k}")
        out = layers[k](*[arg(a, at) for a in _field(node, "args", list, at)])
        produced.append(tuple(out) if isinstance(out, (list, tuple)) else (out,))
    outputs = [ref(r, f"{where}.outputs") for r in _field(d, "outputs", list, where)]
    _check(len(outputs) > 0, where, "no outputs")
    single = _field(d, "single_output", bool, where)
    return Model(inputs, outputs[0] if single else outputs, name=_field(d, "name", str, where))


# ================================================================= files
def save_model(model: Module, path: str | os.PathLike[str]) -> None:
    """Write a whole model (architecture and weights) to one safetensors file, atomically.

    Args:
        model: a ``Sequential``, a functional ``Model`` or any module whose classes
            (its own and its sub-modules') are registered.
        path: the file to write.

    Example:
        >>> import ember, os, tempfile
        >>> from ember.models import Sequential, layers, load_model
        >>> model = Sequential([ember.nn.Linear(3, 4), ember.nn.ReLU(), ember.nn.Linear(4, 1)])
        >>> path = os.path.join(tempfile.mkdtemp(), "mlp.safetensors")
        >>> model.save(path)
        >>> x = ember.randn(2, 3)
        >>> bool((load_model(path)(x) == model(x)).all())
        True
    """
    from ember._src.io.safetensors_io import save  # io comes after models in the layers

    if not isinstance(model, Module):
        raise TypeError(f"save_model takes an ember.nn.Module, got {type(model).__name__}")
    arch = {"format": FORMAT_VERSION, "model": encode_module(model)}
    text = json.dumps(arch)
    # Rebuild before writing: a module changed after construction (layers appended to
    # an nn.Sequential, say) would not reload, and that should fail now, not at load.
    rebuilt = decode_module(json.loads(text)["model"])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if ours != theirs:
        raise ValueError(
            "cannot save the model: rebuilding it from its constructor arguments gives different "
            f"weights ({sorted(set(ours) ^ set(theirs)) or 'shapes differ'}); was it changed after "
            "construction? Save its weights with ember.save instead"
        )
    save(model.state_dict(), path, metadata={METADATA_KEY: text})


def load_model(path: str | os.PathLike[str]) -> Module:
    """Rebuild a model saved with ``model.save`` / :func:`save_model` and load its weights.

    Only registered classes are built; nothing named in the file is imported or run.

    Args:
        path: the file.

    Returns:
        The model, with its weights loaded strictly, in training mode.

    Raises:
        ModelFormatError (a ValueError): the file holds no model, names an unregistered
            class, or its architecture is malformed; the message says which.
    """
    from ember._src.io.safetensors_io import load, load_metadata

    text = load_metadata(path).get(METADATA_KEY)
    if text is None:
        raise ModelFormatError(
            f"{os.fspath(path)} holds weights but no model architecture (it was not written by "
            "model.save); build the model in code and call load_state_dict(ember.load(path))"
        )
    try:
        arch = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFormatError(f"{os.fspath(path)}: the model architecture is not JSON: {e}") from e
    version = _field(arch, "format", int, "the file")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{os.fspath(path)} uses model format {version}; this ember reads up to "
            f"{FORMAT_VERSION}; upgrade ember to load it"
        )
    model = decode_module(arch.get("model"))
    model.load_state_dict(load(path))
    return model
