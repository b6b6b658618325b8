"""Helpers for the metric tests: feeding metrics in uneven batches of mixed input types."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

import ember


def cuts(n: int, seed: int) -> list[tuple[int, int]]:
    """Uneven [start, stop) batches covering range(n), with an empty one among them."""
    rng = np.random.default_rng(seed)
    inner = np.sort(rng.integers(0, n + 1, size=max(3, n // 40)))
    edges = [0, 0, *inner.tolist(), n]  # the repeated 0 makes an empty first batch
    return list(itertools.pairwise(edges))


def convert(x: np.ndarray, i: int) -> Any:
    """Batch i as a NumPy array, an ember Tensor or a nested list, in turn."""
    kind = i % 3
    if kind == 1:
        return ember.tensor(x)
    if kind == 2 and x.shape[0] > 0:  # an empty list would lose the trailing dimensions
        return x.tolist()
    return x


def feed(metric: Any, *arrays: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """Update ``metric`` with ``arrays`` (None passes through) split into uneven batches."""
    n = next(a for a in arrays if a is not None).shape[0]
    for i, (a, b) in enumerate(cuts(n, seed)):
        metric.update_state(*(None if x is None else convert(x[a:b], i) for x in arrays))
    return metric.result().numpy()


def one_shot(metric: Any, *arrays: np.ndarray | None) -> np.ndarray:
    metric.update_state(*arrays)
    return metric.result().numpy()


def stream(make: Callable[[], Any], *arrays: np.ndarray | None) -> np.ndarray:
    """The result of ``make()`` fed ``arrays`` in uneven batches, checked equal to one update."""
    streamed = feed(make(), *arrays)
    np.testing.assert_allclose(streamed, one_shot(make(), *arrays), rtol=1e-12, atol=1e-12)
    return streamed
