"""Dataset protocols and combinators: Dataset, IterableDataset, TensorDataset, Subset, …"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import ember
from ember import Tensor

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """A map-style dataset: ``__getitem__(index)`` and ``__len__``, as ``torch.utils.data.Dataset``.

    Example:
        >>> from ember.data import Dataset
        >>> class Squares(Dataset):
        ...     def __len__(self): return 4
        ...     def __getitem__(self, i): return i * i
        >>> [Squares()[i] for i in range(4)]
        [0, 1, 4, 9]
    """

    def __getitem__(self, index: Any) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset[T_co]) -> ConcatDataset[T_co]:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A dataset that is a stream: implement ``__iter__``.

    With ``num_workers > 0`` every worker iterates its own copy; use
    ``get_worker_info()`` inside ``__iter__`` to give each worker its shard.

    Example:
        >>> from ember.data import IterableDataset
        >>> class Count(IterableDataset):
        ...     def __iter__(self): return iter(range(3))
        >>> list(Count())
        [0, 1, 2]
    """

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: Dataset[T_co]) -> ChainDataset[T_co]:  # type: ignore[override]
        return ChainDataset([self, other])


class TensorDataset(Dataset[tuple[Tensor, ...]]):
    """Samples are the ``index``-th rows of the given tensors (same first dimension).

    Example:
        >>> import ember
        >>> from ember.data import TensorDataset
        >>> ds = TensorDataset(ember.arange(6).reshape(3, 2), ember.tensor([0, 1, 0]))
        >>> len(ds), ds[1]
        (3, (tensor([2, 3]), tensor(1)))
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"TensorDataset: argument {i} is a {type(t).__name__}, not an ember Tensor; "
                    "wrap NumPy arrays with ember.from_numpy"
                )
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: argument {i} is 0-d; tensors need a first dim")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: size mismatch between tensors (first dims {sizes})")
        self.tensors = tuple(tensors)

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order.

    Example:
        >>> from ember.data import Subset
        >>> s = Subset([10, 11, 12, 13], [3, 0])
        >>> len(s), s[0], s[1]
        (2, 13, 10)
    """

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: Any) -> T_co:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset[T_co]):
    """Map-style datasets one after another.

    Example:
        >>> from ember.data import ConcatDataset
        >>> ds = ConcatDataset([[1, 2], [3, 4, 5]])
        >>> len(ds), ds[2], ds[-1]
        (5, 3, 5)
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not take IterableDatasets; use ChainDataset")
        self.cumulative_sizes: list[int] = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> T_co:
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise IndexError(f"index {idx} is out of range for a dataset of length {n}")
            idx += n
        if idx >= n:
            raise IndexError(f"index {idx} is out of range for a dataset of length {n}")
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return self.datasets[d][idx - start]


class ChainDataset(IterableDataset[T_co]):
    """Iterable datasets one after another.

    Example:
        >>> from ember.data import ChainDataset
        >>> list(ChainDataset([range(2), range(3)]))
        [0, 1, 0, 1, 2]
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)

    def __iter__(self) -> Iterator[T_co]:
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


def random_split(
    dataset: Any,
    lengths: Sequence[int | float],
    generator: ember.Generator | None = None,
) -> list[Subset[Any]]:
    """Split ``dataset`` into non-overlapping random Subsets of the given lengths.

    ``lengths`` are sizes that add up to ``len(dataset)``, or fractions that
    add up to 1 (floors, then the remainder handed out one by one from the
    first split, as PyTorch does).

    Args:
        dataset: a map-style dataset.
        lengths: sizes or fractions.
        generator: the random source (default: ember's default generator).

    Returns:
        One Subset per length.

    Example:
        >>> import ember
        >>> from ember.data import random_split
        >>> a, b = random_split(range(10), [0.8, 0.2], generator=ember.Generator().manual_seed(0))
        >>> len(a), len(b), sorted(list(a) + list(b)) == list(range(10))
        (8, 2, True)
    """
    n = len(dataset)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    sizes: list[int]
    if all(isinstance(x, int) for x in lengths):
        sizes = [int(x) for x in lengths]
    elif math.isclose(sum(lengths), 1.0) and all(0 <= x <= 1 for x in lengths):
        sizes = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, s in enumerate(sizes):
            if s == 0:
                warnings.warn(
                    f"random_split: split {i} has length 0 for the fractions {list(lengths)}",
                    stacklevel=2,
                )
    else:
        raise ValueError(
            f"random_split: lengths must be ints that sum to len(dataset) ({n}) or fractions "
            f"that sum to 1, got {list(lengths)}"
        )
    if any(s < 0 for s in sizes):
        raise ValueError(f"random_split: lengths must be non-negative, got {sizes}")
    if sum(sizes) != n:
        raise ValueError(
            f"random_split: the lengths {sizes} sum to {sum(sizes)}, not to the dataset's "
            f"length {n}"
        )
    g = generator if generator is not None else ember.default_generator
    perm = g.numpy.permutation(n).tolist()
    out: list[Subset[Any]] = []
    start = 0
    for s in sizes:
        out.append(Subset(dataset, perm[start : start + s]))
        start += s
    return out
