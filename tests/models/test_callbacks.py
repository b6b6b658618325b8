"""Callbacks: Keras's hook order, EarlyStopping, checkpoints, LR control, CSV, NaN, progress."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ember
from ember import nn
from ember.models import Model, callbacks

pytestmark = pytest.mark.usefixtures("float64_default")


def setup(n: int = 20, seed: int = 0, lr: float = 0.05) -> tuple[Model, np.ndarray, np.ndarray]:
    ember.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]])
    model = Model(nn.Linear(3, 1))
    model.compile(optimizer=lambda params: ember.optim.SGD(params, lr=lr), loss="mse")
    return model, x, y


class Recorder(callbacks.Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append(
                name if not args or not isinstance(args[0], int) else f"{name}({args[0]})"
            )
        return object.__getattribute__(self, name)


def test_hooks_fire_in_keras_order() -> None:
    model, x, y = setup(8)
    rec = Recorder()
    model.fit(
        x, y, epochs=2, batch_size=4, validation_data=(x[:3], y[:3]), callbacks=[rec], verbose=0
    )
    epoch = lambda e: [
        f"on_epoch_begin({e})",
        "on_train_batch_begin(0)", "on_train_batch_end(0)",
        "on_train_batch_begin(1)", "on_train_batch_end(1)",
        "on_test_begin", "on_test_batch_begin(0)", "on_test_batch_end(0)", "on_test_end",
        f"on_epoch_end({e})",
    ]  # fmt: skip
    assert rec.calls == ["on_train_begin", *epoch(0), *epoch(1), "on_train_end"]

    rec.calls.clear()
    model.evaluate(x, y, batch_size=8, callbacks=[rec], verbose=0)
    assert rec.calls == [
        "on_test_begin",
        "on_test_batch_begin(0)",
        "on_test_batch_end(0)",
        "on_test_end",
    ]
    rec.calls.clear()
    model.predict(x, batch_size=5, callbacks=[rec])
    assert rec.calls == [
        "on_predict_begin",
        "on_predict_batch_begin(0)", "on_predict_batch_end(0)",
        "on_predict_batch_begin(1)", "on_predict_batch_end(1)",
        "on_predict_end",
    ]  # fmt: skip


def test_early_stopping_restores_the_best_weights() -> None:
    model, x, y = setup(lr=0.4)  # too large: the validation loss rises after a while
    snapshots: list[dict[str, np.ndarray]] = []
    keep = callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: snapshots.append(
            {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        )
    )
    stop = callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    # A noisy target: the loss falls, then oscillates.
    y_noisy = y + np.random.default_rng(3).normal(size=y.shape) * 3
    hist = model.fit(x, y_noisy, epochs=40, batch_size=4, callbacks=[keep, stop], verbose=0)
    losses = hist.history["loss"]
    best = int(np.argmin(losses))
    assert stop.stopped_epoch == len(losses) - 1 < 39  # it did stop early
    assert stop.best_epoch == best and len(losses) - 1 - best == 2
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.detach().numpy(), snapshots[best][k])


def test_early_stopping_min_delta_baseline_and_start() -> None:
    model, x, y = setup()
    stop = callbacks.EarlyStopping(monitor="loss", min_delta=1e9)
    assert len(model.fit(x, y, epochs=10, callbacks=[stop], verbose=0).epoch) == 2
    # Never better than the baseline: stop once patience epochs have passed.
    stop = callbacks.EarlyStopping(monitor="loss", baseline=-1.0, patience=3)
    assert len(model.fit(x, y, epochs=10, callbacks=[stop], verbose=0).epoch) == 3
    stop = callbacks.EarlyStopping(monitor="loss", min_delta=1e9, start_from_epoch=5)
    assert len(model.fit(x, y, epochs=10, callbacks=[stop], verbose=0).epoch) == 7
    assert callbacks.EarlyStopping(monitor="val_accuracy").maximize


def test_model_checkpoint_formats_paths_and_saves_the_best(tmp_path: Path) -> None:
    model, x, y = setup()
    every = callbacks.ModelCheckpoint(
        str(tmp_path / "w-{epoch:02d}-{loss:.2f}.safetensors"), monitor="loss"
    )
    best = callbacks.ModelCheckpoint(
        tmp_path / "best.safetensors", monitor="loss", save_best_only=True
    )
    hist = model.fit(x, y, epochs=3, callbacks=[every, best], verbose=0)
    names = sorted(p.name for p in tmp_path.glob("w-*"))
    assert names == [
        f"w-{e + 1:02d}-{v:.2f}.safetensors" for e, v in enumerate(hist.history["loss"])
    ]
    saved = ember.load(tmp_path / "best.safetensors")
    for k, v in model.state_dict().items():  # the loss fell every epoch: the last is the best
        np.testing.assert_array_equal(saved[k].numpy(), v.detach().numpy())
    assert ember.load_metadata(tmp_path / "best.safetensors")["epoch"] == "3"


def test_reduce_lr_on_plateau_and_scheduler() -> None:
    model, x, y = setup()
    plateau = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9)
    hist = model.fit(x, y, epochs=4, callbacks=[plateau], verbose=0)
    # Logged at the end of each epoch before that epoch's reduction, as Keras does.
    assert hist.history["learning_rate"] == [0.05, 0.05, 0.025, 0.0125]
    assert model.optimizer.param_groups[0]["lr"] == 0.00625

    model, x, y = setup()
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    hist = model.fit(x, y, epochs=3, callbacks=[sched], verbose=0)
    assert hist.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_csv_logger(tmp_path: Path) -> None:
    model, x, y = setup()
    path = tmp_path / "log.csv"
    model.fit(
        x, y, epochs=2, validation_split=0.2, callbacks=[callbacks.CSVLogger(path)], verbose=0
    )
    model.fit(x, y, epochs=1, callbacks=[callbacks.CSVLogger(path, append=True)], verbose=0)
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "0"] and len(rows) == 4


def test_terminate_on_nan() -> None:
    model, x, y = setup()
    y[5] = np.nan
    seen: list[int] = []
    spy = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    cbs = [callbacks.TerminateOnNaN(), spy]
    hist = model.fit(x, y, epochs=5, batch_size=2, shuffle=False, callbacks=cbs, verbose=0)
    assert hist.epoch == [0] and seen == [0, 1, 2]
    assert math.isnan(hist.history["loss"][-1])


def test_lambda_callback_rejects_unknown_hooks() -> None:
    with pytest.raises(ValueError, match="unknown hook 'on_epoch_ends'"):
        callbacks.LambdaCallback(on_epoch_ends=print)


def test_progress_lines_when_not_a_tty(capsys: pytest.CaptureFixture[str]) -> None:
    model, x, y = setup()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(x, y, epochs=2, batch_size=8, validation_split=0.2, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and "\r" not in "".join(lines)
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    for line in lines[1::2]:
        assert line.startswith("2/2 [==============================] - ")
        assert " - loss: " in line and " - mae: " in line and " - val_loss: " in line

    model.fit(x, y, epochs=2, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""


def test_progress_bar_on_a_tty(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    model, x, y = setup()
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    model.fit(x, y, epochs=1, batch_size=5, verbose=1)
    out = capsys.readouterr().out
    assert out.count("\r") == 5  # 4 live updates and the final line
    assert "1/4 [=======>" in out and "ETA: " in out and "4/4 [====" in out


def test_model_checkpoint_names_a_missing_key(tmp_path: Path) -> None:
    model, x, y = setup()
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "{val_loss:.2f}.safetensors"))
    with pytest.raises(KeyError, match="'val_loss', which is not logged; available: epoch, loss"):
        model.fit(x, y, epochs=1, callbacks=[ckpt], verbose=0)
