"""Abstract values: a tensor's shape and dtype without its data.

Shape rules (``Op.infer``) take and return these; they are what tracing,
early shape errors and export reason about.
"""

from __future__ import annotations

from ember._src.core import dtype as dt


class AVal:
    """Shape and dtype of a value, with no data."""

    __slots__ = ("dtype", "shape")

    def __init__(self, shape: tuple[int, ...], dtype: dt.dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AVal):
            return NotImplemented
        return self.shape == other.shape and self.dtype is other.dtype

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype.name))

    def __repr__(self) -> str:
        return f"AVal({self.shape}, {self.dtype!r})"

    def __str__(self) -> str:
        return f"{self.dtype.name}{list(self.shape)}"
