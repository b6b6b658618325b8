"""DLPack: zero-copy exchange with NumPy, PyTorch, CuPy, JAX and other array libraries.

``Tensor.__dlpack__`` / ``Tensor.__dlpack_device__`` make an ember tensor
importable by ``np.from_dlpack``, ``torch.from_dlpack``, ``cupy.from_dlpack``…;
``ember.from_dlpack`` imports theirs. Both directions share memory: a write
through one is seen by the other.

ember's arrays are NumPy (CPU) or CuPy (CUDA) arrays, so the capsules are made
and consumed by those libraries, following DLPack 1.0 where they support it.
Read-only sources (a NumPy array with ``writeable=False``) are flagged read-only
in DLPack 1.0 and come in as *read-only* tensors, still sharing memory: reading
works, writing in place raises (``RuntimeError`` for in-place arithmetic and item
assignment, telling you to ``clone()`` first); pass ``copy=True`` for a writable copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core.backend import device as Device
from ember._src.core.backend import get_backend
from ember._src.core.tensor import Tensor

_CPU_TYPES = (1, 3)  # kDLCPU, kDLCUDAHost (pinned host memory)
_CUDA_TYPES = (2, 13)  # kDLCUDA, kDLCUDAManaged


def __dlpack__(
    self: Tensor,
    *,
    stream: Any = None,
    max_version: tuple[int, int] | None = None,
    dl_device: Any = None,
    copy: bool | None = None,
) -> Any:
    """Export this tensor as a DLPack capsule (the array API's ``__dlpack__``).

    Called by the consumer's ``from_dlpack``; the capsule shares this tensor's
    memory unless ``copy=True``.

    Raises:
        BufferError: the tensor requires grad (export ``tensor.detach()``), or its
            dtype has no DLPack code on its device (bfloat16 on CPU).

    Example:
        >>> import ember, numpy as np
        >>> t = ember.arange(4.0)
        >>> a = np.from_dlpack(t)
        >>> a[0] = 7.0
        >>> t
        tensor([7., 1., 2., 3.])
    """
    if self._requires_grad:
        raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
    data = self._data
    if dt.bfloat16 is not None and data.dtype == dt.bfloat16.np and self._backend.name == "cpu":
        raise BufferError(
            "can't export a CPU bfloat16 tensor through DLPack: NumPy, which holds it, has no "
            "DLPack bfloat16; convert it first, e.g. tensor.float()"
        )
    kwargs = {
        k: v
        for k, v in (
            ("stream", stream),
            ("max_version", max_version),
            ("dl_device", dl_device),
            ("copy", copy),
        )
        if v is not None
    }
    try:
        return data.__dlpack__(**kwargs)
    except TypeError:
        if set(kwargs) <= {"stream"}:
            raise
    # An older NumPy/CuPy without DLPack 1.0 keywords: the legacy export, copying when asked.
    if copy:
        data = data.copy()
    return data.__dlpack__(**({"stream": stream} if stream is not None else {}))


def __dlpack_device__(self: Tensor) -> tuple[int, int]:
    """``(device_type, device_id)`` in DLPack's enumeration: ``(1, 0)`` is CPU.

    Example:
        >>> import ember
        >>> ember.zeros(2).__dlpack_device__()
        (1, 0)
    """
    kind, index = self._data.__dlpack_device__()
    return int(kind), int(index)


def from_dlpack(ext_tensor: Any, *, device: Any = None, copy: bool | None = None) -> Tensor:
    """A Tensor sharing memory with any array that speaks DLPack (NumPy, PyTorch, CuPy, JAX).

    Args:
        ext_tensor: an object with ``__dlpack__`` and ``__dlpack_device__`` (or a legacy
            CPU DLPack capsule, as ``torch.utils.dlpack.to_dlpack`` makes).
        device: where the tensor should live (default: where the source is); moving it
            copies.
        copy: ``None`` shares memory when possible (always, on the same device);
            ``True`` always copies; ``False`` never copies (``BufferError`` if it must).

    Returns:
        A Tensor that does not require grad. A read-only source (a NumPy array with
        ``writeable=False``) gives a read-only tensor: writing to it in place raises;
        pass ``copy=True`` for a writable copy.

    Example:
        >>> import ember, numpy as np
        >>> a = np.zeros(3, dtype=np.float32)
        >>> t = ember.from_dlpack(a)
        >>> t += 1.0
        >>> a
        array([1., 1., 1.], dtype=float32)
    """
    if not hasattr(ext_tensor, "__dlpack__"):
        if type(ext_tensor).__name__ != "PyCapsule":
            raise TypeError(
                f"ember.from_dlpack expects an array that supports DLPack (has __dlpack__), "
                f"got {type(ext_tensor).__name__}"
            )
        ext_tensor = _LegacyCapsule(ext_tensor)
    kind, _ = ext_tensor.__dlpack_device__()
    if kind in _CPU_TYPES:
        data = _numpy_import(ext_tensor, copy)
    elif kind in _CUDA_TYPES:
        xp = get_backend("cuda").xp
        data = xp.from_dlpack(ext_tensor) if copy is None else xp.from_dlpack(ext_tensor, copy=copy)
    else:
        raise BufferError(
            f"ember.from_dlpack: the source lives on DLPack device type {int(kind)}; ember "
            "imports from CPU (1, 3) and CUDA (2, 13) memory"
        )
    try:
        dt.from_numpy_dtype(data.dtype)
    except TypeError as e:
        raise TypeError(f"ember.from_dlpack: {e}") from None
    out = Tensor._wrap(data)
    if device is not None and Device(device).type != out.device.type:
        if copy is False:
            raise BufferError(
                f"ember.from_dlpack: moving the tensor to {device} needs a copy, but copy=False"
            )
        out = out.to(device=device)
    return out


def _numpy_import(ext_tensor: Any, copy: bool | None) -> np.ndarray:
    try:
        return np.from_dlpack(ext_tensor, copy=copy)
    except TypeError:  # NumPy before 2.1 has no copy= (nor DLPack 1.0)
        if copy is False:
            raise
    a = np.from_dlpack(ext_tensor)
    return a.copy() if copy else a


class _LegacyCapsule:
    """A bare DLPack capsule (pre-``__dlpack__`` style); assumed to hold CPU memory."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)


def _install() -> None:
    setattr(Tensor, "__dlpack__", __dlpack__)  # noqa: B010 - core stays free of io
    setattr(Tensor, "__dlpack_device__", __dlpack_device__)  # noqa: B010


_install()
