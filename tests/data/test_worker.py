"""What crosses between DataLoader processes: tensors as arrays, errors with tracebacks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import ember
from ember._src.data import worker


def test_tensors_travel_as_numpy_and_come_back_as_tensors():
    x = ember.randn(3, 2)
    batch = {"x": x, "pair": (ember.tensor([1, 2]), "label"), "n": 3}
    out = worker.loads(worker.dumps(batch))
    assert isinstance(out["x"], ember.Tensor) and out["x"].dtype == ember.float32
    np.testing.assert_array_equal(out["x"].numpy(), x.numpy())
    assert out["pair"][0].dtype == ember.int64 and out["pair"][1] == "label"
    assert out["n"] == 3
    assert out["x"].numpy().flags.writeable


def test_requires_grad_survives_and_history_does_not():
    a = ember.tensor([1.0, 2.0], requires_grad=True)
    out = worker.loads(worker.dumps([a * 2]))[0]
    assert out.requires_grad and out.is_leaf
    np.testing.assert_array_equal(out.detach().numpy(), [2.0, 4.0])


def test_plain_pickle_of_tensors_is_still_refused():
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(ember.zeros(1))


def _fail() -> None:
    raise IndexError("index 9 is out of range")


def test_exception_wrapper_keeps_type_and_traceback():
    try:
        _fail()
    except IndexError:
        wrapped = worker.ExceptionWrapper.capture("in DataLoader worker process 1")
    wrapped = pickle.loads(pickle.dumps(wrapped))
    with pytest.raises(IndexError) as info:
        wrapped.reraise()
    message = str(info.value)
    assert message.startswith("Caught IndexError in DataLoader worker process 1.")
    assert "in _fail" in message and "index 9 is out of range" in message


def test_exception_wrapper_falls_back_to_runtime_error():
    class NeedsTwoArgs(Exception):
        def __init__(self, a, b):
            super().__init__(a, b)

    try:
        raise NeedsTwoArgs(1, 2)
    except NeedsTwoArgs:
        wrapped = worker.ExceptionWrapper.capture("in DataLoader worker process 0")
    assert wrapped.exc_type is None  # a local class cannot be imported by the main process
    with pytest.raises(RuntimeError, match="Caught NeedsTwoArgs"):
        wrapped.reraise()
