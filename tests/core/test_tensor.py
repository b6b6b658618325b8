"""The Tensor data model, conversions, repr, creation functions and random generation."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

import ember


def test_metadata():
    t = ember.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size() == (2, 3, 4) and t.size(-1) == 4
    assert t.ndim == t.dim() == 3 and t.numel() == 24
    assert t.dtype is ember.float32 and t.device == ember.device("cpu") and t.device == "cpu"
    assert t.requires_grad is False and t.grad is None and t.grad_fn is None and t.is_leaf
    assert t.is_contiguous() and not t.transpose(0, 2).is_contiguous()
    assert t.stride() == (12, 4, 1)
    with pytest.raises(IndexError, match="out of range"):
        t.size(3)


def test_item_tolist_numpy_and_python_conversions():
    t = ember.tensor([[1.5, 2.0]])
    assert t.tolist() == [[1.5, 2.0]]
    assert ember.tensor([7]).item() == 7 and isinstance(ember.tensor([7]).item(), int)
    assert float(ember.tensor(2.5)) == 2.5 and int(ember.tensor(3)) == 3
    with pytest.raises(ValueError, match="cannot be converted to a Python scalar"):
        t.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)
    g = ember.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        g.numpy()
    assert np.asarray(t).shape == (1, 2)
    assert [r.tolist() for r in ember.tensor([[1, 2], [3, 4]])] == [[1, 2], [3, 4]]
    assert len(ember.zeros(5, 2)) == 5
    with pytest.raises(TypeError, match="0-d"):
        len(ember.tensor(1.0))


def test_from_numpy_shares_memory_and_tensor_copies():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    shared = ember.from_numpy(a)
    copied = ember.tensor(a)
    a[0, 0] = 100
    assert shared[0, 0].item() == 100 and copied[0, 0].item() == 0
    assert ember.as_tensor(a).numpy() is a or np.shares_memory(ember.as_tensor(a).numpy(), a)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        ember.from_numpy([1, 2])


def test_clone_is_independent_and_differentiable():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert not np.shares_memory(c.detach().numpy(), x.detach().numpy())
    (c * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_contiguous_and_to():
    t = ember.arange(6.0).reshape(2, 3).T
    c = t.contiguous()
    assert c.is_contiguous() and np.array_equal(c.numpy(), t.numpy())
    assert ember.ones(2).contiguous().is_contiguous()
    d = t.to(ember.float64)
    assert d.dtype is ember.float64 and np.array_equal(d.numpy(), t.numpy())
    assert t.to("cpu") is t
    assert t.to(ember.zeros(1, dtype=ember.int32)).dtype is ember.int32
    assert t.double().dtype is ember.float64 and t.long().dtype is ember.int64
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    (x.to(ember.float64) * 2).sum().backward()
    assert x.grad.dtype is ember.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_tensor_dtype_inference():
    assert ember.tensor([1, 2]).dtype is ember.int64
    assert ember.tensor([1.0, 2]).dtype is ember.float32
    assert ember.tensor([True]).dtype is ember.bool
    assert ember.tensor(np.zeros(2, dtype=np.float64)).dtype is ember.float64
    assert ember.tensor(np.zeros(2, dtype=np.int16)).dtype is ember.int16
    assert ember.tensor([1, 2], dtype=ember.float16).dtype is ember.float16
    assert ember.tensor([ember.tensor(1.0), ember.tensor(2.0)]).tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="does not support dtype"):
        ember.tensor([1], dtype="complex128")
    with pytest.raises(TypeError, match="could not infer"):
        ember.tensor([object()])


def test_default_dtype_can_be_changed_and_restored():
    ember.set_default_dtype(ember.float64)
    try:
        assert ember.tensor([1.0]).dtype is ember.float64
        assert ember.zeros(1).dtype is ember.float64
        assert (ember.tensor([1]) / 2).dtype is ember.float64
    finally:
        ember.set_default_dtype(ember.float32)
    with pytest.raises(TypeError, match="floating"):
        ember.set_default_dtype(ember.int32)


@pytest.mark.parametrize(
    "make, ref",
    [
        (lambda: ember.zeros(2, 3), np.zeros((2, 3), np.float32)),
        (lambda: ember.ones((2,), dtype=ember.int32), np.ones(2, np.int32)),
        (lambda: ember.full((2, 2), 7), np.full((2, 2), 7, np.int64)),
        (lambda: ember.full((2,), 1.5), np.full(2, 1.5, np.float32)),
        (lambda: ember.arange(5), np.arange(5)),
        (lambda: ember.arange(1, 2, 0.25), np.arange(1, 2, 0.25, dtype=np.float32)),
        (lambda: ember.arange(10, 0, -3), np.arange(10, 0, -3)),
        (lambda: ember.linspace(0, 1, 5), np.linspace(0, 1, 5, dtype=np.float32)),
        (lambda: ember.eye(3, 2), np.eye(3, 2, dtype=np.float32)),
        (lambda: ember.zeros_like(ember.ones(2, dtype=ember.int8)), np.zeros(2, np.int8)),
        (lambda: ember.ones_like(ember.zeros(3)), np.ones(3, np.float32)),
        (lambda: ember.full_like(ember.zeros(2), 3.0), np.full(2, 3.0, np.float32)),
    ],
)
def test_factories_match_numpy(make, ref):
    t = make()
    assert t.numpy().dtype == ref.dtype
    np.testing.assert_array_equal(t.numpy(), ref)


def test_factories_reject_bad_sizes():
    with pytest.raises(ValueError, match="non-negative"):
        ember.zeros(-1)
    with pytest.raises(ValueError, match="step must be nonzero"):
        ember.arange(0, 5, 0)
    with pytest.raises(ValueError, match="low"):
        ember.randint(5, 5, (2,))


def test_empty_and_requires_grad_factories():
    e = ember.empty(3, 2, requires_grad=True)
    assert e.shape == (3, 2) and e.requires_grad and e.is_leaf
    assert ember.empty_like(e).shape == (3, 2)


# ----------------------------------------------------------------- random
def test_manual_seed_reproduces_numpy_pcg64_streams():
    ember.manual_seed(123)
    u = ember.rand(4, dtype=ember.float64).numpy()
    n = ember.randn(3, dtype=ember.float64).numpy()
    ref = np.random.Generator(np.random.PCG64(123))
    np.testing.assert_array_equal(u, ref.random(4))
    np.testing.assert_array_equal(n, ref.standard_normal(3))


def test_generators_are_independent_and_restorable():
    g1 = ember.Generator().manual_seed(7)
    g2 = ember.Generator().manual_seed(7)
    a = ember.randn(5, generator=g1)
    ember.randn(100)  # the default generator does not disturb g2
    b = ember.randn(5, generator=g2)
    assert np.array_equal(a.numpy(), b.numpy())
    state = g1.get_state()
    c = ember.rand(3, generator=g1)
    g1.set_state(state)
    assert np.array_equal(ember.rand(3, generator=g1).numpy(), c.numpy())
    assert g1.initial_seed() == 7


def test_same_seed_same_numbers_in_a_fresh_process():
    code = "import ember; ember.manual_seed(5); print(ember.randn(4).tolist())"
    outs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert outs[0].stdout == outs[1].stdout and outs[0].stdout.strip()


def test_random_distributions_have_the_right_ranges_and_moments():
    g = ember.Generator().manual_seed(0)
    r = ember.rand(20000, generator=g).numpy()
    assert r.min() >= 0 and r.max() < 1 and abs(r.mean() - 0.5) < 0.01
    n = ember.normal(2.0, 3.0, (20000,), generator=g).numpy()
    assert abs(n.mean() - 2.0) < 0.1 and abs(n.std() - 3.0) < 0.1
    i = ember.randint(3, 7, (1000,), generator=g)
    assert i.dtype is ember.int64 and set(i.tolist()) == {3, 4, 5, 6}
    assert ember.randn_like(ember.zeros(2, 2, dtype=ember.float64)).dtype is ember.float64
    assert ember.randint(4, (2, 3)).shape == (2, 3)


def test_tensor_method_initializers():
    g = ember.Generator().manual_seed(1)
    t = ember.empty(1000).uniform_(-2, 3, generator=g)
    assert t.min().item() >= -2 and t.max().item() < 3
    t.normal_(5.0, 0.01, generator=g)
    assert abs(t.mean().item() - 5.0) < 0.01
    t.fill_(4).zero_()
    assert t.sum().item() == 0


# ----------------------------------------------------------------- repr and safety
@pytest.mark.parametrize(
    "data, dtype",
    [
        ([1.0, 2.0, 3.0], None),
        ([[1.5, -2.25], [3.0, 4.125]], None),
        ([1, 2, -30], None),
        ([1, 2], "int32"),
        ([True, False], None),
        ([0.5, 1.0], "float64"),
        (3.25, None),
    ],
)
def test_repr_matches_pytorch(data, dtype):
    torch = pytest.importorskip("torch")
    e = ember.tensor(data, dtype=getattr(ember, dtype) if dtype else None)
    t = torch.tensor(data, dtype=getattr(torch, dtype) if dtype else None)
    assert repr(e) == repr(t).replace("torch.", "ember.")


def test_repr_shows_grad_state():
    x = ember.tensor([1.0], requires_grad=True)
    assert repr(x) == "tensor([1.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2.], grad_fn=<MulBackward0>)"


def test_tensors_refuse_pickle():
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(ember.ones(2))


def test_tensor_constructor_points_to_factories():
    with pytest.raises(TypeError, match="ember.tensor"):
        ember.Tensor([1, 2])


def test_device_parsing_and_errors():
    assert str(ember.device("cuda:1")) == "cuda:1"
    assert ember.device("cpu") == ember.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        ember.device("tpu")


def test_bfloat16_keeps_its_dtype_with_python_scalars_and_trains():
    pytest.importorskip("ml_dtypes")
    b = ember.ones(3, dtype=ember.bfloat16)
    assert (b * 2.5).dtype is ember.bfloat16 and (b + 1).dtype is ember.bfloat16
    assert (b + ember.ones(3, dtype=ember.float16)).dtype is ember.float32
    x = ember.tensor([1.0, 2.0], dtype=ember.bfloat16, requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype is ember.bfloat16
    np.testing.assert_array_equal(x.grad.numpy().astype(np.float32), [2.0, 4.0])


def test_integer_arithmetic_wraps_like_pytorch():
    t = ember.tensor([250], dtype=ember.uint8)
    assert (t + 300).tolist() == [38] and (t + 300).dtype is ember.uint8
    assert (ember.tensor([1], dtype=ember.int8) - 130).tolist() == [127]


def test_clamp_with_float_bounds_promotes_integer_tensors():
    out = ember.tensor([1, 2, 3], dtype=ember.int32).clamp(min=0.5, max=2.5)
    assert out.dtype is ember.float32 and out.tolist() == [1.0, 2.0, 2.5]
    assert ember.tensor([1, 5]).clamp(max=3).dtype is ember.int64
