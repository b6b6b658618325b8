"""Fixtures shared by the high-level API's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import ember


@pytest.fixture
def float64_default() -> Iterator[None]:
    """float64 as the default dtype, so losses compare with NumPy's to 1e-12."""
    saved = ember.get_default_dtype()
    ember.set_default_dtype(ember.float64)
    yield
    ember.set_default_dtype(saved)
