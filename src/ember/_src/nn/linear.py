"""Linear-algebra layers: Identity, Linear, Bilinear."""

from __future__ import annotations

from typing import Any

from ember._src.nn.module import Module


class Identity(Module):
    """Returns its input unchanged (accepts and ignores any constructor arguments)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input
