"""Abstract values: a tensor's shape, dtype and device without its data.

Shape rules (``Op.infer``) take and return these; they are what tracing,
early shape errors and export reason about.
"""

from __future__ import annotations

from dataclasses import dataclass

from ember._src.core import dtype as dt


@dataclass(frozen=True)
class AVal:
    """Shape and dtype of a value, with no data."""

    shape: tuple[int, ...]
    dtype: dt.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return f"{self.dtype.name}{list(self.shape)}"
