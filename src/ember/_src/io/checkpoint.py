"""Training checkpoints: ``ember.save_checkpoint`` / ``ember.load_checkpoint``.

A checkpoint is one safetensors file. Its tensors are the model's state dict
(``model/<key>``), the optimizer's state tensors (``optimizer/state/<i>/<name>``)
and any tensors in ``extra``; everything else (optimizer hyperparameters and
scalar state, the scheduler's state, the RNG states, epoch, step, extra) is one
JSON document in the header's ``ember_checkpoint`` metadata entry, where each
tensor appears as ``{"$tensor": "<name>"}``. One file means one atomic rename:
the tensors and the JSON can never come from different saves.

JSON has no tuples, non-string keys, NaN or infinity, so those are tagged:
``{"$tuple": [...]}``, ``{"$dict": [[key, value], ...]}``, ``{"$counter": ...}``,
``{"$float": "nan"}``. A plain JSON object is a dict whose keys are strings not
starting with ``$``. Loading builds only these types; it never runs code.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections import Counter
from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core import random as ember_random
from ember._src.core.tensor import Tensor
from ember._src.io.safetensors_io import (
    SafetensorsError,
    check_version,
    header_metadata,
    host_array,
    read_file,
    write_file,
)

_KEY = "ember_checkpoint"


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Any = None,
    optimizer: Any = None,
    scheduler: Any = None,
    epoch: int | None = None,
    step: int | None = None,
    rng: bool = True,
    extra: Any = None,
) -> None:
    """Save everything needed to resume training to one safetensors file, atomically.

    Args:
        path: the file to write (replaced atomically if it exists).
        model: a Module (its ``state_dict()`` is saved).
        optimizer: an Optimizer (its ``state_dict()``: state tensors and param groups).
        scheduler: a learning-rate scheduler (its ``state_dict()``).
        epoch: the epoch count to resume from.
        step: the global step count to resume from.
        rng: save the states of ember's default generator, NumPy's global generator
            and Python's ``random``, so dropout, shuffling and augmentation continue
            exactly as if training had never stopped.
        extra: any JSON-like value (numbers, strings, lists, tuples, dicts) that may
            contain Tensors and NumPy arrays, e.g. ``{"best_loss": 0.12}``.

    Example:
        >>> import ember, ember.nn as nn, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
        >>> model = nn.Linear(2, 1)
        >>> opt = ember.optim.Adam(model.parameters(), lr=0.1)
        >>> ember.save_checkpoint(path, model, opt, epoch=3, extra={"best": 0.5})
        >>> info = ember.load_checkpoint(path, model, opt)
        >>> info["epoch"], info["extra"]
        (3, {'best': 0.5})
    """
    for name, value in (("epoch", epoch), ("step", step)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise TypeError(f"save_checkpoint: {name} must be an int or None, got {value!r}")
    enc = _Encoder()
    doc: dict[str, Any] = {"epoch": epoch, "step": step}
    if model is not None:
        doc["model"] = enc.encode(_state_dict(model, "model"), "model")
    if optimizer is not None:
        doc["optimizer"] = {
            "class": type(optimizer).__name__,
            "state_dict": enc.encode(_state_dict(optimizer, "optimizer"), "optimizer"),
        }
    if scheduler is not None:
        doc["scheduler"] = {
            "class": type(scheduler).__name__,
            "state_dict": enc.encode(_state_dict(scheduler, "scheduler"), "scheduler"),
        }
    if rng:
        doc["rng"] = enc.encode(_rng_state(), "rng")
    doc["extra"] = enc.encode(extra, "extra")
    text = json.dumps(doc, allow_nan=False, separators=(",", ":"))
    write_file(path, enc.arrays, header_metadata(None, **{_KEY: text}))


def load_checkpoint(
    path: str | os.PathLike[str],
    model: Any = None,
    optimizer: Any = None,
    scheduler: Any = None,
) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_checkpoint`.

    Loads the model's weights, the optimizer's and scheduler's state (when given)
    and the RNG states (when saved). The whole file is read and checked before
    anything is changed. Loading reads JSON and raw bytes only; it never runs code.

    Args:
        path: the checkpoint file.
        model: the Module to load the weights into (same architecture).
        optimizer: the Optimizer to restore (same class and parameter groups).
        scheduler: the scheduler to restore (same class).

    Returns:
        ``{"epoch": ..., "step": ..., "extra": ...}`` as saved (tensors in ``extra`` come
        back as CPU Tensors, NumPy arrays as NumPy arrays).
    """
    arrays, metadata = read_file(path)
    name = os.fspath(path)
    check_version(name, metadata)
    if _KEY not in metadata:
        raise SafetensorsError(
            f"{name} is a safetensors file but not an ember training checkpoint (no "
            f"{_KEY!r} metadata); load plain weights with ember.load(path)"
        )
    try:
        doc = json.loads(metadata[_KEY], parse_constant=_reject_constant)
        decoded = _Decoder(name, arrays).decode(doc)
    except (ValueError, TypeError, KeyError) as e:
        raise SafetensorsError(f"{name}: the checkpoint's JSON is malformed ({e})") from None
    if not isinstance(decoded, dict):
        raise SafetensorsError(f"{name}: the checkpoint's JSON is not an object")

    parts = [("model", model), ("optimizer", optimizer), ("scheduler", scheduler)]
    for key, obj in parts:
        if obj is not None and key not in decoded:
            raise ValueError(
                f"{name} has no {key} state, but a {key} was passed to load_checkpoint"
            )
    for key, obj in parts[1:]:
        if obj is not None and decoded[key]["class"] != type(obj).__name__:
            raise ValueError(
                f"{name} holds the state of a {decoded[key]['class']} {key}, but a "
                f"{type(obj).__name__} was passed"
            )
    if optimizer is not None:
        _check_groups(name, decoded["optimizer"]["state_dict"], optimizer)
    # Everything that can be checked has been; the model's load checks keys and shapes
    # before it copies anything, so it goes first.
    if model is not None:
        model.load_state_dict(decoded["model"])
    if optimizer is not None:
        optimizer.load_state_dict(decoded["optimizer"]["state_dict"])
    if scheduler is not None:
        scheduler.load_state_dict(decoded["scheduler"]["state_dict"])
    if "rng" in decoded:
        _set_rng_state(decoded["rng"])
    return {
        "epoch": decoded.get("epoch"),
        "step": decoded.get("step"),
        "extra": decoded.get("extra"),
    }


def _state_dict(obj: Any, what: str) -> Any:
    fn = getattr(obj, "state_dict", None)
    if not callable(fn):
        raise TypeError(
            f"save_checkpoint: {what} must have a state_dict() method, got {type(obj).__name__}"
        )
    return fn()


def _check_groups(name: str, saved: Any, optimizer: Any) -> None:
    groups = optimizer.param_groups
    sizes = [len(g["params"]) for g in saved["param_groups"]]
    if sizes != [len(g["params"]) for g in groups]:
        raise ValueError(
            f"{name}: the saved optimizer has parameter groups of sizes {sizes}, this one "
            f"{[len(g['params']) for g in groups]}; build the optimizer as it was when saved"
        )


# ================================================================= RNG states
def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "ember": ember_random.default_generator.get_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": [int(k) for k in np_state["state"]["key"]],
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": np.array(n["key"], dtype=np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    ember_random.default_generator.set_state(state["ember"])


# ================================================================= the JSON codec
class _Encoder:
    """Turns a tree of Python values and tensors into JSON, collecting the tensors."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return self.encode(value.item(), where)
        if isinstance(value, (Tensor, np.ndarray)):
            return {self._tag(value): self._store(value, where)}
        if isinstance(value, list):
            return [self.encode(v, f"{where}/{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, f"{where}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, Counter):
            return {"$counter": self._pairs(value, where)}
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {k: self.encode(v, f"{where}/{k}") for k, v in value.items()}
            return {"$dict": self._pairs(value, where)}
        raise TypeError(
            f"save_checkpoint: the value at {where!r} is a {type(value).__name__}, which a "
            "checkpoint can't hold without pickle; use numbers, strings, lists, tuples, "
            "dicts, Tensors and NumPy arrays"
        )

    def _pairs(self, value: dict[Any, Any], where: str) -> list[list[Any]]:
        return [
            [self.encode(k, f"{where}/<key>"), self.encode(v, f"{where}/{k}")]
            for k, v in value.items()
        ]

    @staticmethod
    def _tag(value: Any) -> str:
        return "$tensor" if isinstance(value, Tensor) else "$ndarray"

    def _store(self, value: Any, where: str) -> str:
        name, n = where, 1
        while name in self.arrays:  # keys "1" and 1 of one dict would collide
            n += 1
            name = f"{where}#{n}"
        self.arrays[name] = host_array(value, f"the value at {where!r}")
        return name


class _Decoder:
    def __init__(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        self.name = name
        self.arrays = arrays

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        tags = [k for k in value if k.startswith("$")]
        if not tags:
            return {k: self.decode(v) for k, v in value.items()}
        if len(value) != 1:
            raise ValueError(f"an object mixes the tag {tags[0]!r} with other keys")
        tag, body = next(iter(value.items()))
        if tag == "$tensor":
            return Tensor._wrap(self._array(body))
        if tag == "$ndarray":
            return self._array(body)
        if tag == "$float":
            if body not in ("nan", "inf", "-inf"):
                raise ValueError(f"$float must be 'nan', 'inf' or '-inf', got {body!r}")
            return float(body)
        if tag == "$tuple":
            return tuple(self.decode(body))
        if tag == "$dict":
            return {_hashable(self.decode(k)): self.decode(v) for k, v in body}
        if tag == "$counter":
            return Counter({_hashable(self.decode(k)): self.decode(v) for k, v in body})
        raise ValueError(f"unknown tag {tag!r}")

    def _array(self, key: Any) -> np.ndarray:
        if key not in self.arrays:
            raise KeyError(f"it refers to a tensor {key!r} that the file does not hold")
        a = self.arrays[key]
        dt.from_numpy_dtype(a.dtype)
        return a


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        raise TypeError(f"a dict key decodes to an unhashable {type(key).__name__}") from None
    return key


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed (ember writes it as $float)")
