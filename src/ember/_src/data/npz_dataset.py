"""NPZDataset: the arrays of a NumPy ``.npz`` file, indexed along their first dimension."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import ember
from ember._src.data.dataset import Dataset


class NPZDataset(Dataset[Any]):
    """Samples are the ``index``-th rows of arrays in a ``.npz`` file (no pickle).

    The file is read with ``numpy.load(path, allow_pickle=False)``, so a file
    holding Python objects is refused rather than executed.

    Args:
        path: the ``.npz`` file.
        keys: the arrays to use, in sample order (default: all, in file order).
        transform: applied to the first array's row.
        target_transform: applied to the second array's row.

    A sample is a tuple of tensors, one per key (just the tensor for one key).
    ``arrays`` maps each key to its whole-file tensor.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np
        >>> from ember.data import NPZDataset
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.npz"
        >>> np.savez(p, x=np.zeros((4, 3), np.float32), y=np.arange(4))
        >>> ds = NPZDataset(p, keys=["x", "y"])
        >>> len(ds), ds[2]
        (4, (tensor([0., 0., 0.]), tensor(2)))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        keys: Sequence[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.transform = transform
        self.target_transform = target_transform
        if isinstance(keys, str):
            keys = [keys]
        loaded = np.load(self.path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"{self.path}: not an .npz archive (a single .npy array?)")
        with loaded as f:
            names = list(f.files) if keys is None else list(keys)
            if not names:
                raise ValueError(f"{self.path}: the archive holds no arrays")
            missing = [k for k in names if k not in f.files]
            if missing:
                raise KeyError(f"{self.path}: no arrays named {missing}; it has {f.files}")
            arrays = {}
            for k in names:
                try:
                    arrays[k] = f[k]
                except ValueError as e:
                    raise ValueError(
                        f"{self.path}: array {k!r} holds Python objects, which need pickle to "
                        "load; NPZDataset reads numeric arrays only"
                    ) from e
        for k, a in arrays.items():
            if a.ndim == 0:
                raise ValueError(f"{self.path}: array {k!r} is a scalar; samples need a first dim")
        sizes = {k: a.shape[0] for k, a in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"{self.path}: arrays differ in length along dim 0: {sizes}")
        self.keys = names
        self.arrays = {k: ember.from_numpy(np.ascontiguousarray(a)) for k, a in arrays.items()}

    def __len__(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def __getitem__(self, index: int) -> Any:
        items: list[Any] = [self.arrays[k][index] for k in self.keys]
        if self.transform is not None:
            items[0] = self.transform(items[0])
        if self.target_transform is not None and len(items) > 1:
            items[1] = self.target_transform(items[1])
        return items[0] if len(items) == 1 else tuple(items)
