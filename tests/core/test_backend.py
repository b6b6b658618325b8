"""The backend interface: ops reach arrays only through the backend's namespace."""

from __future__ import annotations

import types

import numpy as np
import pytest

import ember
from ember._src.core import backend as B


class FakeArray(np.ndarray):
    """Arrays of the fake device: NumPy memory under a type of their own."""


def _make_fake() -> B.Backend:
    calls: list[str] = []

    def wrap(fn):
        def inner(*args, **kwargs):
            out = fn(*args, **kwargs)
            return np.asarray(out).view(FakeArray) if isinstance(out, np.ndarray) else out

        return inner

    class RecordingNamespace(types.SimpleNamespace):
        def __getattr__(self, name):
            calls.append(name)
            attr = getattr(np, name)
            return wrap(attr) if callable(attr) and not isinstance(attr, type) else attr

    xp = RecordingNamespace()
    b = B.Backend("fake", xp, FakeArray)
    b.calls = calls  # type: ignore[attr-defined]
    b.to_numpy = lambda a: np.asarray(a).view(np.ndarray)  # type: ignore[method-assign]
    return b


@pytest.fixture(scope="module")
def fake():
    if "fake" not in B._FACTORIES:
        B.register_backend("fake", _make_fake)
    return B.get_backend("fake")


def test_ops_run_through_the_backend_namespace_and_stay_on_device(fake):
    x = ember.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
    fx = x.to("fake")
    assert fx.device == ember.device("fake") and isinstance(fx._data, FakeArray)
    fake.calls.clear()
    y = (fx.exp() * fx).sum(dim=1).tanh()
    assert y.device.type == "fake" and isinstance(y._data, FakeArray)
    assert "exp" in fake.calls and "tanh" in fake.calls
    y.sum().backward()
    # the gradient came back across the transfer to the CPU leaf
    assert x.grad.device.type == "cpu"
    xv = np.array([[1.0, -2.0], [3.0, 0.5]])
    s = (np.exp(xv) * xv).sum(1)
    expect = (1 - np.tanh(s) ** 2)[:, None] * (np.exp(xv) * xv + np.exp(xv))
    np.testing.assert_allclose(x.grad.numpy(), expect, rtol=1e-5)


def test_factories_create_on_the_requested_backend(fake):
    z = ember.zeros(2, 3, device="fake")
    r = ember.randn(4, device="fake")
    assert isinstance(z._data, FakeArray) and isinstance(r._data, FakeArray)
    assert repr(z).endswith("device='fake')")


def test_cuda_without_cupy_is_a_clear_error():
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="needs CuPy"):
            ember.zeros(2, device="cuda")
        assert not B.is_available("cuda")
    else:  # pragma: no cover - only on GPU machines
        pytest.skip("CuPy is installed here; the error path cannot be exercised")


def test_register_backend_refuses_duplicates(fake):
    with pytest.raises(ValueError, match="already registered"):
        B.register_backend("cpu", B._make_cpu)
