"""Random number generation: ``ember.manual_seed`` and ``ember.Generator``.

Numbers are drawn on the host by NumPy's PCG64 and moved to the tensor's
device, so the same seed gives the same numbers on every run and every device.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Generator:
    """A seeded source of random numbers, as ``torch.Generator``.

    Example:
        >>> import ember
        >>> g = ember.Generator().manual_seed(0)
        >>> a = ember.rand(2, generator=g); g.manual_seed(0)  # doctest: +ELLIPSIS
        <ember...Generator object at ...>
        >>> bool((ember.rand(2, generator=g) == a).all())
        True
    """

    def __init__(self, device: Any = "cpu") -> None:
        self.device = device
        self._seed = 0
        self._rng = np.random.Generator(np.random.PCG64(0))

    def manual_seed(self, seed: int) -> Generator:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
        self._seed = int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self._seed & (2**64 - 1)))
        return self

    def seed(self) -> int:
        """Re-seed from OS entropy and return the new seed."""
        s = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict[str, Any]:
        """The generator state as plain JSON-able data (no pickle)."""
        state = dict(self._rng.bit_generator.state)
        return {"seed": self._seed, "bit_generator": state}

    def set_state(self, state: dict[str, Any]) -> None:
        self._seed = int(state["seed"])
        self._rng.bit_generator.state = state["bit_generator"]

    @property
    def numpy(self) -> np.random.Generator:
        """The NumPy generator that draws the numbers."""
        return self._rng


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed ember's default generator; returns it.

    Example:
        >>> import ember
        >>> _ = ember.manual_seed(1); a = ember.randn(3)
        >>> _ = ember.manual_seed(1); bool((ember.randn(3) == a).all())
        True
    """
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict[str, Any]:
    return default_generator.get_state()


def set_rng_state(state: dict[str, Any]) -> None:
    default_generator.set_state(state)
