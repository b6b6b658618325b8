"""What runs inside a DataLoader worker process, and what crosses between processes.

Batches travel as bytes made by ``_dumps``: a pickler that turns every ember
Tensor into its NumPy array (ember tensors refuse ordinary pickling), so the
main process gets arrays back and wraps them with ``ember.from_numpy``. Pickle
is used here only between the DataLoader and the workers it started.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import pickle
import queue
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import ember
from ember import Tensor

# How often a blocked worker or main process wakes to check that its peer lives.
POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class WorkerInfo:
    """Who the current DataLoader worker is (see ``get_worker_info``)."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker, its id, the number of workers, its seed and dataset copy.

    Returns None in the main process. An IterableDataset uses it to shard its
    stream so that each worker yields a different part.

    Example:
        >>> from ember.data import get_worker_info
        >>> get_worker_info() is None  # not in a worker
        True
    """
    return _worker_info


# ----------------------------------------------------------------- transport
def _rebuild_tensor(array: np.ndarray, requires_grad: bool, device: str) -> Tensor:
    t = ember.from_numpy(array)
    if device != "cpu":
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Tensor):
            return _rebuild_tensor, (obj.detach().numpy(), obj.requires_grad, str(obj.device))
        return NotImplemented


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` for another DataLoader process, tensors as NumPy arrays."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    """Inverse of ``dumps``; only ever applied to bytes from our own workers."""
    return pickle.loads(data)


class _RawMessage(str):
    # KeyError's str() is the repr of its argument; this keeps the traceback readable.
    def __repr__(self) -> str:
        return str(self)


@dataclass
class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process with its traceback."""

    exc_type: type[BaseException] | None
    message: str

    @classmethod
    def capture(cls, where: str) -> ExceptionWrapper:
        import sys

        exc_type = sys.exc_info()[0]
        tb = traceback.format_exc()
        name = exc_type.__name__ if exc_type is not None else "Exception"
        msg = f"Caught {name} {where}.\nOriginal Traceback (most recent call last):\n"
        msg += tb.split("Traceback (most recent call last):\n", 1)[-1]
        try:  # the type must be importable in the main process
            if exc_type is not None:
                pickle.loads(pickle.dumps(exc_type))
        except Exception:
            exc_type = None
        return cls(exc_type, msg)

    def reraise(self) -> None:
        """Raise the worker's exception type with the worker's traceback in the message."""
        if self.exc_type is not None and issubclass(self.exc_type, KeyError):
            raise self.exc_type(_RawMessage(self.message))
        try:
            err = self.exc_type(self.message) if self.exc_type is not None else None
        except Exception:
            err = None
        if not isinstance(err, BaseException):
            err = RuntimeError(self.message)
        raise err


@dataclass(frozen=True)
class IterableEnd:
    """Sent by a worker whose IterableDataset shard is exhausted."""

    worker_id: int


# -------------------------------------------------------------------- fetchers
class MapFetcher:
    """Fetches a batch (a list of indices) or one sample from a map-style dataset."""

    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Callable[[Any], Any]):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn

    def fetch(self, index: Any) -> Any:
        if self.auto_collation:
            getitems = getattr(self.dataset, "__getitems__", None)
            data = getitems(index) if getitems else [self.dataset[i] for i in index]
        else:
            data = self.dataset[index]
        return self.collate_fn(data)


class IterableFetcher:
    """Takes ``len(index)`` samples (or one) from an iterable dataset's stream."""

    def __init__(
        self, dataset: Any, auto_collation: bool, collate_fn: Callable[[Any], Any], drop_last: bool
    ):
        self.iterator = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index: Any) -> Any:
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            try:
                return self.collate_fn(next(self.iterator))
            except StopIteration:
                self.ended = True
                raise
        data = []
        for _ in index:
            try:
                data.append(next(self.iterator))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def make_fetcher(
    dataset: Any, is_iterable: bool, auto_collation: bool, collate_fn: Any, drop_last: bool
) -> MapFetcher | IterableFetcher:
    if is_iterable:
        return IterableFetcher(dataset, auto_collation, collate_fn, drop_last)
    return MapFetcher(dataset, auto_collation, collate_fn)


# ----------------------------------------------------------------- the worker
def seed_worker(seed: int) -> None:
    """Seed every random source a dataset may use: ember's, NumPy's global and Python's."""
    ember.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs; pickled with ``dumps`` when the start method is not fork."""

    dataset: Any
    is_iterable: bool
    auto_collation: bool
    collate_fn: Any
    drop_last: bool
    worker_init_fn: Any
    num_workers: int
    base_seed: int


def worker_loop(
    worker_id: int,
    config: WorkerConfig | bytes,
    index_queue: Any,
    result_queue: Any,
) -> None:
    """Serve ``(epoch, task_id, index)`` requests until told to stop with ``None``.

    Each answer is ``(epoch, task_id, payload)``: bytes from ``dumps``, an
    ``ExceptionWrapper`` or an ``IterableEnd``. A new epoch number restarts an
    IterableDataset's stream (persistent workers).
    """
    global _worker_info
    try:
        cfg: WorkerConfig = loads(config) if isinstance(config, bytes) else config
        seed = cfg.base_seed + worker_id
        seed_worker(seed)
        _worker_info = WorkerInfo(worker_id, cfg.num_workers, seed, cfg.dataset)
        where = f"in DataLoader worker process {worker_id}"
        init_error: ExceptionWrapper | None = None
        try:
            if cfg.worker_init_fn is not None:
                cfg.worker_init_fn(worker_id)
        except Exception:
            init_error = ExceptionWrapper.capture(where)
        fetcher: MapFetcher | IterableFetcher | None = None
        epoch = -1
        parent = mp.parent_process()
        while True:
            try:
                msg = index_queue.get(timeout=POLL_INTERVAL_S)
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    break
                continue
            if msg is None:
                break
            task_epoch, task_id, index = msg
            payload: Any
            if init_error is not None:
                payload = init_error
            else:
                try:
                    if fetcher is None or task_epoch != epoch:
                        epoch = task_epoch
                        fetcher = make_fetcher(
                            cfg.dataset,
                            cfg.is_iterable,
                            cfg.auto_collation,
                            cfg.collate_fn,
                            cfg.drop_last,
                        )
                    payload = dumps(fetcher.fetch(index))
                except StopIteration:
                    payload = IterableEnd(worker_id)
                except Exception:
                    payload = ExceptionWrapper.capture(where)
            result_queue.put((task_epoch, task_id, payload))
    except KeyboardInterrupt:
        pass  # the main process sees it too and shuts the workers down
    # Don't block exit on data the main process no longer wants.
    result_queue.cancel_join_thread()
    result_queue.close()
