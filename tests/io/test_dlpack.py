"""DLPack: zero-copy exchange with NumPy, PyTorch and CuPy, read-only sources, grad."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ember

DTYPES = [
    ember.float16,
    ember.float32,
    ember.float64,
    ember.int8,
    ember.int16,
    ember.int32,
    ember.int64,
    ember.uint8,
    ember.bool_,
]


# ================================================================= NumPy
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_numpy_round_trip_every_dtype_shares_memory(dtype: ember.dtype) -> None:
    t = ember.arange(6).reshape(2, 3).to(dtype)
    a = np.from_dlpack(t)
    assert a.dtype == dtype.np and a.shape == (2, 3)
    assert a.ctypes.data == t.data_ptr()
    back = ember.from_dlpack(a)
    assert back.dtype is dtype and back.data_ptr() == t.data_ptr()


def test_writes_through_numpy_are_seen_by_ember_and_back() -> None:
    t = ember.zeros(4)
    a = np.from_dlpack(t)
    a[1] = 5.0
    assert t.tolist() == [0.0, 5.0, 0.0, 0.0]
    t.add_(1.0)
    assert a.tolist() == [1.0, 6.0, 1.0, 1.0]

    src = np.arange(4.0)
    e = ember.from_dlpack(src)
    e[0] = -1.0
    assert src[0] == -1.0
    src[3] = 30.0
    assert e[3].item() == 30.0


def test_strided_and_zero_d_tensors_export_as_views() -> None:
    base = ember.arange(12.0).reshape(3, 4)
    view = base.t()[1:, ::2]
    a = np.from_dlpack(view)
    np.testing.assert_array_equal(a, view.numpy())
    a[0, 0] = 100.0
    assert base[0, 1].item() == 100.0  # still the same memory
    s = ember.tensor(3.5)
    assert np.from_dlpack(s).shape == () and np.from_dlpack(s)[()] == 3.5


def test_device_and_protocol_keywords() -> None:
    t = ember.ones(2)
    assert t.__dlpack_device__() == (1, 0)
    assert type(t.__dlpack__(max_version=(1, 0))).__name__ == "PyCapsule"
    assert type(t.__dlpack__(stream=None, max_version=None)).__name__ == "PyCapsule"
    copied = np.from_dlpack(t, copy=True)
    copied[0] = 9.0
    assert t[0].item() == 1.0


def test_tensors_that_require_grad_are_not_exported() -> None:
    w = ember.ones(3, requires_grad=True)
    with pytest.raises(
        BufferError,
        match=r"Can't export tensors that require gradient, use "
        r"tensor.detach\(\)",
    ):
        np.from_dlpack(w)
    assert np.from_dlpack(w.detach()).ctypes.data == w.data_ptr()
    y = w * 2  # a non-leaf that requires grad
    with pytest.raises(BufferError):
        ember.from_dlpack(y)


def test_from_dlpack_gives_a_tensor_without_grad_and_on_the_tape_nothing() -> None:
    t = ember.from_dlpack(np.ones(3, np.float32))
    assert not t.requires_grad and t.is_leaf
    t.requires_grad_()
    (t * t).sum().backward()
    assert t.grad is not None and t.grad.tolist() == [2.0, 2.0, 2.0]


# ================================================================= read-only sources
def test_read_only_numpy_source_gives_a_read_only_shared_tensor() -> None:
    a = np.arange(4.0)
    a.flags.writeable = False
    with pytest.raises(BufferError):  # NumPy's legacy (pre-1.0) export refuses: no flag for it
        a.__dlpack__()
    t = ember.from_dlpack(a)  # DLPack 1.0 carries the read-only flag
    assert t.data_ptr() == a.ctypes.data
    assert (t * 2).tolist() == [0.0, 2.0, 4.0, 6.0]  # reading works
    with pytest.raises(RuntimeError, match="read-only.*clone"):
        t.add_(1.0)
    with pytest.raises(RuntimeError, match="read-only.*clone"):
        t[0] = 5.0
    with pytest.raises((RuntimeError, ValueError), match="read-only"):  # ValueError: NumPy's
        t.zero_()
    assert a.tolist() == [0.0, 1.0, 2.0, 3.0]
    # Exporting it again keeps it read-only on the other side.
    assert not np.from_dlpack(t).flags.writeable


def test_copy_true_gives_a_writable_copy_and_copy_false_never_copies() -> None:
    a = np.arange(4.0)
    a.flags.writeable = False
    t = ember.from_dlpack(a, copy=True)
    t.add_(1.0)
    assert t.tolist() == [1.0, 2.0, 3.0, 4.0] and a.tolist() == [0.0, 1.0, 2.0, 3.0]
    b = np.arange(3.0)
    assert ember.from_dlpack(b, copy=False).data_ptr() == b.ctypes.data


def test_bad_sources_are_named() -> None:
    with pytest.raises(TypeError, match="supports DLPack.*got list"):
        ember.from_dlpack([1, 2, 3])
    with pytest.raises(TypeError, match="ember.from_dlpack: ember does not support dtype"):
        ember.from_dlpack(np.zeros(2, np.complex64))
    with pytest.raises(TypeError, match="does not support dtype"):
        ember.from_dlpack(np.zeros(2, np.uint32))

    class OnAnotherDevice:
        def __dlpack__(self, **kwargs: Any) -> Any:
            raise AssertionError("not reached")

        def __dlpack_device__(self) -> tuple[int, int]:
            return (14, 0)  # kDLOneAPI

    with pytest.raises(BufferError, match="device type 14"):
        ember.from_dlpack(OnAnotherDevice())


def test_bfloat16_export_says_what_to_do() -> None:
    if not hasattr(ember, "bfloat16"):
        pytest.skip("ml_dtypes is not installed")
    with pytest.raises(BufferError, match=r"bfloat16.*tensor.float\(\)"):
        np.from_dlpack(ember.zeros(2, dtype=ember.bfloat16))


# ================================================================= PyTorch
@pytest.mark.torch
def test_torch_both_ways_shares_memory() -> None:
    torch = pytest.importorskip("torch")
    t = ember.arange(6.0).reshape(2, 3)
    tt = torch.from_dlpack(t)
    assert tt.data_ptr() == t.data_ptr() and tt.dtype == torch.float32
    tt[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    t.mul_(2.0)
    assert tt[1, 2].item() == 10.0

    src = torch.arange(5, dtype=torch.int64)
    e = ember.from_dlpack(src)
    assert e.dtype is ember.int64 and e.data_ptr() == src.data_ptr()
    e[1] = 100
    assert src[1].item() == 100
    src.add_(1)
    assert e.tolist() == [1, 101, 3, 4, 5]


@pytest.mark.torch
def test_torch_strided_grad_and_legacy_capsules() -> None:
    torch = pytest.importorskip("torch")
    from torch.utils import dlpack as torch_dlpack

    base = torch.arange(12.0).reshape(3, 4)
    e = ember.from_dlpack(base.t())
    np.testing.assert_array_equal(e.numpy(), base.t().numpy())
    assert e.stride() == (1, 4)
    with pytest.raises(BufferError, match="require gradient"):
        ember.from_dlpack(torch.ones(2, requires_grad=True))
    w = ember.ones(2, requires_grad=True)
    with pytest.raises(BufferError, match="require gradient"):
        torch.from_dlpack(w)
    capsule = torch_dlpack.to_dlpack(base)
    assert ember.from_dlpack(capsule).data_ptr() == base.data_ptr()
    for dtype in (torch.bool, torch.uint8, torch.int32, torch.float16, torch.float64):
        src = torch.zeros(3, dtype=dtype)
        assert ember.from_dlpack(src).numpy().dtype == torch.empty(0, dtype=dtype).numpy().dtype


# ================================================================= CuPy
def test_cupy_both_ways_shares_memory() -> None:
    cupy = pytest.importorskip("cupy")
    if not ember._src.core.backend.is_available("cuda"):
        pytest.skip("no CUDA device")
    c = cupy.arange(4, dtype=cupy.float32)
    e = ember.from_dlpack(c)
    assert e.device.type == "cuda" and e.data_ptr() == c.data.ptr
    e.add_(1.0)
    assert c.tolist() == [1.0, 2.0, 3.0, 4.0]
    back = cupy.from_dlpack(e)
    back[0] = 9.0
    assert e[0].item() == 9.0
