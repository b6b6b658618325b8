"""Every layer of ember.nn exports: onnxruntime matches eager ember at two batch sizes.

``LAYERS`` holds one construction and input maker per public layer class;
``test_every_layer_class_is_covered`` fails when ember.nn gains a layer this
table does not export.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import ember  # noqa: E402
import ember.nn as nn  # noqa: E402

Inputs = Callable[[int], tuple[ember.Tensor, ...]]  # batch size -> the layer's inputs


def _f(*shape: int) -> Inputs:
    return lambda b: (ember.randn(b, *shape),)


def _two(*shape: int) -> Inputs:
    return lambda b: (ember.randn(b, *shape), ember.randn(b, *shape))


def _classes(*shape: int, n: int = 5) -> Inputs:
    return lambda b: (ember.randn(b, n, *shape), ember.randint(0, n, (b, *shape)))


def _probs(*shape: int) -> Inputs:
    return lambda b: (ember.rand(b, *shape) * 0.9 + 0.05, ember.rand(b, *shape))


def _cell(hidden: int, lstm: bool = False) -> Inputs:
    def make(b: int) -> tuple[ember.Tensor, ...]:
        h = ember.randn(b, hidden)
        state = (h, ember.randn(b, hidden)) if lstm else h
        return ember.randn(b, 3), state  # type: ignore[return-value]

    return make


class _Call(nn.Module):
    """Wraps a layer whose call takes non-tensor structure (an LSTMCell's (h, c))."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: ember.Tensor, h: ember.Tensor, c: ember.Tensor) -> Any:
        return self.layer(x, (h, c))


def _lstm_cell() -> tuple[nn.Module, Inputs]:
    return _Call(nn.LSTMCell(3, 4)), lambda b: (
        ember.randn(b, 3),
        ember.randn(b, 4),
        ember.randn(b, 4),
    )


def _embed(b: int) -> tuple[ember.Tensor, ...]:
    return (ember.randint(0, 10, (b, 6)),)


def _mask_pair(b: int) -> tuple[ember.Tensor, ...]:
    return ember.randn(b, 5, 8), ember.randn(b, 4, 8)


LAYERS: dict[str, Callable[[], tuple[nn.Module, Inputs]]] = {
    "AdaptiveAvgPool2d": lambda: (nn.AdaptiveAvgPool2d((2, 3)), _f(3, 7, 8)),
    "AdaptiveMaxPool2d": lambda: (nn.AdaptiveMaxPool2d((3, 2)), _f(3, 7, 8)),
    "AvgPool1d": lambda: (nn.AvgPool1d(3, stride=2, padding=1), _f(2, 9)),
    "AvgPool2d": lambda: (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), _f(2, 7, 7)),
    "BCELoss": lambda: (nn.BCELoss(), _probs(4)),
    "BCEWithLogitsLoss": lambda: (nn.BCEWithLogitsLoss(), _two(4)),
    "BatchNorm1d": lambda: (nn.BatchNorm1d(4), _f(4, 5)),
    "BatchNorm2d": lambda: (nn.BatchNorm2d(3), _f(3, 4, 4)),
    "Bilinear": lambda: (nn.Bilinear(3, 4, 2), lambda b: (ember.randn(b, 3), ember.randn(b, 4))),
    "Conv1d": lambda: (nn.Conv1d(2, 4, 3, stride=2, padding=2, dilation=2), _f(2, 11)),
    "Conv2d": lambda: (nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False), _f(4, 6, 5)),
    "ConvTranspose2d": lambda: (
        nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1),
        _f(3, 4, 5),
    ),
    "CosineEmbeddingLoss": lambda: (
        nn.CosineEmbeddingLoss(margin=0.2),
        lambda b: (ember.randn(b, 4), ember.randn(b, 4), ember.tensor([1.0, -1.0] * b)[:b]),
    ),
    "CrossEntropyLoss": lambda: (nn.CrossEntropyLoss(label_smoothing=0.1), _classes()),
    "Dropout": lambda: (nn.Dropout(0.3), _f(5)),
    "Dropout2d": lambda: (nn.Dropout2d(0.3), _f(2, 3, 3)),
    "ELU": lambda: (nn.ELU(0.7), _f(6)),
    "Embedding": lambda: (nn.Embedding(10, 4, padding_idx=2), _embed),
    "Flatten": lambda: (nn.Flatten(), _f(2, 3, 4)),
    "GELU": lambda: (nn.GELU(approximate="tanh"), _f(6)),
    "GRU": lambda: (nn.GRU(3, 4, num_layers=2, bidirectional=True), _f(4, 3)),
    "GRUCell": lambda: (nn.GRUCell(3, 4), _cell(4)),
    "GroupNorm": lambda: (nn.GroupNorm(2, 4), _f(4, 3, 3)),
    "HuberLoss": lambda: (nn.HuberLoss(delta=0.5), _two(3)),
    "Identity": lambda: (nn.Identity(), _f(3)),
    "KLDivLoss": lambda: (nn.KLDivLoss(reduction="batchmean"), _probs(4)),
    "L1Loss": lambda: (nn.L1Loss(), _two(3)),
    "LSTM": lambda: (nn.LSTM(3, 4, batch_first=True, proj_size=2), _f(5, 3)),
    "LSTMCell": _lstm_cell,
    "LayerNorm": lambda: (nn.LayerNorm((3, 4)), _f(3, 4)),
    "LeakyReLU": lambda: (nn.LeakyReLU(0.2), _f(6)),
    "Linear": lambda: (nn.Linear(4, 3), _f(2, 4)),
    "LogSoftmax": lambda: (nn.LogSoftmax(dim=1), _f(5)),
    "MSELoss": lambda: (nn.MSELoss(reduction="sum"), _two(3)),
    "MaxPool1d": lambda: (nn.MaxPool1d(3, stride=2, padding=1), _f(2, 9)),
    "MaxPool2d": lambda: (nn.MaxPool2d(2, ceil_mode=True), _f(2, 5, 5)),
    "MultiheadAttention": lambda: (
        nn.MultiheadAttention(8, 2, dropout=0.2, batch_first=True),
        lambda b: (ember.randn(b, 5, 8), ember.randn(b, 4, 8), ember.randn(b, 4, 8)),
    ),
    "NLLLoss": lambda: (nn.NLLLoss(), _classes()),
    "RNN": lambda: (nn.RNN(3, 4, nonlinearity="relu", batch_first=True), _f(5, 3)),
    "RNNCell": lambda: (nn.RNNCell(3, 4), _cell(4)),
    "ReLU": lambda: (nn.ReLU(), _f(6)),
    "SiLU": lambda: (nn.SiLU(), _f(6)),
    "Sigmoid": lambda: (nn.Sigmoid(), _f(6)),
    "SmoothL1Loss": lambda: (nn.SmoothL1Loss(beta=0.5), _two(3)),
    "Softmax": lambda: (nn.Softmax(dim=-1), _f(5)),
    "Softplus": lambda: (nn.Softplus(beta=2.0), _f(6)),
    "Tanh": lambda: (nn.Tanh(), _f(6)),
    "Transformer": lambda: (
        nn.Transformer(8, 2, 1, 1, dim_feedforward=16, batch_first=True),
        _mask_pair,
    ),
    "TransformerDecoder": lambda: (
        nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, batch_first=True), 2),
        _mask_pair,
    ),
    "TransformerDecoderLayer": lambda: (
        nn.TransformerDecoderLayer(8, 2, 16, batch_first=True, norm_first=True),
        _mask_pair,
    ),
    "TransformerEncoder": lambda: (
        nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2),
        _f(5, 8),
    ),
    "TransformerEncoderLayer": lambda: (
        nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", batch_first=True),
        _f(5, 8),
    ),
    "Unflatten": lambda: (nn.Unflatten(1, (2, 3)), _f(6)),
}
# Not layers one exports: containers and abstract bases.
NOT_LAYERS = {"Module", "ModuleDict", "ModuleList", "RNNBase", "RNNCellBase", "Sequential"}
# Layers whose batch axis is not the first: (input index -> axis).
BATCH_AXIS = {"GRU": 1}


def test_every_layer_class_is_covered() -> None:
    public = {
        n
        for n in dir(nn)
        if inspect.isclass(getattr(nn, n)) and issubclass(getattr(nn, n), nn.Module)
    }
    assert public - NOT_LAYERS == set(LAYERS)


def _flat(out: Any) -> list[np.ndarray]:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flat(o)]
    return [out.detach().numpy()]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_exports_with_a_dynamic_batch(name: str) -> None:
    ember.manual_seed(0)
    layer, make = LAYERS[name]()
    layer.train()
    for m in layer.modules():  # non-trivial running statistics for eval-mode batch norm
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(ember.randn(*m.running_mean.shape))
            m.running_var.copy_(ember.rand(*m.running_var.shape) + 0.5)
    axis = BATCH_AXIS.get(name, 0)
    structure = [len(t) if isinstance(t, tuple) else 0 for t in make(2)]
    model = _Flat(layer, structure)
    example = _batch(make, 2, axis)
    n = len(example)
    names = ["input"] if n == 1 else [f"input_{i}" for i in range(n)]
    proto = ember.onnx.export(
        model, tuple(example), None, dynamic_axes={nm: {axis: "batch"} for nm in names}
    )
    assert layer.training  # restored after the export
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    model.eval()
    for b in (2, 5):
        xs = _batch(make, b, axis)
        with ember.no_grad():
            want = _flat(model(*xs))
        got = session.run(None, {nm: x.numpy() for nm, x in zip(names, xs)})
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=f"{name} batch {b}")


def _batch(make: Inputs, b: int, axis: int) -> list[ember.Tensor]:
    xs = [t for t in make(b) for t in (t if isinstance(t, tuple) else (t,))]
    if axis:  # a (time, batch, features) layer: make() gave (batch, time, ...)
        xs = [x.transpose(0, axis) for x in xs]
    return [x.contiguous() for x in xs]


class _Flat(nn.Module):
    """The layer on flat inputs, regrouped as ``make`` returns them (0: a tensor, k: a k-tuple).

    A Module, so that export switches it (and the layer) to eval mode.
    """

    def __init__(self, layer: nn.Module, structure: list[int]) -> None:
        super().__init__()
        self.layer = layer
        self.structure = structure

    def forward(self, *xs: Any) -> Any:
        args: list[Any] = []
        i = 0
        for k in self.structure:
            args.append(tuple(xs[i : i + k]) if k else xs[i])
            i += max(k, 1)
        return self.layer(*args)
