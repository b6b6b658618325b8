"""Functional models, Sequential, lazy layers and summary()."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn
from ember.models import Input, Model, Sequential, layers, losses


def two_in_two_out() -> Model:
    a, b = Input(shape=(3,)), Input(shape=(2,))
    h = layers.Dense(16, activation="relu")(layers.Concatenate()([a, b]))
    return Model([a, b], [layers.Dense(1)(h), layers.Dense(3)(h)])


def test_two_inputs_two_outputs_train() -> None:
    ember.manual_seed(0)
    model = two_in_two_out()
    model.compile(
        optimizer="adam",
        loss=["mse", losses.SparseCategoricalCrossentropy(from_logits=True)],
        metrics=[[], ["accuracy"]],
        loss_weights=[1.0, 0.5],
    )
    xa, xb = ember.randn(128, 3), ember.randn(128, 2)
    y1 = xa.sum(dim=1, keepdim=True)
    y2 = (xb[:, 0] > 0).long() + (xb[:, 1] > 0).long()
    h = model.fit([xa, xb], [y1, y2], epochs=15, batch_size=16, verbose=0).history
    assert sorted(h) == ["loss", "output_1_loss", "output_2_accuracy", "output_2_loss"]
    assert h["loss"][-1] < 0.7 * h["loss"][0]
    assert h["output_1_loss"][-1] < h["output_1_loss"][0]
    assert h["output_2_loss"][-1] < h["output_2_loss"][0]
    # The total is the weighted sum of the per-output losses.
    for total, l1, l2 in zip(h["loss"], h["output_1_loss"], h["output_2_loss"]):
        assert total == pytest.approx(l1 + 0.5 * l2, rel=1e-5)
    out1, out2 = model.predict([xa, xb], batch_size=50)
    assert out1.shape == (128, 1) and out2.shape == (128, 3)


def test_graph_replays_the_recorded_layers() -> None:
    x = Input(shape=(4,))
    dense = layers.Dense(3)
    dense2 = layers.Dense(3)
    y = layers.Add()([dense(x), dense2(x)])
    model = Model(x, y)
    data = ember.randn(5, 4)
    with ember.no_grad():
        assert np.array_equal(model(data).numpy(), (dense(data) + dense2(data)).numpy())
    assert x.shape == (None, 4) and y.shape == (None, 3)


def test_shared_layer_is_one_module() -> None:
    a, b = Input(shape=(2,)), Input(shape=(2,))
    shared = layers.Dense(2)
    model = Model([a, b], layers.Add()([shared(a), shared(b)]))
    assert sum(p.numel() for p in model.parameters()) == 6


def test_lambda_wraps_any_module() -> None:
    x = Input(shape=(1, 8, 8))
    h = layers.Lambda(nn.Conv2d(1, 4, 3))(x)
    y = layers.Dense(2)(layers.Flatten()(h))
    assert h.shape == (None, 4, 6, 6) and y.shape == (None, 2)
    assert Model(x, y)(ember.zeros(3, 1, 8, 8)).shape == (3, 2)


def test_graph_errors() -> None:
    x, other = Input(shape=(2,)), Input(shape=(2,))
    y = layers.Dense(1)(x)
    with pytest.raises(ValueError, match="not among"):
        Model(other, y)
    with pytest.raises(TypeError, match="symbolic"):
        Model(x, ember.zeros(1))
    with pytest.raises(AttributeError, match=r"layers\.Lambda\(\.\.\.\)"):
        nn.Linear(2, 1)(x)
    with pytest.raises(TypeError, match="together"):
        layers.Concatenate()([x, ember.zeros(1, 2)])


def test_lazy_linear_builds_on_first_call() -> None:
    layer = layers.LazyLinear(3)
    assert layer.weight is None and list(layer.parameters()) == []
    out = layer(ember.ones(2, 5, dtype=ember.float64))
    assert out.shape == (2, 3) and layer.weight.shape == (3, 5)
    assert layer.weight.dtype == ember.float64
    with pytest.raises(ValueError, match="built for inputs with 5"):
        layer(ember.ones(2, 4))


def test_dense_activation_and_errors() -> None:
    d = layers.Dense(2, activation="relu", input_dim=3)
    assert bool((d(ember.randn(10, 3)) >= 0).all())
    with pytest.raises(ValueError, match="unknown activation"):
        layers.Dense(2, activation="relux")


def test_sequential_add_wrap_and_subclass() -> None:
    seq = Sequential([Input(shape=(4,)), layers.Dense(8, activation="relu")])
    seq.add(layers.Dense(2))
    assert len(seq.layers) == 2 and seq.layers[1].weight.shape == (2, 8)

    wrapped = Model(nn.Sequential(nn.Linear(4, 2)))
    assert wrapped(ember.ones(3, 4)).shape == (3, 2)

    class Net(Model):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 1)

        def forward(self, x: ember.Tensor) -> ember.Tensor:
            return self.fc(x)

    net = Net()
    net.compile(optimizer="sgd", loss="mse")
    assert net.train_on_batch(ember.ones(3, 4), ember.ones(3, 1)) > 0
    assert list(net.state_dict()) == ["fc.weight", "fc.bias"]


def test_summary_counts_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    model = Sequential(
        [Input(shape=(1, 8, 8)), nn.Conv2d(1, 4, 3), nn.ReLU(), layers.Flatten(), layers.Dense(10)]
    )
    model.layers[0].bias.requires_grad_(False)
    model.summary()
    text = capsys.readouterr().out
    total = sum(p.numel() for p in model.parameters())
    frozen = model.layers[0].bias.numel()
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total - frozen:,}" in text
    assert f"Non-trainable params: {frozen:,}" in text
    assert "(None, 4, 6, 6)" in text and "(None, 10)" in text
    assert "0 (Conv2d)" in text and "3 (Dense)" in text


def test_summary_before_shapes_are_known(capsys: pytest.CaptureFixture[str]) -> None:
    Model(nn.Linear(2, 2)).summary()
    assert "output shapes unknown" in capsys.readouterr().out


def test_a_model_is_a_layer_in_another_graph() -> None:
    inner = Sequential([Input(shape=(3,)), layers.Dense(4, activation="relu")])
    x = Input(shape=(3,))
    outer = Model(x, layers.Dense(1)(inner(x)))
    assert sum(p.numel() for p in outer.parameters()) == 16 + 5
    assert list(outer.state_dict())[:2] == ["0.0.weight", "0.0.bias"]
    assert outer(ember.ones(2, 3)).shape == (2, 1)
