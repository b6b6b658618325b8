"""Turning a list of samples into a batch: ``default_collate`` and ``default_convert``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import ember
from ember import Tensor

_TYPES_HINT = "tensors, NumPy arrays, numbers, strings, dicts, lists or tuples"


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _numeric_array(a: np.ndarray | np.generic) -> bool:
    return a.dtype.kind in "biuf"


def _stack(tensors: list[Tensor]) -> Tensor:
    first = tensors[0]
    plain = all(
        isinstance(t, Tensor)
        and not t.requires_grad
        and t.dtype == first.dtype
        and t.shape == first.shape
        and t.device == first.device
        for t in tensors
    )
    if plain and first.device.type == "cpu":
        # Same result as ember.stack without the tape (nothing requires grad), but one
        # NumPy call instead of an op per sample: the difference is most of a batch's cost.
        return ember.from_numpy(np.stack([t.numpy() for t in tensors]))
    return ember.stack(tensors)


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, recursing into containers (PyTorch's rules).

    * ember Tensors are stacked along a new first dimension;
    * NumPy arrays and NumPy scalars become one tensor of their dtype;
    * Python floats become float64, ints int64 and bools bool tensors;
    * strings and bytes stay a list;
    * dicts collate per key, namedtuples per field, and lists or tuples per
      position (a tuple sample gives a list, as in PyTorch).

    Args:
        batch: the samples, all of the same structure.

    Returns:
        The batch, with the samples' structure.

    Example:
        >>> import numpy as np
        >>> from ember.data import default_collate
        >>> b = default_collate([(np.zeros(3, np.float32), 1), (np.ones(3, np.float32), 0)])
        >>> b[0].shape, b[1]
        ((2, 3), tensor([1, 0]))
    """
    if len(batch) == 0:
        raise ValueError("default_collate: the batch is empty")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(list(batch))
    if isinstance(elem, (np.ndarray, np.generic)):
        if not _numeric_array(elem):
            raise TypeError(
                f"default_collate: NumPy arrays of dtype {elem.dtype} cannot become tensors; "
                f"samples must hold {_TYPES_HINT}"
            )
        try:
            return ember.from_numpy(np.stack([np.asarray(b) for b in batch]))
        except ValueError as e:
            shapes = sorted({np.shape(b) for b in batch})
            raise ValueError(
                f"default_collate: cannot stack arrays of different shapes {shapes}; "
                "pad them or pass a collate_fn"
            ) from e
    if isinstance(elem, float):
        return ember.tensor(batch, dtype=ember.float64)
    if isinstance(elem, int):  # bool included: a bool tensor, as in PyTorch
        return ember.tensor(batch)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        out = {}
        for key in elem:
            try:
                values = [d[key] for d in batch]
            except KeyError as e:
                raise KeyError(f"default_collate: a sample lacks the key {key!r}") from e
            out[key] = default_collate(values)
        try:
            return type(elem)(out)  # type: ignore[call-arg]
        except TypeError:
            return out
    if isinstance(elem, Sequence):
        size = len(elem)
        if any(len(b) != size for b in batch):
            raise RuntimeError(
                "default_collate: each element in the batch should be of equal size, got sizes "
                f"{sorted({len(b) for b in batch})}"
            )
        columns = [default_collate(list(col)) for col in zip(*batch)]
        if _is_namedtuple(elem):
            return type(elem)(*columns)
        if isinstance(elem, tuple):
            return columns
        try:
            return type(elem)(columns)  # type: ignore[call-arg]
        except TypeError:
            return columns
    raise TypeError(
        f"default_collate: samples must hold {_TYPES_HINT}; found {type(elem).__name__}"
    )


def default_convert(data: Any) -> Any:
    """Convert NumPy arrays and scalars inside ``data`` to tensors, without batching.

    The collate function a DataLoader uses when ``batch_size=None``.

    Example:
        >>> import numpy as np
        >>> from ember.data import default_convert
        >>> default_convert({"x": np.arange(2), "name": "a"})
        {'x': tensor([0, 1]), 'name': 'a'}
    """
    if isinstance(data, (np.ndarray, np.generic)):
        return ember.from_numpy(np.asarray(data)) if _numeric_array(data) else data
    if isinstance(data, Mapping):
        out = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(out)  # type: ignore[call-arg]
        except TypeError:
            return out
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])  # type: ignore[call-arg]
        except TypeError:
            return [default_convert(d) for d in data]
    return data
