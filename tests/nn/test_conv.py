"""Conv1d, Conv2d, ConvTranspose2d and conv1d/conv2d/conv_transpose2d: against PyTorch with
copied weights (outputs and every gradient in float64) over a grid of stride, padding,
dilation, groups and padding modes; default initialization, reprs, state_dict keys, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import nn
from ember._src.nn import conv as F
from ember._src.ops.registry import ShapeError
from ember.testing import gradcheck

# PyTorch warns that its own 'same' padding with an even kernel copies the input.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
RNG = np.random.default_rng(3)
TOL = 1e-10


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def module_parity(torch, em, tm, x, **call):
    """Copy ``em``'s weights into ``tm``; compare outputs and the gradients of the input
    and of every parameter, in float64."""
    em, tm = em.double(), tm.double()
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in em.state_dict().items()})
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ey, ty = em(ex, **call), tm(tx, **call)
    assert ey.shape == tuple(ty.shape)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), TOL, TOL)
    cot = RNG.standard_normal(tuple(ty.shape))
    ey.backward(ember.tensor(cot))
    ty.backward(torch.tensor(cot))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), TOL, TOL)
    tparams = dict(tm.named_parameters())
    assert [n for n, _ in em.named_parameters()] == list(tparams)
    for name, p in em.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), tparams[name].grad.numpy(), TOL, TOL, err_msg=name
        )


CONV2D_GRID = [
    dict(in_channels=1, out_channels=4, kernel_size=3),
    dict(in_channels=2, out_channels=4, kernel_size=3, padding=1),
    dict(in_channels=2, out_channels=3, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
    dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=2, dilation=2, groups=2),
    dict(in_channels=4, out_channels=4, kernel_size=3, groups=4, bias=False),
    dict(in_channels=2, out_channels=3, kernel_size=4, padding="same"),
    dict(in_channels=2, out_channels=3, kernel_size=(2, 3), padding="same", dilation=(2, 1)),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding="valid"),
    dict(in_channels=2, out_channels=2, kernel_size=3, padding=1, padding_mode="reflect"),
    dict(in_channels=2, out_channels=2, kernel_size=3, padding=(2, 1), padding_mode="replicate"),
    dict(in_channels=2, out_channels=2, kernel_size=2, padding="same", padding_mode="circular"),
    dict(in_channels=3, out_channels=2, kernel_size=1, stride=3),
]


@pytest.mark.torch
@pytest.mark.parametrize(
    "kw", CONV2D_GRID, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items())
)
def test_conv2d_matches_torch(torch, kw):
    x = RNG.standard_normal((2, kw["in_channels"], 7, 6))
    module_parity(torch, nn.Conv2d(**kw), torch.nn.Conv2d(**kw), x)


@pytest.mark.torch
def test_conv2d_unbatched_input(torch):
    kw = dict(in_channels=2, out_channels=3, kernel_size=3, padding=1)
    module_parity(torch, nn.Conv2d(**kw), torch.nn.Conv2d(**kw), RNG.standard_normal((2, 5, 5)))


CONV1D_GRID = [
    dict(in_channels=2, out_channels=3, kernel_size=3),
    dict(in_channels=4, out_channels=2, kernel_size=2, stride=2, padding=1, dilation=3, groups=2),
    dict(in_channels=2, out_channels=3, kernel_size=4, padding="same", bias=False),
    dict(in_channels=2, out_channels=2, kernel_size=3, padding=2, padding_mode="circular"),
]


@pytest.mark.torch
@pytest.mark.parametrize(
    "kw", CONV1D_GRID, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items())
)
@pytest.mark.parametrize("batched", [True, False])
def test_conv1d_matches_torch(torch, kw, batched):
    shape = (2, kw["in_channels"], 9) if batched else (kw["in_channels"], 9)
    module_parity(torch, nn.Conv1d(**kw), torch.nn.Conv1d(**kw), RNG.standard_normal(shape))


TRANSPOSE_GRID = [
    dict(in_channels=2, out_channels=3, kernel_size=3),
    dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(in_channels=4, out_channels=2, kernel_size=(2, 3), stride=(2, 1), groups=2, bias=False),
    dict(in_channels=2, out_channels=2, kernel_size=3, stride=1, dilation=2, output_padding=1),
    dict(in_channels=3, out_channels=6, kernel_size=4, stride=3, padding=2, groups=3),
]


@pytest.mark.torch
@pytest.mark.parametrize(
    "kw", TRANSPOSE_GRID, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items())
)
def test_conv_transpose2d_matches_torch(torch, kw):
    x = RNG.standard_normal((2, kw["in_channels"], 4, 5))
    module_parity(torch, nn.ConvTranspose2d(**kw), torch.nn.ConvTranspose2d(**kw), x)


@pytest.mark.torch
def test_conv_transpose2d_output_size_argument(torch):
    kw = dict(in_channels=2, out_channels=2, kernel_size=3, stride=3, padding=1)
    x = RNG.standard_normal((1, 2, 3, 3))
    for size in [(7, 7), (8, 9), [1, 2, 9, 8]]:
        module_parity(torch, nn.ConvTranspose2d(**kw), torch.nn.ConvTranspose2d(**kw), x,
                      output_size=size)  # fmt: skip
    with pytest.raises(ValueError, match="not reachable"):
        nn.ConvTranspose2d(**kw)(ember.tensor(x), output_size=(10, 7))


@pytest.mark.torch
@pytest.mark.parametrize(
    "fn, x_shape, w_shape, kw",
    [
        ("conv1d", (2, 4, 8), (6, 2, 3), dict(stride=2, padding=1, dilation=1, groups=2)),
        ("conv1d", (4, 8), (3, 4, 2), dict(padding="same")),
        ("conv2d", (2, 3, 6, 6), (4, 3, 3, 3), dict(stride=(1, 2), padding=(0, 1), dilation=2)),
        ("conv2d", (2, 3, 6, 6), (4, 3, 2, 4), dict(padding="same")),
        (
            "conv_transpose2d",
            (2, 4, 3, 3),
            (4, 2, 3, 3),
            dict(stride=2, output_padding=1, groups=2),
        ),
        ("conv_transpose2d", (4, 3, 3), (4, 2, 2, 2), dict(padding=1, dilation=2)),
    ],
)
def test_functions_match_torch(torch, fn, x_shape, w_shape, kw):
    x, w = RNG.standard_normal(x_shape), RNG.standard_normal(w_shape)
    out_c = w_shape[1] * kw.get("groups", 1) if fn.startswith("conv_t") else w_shape[0]
    b = RNG.standard_normal(out_c)
    e = [ember.tensor(v, requires_grad=True) for v in (x, w, b)]
    t = [torch.tensor(v, requires_grad=True) for v in (x, w, b)]
    ey = getattr(F, fn)(*e, **kw)
    ty = getattr(torch.nn.functional, fn)(*t, **kw)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), TOL, TOL)
    cot = RNG.standard_normal(tuple(ty.shape))
    eg = ember.grad(ey, e, ember.tensor(cot))
    tg = torch.autograd.grad(ty, t, torch.tensor(cot))
    for a, b in zip(eg, tg):
        np.testing.assert_allclose(a.numpy(), b.numpy(), TOL, TOL)


def test_functions_pass_gradcheck():
    def t(*shape):
        return ember.tensor(RNG.standard_normal(shape), requires_grad=True)

    gradcheck(
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), (t(1, 2, 3, 3), t(2, 2, 2, 2), t(2))
    )
    gradcheck(
        lambda x, w, b: F.conv1d(x, w, b, padding="same", groups=2), (t(2, 2, 4), t(4, 1, 2), t(4))
    )
    gradcheck(
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        (t(1, 2, 2, 2), t(2, 1, 2, 2), t(1)),
    )
    m = nn.Conv1d(2, 2, 3, padding=1, padding_mode="reflect", bias=False).double()
    gradcheck(m, (t(1, 2, 4),))


# ----------------------------------------------------------------- construction
def test_default_initialization_has_torchs_bounds():
    ember.manual_seed(0)
    for m, fan_in in [
        (nn.Conv2d(16, 32, 3), 16 * 9),
        (nn.Conv2d(16, 32, (3, 5), groups=4), 4 * 15),
        (nn.Conv1d(8, 64, 5), 40),
        (nn.ConvTranspose2d(16, 32, 3, groups=2), 16 * 9),  # weight (16, 16, 3, 3)
    ]:
        bound = 1 / math.sqrt(fan_in)
        w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
        assert np.abs(b).max() <= bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound


def test_parameter_shapes_dtype_and_device():
    m = nn.Conv2d(4, 6, (3, 2), groups=2, dtype=ember.float64, device="cpu")
    assert m.weight.shape == (6, 2, 3, 2) and m.bias.shape == (6,)
    assert m.weight.dtype is ember.float64 and m.weight.requires_grad
    t = nn.ConvTranspose2d(4, 6, 3, groups=2, bias=False)
    assert t.weight.shape == (4, 3, 3, 3) and t.bias is None


@pytest.mark.torch
def test_reprs_and_state_dict_keys_match_torch(torch):
    for name, kw in [
        ("Conv2d", dict(in_channels=1, out_channels=16, kernel_size=3, padding=1)),
        ("Conv2d", dict(in_channels=4, out_channels=8, kernel_size=(3, 2), stride=2, dilation=2,
                        groups=2, bias=False, padding_mode="reflect", padding=1)),
        ("Conv2d", dict(in_channels=2, out_channels=2, kernel_size=3, padding="same")),
        ("Conv2d", dict(in_channels=2, out_channels=2, kernel_size=3, padding="valid")),
        ("Conv1d", dict(in_channels=2, out_channels=3, kernel_size=5, stride=2)),
        ("ConvTranspose2d", dict(in_channels=8, out_channels=4, kernel_size=3, stride=2,
                                 padding=1, output_padding=1, dilation=1, groups=2)),
    ]:  # fmt: skip
        em, tm = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
        assert repr(em) == repr(tm)
        assert {k: tuple(v.shape) for k, v in em.state_dict().items()} == {
            k: tuple(v.shape) for k, v in tm.state_dict().items()
        }


# ----------------------------------------------------------------- errors
def test_wrong_channel_count_names_both_shapes():
    m = nn.Conv2d(3, 8, 3)
    with pytest.raises(ShapeError) as e:
        m(ember.zeros(2, 1, 8, 8))
    msg = str(e.value)
    assert "[2, 1, 8, 8]" in msg and "[8, 3, 3, 3]" in msg and "3 channels" in msg


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: nn.Conv2d(3, 8, 3, groups=2), "in_channels must be divisible by groups"),
        (lambda: nn.Conv2d(4, 6, 3, groups=4), "out_channels must be divisible by groups"),
        (lambda: nn.Conv2d(4, 6, 3, padding="full"), "invalid padding string"),
        (lambda: nn.Conv2d(4, 6, 3, stride=2, padding="same"), "not supported for strided"),
        (lambda: nn.Conv2d(4, 6, 3, padding_mode="mirror"), "padding_mode must be one of"),
        (lambda: nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect"), "zeros"),
        (lambda: nn.Conv2d(4, 6, (3, 3, 3)), "tuple of 2 ints"),
    ],
)
def test_construction_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_call_errors():
    x, w = ember.zeros(1, 2, 5, 5), ember.zeros(3, 2, 3, 3)
    with pytest.raises(ShapeError, match="3-D .unbatched. or 4-D .batched. input to conv2d"):
        F.conv2d(ember.zeros(2, 5), w)
    with pytest.raises(ValueError, match="not supported for strided"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="'valid', 'same'"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ShapeError, match="bias must have shape"):
        F.conv2d(x, w, ember.zeros(2))
    with pytest.raises(ValueError, match="output_padding .* must be smaller than either stride"):
        F.conv_transpose2d(x.reshape(1, 2, 5, 5), ember.zeros(2, 3, 3, 3), output_padding=1)
