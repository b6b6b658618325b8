"""Turn what ``fit``/``evaluate``/``predict`` accept into batches of tensors.

Arrays (ember Tensors, NumPy arrays, lists of them for several inputs or outputs)
are batched here; a ``Dataset`` is wrapped in a ``DataLoader``; a ``DataLoader``
(or any iterable of batches) is used as it is. A batch is ``(xs, ys, sample_weight)``
with ``xs`` and ``ys`` tuples of tensors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

import ember
from ember._src.core.tensor import Tensor
from ember._src.data.dataloader import DataLoader
from ember._src.data.dataset import Dataset

Batch = tuple[tuple[Tensor, ...], tuple[Tensor, ...], "Tensor | None"]


def _is_array(a: Any) -> bool:
    return isinstance(a, (Tensor, np.ndarray))


def to_arrays(data: Any) -> list[np.ndarray]:
    """One array per model input/output; float NumPy data gets ember's default dtype."""
    if data is None:
        return []
    if isinstance(data, (list, tuple)) and data and all(_is_array(a) for a in data):
        return [_one_array(a) for a in data]
    return [_one_array(data)]


def _one_array(a: Any) -> np.ndarray:
    if isinstance(a, Tensor):
        return a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype.kind == "f":
        arr = arr.astype(ember.zeros(0).numpy().dtype, copy=False)
    return arr


def class_weights_for(y: np.ndarray, class_weight: Mapping[int, float]) -> np.ndarray:
    """Each sample's weight from its class: labels ``(n,)``/``(n, 1)`` or one-hot ``(n, C)``."""
    labels = y.argmax(axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y))
    labels = labels.astype(np.int64)
    missing = sorted(set(np.unique(labels).tolist()) - set(class_weight))
    if missing:
        raise ValueError(f"class_weight has no weight for classes {missing}")
    return np.array([class_weight[int(c)] for c in labels], dtype=np.float64)


class ArrayData:
    """In-memory arrays, batched along the first dimension."""

    def __init__(
        self,
        xs: list[np.ndarray],
        ys: list[np.ndarray],
        sample_weight: np.ndarray | None = None,
    ) -> None:
        lengths = {len(a) for a in xs + ys} | (
            set() if sample_weight is None else {len(sample_weight)}
        )
        if len(lengths) > 1:
            raise ValueError(
                "inputs, targets and sample weights must have the same number of samples, got "
                f"x: {[len(a) for a in xs]}, y: {[len(a) for a in ys]}"
                + ("" if sample_weight is None else f", sample_weight: {len(sample_weight)}")
            )
        self.xs, self.ys, self.sample_weight = xs, ys, sample_weight
        self.n = lengths.pop() if lengths else 0

    def split(self, validation_split: float) -> tuple[ArrayData, ArrayData]:
        """The last ``validation_split`` of the samples (before shuffling) for validation."""
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        at = int(self.n * (1.0 - validation_split))
        if at == 0 or at == self.n:
            raise ValueError(
                f"validation_split={validation_split} of {self.n} samples leaves an empty split"
            )
        sw = self.sample_weight

        def cut(s: slice) -> ArrayData:
            return ArrayData(
                [a[s] for a in self.xs], [a[s] for a in self.ys], None if sw is None else sw[s]
            )

        return cut(slice(0, at)), cut(slice(at, None))

    def steps(self, batch_size: int) -> int:
        return -(-self.n // batch_size)

    def batches(self, batch_size: int, shuffle: bool = False) -> Iterator[Batch]:
        order = ember.default_generator.numpy.permutation(self.n) if shuffle else None
        for start in range(0, self.n, batch_size):
            idx = slice(start, start + batch_size) if order is None else order[start:][:batch_size]
            xs = tuple(ember.from_numpy(np.ascontiguousarray(a[idx])) for a in self.xs)
            ys = tuple(ember.from_numpy(np.ascontiguousarray(a[idx])) for a in self.ys)
            sw = self.sample_weight
            yield xs, ys, None if sw is None else ember.from_numpy(sw[idx].copy())


class LoaderData:
    """A DataLoader (or any re-iterable of batches) whose batches are ``(x, y[, sw])``."""

    def __init__(self, loader: Any, class_weight: Mapping[int, float] | None = None) -> None:
        self.loader = loader
        self.class_weight = class_weight

    def steps(self, batch_size: int) -> int | None:
        try:
            return len(self.loader)
        except TypeError:
            return None

    def batches(self, batch_size: int, shuffle: bool = False) -> Iterator[Batch]:
        for batch in self.loader:
            yield self._unpack(batch)

    def _unpack(self, batch: Any) -> Batch:
        if isinstance(batch, Tensor):
            return (batch,), (), None
        if not isinstance(batch, Sequence) or len(batch) not in (1, 2, 3):
            raise ValueError(
                "each batch must be (x,), (x, y) or (x, y, sample_weight); got "
                f"{type(batch).__name__}"
                + (f" of length {len(batch)}" if isinstance(batch, Sequence) else "")
            )
        xs = _tensors(batch[0])
        ys = _tensors(batch[1]) if len(batch) > 1 else ()
        sw = ember.as_tensor(batch[2]) if len(batch) > 2 else None
        if self.class_weight is not None:
            cw = class_weights_for(ys[0].numpy(), self.class_weight)
            sw = ember.from_numpy(cw) if sw is None else sw * ember.from_numpy(cw).to(sw.dtype)
        return xs, ys, sw


def _tensors(part: Any) -> tuple[Tensor, ...]:
    if isinstance(part, (list, tuple)):
        return tuple(ember.as_tensor(p) for p in part)
    return (ember.as_tensor(part),)


def adapt(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    class_weight: Mapping[int, float] | None = None,
    batch_size: int | None = None,
    shuffle: bool = False,
) -> ArrayData | LoaderData:
    """Wrap ``fit``/``evaluate``/``predict`` data; a Dataset becomes a DataLoader."""
    if isinstance(x, (Dataset, DataLoader)) or (
        not _is_array(x) and not isinstance(x, (list, tuple)) and hasattr(x, "__iter__")
    ):
        if y is not None or sample_weight is not None:
            raise ValueError(
                "when x is a Dataset or DataLoader, y and sample_weight come from its batches; "
                "don't pass them separately"
            )
        if isinstance(x, Dataset):
            x = DataLoader(x, batch_size=batch_size or 32, shuffle=shuffle)
        elif batch_size is not None:
            raise ValueError("batch_size is set by the DataLoader; don't pass it to fit")
        return LoaderData(x, class_weight)
    xs, ys = to_arrays(x), to_arrays(y)
    sw = None if sample_weight is None else np.asarray(_one_array(sample_weight), np.float64)
    if class_weight is not None:
        if len(ys) != 1:
            raise ValueError("class_weight needs exactly one target array")
        cw = class_weights_for(ys[0], class_weight)
        sw = cw if sw is None else sw * cw
    return ArrayData(xs, ys, sw)
