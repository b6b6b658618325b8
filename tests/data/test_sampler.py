"""Samplers: order, determinism with a generator, frequencies, validation, PyTorch parity."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import ember
from ember.data import (
    BatchSampler,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)


def gen(seed: int) -> ember.Generator:
    return ember.Generator().manual_seed(seed)


def test_sequential_sampler():
    s = SequentialSampler(range(4))
    assert list(s) == [0, 1, 2, 3]
    assert len(s) == 4


def test_random_sampler_is_a_permutation_and_deterministic():
    a = list(RandomSampler(range(50), generator=gen(0)))
    b = list(RandomSampler(range(50), generator=gen(0)))
    c = list(RandomSampler(range(50), generator=gen(1)))
    assert sorted(a) == list(range(50))
    assert a == b and a != c
    assert all(type(i) is int for i in a)


def test_random_sampler_new_order_each_epoch():
    s = RandomSampler(range(30), generator=gen(0))
    first, second = list(s), list(s)
    assert sorted(first) == sorted(second) and first != second


def test_random_sampler_without_generator_follows_manual_seed():
    ember.manual_seed(7)
    a = list(RandomSampler(range(20)))
    ember.manual_seed(7)
    assert list(RandomSampler(range(20))) == a


def test_random_sampler_num_samples_without_replacement_chains_permutations():
    out = list(RandomSampler(range(4), num_samples=10, generator=gen(0)))
    assert len(out) == 10
    assert sorted(out[:4]) == sorted(out[4:8]) == [0, 1, 2, 3]
    assert len(set(out[8:])) == 2


def test_random_sampler_with_replacement():
    s = RandomSampler(range(3), replacement=True, num_samples=300, generator=gen(0))
    out = list(s)
    assert len(s) == len(out) == 300
    assert set(out) == {0, 1, 2}


@pytest.mark.parametrize(
    ("kwargs", "err"),
    [
        ({"num_samples": 0}, ValueError),
        ({"num_samples": -1}, ValueError),
        ({"replacement": 1}, TypeError),
    ],
)
def test_random_sampler_validation(kwargs, err):
    with pytest.raises(err):
        RandomSampler(range(3), **kwargs)


def test_subset_random_sampler():
    s = SubsetRandomSampler([3, 9, 27], generator=gen(0))
    assert sorted(s) == [3, 9, 27] and len(s) == 3


def test_weighted_sampler_frequencies_follow_weights():
    weights = [1.0, 2.0, 3.0, 4.0]
    s = WeightedRandomSampler(weights, num_samples=20_000, generator=gen(0))
    counts = Counter(s)
    freq = np.array([counts[i] for i in range(4)]) / 20_000
    np.testing.assert_allclose(freq, np.array(weights) / 10, atol=0.015)


def test_weighted_sampler_accepts_tensors_and_zero_weights():
    s = WeightedRandomSampler(ember.tensor([0.0, 5.0, 0.0, 5.0]), 100, generator=gen(1))
    assert set(s) <= {1, 3}


def test_weighted_sampler_without_replacement_is_unique():
    out = list(WeightedRandomSampler([1, 1, 1, 1, 10], 5, replacement=False, generator=gen(0)))
    assert sorted(out) == [0, 1, 2, 3, 4]


def test_weighted_sampler_is_deterministic():
    a = list(WeightedRandomSampler([0.2, 0.8], 50, generator=gen(2)))
    assert a == list(WeightedRandomSampler([0.2, 0.8], 50, generator=gen(2)))


@pytest.mark.parametrize(
    ("weights", "n", "replacement", "match"),
    [
        ([1.0, -1.0], 2, True, "non-negative"),
        ([0.0, 0.0], 2, True, "not all zero"),
        ([1.0, float("nan")], 2, True, "finite"),
        ([[1.0]], 1, True, "1-D"),
        ([1.0, 0.0], 2, False, "without replacement"),
        ([1.0], 0, True, "positive"),
    ],
)
def test_weighted_sampler_validation(weights, n, replacement, match):
    with pytest.raises(ValueError, match=match):
        WeightedRandomSampler(weights, n, replacement=replacement)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize(("n", "bs"), [(10, 3), (9, 3), (2, 5), (0, 2)])
def test_batch_sampler(n, bs, drop_last):
    b = BatchSampler(SequentialSampler(range(n)), bs, drop_last)
    batches = list(b)
    assert len(b) == len(batches)
    flat = [i for batch in batches for i in batch]
    if drop_last:
        assert all(len(batch) == bs for batch in batches)
        assert flat == list(range(n - n % bs))
    else:
        assert flat == list(range(n))


def test_batch_sampler_validation():
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), True, False)
    with pytest.raises(TypeError, match="drop_last"):
        BatchSampler(range(3), 2, None)


@pytest.mark.torch
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize(("n", "bs"), [(10, 3), (12, 4), (1, 2)])
def test_batch_sampler_matches_torch(n, bs, drop_last):
    torch = pytest.importorskip("torch")
    theirs = torch.utils.data.BatchSampler(range(n), bs, drop_last)
    ours = BatchSampler(range(n), bs, drop_last)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)
