"""compile/fit/evaluate/predict: History, validation_split, weights, data sources, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ember
from ember import nn
from ember.data import DataLoader, TensorDataset
from ember.models import Model, Sequential, layers

pytestmark = pytest.mark.usefixtures("float64_default")


def linear_model(seed: int = 0) -> Model:
    ember.manual_seed(seed)
    return Model(nn.Linear(3, 1))


def data(n: int = 40, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return x, x @ np.array([[1.0], [-2.0], [0.5]]) + 0.1


def test_history_contents() -> None:
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = data()
    hist = model.fit(x, y, epochs=4, batch_size=8, validation_split=0.25, verbose=0)
    assert hist is model.history
    assert hist.params == {"epochs": 4, "steps": 4, "verbose": 0}
    assert hist.epoch == [0, 1, 2, 3]
    assert sorted(hist.history) == ["loss", "mae", "val_loss", "val_mae"]
    assert all(len(v) == 4 and all(isinstance(f, float) for f in v) for v in hist.history.values())
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    # The last epoch's val_loss is what evaluate reports on the held-out samples.
    val_loss, val_mae = model.evaluate(x[30:], y[30:], verbose=0)
    assert val_loss == pytest.approx(hist.history["val_loss"][-1], rel=1e-12)
    assert val_mae == pytest.approx(hist.history["val_mae"][-1], rel=1e-12)


def test_initial_epoch() -> None:
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data()
    assert model.fit(x, y, epochs=5, initial_epoch=3, verbose=0).epoch == [3, 4]


def test_validation_split_takes_the_last_samples() -> None:
    x, y = data(50)
    seen: list[np.ndarray] = []

    class Record(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 1)

        def forward(self, x: ember.Tensor) -> ember.Tensor:
            if not self.training:
                seen.append(x.detach().numpy().copy())
            return self.fc(x)

    model = Model(Record())
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, batch_size=7, validation_split=0.2, shuffle=True, verbose=0)
    np.testing.assert_array_equal(np.concatenate(seen), x[40:])


def test_sample_weight_and_class_weight_scale_the_loss() -> None:
    # Keras's rule: sum(w * per-sample loss) / batch size.
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(6)
    w = np.array([0.0, 1.0, 2.0, 0.5, 3.0, 1.0])
    with ember.no_grad():
        pred = model(ember.from_numpy(x)).numpy()
    per_sample = ((pred - y) ** 2).mean(axis=1)
    got = model.test_on_batch(x, y, sample_weight=w)
    assert got == pytest.approx((w * per_sample).sum() / 6, rel=1e-12)

    clf = Model(nn.Linear(3, 3))
    clf.compile(optimizer="sgd", loss=nn.CrossEntropyLoss())
    labels = np.array([0, 1, 2, 2, 1, 0])
    with ember.no_grad():
        logits = clf(ember.from_numpy(x)).numpy()
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -logp[np.arange(6), labels]
    cw = {0: 1.0, 1: 2.0, 2: 0.25}
    hist = clf.fit(x, labels, class_weight=cw, epochs=1, batch_size=6, shuffle=False, verbose=0)
    expected = (np.array([cw[c] for c in labels]) * nll).sum() / 6
    assert hist.history["loss"][0] == pytest.approx(expected, rel=1e-12)


def test_fit_on_a_dataloader_and_a_dataset() -> None:
    x, y = data(64)
    ds = TensorDataset(ember.from_numpy(x), ember.from_numpy(y))
    for source, kw in [(DataLoader(ds, batch_size=16, shuffle=True), {}), (ds, {"batch_size": 8})]:
        model = linear_model()
        model.compile(optimizer="adam", loss="mae")
        hist = model.fit(
            source, epochs=5, validation_data=DataLoader(ds, batch_size=32), verbose=0, **kw
        )
        assert hist.history["loss"][-1] < hist.history["loss"][0]
        assert len(hist.history["val_loss"]) == 5


def test_predict_is_batched_and_matches_the_model() -> None:
    model = linear_model()
    x, _ = data(10)
    out = model.predict(x, batch_size=3)
    with ember.no_grad():
        np.testing.assert_allclose(out.numpy(), model(ember.from_numpy(x)).numpy())
    np.testing.assert_allclose(model.predict_on_batch(x).numpy(), out.numpy())


def test_train_on_batch_takes_one_step() -> None:
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = data(8)
    before = model.test_on_batch(x, y, return_dict=True)
    loss, mae = model.train_on_batch(x, y)
    assert loss == pytest.approx(before["loss"]) and mae == pytest.approx(before["mae"])
    assert model.test_on_batch(x, y)[0] < loss


def test_lazy_model_with_optimizer_name() -> None:
    ember.manual_seed(0)
    model = Sequential([layers.Dense(8, activation="tanh"), layers.Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse")
    x, y = data(32)
    hist = model.fit(x, y, epochs=5, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert model.optimizer is not None and len(model.optimizer.param_groups[0]["params"]) == 4


def test_errors() -> None:
    model = linear_model()
    x, y = data()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        model.evaluate(x, y)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy") as err:
        model.compile(optimizer="sgd", loss="sparse_categorical_cross")
    assert "mean_squared_error" in str(err.value)
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(TypeError, match="metrics must be a list"):
        model.compile(optimizer="sgd", loss="mse", metrics="mae")
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(x, y[:5], verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=1.5, verbose=0)


def test_save_and_load_weights(tmp_path: Path) -> None:
    model, twin = linear_model(0), linear_model(1)
    model.save_weights(tmp_path / "w.safetensors")
    twin.load_weights(tmp_path / "w.safetensors")
    for (k, a), (_, b) in zip(model.state_dict().items(), twin.state_dict().items()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=k)


def test_fit_argument_errors() -> None:
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data()
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="initial_epoch"):
        model.fit(x, y, epochs=2, initial_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="don't pass them separately"):
        model.fit(DataLoader(TensorDataset(ember.from_numpy(x), ember.from_numpy(y))), y, verbose=0)


def test_an_optimizer_made_before_lazy_layers_were_built_is_refused() -> None:
    model = Model(nn.Sequential(layers.Dense(4, input_dim=3), layers.Dense(1)))
    model.compile(optimizer=ember.optim.SGD(model.parameters(), lr=0.1), loss="mse")
    x, y = data()
    with pytest.raises(ValueError, match=r"does not hold the parameters \['module.1.weight'"):
        model.fit(x, y, verbose=0)


def test_a_loss_module_is_configuration_not_a_layer() -> None:
    ember.manual_seed(0)
    model = Sequential([nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)])
    keys = list(model.state_dict())
    model.compile(optimizer="sgd", loss=nn.CrossEntropyLoss())  # module(y_pred, y_true)
    assert list(model.state_dict()) == keys and len(list(model.children())) == 3
    x = np.random.default_rng(0).normal(size=(12, 3))
    y = np.arange(12) % 2
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x).shape == (12, 2)


def test_a_bad_compile_leaves_the_previous_configuration() -> None:
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match="metrics must be a list"):
        model.compile(optimizer="adam", loss="mae", metrics="mae")
    assert model._optimizer_spec == "sgd" and model._loss_ids == "mse"
