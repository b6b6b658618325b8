"""DataLoader: batching, order determinism, exactly-once epochs, workers, errors, shutdown."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import random
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from ember.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    TensorDataset,
    get_worker_info,
)


class Indexed(Dataset):
    """Sample i is a dict holding i, an array derived from it and a string."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return {"index": i, "x": np.full(3, i, np.float32), "name": f"s{i}"}


class Augmented(Dataset):
    """Random 'augmentations' drawn from every random source a user might use."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        return (
            ember.rand(2),
            np.random.rand(2).astype(np.float32),
            random.random(),
        )


class Pid(Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> int:
        return os.getpid()


class Sharded(IterableDataset):
    """0..n-1, split between workers by get_worker_info()."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))

    def __len__(self) -> int:
        return self.n


def _load_sample_or_explode(i: int) -> int:
    if i == 5:
        raise ValueError(f"corrupt sample {i}")
    return i


class Exploding(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> int:
        return _load_sample_or_explode(i)


class Slow(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> int:
        time.sleep(0.6)
        return i


class DiesInWorker(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> int:
        if get_worker_info() is not None:
            os._exit(3)
        return i


def indices(loader) -> list[int]:
    return [i for batch in loader for i in batch["index"].tolist()]


def as_numpy(batch):
    if isinstance(batch, ember.Tensor):
        return batch.numpy()
    if isinstance(batch, dict):
        return {k: as_numpy(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [as_numpy(b) for b in batch]
    return batch


def assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_equal(as_numpy(x), as_numpy(y))


@pytest.fixture(autouse=True)
def _no_leftover_workers():
    yield
    gc.collect()
    assert mp.active_children() == []


# ------------------------------------------------------------------ batching
def test_batches_of_a_tensor_dataset():
    ds = TensorDataset(ember.arange(10).float().reshape(5, 2), ember.arange(5))
    batches = list(DataLoader(ds, batch_size=2))
    assert [y.tolist() for _, y in batches] == [[0, 1], [2, 3], [4]]
    assert batches[0][0].shape == (2, 2) and batches[0][0].dtype == ember.float32


def test_batch_structure_from_dict_samples():
    (batch,) = list(DataLoader(Indexed(3), batch_size=3))
    assert batch["x"].shape == (3, 3) and batch["name"] == ["s0", "s1", "s2"]


def test_len():
    assert len(DataLoader(Indexed(10), batch_size=3)) == 4
    assert len(DataLoader(Indexed(10), batch_size=3, drop_last=True)) == 3
    assert len(DataLoader(Indexed(10), batch_size=None)) == 10
    assert len(DataLoader(Sharded(10), batch_size=4)) == 3
    assert len(DataLoader(Sharded(10), batch_size=4, drop_last=True)) == 2


def test_batch_size_none_converts_without_batching():
    out = list(DataLoader(Indexed(2), batch_size=None))
    assert out[1]["index"] == 1 and isinstance(out[1]["x"], ember.Tensor)
    assert out[1]["x"].shape == (3,)


def test_custom_sampler_batch_sampler_and_collate_fn():
    loader = DataLoader(Indexed(6), batch_sampler=[[5, 0], [3]], collate_fn=lambda b: b)
    assert [[s["index"] for s in batch] for batch in loader] == [[5, 0], [3]]
    assert indices(DataLoader(Indexed(4), sampler=[3, 2, 1, 0], batch_size=3)) == [3, 2, 1, 0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_workers": -1}, "num_workers"),
        ({"timeout": -1}, "timeout"),
        ({"prefetch_factor": 2}, "prefetch_factor"),
        ({"num_workers": 1, "prefetch_factor": 0}, "prefetch_factor"),
        ({"persistent_workers": True}, "persistent_workers"),
        ({"sampler": [0], "shuffle": True}, "mutually exclusive"),
        ({"batch_sampler": [[0]], "batch_size": 2}, "mutually exclusive"),
        ({"batch_sampler": [[0]], "drop_last": True}, "mutually exclusive"),
        ({"batch_size": None, "drop_last": True}, "drop_last"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_argument_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(Indexed(3), **kwargs)


def test_iterable_dataset_validation():
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Sharded(3), shuffle=True)
    with pytest.raises(ValueError, match="sampler"):
        DataLoader(Sharded(3), sampler=[0])


# -------------------------------------------------------- order and coverage
def test_same_seed_same_order_different_seed_different_order():
    def order(seed):
        g = ember.Generator().manual_seed(seed)
        return indices(DataLoader(Indexed(40), batch_size=7, shuffle=True, generator=g))

    assert order(0) == order(0)
    assert order(0) != order(1)
    assert sorted(order(0)) == list(range(40))


def test_manual_seed_fixes_the_order_without_a_generator():
    ember.manual_seed(11)
    a = indices(DataLoader(Indexed(30), batch_size=4, shuffle=True))
    ember.manual_seed(11)
    assert indices(DataLoader(Indexed(30), batch_size=4, shuffle=True)) == a


def test_shuffle_changes_between_epochs_but_reproduces():
    def epochs(seed):
        g = ember.Generator().manual_seed(seed)
        loader = DataLoader(Indexed(20), batch_size=5, shuffle=True, generator=g)
        return [indices(loader) for _ in range(3)]

    a = epochs(3)
    assert a == epochs(3)
    assert a[0] != a[1] != a[2]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    batch_size=st.integers(1, 12),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_every_sample_exactly_once_per_epoch(n, batch_size, shuffle, drop_last, seed):
    g = ember.Generator().manual_seed(seed)
    loader = DataLoader(
        Indexed(n), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=g
    )
    for _ in range(2):
        batches = [b["index"].tolist() for b in loader]
        seen = [i for b in batches for i in b]
        assert len(seen) == len(set(seen))  # never twice
        assert len(batches) == len(loader)
        if drop_last:
            assert all(len(b) == batch_size for b in batches)
            assert len(seen) == n - n % batch_size
        else:
            assert sorted(seen) == list(range(n))  # every sample
        if not shuffle:
            assert seen == sorted(seen)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_every_sample_exactly_once_with_workers(shuffle, drop_last):
    g = ember.Generator().manual_seed(0)
    loader = DataLoader(
        Indexed(23),
        batch_size=4,
        shuffle=shuffle,
        drop_last=drop_last,
        generator=g,
        num_workers=2,
    )
    seen = indices(loader)
    assert len(seen) == len(set(seen)) == (20 if drop_last else 23)
    if not drop_last:
        assert sorted(seen) == list(range(23))


# ----------------------------------------------------------------- workers
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_workers_equal_single_process(shuffle, drop_last):
    def run(num_workers):
        g = ember.Generator().manual_seed(42)
        loader = DataLoader(
            Indexed(19),
            batch_size=3,
            shuffle=shuffle,
            drop_last=drop_last,
            generator=g,
            num_workers=num_workers,
        )
        return list(loader)

    single, multi = run(0), run(2)
    assert_batches_equal(single, multi)
    assert isinstance(multi[0]["x"], ember.Tensor) and multi[0]["x"].dtype == ember.float32
    assert multi[0]["x"].numpy().flags.writeable


def test_workers_equal_single_process_with_prefetch_and_tensor_dataset():
    ds = TensorDataset(ember.randn(50, 4), ember.arange(50))

    def run(num_workers, **kw):
        g = ember.Generator().manual_seed(1)
        return list(
            DataLoader(ds, batch_size=6, shuffle=True, generator=g, num_workers=num_workers, **kw)
        )

    assert_batches_equal(run(0), run(2, prefetch_factor=1))
    assert_batches_equal(run(0), run(2, prefetch_factor=4))
    assert_batches_equal(run(0), run(1))


def test_workers_with_custom_collate_returning_tensors_and_more():
    def collate(samples):
        return ember.tensor([s["index"] for s in samples]), [s["name"] for s in samples]

    loader = DataLoader(Indexed(5), batch_size=2, collate_fn=collate, num_workers=2)
    out = list(loader)
    assert [t.tolist() for t, _ in out] == [[0, 1], [2, 3], [4]]
    assert out[2][1] == ["s4"]


def test_tensors_requiring_grad_cross_to_the_main_process():
    def collate(samples):
        return ember.tensor([float(s["index"]) for s in samples], requires_grad=True)

    (batch,) = list(DataLoader(Indexed(3), batch_size=3, collate_fn=collate, num_workers=1))
    assert batch.requires_grad and batch.is_leaf


def test_worker_info_and_iterable_sharding():
    def collect(num_workers, batch_size):
        loader = DataLoader(Sharded(11), batch_size=batch_size, num_workers=num_workers)
        return [i for b in loader for i in b.tolist()]

    assert collect(0, 3) == list(range(11))
    multi = collect(2, 3)
    assert sorted(multi) == list(range(11))
    assert multi[:6] == [0, 2, 4, 1, 3, 5]  # batches alternate between the two workers
    assert sorted(collect(3, 2)) == list(range(11))


def test_iterable_dataset_without_batching_and_drop_last():
    assert list(DataLoader(Sharded(5), batch_size=None, num_workers=2)) == [0, 1, 2, 3, 4]
    dropped = [
        b.tolist() for b in DataLoader(Sharded(7), batch_size=2, drop_last=True, num_workers=2)
    ]
    assert all(len(b) == 2 for b in dropped)
    assert len(dropped) == 3  # worker 0 has 0,2,4,6 -> 2 batches; worker 1 has 1,3,5 -> 1


def test_worker_seeds_make_augmentations_reproducible():
    def run(seed):
        g = ember.Generator().manual_seed(seed)
        return list(DataLoader(Augmented(), batch_size=2, num_workers=2, generator=g))

    a, b, c = run(0), run(0), run(1)
    assert_batches_equal(a, b)
    with pytest.raises(AssertionError):
        assert_batches_equal(a, c)
    # workers draw different numbers from each other: the first batch of each differs
    for source in range(3):
        assert not np.array_equal(as_numpy(a[0])[source], as_numpy(a[1])[source])


def test_worker_init_fn_and_get_worker_info():
    def init(worker_id):
        info = get_worker_info()
        assert info is not None and info.id == worker_id and info.num_workers == 2
        np.random.seed(100 + worker_id)

    class Report(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            info = get_worker_info()
            return info.id, info.seed, np.random.randint(1_000_000)

    g = ember.Generator().manual_seed(5)
    out = list(DataLoader(Report(), batch_size=1, num_workers=2, worker_init_fn=init, generator=g))
    ids = [b[0].item() for b in out]
    seeds = [b[1].item() for b in out]
    assert ids == [0, 1, 0, 1]
    assert seeds[1] == seeds[0] + 1  # base_seed + worker id
    expected = [np.random.RandomState(100 + w).randint(1_000_000) for w in (0, 1)]
    assert [b[2].item() for b in out[:2]] == expected
    assert get_worker_info() is None


def test_persistent_workers_across_epochs():
    g = ember.Generator().manual_seed(9)
    loader = DataLoader(Pid(), batch_size=2, num_workers=2, persistent_workers=True, generator=g)
    pids = [{p for b in loader for p in b.tolist()} for _ in range(3)]
    assert pids[0] == pids[1] == pids[2] and len(pids[0]) == 2
    assert os.getpid() not in pids[0]
    fresh = DataLoader(Pid(), batch_size=2, num_workers=2)
    assert {p for b in fresh for p in b.tolist()}.isdisjoint(pids[0])
    del loader
    gc.collect()


def test_persistent_workers_match_single_process_epochs():
    def epochs(**kw):
        g = ember.Generator().manual_seed(4)
        loader = DataLoader(Indexed(17), batch_size=4, shuffle=True, generator=g, **kw)
        return [indices(loader) for _ in range(3)]

    assert epochs(num_workers=2, persistent_workers=True) == epochs()


def test_persistent_workers_reproduce_augmentations_across_epochs():
    def run():
        g = ember.Generator().manual_seed(8)
        loader = DataLoader(
            Augmented(), batch_size=4, num_workers=2, persistent_workers=True, generator=g
        )
        return [as_numpy(b) for _ in range(2) for b in loader]

    a, b = run(), run()
    gc.collect()
    assert_batches_equal(a, b)
    with pytest.raises(AssertionError):
        assert_batches_equal(a[:2], a[2:])  # the second epoch draws new numbers


def test_persistent_workers_after_an_epoch_stopped_early():
    g = ember.Generator().manual_seed(0)
    loader = DataLoader(
        Indexed(20),
        batch_size=2,
        num_workers=2,
        persistent_workers=True,
        prefetch_factor=3,
        generator=g,
    )
    for i, _ in enumerate(loader):
        if i == 1:
            break
    assert indices(loader) == list(range(20))
    iterable = DataLoader(Sharded(9), batch_size=2, num_workers=2, persistent_workers=True)
    next(iter(iterable))
    assert sorted(i for b in iterable for i in b.tolist()) == list(range(9))
    assert sorted(i for b in iterable for i in b.tolist()) == list(range(9))
    del loader, iterable
    gc.collect()


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("num_workers", [0, 2])
def test_worker_exception_surfaces_with_its_traceback(num_workers):
    loader = DataLoader(Exploding(), batch_size=2, num_workers=num_workers)
    with pytest.raises(ValueError, match="corrupt sample 5") as info:
        list(loader)
    if num_workers:
        message = str(info.value)
        assert "worker process 0" in message  # indices 4, 5 form batch 2, worker 0's
        assert "_load_sample_or_explode" in message
        assert "Original Traceback" in message
        assert 'raise ValueError(f"corrupt sample {i}")' in message


def test_batches_before_the_error_arrive_and_iteration_can_go_on():
    it = iter(DataLoader(Exploding(), batch_size=2, num_workers=2))
    assert next(it).tolist() == [0, 1]
    assert next(it).tolist() == [2, 3]
    with pytest.raises(ValueError, match="corrupt sample 5"):
        next(it)
    assert next(it).tolist() == [6, 7]
    with pytest.raises(StopIteration):
        next(it)


def test_key_error_in_a_worker_keeps_its_type_and_readable_message():
    class Missing(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {}["no such key"]

    with pytest.raises(KeyError) as info:
        list(DataLoader(Missing(), num_workers=1))
    assert "Original Traceback (most recent call last):\n" in str(info.value)


def test_worker_init_fn_error_surfaces():
    def init(worker_id):
        raise RuntimeError(f"bad init in {worker_id}")

    with pytest.raises(RuntimeError, match="bad init in 0"):
        list(DataLoader(Indexed(4), num_workers=1, worker_init_fn=init))


def test_unpicklable_batch_is_reported():
    loader = DataLoader(Indexed(2), batch_size=2, num_workers=1, collate_fn=lambda b: lambda: b)
    with pytest.raises(Exception, match="pickle"):
        list(loader)


def test_timeout():
    loader = DataLoader(Slow(), num_workers=1, timeout=0.2)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="timed out after 0.2 seconds"):
        next(iter(loader))
    assert time.monotonic() - start < 5


def test_a_worker_that_dies_is_reported():
    with pytest.raises(RuntimeError, match="exited unexpectedly.*exit code 3"):
        list(DataLoader(DiesInWorker(), num_workers=1))


# ----------------------------------------------------------------- shutdown
def test_workers_exit_when_the_epoch_ends_or_iteration_stops():
    it = iter(DataLoader(Indexed(10), batch_size=2, num_workers=2))
    workers = list(it._workers)
    assert all(p.is_alive() for p in workers)
    list(it)
    assert mp.active_children() == []
    it = iter(DataLoader(Indexed(10), batch_size=2, num_workers=2))
    next(it)
    del it
    gc.collect()
    assert mp.active_children() == []


def test_spawn_start_method():
    g = ember.Generator().manual_seed(3)
    ds = TensorDataset(ember.arange(12).float().reshape(6, 2), ember.arange(6))
    spawned = list(
        DataLoader(
            ds,
            batch_size=4,
            shuffle=True,
            generator=g,
            num_workers=1,
            multiprocessing_context="spawn",
        )
    )
    g = ember.Generator().manual_seed(3)
    assert_batches_equal(spawned, list(DataLoader(ds, batch_size=4, shuffle=True, generator=g)))


def test_sampler_generator_and_loader_generator_are_independent():
    s = RandomSampler(range(10), generator=ember.Generator().manual_seed(0))
    a = [b.tolist() for b in DataLoader(list(range(10)), sampler=s, batch_size=5)]
    assert sorted(i for b in a for i in b) == list(range(10))
