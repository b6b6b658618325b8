"""Dataset, TensorDataset, Subset, ConcatDataset, ChainDataset and random_split."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.data import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)


class Range(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i


class Stream(IterableDataset):
    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __iter__(self):
        return iter(self.items)


def test_base_dataset_requires_getitem():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="__iter__"):
        iter(IterableDataset())


def test_tensor_dataset_rows_and_length():
    x = ember.arange(12).reshape(4, 3)
    y = ember.tensor([1, 0, 1, 1])
    ds = TensorDataset(x, y)
    assert len(ds) == 4
    xi, yi = ds[2]
    np.testing.assert_array_equal(xi.numpy(), [6, 7, 8])
    assert yi.item() == 1
    assert ds.tensors[0] is x


def test_tensor_dataset_validates():
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(ember.zeros(3, 2), ember.zeros(4))
    with pytest.raises(TypeError, match="from_numpy"):
        TensorDataset(np.zeros(3))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(ember.tensor(1.0))


def test_subset_maps_indices():
    s = Subset(Range(10), [7, 2, 5])
    assert len(s) == 3
    assert [s[i] for i in range(3)] == [7, 2, 5]
    assert s[-1] == 5


def test_concat_dataset_indexing():
    ds = ConcatDataset([Range(2), Range(3)])
    assert len(ds) == 5
    assert [ds[i] for i in range(5)] == [0, 1, 0, 1, 2]
    assert ds[-1] == 2 and ds[-5] == 0
    assert ds.cumulative_sizes == [2, 5]
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(IndexError):
        ds[-6]
    assert [(Range(1) + Range(2))[i] for i in range(3)] == [0, 0, 1]


def test_concat_dataset_rejects_iterables_and_empty():
    with pytest.raises(TypeError, match="ChainDataset"):
        ConcatDataset([Stream([1])])
    with pytest.raises(ValueError, match="at least one"):
        ConcatDataset([])


def test_chain_dataset():
    assert list(ChainDataset([Stream([1, 2]), Stream([3])])) == [1, 2, 3]
    assert list(Stream([1]) + Stream([2])) == [1, 2]


@pytest.mark.parametrize("n", [10, 11, 1])
def test_random_split_sizes_and_disjointness(n):
    g = ember.Generator().manual_seed(0)
    parts = random_split(Range(n), [0.5, 0.3, 0.2] if n > 1 else [1.0], generator=g)
    indices = [list(p.indices) for p in parts]
    flat = [i for part in indices for i in part]
    assert sorted(flat) == list(range(n))  # disjoint and covering
    assert sum(len(p) for p in parts) == n


def test_random_split_integer_lengths_and_determinism():
    a = random_split(Range(20), [15, 5], generator=ember.Generator().manual_seed(3))
    b = random_split(Range(20), [15, 5], generator=ember.Generator().manual_seed(3))
    c = random_split(Range(20), [15, 5], generator=ember.Generator().manual_seed(4))
    assert [len(p) for p in a] == [15, 5]
    assert [p.indices for p in a] == [p.indices for p in b]
    assert [p.indices for p in a] != [p.indices for p in c]
    assert set(a[0].indices).isdisjoint(a[1].indices)


def test_random_split_uses_default_generator():
    ember.manual_seed(5)
    a = random_split(Range(8), [4, 4])
    ember.manual_seed(5)
    b = random_split(Range(8), [4, 4])
    assert [p.indices for p in a] == [p.indices for p in b]


def test_random_split_errors():
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(Range(10), [4, 5])
    with pytest.raises(ValueError, match="fractions"):
        random_split(Range(10), [0.5, 0.6])
    with pytest.raises(ValueError, match="non-negative"):
        random_split(Range(10), [11, -1])
    with pytest.warns(UserWarning, match="length 0"):
        random_split(Range(2), [0.9, 0.05, 0.05])


@pytest.mark.torch
def test_random_split_sizes_match_torch():
    torch = pytest.importorskip("torch")
    for n, fractions in [(11, [0.5, 0.3, 0.2]), (7, [0.25, 0.25, 0.5]), (100, [0.7, 0.3])]:
        theirs = [len(s) for s in torch.utils.data.random_split(range(n), fractions)]
        ours = [len(s) for s in random_split(Range(n), fractions)]
        assert ours == theirs
