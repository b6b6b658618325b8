"""Samplers: the order in which a DataLoader visits a map-style dataset's indices."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any, Generic, TypeVar

import numpy as np

import ember

T_co = TypeVar("T_co", covariant=True)


def _fresh_rng(generator: ember.Generator | None) -> np.random.Generator:
    """The NumPy generator to draw one epoch from.

    Without a generator a new one is seeded from ember's default generator, so
    ``ember.manual_seed`` fixes the order (PyTorch does the same).
    """
    if generator is not None:
        return generator.numpy
    seed = int(ember.default_generator.numpy.integers(0, 2**63 - 1))
    return np.random.Generator(np.random.PCG64(seed))


def _check_positive_int(value: Any, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{what} should be a positive integer, got {value!r}")
    return int(value)


class Sampler(Generic[T_co]):
    """Base class: an iterable over indices (or lists of indices), optionally with ``__len__``."""

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler[int]):
    """Indices ``0 .. len(data_source) - 1`` in order.

    Example:
        >>> from ember.data import SequentialSampler
        >>> list(SequentialSampler(range(3)))
        [0, 1, 2]
    """

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Random indices: a permutation per pass, or independent draws with ``replacement``.

    Args:
        data_source: the dataset (only its length is used).
        replacement: draw with replacement.
        num_samples: how many indices per epoch (default ``len(data_source)``);
            without replacement, more than the length chains permutations.
        generator: the random source; by default one seeded from ember's
            default generator each epoch.

    Example:
        >>> import ember
        >>> from ember.data import RandomSampler
        >>> s = RandomSampler(range(5), generator=ember.Generator().manual_seed(0))
        >>> sorted(s)
        [0, 1, 2, 3, 4]
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: ember.Generator | None = None,
    ) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a bool, got {replacement!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        _check_positive_int(self.num_samples, "num_samples")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        rng = _fresh_rng(self.generator)
        if self.replacement:
            yield from rng.integers(0, n, size=self.num_samples).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from rng.permutation(n).tolist()
        yield from rng.permutation(n)[: self.num_samples % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a random order, without replacement.

    Example:
        >>> import ember
        >>> from ember.data import SubsetRandomSampler
        >>> sorted(SubsetRandomSampler([4, 7, 9], generator=ember.Generator().manual_seed(0)))
        [4, 7, 9]
    """

    def __init__(self, indices: Sequence[int], generator: ember.Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        for i in _fresh_rng(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """Indices ``0 .. len(weights) - 1`` drawn with probability proportional to ``weights``.

    Args:
        weights: non-negative weights, one per sample (need not sum to 1).
        num_samples: how many indices per epoch.
        replacement: draw with replacement (default); without it
            ``num_samples`` may not exceed the number of nonzero weights.
        generator: the random source.

    Example:
        >>> import ember
        >>> from ember.data import WeightedRandomSampler
        >>> g = ember.Generator().manual_seed(0)
        >>> set(WeightedRandomSampler([0.0, 1.0, 0.0], 5, generator=g))
        {1}
    """

    def __init__(
        self,
        weights: Sequence[float] | np.ndarray | ember.Tensor,
        num_samples: int,
        replacement: bool = True,
        generator: ember.Generator | None = None,
    ) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a bool, got {replacement!r}")
        self.num_samples = _check_positive_int(num_samples, "num_samples")
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"weights should be a non-empty 1-D sequence, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights should be finite, non-negative and not all zero")
        if not replacement and self.num_samples > np.count_nonzero(w):
            raise ValueError(
                f"cannot draw {self.num_samples} samples without replacement from "
                f"{np.count_nonzero(w)} nonzero weights"
            )
        self.weights = w
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        rng = _fresh_rng(self.generator)
        p = self.weights / self.weights.sum()
        draws = rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p)
        yield from draws.tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Groups another sampler's indices into lists of ``batch_size``.

    Example:
        >>> from ember.data import BatchSampler, SequentialSampler
        >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        if not isinstance(drop_last, bool):
            raise TypeError(f"drop_last should be a bool, got {drop_last!r}")
        self.sampler = sampler
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size
