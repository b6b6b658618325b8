"""The ``TensorBoard`` callback: ``fit``'s losses, metrics, learning rate and weights as events.

The layout follows Keras's callback so that TensorBoard draws an ember run like a Keras one:
``<log_dir>/train`` and ``<log_dir>/validation`` are two runs, and both hold ``epoch_loss``
(``val_loss`` is written as ``epoch_loss`` in ``validation``), so one chart shows both lines.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from ember._src.models.callbacks import Callback


def _update_freq(update_freq: Any) -> int | None:
    """Batches between batch-level summaries; None for epoch-level only."""
    if update_freq == "epoch":
        return None
    if update_freq == "batch":
        return 1
    if isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0:
        return update_freq
    raise ValueError(
        f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive int, got {update_freq!r}"
    )


class TensorBoard(Callback):
    """Write ``fit``'s logs as TensorBoard events, with Keras's run layout and tag names.

    Per epoch (step = epoch, counting from 0): every logged value ``name`` as
    ``epoch_<name>`` under ``<log_dir>/train`` and every ``val_<name>`` as ``epoch_<name>``
    under ``<log_dir>/validation``; the learning rate of the optimizer's first parameter
    group as ``epoch_learning_rate`` under ``train``.

    Args:
        log_dir: The directory of the two runs ``train`` and ``validation``.
        histogram_freq: Every this many epochs, a histogram of each parameter (tag: its
            ``named_parameters`` name) under ``train``; 0 writes none.
        write_graph: Draw the model's graph under ``train`` once per ``fit``, traced on the
            first training batch (see ``SummaryWriter.add_graph``). A model that cannot be
            traced (its ``forward`` reads tensor values) gets a warning, and training goes on.
        update_freq: ``"epoch"`` writes epoch summaries only; ``"batch"`` or an int ``N``
            also writes ``batch_<name>`` every ``N`` batches under ``train``, at the step
            counting batches trained since ``fit`` began (from 1).

    Needs the ``tensorboardX`` package (``pip install 'ember[tensorboard]'``).

    Example:
        >>> import os, tempfile
        >>> import ember
        >>> from ember.models import Sequential, callbacks, layers
        >>> model = Sequential([layers.Dense(3)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x = ember.randn(32, 3)
        >>> with tempfile.TemporaryDirectory() as logs:
        ...     tb = callbacks.TensorBoard(logs, histogram_freq=1)
        ...     _ = model.fit(x, x, epochs=2, validation_split=0.25, verbose=0, callbacks=[tb])
        ...     sorted(os.listdir(logs))
        ['train', 'validation']
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        update_freq: str | int = "epoch",
    ) -> None:
        if not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise ValueError(
                f"TensorBoard: histogram_freq must be an int >= 0, got {histogram_freq!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.update_freq = update_freq
        self._batch_freq = _update_freq(update_freq)
        self._writers: dict[str, Any] = {}
        self._global_batch = 0
        self._graph_hook: Any = None  # on the model until it sees the first training batch
        self._graph_input: tuple[Any, ...] | None = None

    def _writer(self, run: str) -> Any:
        if run not in self._writers:
            # Imported on first use: models must import without the optional tensorboardX.
            from ember._src.tensorboard.writer import SummaryWriter

            self._writers[run] = SummaryWriter(os.path.join(self.log_dir, run))
        return self._writers[run]

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._global_batch = 0
        self._writer("train")  # open early, so a missing tensorboardX fails before training
        if self._graph_hook is not None:  # left by a fit that failed before its first batch
            self._graph_hook.remove()
        self._graph_hook, self._graph_input = None, None
        if self.write_graph:
            self._graph_hook = self.model.register_forward_pre_hook(self._keep_first_input)

    def _keep_first_input(self, module: Any, args: tuple[Any, ...]) -> None:
        self._graph_hook.remove()
        self._graph_hook = None
        self._graph_input = args

    def _add_graph(self, inputs: tuple[Any, ...]) -> None:
        try:
            self._writer("train").add_graph(self.model, inputs)
        except Exception as e:  # a graph is worth a warning, never a failed fit
            warnings.warn(
                f"TensorBoard: could not trace {type(self.model).__name__} to draw its graph, "
                f"so none is written (training goes on): {type(e).__name__}: {e}\n"
                "  pass write_graph=False to skip the graph",
                RuntimeWarning,
                stacklevel=2,
            )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._graph_input is not None:
            inputs, self._graph_input = self._graph_input, None
            self._add_graph(inputs)
        self._global_batch += 1
        if self._batch_freq is None or self._global_batch % self._batch_freq:
            return
        writer = self._writer("train")
        for name, value in (logs or {}).items():
            writer.add_scalar(f"batch_{name}", float(value), self._global_batch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        train = self._writer("train")
        for name, value in (logs or {}).items():
            if name == "learning_rate":
                continue  # written from the optimizer below, whichever callback ran first
            if name.startswith("val_"):
                self._writer("validation").add_scalar(
                    f"epoch_{name.removeprefix('val_')}", float(value), epoch
                )
            else:
                train.add_scalar(f"epoch_{name}", float(value), epoch)
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and optimizer.param_groups:
            train.add_scalar("epoch_learning_rate", float(optimizer.param_groups[0]["lr"]), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for name, param in self.model.named_parameters():
                train.add_histogram(name, param, epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._graph_hook is not None:  # fit ran no batch
            self._graph_hook.remove()
            self._graph_hook = None
        for writer in self._writers.values():
            writer.close()
