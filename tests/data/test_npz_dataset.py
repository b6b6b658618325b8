"""NPZDataset: keys, transforms, and refusing files that need pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ember
from ember.data import DataLoader, NPZDataset


@pytest.fixture
def npz_file(tmp_path: Path) -> Path:
    p = tmp_path / "data.npz"
    np.savez(p, x=np.arange(12, dtype=np.float32).reshape(4, 3), y=np.array([0, 1, 1, 0]))
    return p


def test_all_arrays_in_file_order(npz_file):
    ds = NPZDataset(npz_file)
    assert ds.keys == ["x", "y"] and len(ds) == 4
    x, y = ds[2]
    assert x.dtype == ember.float32 and x.tolist() == [6.0, 7.0, 8.0]
    assert y.dtype == ember.int64 and y.item() == 1


def test_selected_keys_and_transforms(npz_file):
    assert NPZDataset(npz_file, keys="y")[1].item() == 1
    y, x = NPZDataset(npz_file, keys=["y", "x"])[0]
    assert y.item() == 0 and x.shape == (3,)
    x, y = NPZDataset(npz_file, transform=lambda t: t + 1, target_transform=lambda t: t * 5)[1]
    assert x.tolist() == [4.0, 5.0, 6.0] and y.item() == 5


def test_batches(npz_file):
    x, y = next(iter(DataLoader(NPZDataset(npz_file), batch_size=4, num_workers=0)))
    assert x.shape == (4, 3) and y.tolist() == [0, 1, 1, 0]


def test_object_arrays_are_refused_not_unpickled(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        NPZDataset(p)


def test_errors(tmp_path, npz_file):
    with pytest.raises(KeyError, match="'z'"):
        NPZDataset(npz_file, keys=["z"])
    p = tmp_path / "ragged.npz"
    np.savez(p, a=np.zeros(3), b=np.zeros(4))
    with pytest.raises(ValueError, match="differ in length"):
        NPZDataset(p)
    p = tmp_path / "scalar.npz"
    np.savez(p, a=np.float32(1))
    with pytest.raises(ValueError, match="scalar"):
        NPZDataset(p)
    p = tmp_path / "single.npy"
    np.save(p, np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz"):
        NPZDataset(p)
