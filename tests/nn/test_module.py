"""Module: registration, iteration order, state_dict, modes, hooks, repr, containers."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn


class Affine(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(ember.ones(n))
        self.bias = nn.Parameter(ember.zeros(n))
        self.register_buffer("count", ember.zeros(1))
        self.register_buffer("scratch", ember.zeros(1), persistent=False)

    def forward(self, x):
        return x * self.weight + self.bias


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = Affine(3)
        self.blocks = nn.ModuleList([Affine(3), Affine(3)])
        self.head = nn.Sequential(Affine(3), nn.Identity())

    def forward(self, x):
        x = self.enc(x)
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def test_registration_order_and_pytorch_keys():
    net = Net()
    assert list(net.state_dict()) == [
        "enc.weight", "enc.bias", "enc.count",
        "blocks.0.weight", "blocks.0.bias", "blocks.0.count",
        "blocks.1.weight", "blocks.1.bias", "blocks.1.count",
        "head.0.weight", "head.0.bias", "head.0.count",
    ]  # fmt: skip
    assert [n for n, _ in net.named_parameters()][:2] == ["enc.weight", "enc.bias"]
    assert len(list(net.parameters())) == 8
    assert len(list(net.buffers())) == 8  # persistent and not
    assert [n for n, _ in net.named_modules()] == [
        "", "enc", "blocks", "blocks.0", "blocks.1", "head", "head.0", "head.1",
    ]  # fmt: skip
    assert [n for n, _ in net.named_children()] == ["enc", "blocks", "head"]


def test_state_dict_keys_match_an_equivalent_pytorch_model():
    torch = pytest.importorskip("torch")

    class TAffine(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(n))
            self.bias = torch.nn.Parameter(torch.zeros(n))
            self.register_buffer("count", torch.zeros(1))
            self.register_buffer("scratch", torch.zeros(1), persistent=False)

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = TAffine(3)
            self.blocks = torch.nn.ModuleList([TAffine(3), TAffine(3)])
            self.head = torch.nn.Sequential(TAffine(3), torch.nn.Identity())

    assert list(Net().state_dict()) == list(TNet().state_dict())


def test_shared_parameters_are_listed_once():
    a = Affine(2)
    seq = nn.Sequential(a, a)
    assert len(list(seq.parameters())) == 2


def test_load_state_dict_copies_and_checks_everything_first():
    src, dst = Net(), Net()
    with ember.no_grad():
        src.enc.weight.mul_(3)
    res = dst.load_state_dict(src.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    np.testing.assert_array_equal(dst.enc.weight.detach().numpy(), [3.0, 3.0, 3.0])

    bad = dict(src.state_dict())
    bad["enc.bias"] = ember.zeros(4)
    bad["extra"] = ember.zeros(1)
    del bad["head.0.count"]
    with ember.no_grad():
        src.enc.weight.mul_(2)
    bad["enc.weight"] = src.enc.weight.detach()
    with pytest.raises(KeyError) as info:
        dst.load_state_dict(bad)
    msg = str(info.value)
    assert "'head.0.count'" in msg and "'extra'" in msg and "size mismatch for 'enc.bias'" in msg
    # nothing was copied: the good key in the same dict did not land
    np.testing.assert_array_equal(dst.enc.weight.detach().numpy(), [3.0, 3.0, 3.0])

    del bad["enc.bias"]
    res = dst.load_state_dict({k: v for k, v in bad.items() if k != "enc.bias"}, strict=False)
    assert "head.0.count" in res.missing_keys and res.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(dst.enc.weight.detach().numpy(), [6.0, 6.0, 6.0])


def test_assignment_type_errors():
    m = Affine(2)
    with pytest.raises(TypeError, match="ember.nn.Parameter or None expected"):
        m.weight = ember.ones(2)
    with pytest.raises(TypeError, match="Parameter"):
        m.register_parameter("w2", ember.ones(2))
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", ember.ones(1))

    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(ember.ones(1))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope  # noqa: B018


def test_train_eval_requires_grad_and_zero_grad():
    net = Net()
    assert net.training and all(m.training for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    out = net(ember.ones(2, 3)).sum()
    out.backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_apply_and_to_dtype():
    net = Net()
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Affine") == 4
    net.double()
    assert all(p.dtype is ember.float64 for p in net.parameters())
    out = net(ember.ones(3, dtype=ember.float64))
    assert out.dtype is ember.float64


def test_forward_hooks_can_rewrite_inputs_and_outputs():
    m = Affine(2)
    calls = []
    pre = m.register_forward_pre_hook(lambda mod, args: (args[0] * 10,))
    post = m.register_forward_hook(lambda mod, args, out: calls.append(out.tolist()) or out + 1)
    out = m(ember.ones(2))
    assert out.tolist() == [11.0, 11.0] and calls == [[10.0, 10.0]]
    pre.remove()
    post.remove()
    assert m(ember.ones(2)).tolist() == [1.0, 1.0]


def test_repr_prints_the_tree():
    net = nn.Sequential(nn.Identity(), nn.ModuleList([nn.Identity()]))
    assert repr(net) == (
        "Sequential(\n  (0): Identity()\n  (1): ModuleList(\n    (0): Identity()\n  )\n)"
    )


def test_containers_index_slice_and_mutate():
    seq = nn.Sequential(Affine(1), Affine(1), Affine(1))
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert seq[-1] is list(seq)[2]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    ml = nn.ModuleList([Affine(1)])
    ml.append(Affine(1)).extend([Affine(1)])
    ml.insert(0, nn.Identity())
    assert isinstance(ml[0], nn.Identity) and len(ml) == 4
    del ml[0]
    assert len(list(ml.parameters())) == 6
    md = nn.ModuleDict({"a": Affine(1)})
    md["b"] = Affine(2)
    assert list(md) == ["a", "b"] and "b" in md and len(md) == 2
    assert list(md.state_dict()) == [
        "a.weight",
        "a.bias",
        "a.count",
        "b.weight",
        "b.bias",
        "b.count",
    ]
    with pytest.raises(TypeError, match="Modules"):
        nn.Sequential(lambda x: x)


def test_parameter_is_a_leaf_tensor():
    p = nn.Parameter(ember.ones(2, 2))
    assert isinstance(p, ember.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor(")
    q = nn.Parameter(ember.ones(1), requires_grad=False)
    assert not q.requires_grad
    with pytest.raises(TypeError, match="Tensor"):
        nn.Parameter([1.0])
