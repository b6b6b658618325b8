"""compile(jit=True): the training, evaluation and prediction steps run through
ember.compile and give the same weights, logs and outputs as eager execution (float64)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ember
from ember import nn
from ember.models import Input, Model, Sequential, layers

pytestmark = pytest.mark.usefixtures("float64_default")


def _cnn() -> Model:
    ember.manual_seed(0)
    return Sequential(
        [
            Input(shape=(1, 8, 8)),
            nn.Conv2d(1, 4, 3, padding=1, bias=False),  # a bias before BatchNorm: noise
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.25),
            layers.Dense(10, activation="softmax"),  # Keras losses take probabilities
        ]
    )


def _digits(n: int = 90) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 1, 8, 8))
    y = (x[:, 0, :4].sum(axis=(1, 2)) > 0).astype(np.int64) + 2 * (x[:, 0, 4:, :4].sum((1, 2)) > 0)
    return x, y


def _run(jit: bool, **fit: Any) -> tuple[Model, Any, Any, Any]:
    model = _cnn()
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit=jit
    )
    x, y = _digits()
    ember.manual_seed(1)  # shuffling and dropout draw from here
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=0, **fit)
    return model, history.history, model.evaluate(x, y, verbose=0), model.predict(x)


def test_fit_with_jit_gives_the_same_weights_logs_and_predictions_as_eager() -> None:
    eager_model, eager_hist, eager_eval, eager_pred = _run(jit=False)
    jit_model, jit_hist, jit_eval, jit_pred = _run(jit=True)
    # 72 training samples in batches of 16: a full and a last (8) batch shape, so
    # the train step traced twice; test and predict steps ran compiled too.
    assert set(jit_model._jit_steps) == {"train", "test", "predict"}
    assert jit_model._jit_steps["train"].traces >= 2
    for k, v in eager_model.state_dict().items():
        np.testing.assert_allclose(jit_model.state_dict()[k].numpy(), v.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=k)  # fmt: skip
    assert jit_hist.keys() == eager_hist.keys()
    for k in eager_hist:
        np.testing.assert_allclose(jit_hist[k], eager_hist[k], rtol=1e-10, err_msg=k)
    np.testing.assert_allclose(jit_eval, eager_eval, rtol=1e-10)
    np.testing.assert_allclose(jit_pred.numpy(), eager_pred.numpy(), rtol=1e-10, atol=1e-12)
    assert eager_hist["loss"][-1] < eager_hist["loss"][0]


def test_jit_with_two_inputs_two_outputs_and_sample_weights() -> None:
    def build() -> Model:
        ember.manual_seed(2)
        a, b = Input(shape=(3,)), Input(shape=(2,))
        h = layers.Dense(8, activation="tanh")(layers.Concatenate()([a, b]))
        return Model([a, b], [layers.Dense(1)(h), layers.Dense(2)(h)])

    rng = np.random.default_rng(3)
    xa, xb = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    ya, yb = rng.normal(size=(20, 1)), rng.normal(size=(20, 2))
    sw = rng.uniform(0.5, 1.5, size=20)
    results = []
    for jit in (False, True):
        model = build()
        model.compile(optimizer="sgd", loss=["mse", "mae"], loss_weights=[1.0, 0.5], jit=jit)
        ember.manual_seed(4)
        h = model.fit([xa, xb], [ya, yb], sample_weight=sw, epochs=4, batch_size=5, verbose=0)
        results.append((model.state_dict(), h.history))
    (ws, hs), (wj, hj) = results
    for k in ws:
        np.testing.assert_allclose(wj[k].numpy(), ws[k].numpy(), rtol=1e-10, atol=1e-12)
    for k in hs:
        np.testing.assert_allclose(hj[k], hs[k], rtol=1e-10, err_msg=k)
