"""CSVDataset: rows of a numeric CSV file as (features, target) samples."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import ember
from ember._src.data.dataset import Dataset

Column = int | str


class CSVDataset(Dataset[Any]):
    """A numeric CSV file as samples ``(features, target)``, one per row.

    Args:
        path: the CSV file.
        target_columns: the target column (index or header name), a list of
            them, or None for no target (samples are then features only).
            Negative indices count from the right; the default is the last
            column.
        delimiter: the field separator.
        header: whether the first row holds column names.
        dtype: the features' ember dtype.
        target_dtype: the target's dtype; by default int64 when every target
            value is a whole number (class labels), else ``dtype``.
        transform: applied to each feature tensor.
        target_transform: applied to each target.

    A single target column gives a 0-d target tensor, several a 1-d one.
    ``features`` and ``targets`` hold the whole file as tensors and
    ``columns`` the header names (or None).

    Example:
        >>> import pathlib, tempfile
        >>> from ember.data import CSVDataset
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "iris.csv"
        >>> _ = p.write_text("length,width,species\\n5.1,3.5,0\\n6.2,2.9,1\\n")
        >>> ds = CSVDataset(p, target_columns="species")
        >>> len(ds), ds[1]
        (2, (tensor([6.2000, 2.9000]), tensor(1)))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        target_columns: Column | Sequence[Column] | None = -1,
        *,
        delimiter: str = ",",
        header: bool = True,
        dtype: Any = None,
        target_dtype: Any = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.transform = transform
        self.target_transform = target_transform
        with open(self.path, newline="") as f:
            rows = [r for r in csv.reader(f, delimiter=delimiter) if r]
        self.columns: list[str] | None = None
        first_line = 1
        if header:
            if not rows:
                raise ValueError(f"{self.path}: empty file, expected a header row")
            self.columns = [c.strip() for c in rows.pop(0)]
            first_line = 2
        if not rows:
            raise ValueError(f"{self.path}: no data rows")
        width = len(self.columns) if self.columns is not None else len(rows[0])
        values = np.empty((len(rows), width), np.float64)
        for i, row in enumerate(rows):
            if len(row) != width:
                raise ValueError(
                    f"{self.path}, line {i + first_line}: {len(row)} fields, expected {width} "
                    f"(delimiter {delimiter!r})"
                )
            for j, cell in enumerate(row):
                try:
                    values[i, j] = float(cell)
                except ValueError:
                    raise ValueError(
                        f"{self.path}, line {i + first_line}, column {j + 1}: {cell!r} is not a "
                        "number; CSVDataset reads numeric columns only"
                    ) from None

        wanted: list[Column]
        if target_columns is None:
            wanted = []
        elif isinstance(target_columns, (int, str)):
            wanted = [target_columns]
        else:
            wanted = list(target_columns)
        single = isinstance(target_columns, (int, str))
        target_idx = [self._column_index(c, width) for c in wanted]
        feature_idx = [j for j in range(width) if j not in target_idx]
        fdtype = ember.get_default_dtype() if dtype is None else dtype
        self.features = ember.tensor(values[:, feature_idx], dtype=fdtype)
        self.targets: ember.Tensor | None = None
        if target_columns is not None:
            t = values[:, target_idx[0]] if single else values[:, target_idx]
            if target_dtype is None:
                target_dtype = ember.int64 if np.all(t == np.round(t)) else fdtype
            self.targets = ember.tensor(t, dtype=target_dtype)

    def _column_index(self, c: Column, width: int) -> int:
        if isinstance(c, str):
            if self.columns is None:
                raise ValueError(f"target column {c!r} is a name but the file has no header")
            if c not in self.columns:
                raise KeyError(f"{self.path}: no column {c!r}; columns are {self.columns}")
            return self.columns.index(c)
        if not -width <= c < width:
            raise IndexError(f"{self.path}: column {c} is out of range for {width} columns")
        return c % width

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def __getitem__(self, index: int) -> Any:
        x: Any = self.features[index]
        if self.transform is not None:
            x = self.transform(x)
        if self.targets is None:
            return x
        y: Any = self.targets[index]
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y
