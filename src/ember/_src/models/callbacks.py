"""Callbacks for ``Model.fit``/``evaluate``/``predict``, with Keras's hook names and order."""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ember._src.core.tensor import Tensor

HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Callback:
    """Base class: override any of the Keras hooks; ``self.model`` is set by ``fit``.

    Epoch-level hooks get ``(epoch, logs)``, batch-level hooks ``(batch, logs)``,
    begin/end hooks ``(logs)``. Epochs and batches count from 0; ``logs`` maps
    names (``"loss"``, ``"val_accuracy"``, ...) to floats.

    Example:
        >>> class Count(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(epoch, sorted(logs))
    """

    model: Any = None
    params: dict[str, Any] = {}  # noqa: RUF012  (set_params replaces it per instance)

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        """``fit`` passes ``{"epochs", "steps", "verbose"}`` (steps is None when unknown)."""
        self.params = params

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_end(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_test_end(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...


class CallbackList:
    """Calls one hook on every callback in order."""

    def __init__(
        self, callbacks: Iterable[Callback], model: Any, params: dict[str, Any] | None = None
    ) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {cb!r}")
            cb.set_model(model)
            if params is not None:
                cb.set_params(params)

    def call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"]`` is a list per epoch.

    ``fit`` returns it (and sets ``model.history``); ``history.epoch`` lists the epochs.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def plot(self, path: str | os.PathLike[str] = "history.png") -> str:
        """Write a PNG of the training curves (needs matplotlib); returns the path.

        One panel per logged quantity, training and validation lines together; see
        ``ember._src.models.plot.plot_history``.
        """
        from ember._src.models.plot import plot_history

        return plot_history(self, path)


def _maximize(monitor: str, mode: str) -> bool:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        name = monitor.removeprefix("val_")
        return any(k in name for k in ("acc", "auc", "precision", "recall", "f1", "r2"))
    return mode == "max"


def _get_weights(model: Any) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class _Monitoring(Callback):
    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.maximize = _maximize(monitor, mode)
        self.best = self._worst()

    def _worst(self) -> float:
        return -math.inf if self.maximize else math.inf

    def _improved(self, current: float, reference: float) -> bool:
        """Keras's rule: beat the reference by more than min_delta."""
        if self.maximize:
            return current - self.min_delta > reference
        return current + self.min_delta < reference

    def _value(self, logs: dict[str, Any] | None) -> float | None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            available = ", ".join(sorted(logs or {}))
            print(
                f"{type(self).__name__}: metric {self.monitor!r} is not in the logs "
                f"(available: {available}); skipping",
                file=sys.stderr,
            )
        return value


class EarlyStopping(_Monitoring):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: the logged quantity to watch (``"val_loss"``).
        min_delta: an improvement must be larger than this.
        patience: epochs without improvement before stopping.
        verbose: 1 prints the epoch training stopped at.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy-like names).
        baseline: training stops unless the watched value beats this within
            ``patience`` epochs.
        restore_best_weights: at the end of training, load the weights of the best
            epoch (Keras 3: also when training ran to the last epoch).
        start_from_epoch: epochs to wait before watching at all.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._worst()
        self.best_weights: dict[str, Tensor] | None = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = self._value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _get_weights(self.model)
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = _get_weights(self.model)
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
                return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of epoch {self.best_epoch + 1}.")
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(_Monitoring):
    """Save the weights (safetensors, with ``ember.save``) after epochs.

    Args:
        filepath: a path, formatted with ``epoch`` (counting from 1) and the logs, e.g.
            ``"ckpt-{epoch:02d}-{val_loss:.3f}.safetensors"``.
        monitor: what ``save_best_only`` compares.
        verbose: 1 prints a line per save.
        save_best_only: save only when ``monitor`` improved (then an unformatted path
            always holds the best weights).
        save_weights_only: accepted for Keras compatibility; ember always saves the
            ``state_dict`` (a whole-model format does not exist yet).
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        initial_value_threshold: the value to beat for the first save.

    The file's metadata holds the epoch and the monitored value.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        if initial_value_threshold is not None:
            self.best = initial_value_threshold

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as e:
            raise KeyError(
                f"ModelCheckpoint: filepath {self.filepath!r} names {e}, which is not logged; "
                f"available: epoch, {', '.join(sorted(logs))}"
            ) from None
        metadata = {"epoch": str(epoch + 1)}
        if self.save_best_only:
            current = self._value(logs)
            if current is None or not self._improved(current, self.best):
                return
            self.best = current
            metadata[self.monitor] = repr(current)
        # Imported here: io comes after models in the layer list (it never imports models).
        from ember._src.io.safetensors_io import save

        save(self.model.state_dict(), path, metadata=metadata)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: saved weights to {path}")


class ReduceLROnPlateau(_Monitoring):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    Args: Keras's: ``monitor="val_loss"``, ``factor=0.1``, ``patience=10``,
    ``verbose=0``, ``mode="auto"``, ``min_delta=1e-4``, ``cooldown=0``, ``min_lr=0``.
    The current rate is logged as ``learning_rate``.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor}")
        super().__init__(monitor, mode, min_delta)
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr
        self.wait = self.cooldown_counter = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = self.cooldown_counter = 0
        self.best = self._worst()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        groups = self.model.optimizer.param_groups
        logs["learning_rate"] = float(groups[0]["lr"])
        current = self._value(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                for g in groups:
                    old = float(g["lr"])
                    if old > self.min_lr:
                        g["lr"] = max(old * self.factor, self.min_lr)
                        if self.verbose > 0:
                            print(f"Epoch {epoch + 1}: reducing learning rate to {g['lr']:.4g}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate to ``schedule(epoch, lr)`` at the start of every epoch.

    ``epoch`` counts from 0; the rate is logged as ``learning_rate``.
    """

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0) -> None:
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        groups = self.model.optimizer.param_groups
        lr = self.schedule(epoch, float(groups[0]["lr"]))
        if not isinstance(lr, (float, int, np.floating, np.integer)) or not math.isfinite(lr):
            raise ValueError(f"LearningRateScheduler: the schedule returned {lr!r}, not a number")
        for g in groups:
            g["lr"] = float(lr)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: learning rate is {float(lr):.4g}.")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.param_groups[0]["lr"])


class CSVLogger(Callback):
    """Append one CSV row per epoch: ``epoch`` then every logged value, sorted by name.

    Args:
        filename: the CSV file.
        separator: the field separator.
        append: keep an existing file's rows (the header is not repeated).
    """

    def __init__(
        self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False
    ):
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys: list[str] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename)
        self.file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self.keys = None
        self.write_header = not exists

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        writer = csv.writer(self.file, delimiter=self.separator)
        if self.write_header:
            writer.writerow(["epoch", *self.keys])
            self.write_header = False
        writer.writerow([epoch, *(logs.get(k, "NA") for k in self.keys)])
        self.file.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.file.close()


class LambdaCallback(Callback):
    """A callback from functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``.

    Any Keras hook name is accepted as a keyword argument.
    """

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        for name, fn in hooks.items():
            if name not in HOOKS:
                raise ValueError(f"LambdaCallback: unknown hook {name!r}; choose from {HOOKS}")
            setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss, terminating training")
            self.model.stop_training = True
