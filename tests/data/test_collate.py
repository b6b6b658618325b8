"""default_collate and default_convert, checked against PyTorch's where it is installed."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import ember
from ember.data import default_collate, default_convert

Point = namedtuple("Point", ["x", "label"])


def test_collate_tensors_stack():
    b = default_collate([ember.tensor([1.0, 2.0]), ember.tensor([3.0, 4.0])])
    assert isinstance(b, ember.Tensor)
    assert b.shape == (2, 2)
    np.testing.assert_array_equal(b.numpy(), [[1, 2], [3, 4]])


def test_collate_of_tensors_equals_stack_and_copies():
    samples = [ember.randn(2, 3) for _ in range(5)]
    b = default_collate(samples)
    np.testing.assert_array_equal(b.numpy(), ember.stack(samples).numpy())
    b.numpy()[0, 0, 0] = 100.0
    assert samples[0].numpy()[0, 0] != 100.0


def test_collate_keeps_autograd():
    a = ember.tensor([1.0], requires_grad=True)
    b = default_collate([a, a * 2])
    b.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3.0])


def test_collate_numpy_arrays_and_scalars_keep_dtype():
    b = default_collate([np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)])
    assert b.shape == (2, 2, 3) and b.dtype == ember.float32
    s = default_collate([np.int32(1), np.int32(2)])
    assert s.shape == (2,) and s.dtype == ember.int32


def test_collate_python_numbers():
    f = default_collate([1.5, 2.5])
    assert f.dtype == ember.float64 and f.tolist() == [1.5, 2.5]
    i = default_collate([1, 2, 3])
    assert i.dtype == ember.int64 and i.tolist() == [1, 2, 3]
    b = default_collate([True, False])
    assert b.dtype == ember.bool and b.tolist() == [True, False]


def test_collate_strings_stay_lists():
    assert default_collate(["a", "b"]) == ["a", "b"]


def test_collate_tuples_become_lists_of_batches():
    b = default_collate([(np.zeros(3, np.float32), 0), (np.ones(3, np.float32), 1)])
    assert isinstance(b, list) and len(b) == 2
    assert b[0].shape == (2, 3) and b[1].tolist() == [0, 1]


def test_collate_dicts_and_nesting():
    samples = [
        {"image": np.full((1, 2), i, np.float32), "meta": {"id": i, "name": f"s{i}"}}
        for i in range(3)
    ]
    b = default_collate(samples)
    assert set(b) == {"image", "meta"}
    assert b["image"].shape == (3, 1, 2)
    assert b["meta"]["id"].tolist() == [0, 1, 2]
    assert b["meta"]["name"] == ["s0", "s1", "s2"]


def test_collate_namedtuple_keeps_its_type():
    b = default_collate([Point(np.zeros(2), 0), Point(np.ones(2), 1)])
    assert isinstance(b, Point)
    assert b.x.shape == (2, 2) and b.label.tolist() == [0, 1]


def test_collate_lists():
    b = default_collate([[1, 2.0], [3, 4.0]])
    assert isinstance(b, list)
    assert b[0].tolist() == [1, 3] and b[1].dtype == ember.float64


def test_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(ValueError, match="different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="dtype"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(KeyError, match="'y'"):
        default_collate([{"x": 1, "y": 2}, {"x": 1}])
    with pytest.raises(ValueError, match="empty"):
        default_collate([])


def test_default_convert():
    out = default_convert({"x": np.arange(3), "t": (np.float32(1.0), "s")})
    assert isinstance(out["x"], ember.Tensor) and out["x"].tolist() == [0, 1, 2]
    assert isinstance(out["t"], list)
    assert isinstance(out["t"][0], ember.Tensor) and out["t"][1] == "s"
    assert default_convert(3) == 3
    p = default_convert(Point(np.zeros(1), 1))
    assert isinstance(p, Point) and isinstance(p.x, ember.Tensor)


# ----------------------------------------------------------------- PyTorch parity
def _same_structure(ours, theirs, torch):
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, ember.Tensor), type(ours)
        assert ours.shape == tuple(theirs.shape)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs)
        for k in theirs:
            _same_structure(ours[k], theirs[k], torch)
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same_structure(a, b, torch)
    else:
        assert ours == theirs


BATCHES = {
    "arrays": [np.arange(6, dtype=np.float32).reshape(2, 3) + i for i in range(4)],
    "ints": [1, 2, 3],
    "floats": [0.5, 1.5],
    "bools": [True, False],
    "numpy_scalars": [np.float32(1), np.float32(2)],
    "tuples": [(np.zeros(2, np.float32), 1, 0.5), (np.ones(2, np.float32), 0, 1.5)],
    "lists": [[np.int64(1), 2], [np.int64(3), 4]],
    "dicts": [{"a": np.zeros((2, 2)), "b": {"c": 1, "s": "x"}} for _ in range(3)],
    "namedtuples": [Point(np.zeros(3, np.int32), 1), Point(np.ones(3, np.int32), 2)],
    "strings": ["a", "b"],
}


@pytest.mark.torch
@pytest.mark.parametrize("name", list(BATCHES))
def test_default_collate_matches_torch(name):
    torch = pytest.importorskip("torch")
    batch = BATCHES[name]
    _same_structure(default_collate(batch), torch.utils.data.default_collate(batch), torch)


@pytest.mark.torch
def test_default_collate_of_tensors_matches_torch():
    torch = pytest.importorskip("torch")
    arrays = [np.random.default_rng(i).standard_normal((2, 3)).astype(np.float32) for i in range(3)]
    ours = default_collate([ember.from_numpy(a) for a in arrays])
    theirs = torch.utils.data.default_collate([torch.from_numpy(a) for a in arrays])
    _same_structure(ours, theirs, torch)
