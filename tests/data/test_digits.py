"""Digits: shapes, dtypes, the fixed split, and the error without scikit-learn."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import ember
from ember._src.data import digits
from ember.data import DataLoader, Digits


@pytest.fixture
def sklearn():
    return pytest.importorskip("sklearn")


def test_split_sizes_shapes_and_dtypes(sklearn):
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) == 1437 and len(test) == 360
    assert train.data.shape == (1437, 1, 8, 8) and test.data.shape == (360, 1, 8, 8)
    assert train.data.dtype == ember.float32 and train.targets.dtype == ember.int64
    for ds in (train, test):
        x = ds.data.numpy()
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(ds.targets.tolist()) == set(range(10))


def test_split_is_documented_and_fixed(sklearn):
    from sklearn.datasets import load_digits

    d = load_digits()
    test = Digits(train=False)
    np.testing.assert_array_equal(test.targets.numpy(), d.target[::5])
    np.testing.assert_allclose(test.data.numpy()[:, 0], d.images[::5] / 16, rtol=1e-6)
    train = Digits(train=True)
    np.testing.assert_array_equal(train.targets.numpy(), np.delete(d.target, np.s_[::5]))


def test_samples_and_transforms(sklearn):
    ds = Digits(transform=lambda x: x.reshape(64), target_transform=lambda y: y * 10)
    image, label = ds[3]
    assert image.shape == (64,) and image.dtype == ember.float32
    assert label == 10 * Digits()[3][1]
    x, y = next(iter(DataLoader(Digits(train=False), batch_size=32, shuffle=True)))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,) and y.dtype == ember.int64


def test_missing_scikit_learn_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    digits._load.cache_clear()
    try:
        with pytest.raises(ImportError, match="pip install scikit-learn"):
            Digits()
    finally:
        digits._load.cache_clear()
