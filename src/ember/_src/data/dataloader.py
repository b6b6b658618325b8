"""DataLoader: batches from a dataset, in the main process or in worker processes."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import queue
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar, cast

import ember
from ember._src.data import worker as _w
from ember._src.data.collate import default_collate, default_convert
from ember._src.data.dataset import IterableDataset
from ember._src.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

T_co = TypeVar("T_co", covariant=True)

# How long shutdown waits for a worker to exit by itself before terminating it.
_JOIN_TIMEOUT_S = 5.0


class _InfiniteNoneSampler(Sampler[None]):
    """The 'indices' of an IterableDataset: the workers ignore them and read their stream."""

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None


def _stop_workers(
    owner_pid: int, workers: list[Any], index_queues: list[Any], result_queue: Any
) -> None:
    """Ask each worker to exit, wait a little, terminate stragglers, close the queues."""
    if os.getpid() != owner_pid:
        return  # a forked child's copy of the iterator: the workers are not its children
    for q in index_queues:
        with contextlib.suppress(OSError, ValueError):
            q.put(None)
    for p in workers:
        if p.pid is None:  # never started
            continue
        p.join(timeout=_JOIN_TIMEOUT_S)
        if p.is_alive():
            p.terminate()
            p.join()
    for q in [*index_queues, result_queue]:
        q.cancel_join_thread()
        q.close()
    for p in workers:
        if p.pid is not None:
            p.close()


def _default_context() -> Any:
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method)


class DataLoader(Generic[T_co]):
    """Iterate over a dataset in batches, as ``torch.utils.data.DataLoader``.

    Args:
        dataset: a map-style ``Dataset`` (``__getitem__``/``__len__``) or an
            ``IterableDataset``.
        batch_size: samples per batch; ``None`` turns batching off (each
            sample goes through ``collate_fn``, by default ``default_convert``).
        shuffle: visit the samples in a new random order every epoch.
        sampler: the order of indices (excludes ``shuffle``).
        batch_sampler: yields lists of indices (excludes ``batch_size``,
            ``shuffle``, ``sampler`` and ``drop_last``).
        num_workers: worker processes loading batches; 0 loads in the main
            process.
        collate_fn: list of samples -> batch (default ``default_collate``).
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        timeout: seconds to wait for a batch from the workers (0: forever);
            raises ``RuntimeError`` when exceeded.
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker
            after seeding.
        multiprocessing_context: start method or context for the workers
            (default ``"fork"`` where available, else ``"spawn"``).
        generator: random source for the shuffle order and the workers' base
            seed (default: ember's default generator).
        prefetch_factor: batches in flight per worker (default 2 with workers).
        persistent_workers: keep the workers alive between epochs.

    Each epoch draws a base seed from ``generator``; worker ``i`` seeds ember,
    NumPy's global generator and Python's ``random`` with ``base_seed + i``,
    so the same seed gives the same order and the same random augmentations.

    Example:
        >>> import ember
        >>> from ember.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(ember.arange(10).float(), ember.arange(10))
        >>> [y.tolist() for _, y in DataLoader(ds, batch_size=4)]
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Iterable[Any] | None = None,
        batch_sampler: Iterable[list[Any]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[Any], Any] | None = None,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: ember.Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
    ) -> None:
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise ValueError(f"num_workers should be a non-negative int, got {num_workers!r}")
        if timeout < 0:
            raise ValueError(f"timeout should be non-negative, got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor only applies with num_workers > 0")
        if prefetch_factor is None and num_workers > 0:
            prefetch_factor = 2
        if prefetch_factor is not None and (
            not isinstance(prefetch_factor, int) or prefetch_factor < 1
        ):
            raise ValueError(f"prefetch_factor should be a positive int, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers=True needs num_workers > 0")

        is_iterable = isinstance(dataset, IterableDataset)
        if is_iterable:
            if shuffle:
                raise ValueError("shuffle does not apply to an IterableDataset; shuffle its stream")
            if sampler is not None or batch_sampler is not None:
                raise ValueError("an IterableDataset takes no sampler or batch_sampler")
        if sampler is not None and shuffle:
            raise ValueError("sampler and shuffle are mutually exclusive")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler is mutually exclusive with batch_size, shuffle, sampler and "
                    "drop_last"
                )
            batch_size = None
        elif batch_size is None and drop_last:
            raise ValueError("drop_last needs a batch_size (batch_size=None turns batching off)")

        if sampler is None:
            if is_iterable:
                sampler = _InfiniteNoneSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_sampler is None and batch_size is not None:
            batch_sampler = BatchSampler(cast(Iterable[int], sampler), batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn or (
            default_collate if batch_sampler is not None else default_convert
        )
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        if isinstance(multiprocessing_context, str):
            multiprocessing_context = mp.get_context(multiprocessing_context)
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self._is_iterable = is_iterable
        self._iterator: _MultiProcessIter | None = None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Iterable[Any]:
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def _draw_base_seed(self) -> int:
        g = self.generator if self.generator is not None else ember.default_generator
        return int(g.numpy.integers(0, 2**62))

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if not self.persistent_workers:
            return _MultiProcessIter(self)
        if self._iterator is None or self._iterator.closed:
            self._iterator = _MultiProcessIter(self)
        else:
            self._iterator.reset()
        return self._iterator

    def __len__(self) -> int:
        if self._is_iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            if self.drop_last:
                return n // self.batch_size
            return -(-n // self.batch_size)
        return len(self._index_sampler)  # type: ignore[arg-type]


class _SingleProcessIter:
    def __init__(self, loader: DataLoader[Any]) -> None:
        self._loader = loader
        self._sampler_iter = iter(loader._index_sampler)
        loader._draw_base_seed()  # consume the generator as the workers' path does
        self._fetcher = _w.make_fetcher(
            loader.dataset,
            loader._is_iterable,
            loader._auto_collation,
            loader.collate_fn,
            loader.drop_last,
        )

    def __iter__(self) -> _SingleProcessIter:
        return self

    def __next__(self) -> Any:
        return self._fetcher.fetch(next(self._sampler_iter))

    def __len__(self) -> int:
        return len(self._loader)


class _MultiProcessIter:
    """Worker processes behind an index queue each and one shared result queue.

    Tasks ``(epoch, task_id, index)`` go round-robin to the workers, at most
    ``prefetch_factor * num_workers`` not yet handed to the user; results
    come back in any order and are yielded in task order.
    """

    def __init__(self, loader: DataLoader[Any]) -> None:
        self._loader = loader
        self._num_workers = loader.num_workers
        self._max_in_flight = loader.num_workers * (loader.prefetch_factor or 2)
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        ctx = loader.multiprocessing_context or _default_context()
        config = _w.WorkerConfig(
            dataset=loader.dataset,
            is_iterable=loader._is_iterable,
            auto_collation=loader._auto_collation,
            collate_fn=loader.collate_fn,
            drop_last=loader.drop_last,
            worker_init_fn=loader.worker_init_fn,
            num_workers=loader.num_workers,
            base_seed=loader._draw_base_seed(),
        )
        # A forked worker inherits the objects; any other start method gets them as bytes.
        payload: Any = config if ctx.get_start_method() == "fork" else _w.dumps(config)
        self._result_queue = ctx.Queue()
        self._index_queues: list[Any] = []
        self._workers: list[Any] = []
        # Runs on shutdown, when the iterator is collected, or at exit. It holds the queues
        # itself so that they are still alive when it runs, even inside a garbage cycle.
        self._finalizer = weakref.finalize(
            self,
            _stop_workers,
            os.getpid(),
            self._workers,
            self._index_queues,
            self._result_queue,
        )
        try:
            for i in range(self._num_workers):
                iq = ctx.Queue()
                iq.cancel_join_thread()
                p = ctx.Process(
                    target=_w.worker_loop,
                    args=(i, payload, iq, self._result_queue),
                    daemon=True,
                    name=f"ember-DataLoader-worker-{i}",
                )
                self._index_queues.append(iq)
                self._workers.append(p)
                p.start()
        except BaseException:
            self._shutdown()
            raise
        self._epoch = -1
        self._start_epoch()

    # ------------------------------------------------------------ epochs
    def _start_epoch(self) -> None:
        self._epoch += 1
        self._sampler_iter = iter(self._loader._index_sampler)
        self._send_idx = 0
        self._rcvd_idx = 0
        self._pending: dict[int, Any] = {}  # task id -> result (None until it arrives)
        self._skipped: set[int] = set()  # tasks answered with IterableEnd
        self._active = [True] * self._num_workers
        self._cycle = itertools.cycle(range(self._num_workers))
        for _ in range(self._max_in_flight):
            self._put_task()

    def reset(self) -> None:
        """Start a new epoch on the same (persistent) workers."""
        self._loader._draw_base_seed()  # the generator advances as with fresh workers
        self._start_epoch()

    def _put_task(self) -> None:
        if len(self._pending) >= self._max_in_flight:
            return
        for _ in range(self._num_workers):
            wid = next(self._cycle)
            if self._active[wid]:
                break
        else:
            return
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        self._index_queues[wid].put((self._epoch, self._send_idx, index))
        self._pending[self._send_idx] = None
        self._send_idx += 1

    # ---------------------------------------------------------- iterating
    def __iter__(self) -> _MultiProcessIter:
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self) -> Any:
        if self.closed:
            raise StopIteration
        while True:
            while self._rcvd_idx in self._skipped:
                self._skipped.discard(self._rcvd_idx)
                self._pending.pop(self._rcvd_idx, None)
                self._rcvd_idx += 1
                self._put_task()
            if self._rcvd_idx >= self._send_idx:
                if not self._persistent:
                    self._shutdown()
                raise StopIteration
            result = self._pending.get(self._rcvd_idx)
            if result is not None:
                del self._pending[self._rcvd_idx]
                self._rcvd_idx += 1
                self._put_task()
                return self._unpack(result)
            epoch, task_id, payload = self._get()
            if epoch != self._epoch or task_id not in self._pending:
                continue  # left over from an epoch the user stopped early
            if isinstance(payload, _w.IterableEnd):
                self._active[payload.worker_id] = False
                self._skipped.add(task_id)
            else:
                self._pending[task_id] = payload

    def _unpack(self, payload: Any) -> Any:
        if isinstance(payload, _w.ExceptionWrapper):
            payload.reraise()
        return _w.loads(payload)

    def _get(self) -> Any:
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = _w.POLL_INTERVAL_S
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            try:
                return self._result_queue.get(timeout=wait)
            except queue.Empty:
                pass
            dead = [p for p in self._workers if not p.is_alive()]
            if dead:
                info = ", ".join(f"pid {p.pid} exit code {p.exitcode}" for p in dead)
                self._shutdown()
                raise RuntimeError(
                    f"DataLoader worker(s) exited unexpectedly ({info}); a negative exit code "
                    "is the signal that killed it (e.g. -9: out of memory)"
                )
            if deadline is not None and time.monotonic() >= deadline:
                self._shutdown()
                raise RuntimeError(
                    f"DataLoader timed out after {self._timeout} seconds waiting for a batch "
                    "from its workers"
                )

    # ----------------------------------------------------------- shutdown
    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def _shutdown(self) -> None:
        self._finalizer()
