"""Devices and backends: a backend is an array namespace plus a few kernels.

``cpu`` is NumPy. ``cuda`` is CuPy, imported only when a CUDA tensor is first
made, so everything but CUDA work runs without it. Ops never import numpy or
cupy: they receive the namespace (``xp``) of the backend their inputs live on.
Kernels that truly differ per backend register under a name with
:func:`register_kernel` and are looked up with :meth:`Backend.kernel`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np


class device:
    """Where a tensor lives: ``ember.device("cpu")``, ``ember.device("cuda:0")``.

    Example:
        >>> import ember
        >>> ember.device("cpu")
        device(type='cpu')
    """

    __slots__ = ("index", "type")
    type: str
    index: int | None

    def __init__(self, spec: str | device, index: int | None = None) -> None:
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device() takes a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if kind not in _FACTORIES:
            known = ", ".join(sorted(_FACTORIES))
            raise ValueError(f"unknown device type {kind!r}; ember knows: {known}")
        self.type = kind
        self.index = int(idx) if idx else index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


class Backend:
    """One device kind: its array namespace ``xp`` and its own kernels."""

    def __init__(self, name: str, xp: Any, array_type: type) -> None:
        self.name = name
        self.xp = xp
        self.array_type = array_type
        self.device = device(name)
        self._kernels: dict[str, Callable[..., Any]] = {}

    def kernel(self, name: str) -> Callable[..., Any]:
        fn = self._kernels.get(name)
        if fn is None:
            raise NotImplementedError(f"the {self.name} backend has no kernel {name!r}")
        return fn

    def asarray(self, data: Any, dtype: Any = None) -> Any:
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array) if self.xp is np else self.xp.asnumpy(array)

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"


def _make_cpu() -> Backend:
    return Backend("cpu", np, np.ndarray)


def _make_cuda() -> Backend:
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as e:
        raise RuntimeError(
            "the cuda device needs CuPy; install it with `pip install cupy-cuda12x` "
            "on a machine with an NVIDIA GPU"
        ) from e
    return Backend("cuda", cupy, cupy.ndarray)


_FACTORIES: dict[str, Callable[[], Backend]] = {"cpu": _make_cpu, "cuda": _make_cuda}
_BACKENDS: dict[str, Backend] = {}
_BY_ARRAY_TYPE: dict[type, Backend] = {}
_PENDING_KERNELS: dict[str, dict[str, Callable[..., Any]]] = {}


def register_backend(name: str, factory: Callable[[], Backend]) -> None:
    """Make a new device type available: ``factory()`` builds its Backend on first use."""
    if name in _FACTORIES:
        raise ValueError(f"a backend named {name!r} is already registered")
    _FACTORIES[name] = factory


def get_backend(dev: str | device = "cpu") -> Backend:
    """The backend for a device, created on first use."""
    name = dev.type if isinstance(dev, device) else device(dev).type
    b = _BACKENDS.get(name)
    if b is None:
        b = _FACTORIES[name]()
        b._kernels.update(_PENDING_KERNELS.get(name, {}))
        _BACKENDS[name] = b
        _BY_ARRAY_TYPE[b.array_type] = b
    return b


def backend_of_array(array: Any) -> Backend:
    b = _BY_ARRAY_TYPE.get(type(array))
    if b is None:
        if isinstance(array, (np.ndarray, np.generic)):
            return CPU
        raise TypeError(f"ember cannot hold an array of type {type(array).__name__}")
    return b


def register_kernel(backend: str, name: str, fn: Callable[..., Any]) -> None:
    """Register a backend-specific kernel (used for conv, pooling, fused code)."""
    _PENDING_KERNELS.setdefault(backend, {})[name] = fn
    if backend in _BACKENDS:
        _BACKENDS[backend]._kernels[name] = fn


def is_available(name: str) -> bool:
    """Whether a backend can be created on this machine (``ember.cuda.is_available``)."""
    try:
        get_backend(name)
    except RuntimeError:
        return False
    if name == "cuda":
        try:
            return bool(get_backend("cuda").xp.cuda.runtime.getDeviceCount() > 0)
        except Exception:
            return False
    return True


CPU = get_backend("cpu")
