"""The TensorBoard callback's event files, read back with tensorboard's EventAccumulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import ember
from ember import nn
from ember.models import Model, callbacks

pytestmark = pytest.mark.usefixtures("float64_default")


def read(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def scalars(run: Path, tag: str) -> tuple[list[int], list[float]]:
    events = read(run).Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


def setup(n: int = 40, lr: float = 0.05) -> tuple[Model, np.ndarray, np.ndarray]:
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]])
    model = Model(nn.Linear(3, 1))
    model.compile(
        optimizer=lambda params: ember.optim.SGD(params, lr=lr), loss="mse", metrics=["mae"]
    )
    return model, x, y


def test_epoch_scalars_match_history(tmp_path: Path) -> None:
    model, x, y = setup()
    tb = callbacks.TensorBoard(tmp_path)
    history = model.fit(
        x, y, epochs=4, batch_size=8, validation_split=0.25, verbose=0, callbacks=[tb]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train", "validation"]
    train, val = tmp_path / "train", tmp_path / "validation"
    assert set(read(train).Tags()["scalars"]) == {
        "epoch_loss",
        "epoch_mae",
        "epoch_learning_rate",
    }
    assert set(read(val).Tags()["scalars"]) == {"epoch_loss", "epoch_mae"}
    for name in ("loss", "mae"):
        steps, values = scalars(train, f"epoch_{name}")
        assert steps == history.epoch == [0, 1, 2, 3]
        np.testing.assert_allclose(values, history.history[name], rtol=1e-6)
        steps, values = scalars(val, f"epoch_{name}")
        assert steps == history.epoch
        np.testing.assert_allclose(values, history.history[f"val_{name}"], rtol=1e-6)
    steps, values = scalars(train, "epoch_learning_rate")
    assert steps == [0, 1, 2, 3]
    np.testing.assert_allclose(values, [0.05] * 4, rtol=1e-6)


def test_learning_rate_follows_the_optimizer(tmp_path: Path) -> None:
    model, x, y = setup()
    schedule = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    tb = callbacks.TensorBoard(tmp_path)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[tb, schedule])
    _, values = scalars(tmp_path / "train", "epoch_learning_rate")
    np.testing.assert_allclose(values, [0.1, 0.05, 0.1 / 3], rtol=1e-6)
    np.testing.assert_allclose(values, history.history["learning_rate"], rtol=1e-6)
    assert "epoch_learning_rate" in read(tmp_path / "train").Tags()["scalars"]
    assert not (tmp_path / "validation").exists()  # no validation data, no validation run


class BatchLosses(callbacks.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        self.losses.append((logs or {})["loss"])


@pytest.mark.parametrize(("update_freq", "every"), [("batch", 1), (2, 2), (3, 3)])
def test_batch_scalars(tmp_path: Path, update_freq: str | int, every: int) -> None:
    model, x, y = setup(n=40)
    seen = BatchLosses()
    tb = callbacks.TensorBoard(tmp_path, update_freq=update_freq)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[tb, seen])
    assert len(seen.losses) == 10  # 5 batches an epoch, counted across epochs
    steps, values = scalars(tmp_path / "train", "batch_loss")
    assert steps == list(range(every, 11, every))
    np.testing.assert_allclose(values, [seen.losses[s - 1] for s in steps], rtol=1e-6)


def test_epoch_update_freq_writes_no_batch_scalars(tmp_path: Path) -> None:
    model, x, y = setup()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path)])
    assert not any(t.startswith("batch_") for t in read(tmp_path / "train").Tags()["scalars"])


def test_weight_histograms_every_n_epochs(tmp_path: Path) -> None:
    model, x, y = setup()
    tb = callbacks.TensorBoard(tmp_path, histogram_freq=2)
    model.fit(x, y, epochs=5, verbose=0, callbacks=[tb])
    acc = read(tmp_path / "train")
    names = [name for name, _ in model.named_parameters()]
    assert sorted(acc.Tags()["histograms"]) == sorted(names)
    for name, param in model.named_parameters():
        events = acc.Histograms(name)
        assert [e.step for e in events] == [0, 2, 4]
        last = events[-1].histogram_value
        assert last.num == param.numel()
        np.testing.assert_allclose(last.sum, float(param.sum().item()), rtol=1e-5, atol=1e-6)


def test_no_histograms_by_default(tmp_path: Path) -> None:
    model, x, y = setup()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path)])
    assert read(tmp_path / "train").Tags()["histograms"] == []


@pytest.mark.parametrize("update_freq", ["epochs", 0, -1, 1.5, True])
def test_bad_update_freq(update_freq: object) -> None:
    with pytest.raises(ValueError, match="update_freq"):
        callbacks.TensorBoard(update_freq=update_freq)  # type: ignore[arg-type]


@pytest.mark.parametrize("histogram_freq", [-1, 1.5])
def test_bad_histogram_freq(histogram_freq: object) -> None:
    with pytest.raises(ValueError, match="histogram_freq"):
        callbacks.TensorBoard(histogram_freq=histogram_freq)  # type: ignore[arg-type]


def test_a_second_fit_appends_new_event_files(tmp_path: Path) -> None:
    model, x, y = setup()
    tb = callbacks.TensorBoard(tmp_path)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[tb])
    model.fit(x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[tb])
    steps, _ = scalars(tmp_path / "train", "epoch_loss")
    assert steps == [0, 1, 2, 3]
