"""Turn what users log (ember Tensors, NumPy arrays, Python numbers) into NumPy arrays."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ember._src.core.tensor import Tensor


def to_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a NumPy array of bools, integers or floats; ``what`` names it in errors."""
    if isinstance(value, Tensor):
        array = value.detach().numpy()
    elif isinstance(value, (np.ndarray, np.generic, numbers.Number, list, tuple)):
        array = np.asarray(value)
    else:
        raise TypeError(
            f"{what} must be an ember Tensor, a NumPy array or a Python number, "
            f"got {type(value).__name__}"
        )
    if array.dtype.kind not in "biuf":
        try:  # bfloat16 (ml_dtypes) and other extension floats
            array = array.astype(np.float32)
        except (TypeError, ValueError):
            raise TypeError(f"{what} must hold numbers, got dtype {array.dtype}") from None
    return array


def to_number(value: Any, what: str) -> float:
    """A one-element ``value`` as a Python float."""
    array = to_array(value, what)
    if array.size != 1:
        raise ValueError(f"{what} must be a single number, got shape {array.shape}")
    return float(array.reshape(()))


def to_layout(array: np.ndarray, dataformats: str, layout: str, what: str) -> np.ndarray:
    """Transpose ``array`` from ``dataformats`` to ``layout``; a missing ``C`` becomes size 1.

    ``layout`` is ``"CHW"`` or ``"NCHW"``; ``dataformats`` is a permutation of it or of it
    without ``C``.
    """
    fmt = dataformats.upper()
    allowed = (layout, layout.replace("C", ""))
    if sorted(fmt) not in [sorted(a) for a in allowed]:
        raise ValueError(
            f"{what}: dataformats must order the letters {allowed[0]!r} (or {allowed[1]!r} for "
            f"grayscale), got {dataformats!r}"
        )
    if array.ndim != len(fmt):
        raise ValueError(
            f"{what}: dataformats {dataformats!r} needs a {len(fmt)}-d array, "
            f"got shape {array.shape}"
        )
    if "C" not in fmt:
        array, fmt = array[..., None], fmt + "C"
    array = array.transpose([fmt.index(c) for c in layout])
    channels = array.shape[layout.index("C")]
    if channels not in (1, 3, 4):
        raise ValueError(
            f"{what}: images need 1 (gray), 3 (RGB) or 4 (RGBA) channels, got {channels} "
            f"(shape {array.shape} in {layout}); check dataformats"
        )
    return array


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Pixels as uint8: uint8 is kept, anything else is read as [0, 1] and clipped."""
    if images.dtype == np.uint8:
        return images
    return (images.astype(np.float64) * 255.0).clip(0, 255).astype(np.uint8)
