"""CSVDataset: targets by name or index, delimiters, headers, dtypes and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ember
from ember.data import CSVDataset, DataLoader

TABLE = "a,b,c,label\n1.5,2,3,0\n4,5.25,6,1\n7,8,9.5,2\n"


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    p = tmp_path / "table.csv"
    p.write_text(TABLE)
    return p


def test_last_column_is_the_target_by_default(csv_file):
    ds = CSVDataset(csv_file)
    assert len(ds) == 3 and ds.columns == ["a", "b", "c", "label"]
    x, y = ds[1]
    assert x.dtype == ember.float32 and x.tolist() == [4.0, 5.25, 6.0]
    assert y.dtype == ember.int64 and y.shape == () and y.item() == 1
    expected = np.loadtxt(csv_file, delimiter=",", skiprows=1, dtype=np.float32)
    np.testing.assert_array_equal(ds.features.numpy(), expected[:, :3])


def test_target_by_name_list_and_none(csv_file):
    x, y = CSVDataset(csv_file, target_columns="a")[0]
    assert x.tolist() == [2.0, 3.0, 0.0] and y.dtype == ember.float32 and y.item() == 1.5
    x, y = CSVDataset(csv_file, target_columns=["label", 0])[2]
    assert x.tolist() == [8.0, 9.5] and y.tolist() == [2.0, 7.0] and y.shape == (2,)
    only = CSVDataset(csv_file, target_columns=None)
    assert only[0].tolist() == [1.5, 2.0, 3.0, 0.0]


def test_delimiter_no_header_dtypes_and_transforms(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("1;2;3\n4;5;6\n")
    ds = CSVDataset(
        p,
        0,
        delimiter=";",
        header=False,
        dtype=ember.float64,
        target_dtype=ember.float32,
        transform=lambda x: x * 2,
        target_transform=lambda y: -y,
    )
    x, y = ds[1]
    assert ds.columns is None
    assert x.dtype == ember.float64 and x.tolist() == [10.0, 12.0]
    assert y.dtype == ember.float32 and y.item() == -4.0


def test_batches(csv_file):
    x, y = next(iter(DataLoader(CSVDataset(csv_file), batch_size=3)))
    assert x.shape == (3, 3) and y.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("text", "kwargs", "err", "match"),
    [
        ("a,b\n1,x\n", {}, ValueError, r"line 2, column 2: 'x' is not a number"),
        ("a,b\n1,2\n3\n", {}, ValueError, r"line 3: 1 fields, expected 2"),
        ("a,b\n", {}, ValueError, "no data rows"),
        ("", {}, ValueError, "header"),
        ("a,b\n1,2\n", {"target_columns": "z"}, KeyError, "no column 'z'"),
        ("a,b\n1,2\n", {"target_columns": 5}, IndexError, "out of range"),
        ("1,2\n", {"target_columns": "a", "header": False}, ValueError, "no header"),
    ],
)
def test_errors_name_the_problem(tmp_path, text, kwargs, err, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(err, match=match):
        CSVDataset(p, **kwargs)
