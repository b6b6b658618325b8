"""``Model`` (functional, wrapped or subclassed) and ``Sequential``, with Keras's trainer.

``compile`` picks the optimizer, losses and metrics; ``fit``, ``evaluate`` and
``predict`` run eager training, evaluation and inference loops with callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import ember
from ember._src.core.tensor import Tensor
from ember._src.data.dataset import Dataset
from ember._src.metrics.base import Mean, Metric
from ember._src.metrics.registry import get as get_metric
from ember._src.models import losses as losses_mod
from ember._src.models.callbacks import Callback, CallbackList, History
from ember._src.models.data_adapter import ArrayData, Batch, adapt
from ember._src.models.functional import SymbolicTensor, run_graph, topological_nodes
from ember._src.models.layers import Layer, LazyLinear
from ember._src.models.progress import Progress
from ember._src.models.summary import summarize
from ember._src.nn.module import Module
from ember._src.optim.optimizer import Optimizer

# Keras's default learning rates for the optimizer names.
_OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {"lr": 0.01}),
    "adam": ("Adam", {"lr": 1e-3}),
    "adamw": ("AdamW", {"lr": 1e-3}),
    "rmsprop": ("RMSprop", {"lr": 1e-3, "alpha": 0.9}),
    "adagrad": ("Adagrad", {"lr": 1e-3}),
    "adadelta": ("Adadelta", {"lr": 1e-3}),
}


def _as_tuple(out: Any) -> tuple[Any, ...]:
    return tuple(out) if isinstance(out, (list, tuple)) else (out,)


class Model(Layer):
    """A trainable model with Keras's ``compile``/``fit``/``evaluate``/``predict``.

    Three ways to make one:

    * functional: ``Model(inputs, outputs)`` with ``inputs`` from ``Input(...)`` and
      ``outputs`` from layers called on them (one or a list of each);
    * wrapping: ``Model(module)`` trains any ``ember.nn.Module``;
    * subclassing: define ``__init__`` (calling ``super().__init__()``) and ``forward``.

    A model is a layer too: it can be called on symbolic tensors inside another
    functional model.

    Example:
        >>> import ember
        >>> from ember.models import Model, layers
        >>> model = Model(ember.nn.Linear(3, 1))
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = ember.randn(16, 3), ember.randn(16, 1)
        >>> history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        >>> sorted(history.history)
        ['loss']
    """

    # Set by compile() (past Module.__setattr__).
    _per_output: list[tuple[losses_mod.Loss, float, list[Metric]]] | None
    _losses: list[losses_mod.Loss] | losses_mod.Loss
    _jit: bool
    _jit_steps: dict[str, Any]

    def __init__(
        self,
        inputs: Any = None,
        outputs: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name or type(self).__name__.lower()
        self.stop_training = False
        self.history: History | None = None
        self.optimizer: Optimizer | None = None
        self._compiled = False
        self._input_specs: list[tuple[tuple[int, ...], Any]] | None = None
        self._graph: tuple[list[SymbolicTensor], list[SymbolicTensor], list[Any]] | None = None
        self._single_output = True
        if isinstance(inputs, Module) and outputs is None:
            self.module = inputs
        elif inputs is not None:
            if outputs is None:
                raise TypeError("Model(inputs, outputs): outputs are missing")
            self._build_graph(inputs, outputs)

    # ----------------------------------------------------------------- architecture
    def _build_graph(self, inputs: Any, outputs: Any) -> None:
        ins, outs = list(_as_tuple(inputs)), list(_as_tuple(outputs))
        for t in ins + outs:
            if not isinstance(t, SymbolicTensor):
                raise TypeError(
                    f"Model(inputs, outputs) takes symbolic tensors from ember.models.Input and "
                    f"layers called on them, got {type(t).__name__}"
                )
        nodes = topological_nodes(outs)
        reached = {id(n) for n in nodes}
        sources = [n for n in nodes if n.layer is None]
        for node in sources:
            if not any(node is t.node for t in ins):
                raise ValueError(
                    f"the outputs depend on input {node.outputs[0].name!r}, which is not among "
                    "Model's inputs"
                )
        unused = [t.name for t in ins if id(t.node) not in reached]
        if unused:
            raise ValueError(f"inputs {unused} are not used by any output")
        seen: list[Module] = []
        for node in nodes:
            if node.layer is not None and not any(node.layer is m for m in seen):
                seen.append(node.layer)
                self.add_module(str(len(seen) - 1), node.layer)
        self._graph = (ins, outs, nodes)
        self._single_output = not isinstance(outputs, (list, tuple))
        self._input_specs = [(t.sample_shape, t.dtype) for t in ins]

    def forward(self, *args: Any) -> Any:
        if self._graph is not None:
            ins, outs, nodes = self._graph
            if len(args) == 1 and isinstance(args[0], (list, tuple)) and len(ins) > 1:
                args = tuple(args[0])
            if len(args) != len(ins):
                raise TypeError(f"this model takes {len(ins)} inputs, got {len(args)}")
            values = run_graph(nodes, ins, outs, args)
            return values[0] if self._single_output else values
        module = self._modules.get("module")
        if module is not None:
            return module(*args)
        raise NotImplementedError(
            f"{type(self).__name__} has no forward(): build it with Model(inputs, outputs), "
            "Model(module), or define forward in a subclass"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._input_specs is None and args and all(isinstance(a, Tensor) for a in args):
            self._input_specs = [(tuple(a.shape[1:]), a.dtype) for a in args]
        return super().__call__(*args, **kwargs)

    def save_weights(self, filepath: Any, metadata: dict[str, str] | None = None) -> None:
        """Write the ``state_dict`` to a safetensors file (atomically, with ``ember.save``)."""
        from ember._src.io.safetensors_io import save  # io comes after models in the layers

        save(self.state_dict(), filepath, metadata=metadata)

    def save(self, filepath: Any) -> None:
        """Write the whole model, architecture and weights, to one file (see ``load_model``)."""
        from ember._src.models.serialization import save_model

        save_model(self, filepath)

    def load_weights(self, filepath: Any) -> None:
        """Load weights from ``save_weights`` or ``ModelCheckpoint`` (lazy layers must be built)."""
        from ember._src.io.safetensors_io import load

        self.load_state_dict(load(filepath))

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print a table of the layers, their output shapes and parameter counts.

        Output shapes come from one call on a zero batch of size 1, so the model's
        input shapes must be known (from ``Input``, or from an earlier call).
        """
        print_fn(summarize(self))

    # ----------------------------------------------------------------- compile
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Sequence[float] | Mapping[int, float] | None = None,
        jit: bool = False,
    ) -> None:
        """Configure training.

        Args:
            optimizer: a name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``,
                ``"adagrad"``, ``"adadelta"``, with Keras's learning rates), an
                ``ember.optim`` optimizer, or a callable ``params -> optimizer`` (such as
                ``functools.partial(ember.optim.SGD, lr=0.1)``), which is called once the
                lazy layers are built.
            loss: a loss for every output, or a list with one per output: names
                (``"mse"``, ``"sparse_categorical_crossentropy"``, ...), ``Loss`` objects,
                ``ember.nn`` loss modules or functions ``fn(y_true, y_pred)``.
            metrics: a list for every output, or a list of lists (one per output), of
                anything ``ember.metrics.get`` resolves.
            loss_weights: one factor per output for the total loss.
            jit: run the training, evaluation and prediction steps through
                ``ember.compile``: each step (forward, loss, backward, optimizer update)
                is traced once per batch shape and then runs as generated code; metrics
                are updated outside the compiled step. The first training step runs
                eagerly (it builds lazy layers and the optimizer's state).
        """
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='mse'")
        if isinstance(optimizer, str) and optimizer.lower() not in _OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; choose one of {', '.join(_OPTIMIZERS)}, "
                "or pass an ember.optim optimizer"
            )
        if isinstance(metrics, (str, Mapping)) or (
            metrics is not None and not isinstance(metrics, (list, tuple))
        ):
            raise TypeError(
                "metrics must be a list (for every output) or a list of lists (one per output), "
                f"got {type(metrics).__name__}; e.g. metrics=['accuracy']"
            )
        losses: list[losses_mod.Loss] | losses_mod.Loss = (
            [losses_mod.get(v) for v in loss]
            if isinstance(loss, (list, tuple))
            else losses_mod.get(loss)
        )
        settings = {
            "_optimizer_spec": optimizer,
            "optimizer": optimizer if isinstance(optimizer, Optimizer) else None,
            "_losses": losses,
            "_loss_ids": loss,
            "_metric_spec": metrics or [],
            "_loss_weights": loss_weights,
            "_per_output": None,
            "_compiled": True,
            "_jit": bool(jit),
            "_jit_steps": {},  # "train" / "test" / "predict" -> ember.compile
        }
        # Set only once everything is valid, and past Module.__setattr__: a loss given as
        # an nn module (nn.CrossEntropyLoss()) is configuration, not a layer of the model.
        for name, value in settings.items():
            object.__setattr__(self, name, value)

    def _check_compiled(self) -> None:
        if not self._compiled:
            raise RuntimeError(
                "the model must be compiled first: call model.compile(optimizer=..., loss=...) "
                "before fit, evaluate or train_on_batch"
            )

    def _setup_outputs(self, count: int) -> list[tuple[losses_mod.Loss, float, list[Metric]]]:
        """Resolve the loss, weight and metrics of each of ``count`` outputs (once)."""
        if self._per_output is not None:
            if len(self._per_output) != count:
                raise ValueError(
                    f"the model returned {count} outputs, it was compiled for "
                    f"{len(self._per_output)}"
                )
            return self._per_output
        losses = self._losses if isinstance(self._losses, list) else [self._losses] * count
        ids = (
            self._loss_ids
            if isinstance(self._loss_ids, (list, tuple))
            else [self._loss_ids] * count
        )
        if len(losses) != count:
            raise ValueError(f"compile got {len(losses)} losses for a model with {count} outputs")
        weights = self._loss_weights
        if weights is None:
            w = [1.0] * count
        elif isinstance(weights, Mapping):
            w = [float(weights.get(i, 1.0)) for i in range(count)]
        else:
            w = [float(v) for v in weights]
            if len(w) != count:
                raise ValueError(f"loss_weights has {len(w)} entries for {count} outputs")
        spec = list(self._metric_spec)
        nested = bool(spec) and all(isinstance(m, (list, tuple)) for m in spec)
        if nested and len(spec) != count:
            raise ValueError(f"metrics has {len(spec)} lists for {count} outputs")
        per_output = []
        for i in range(count):
            out_spec = list(spec[i]) if nested else spec
            ms = []
            for m in out_spec:
                metric = get_metric(m, loss=ids[i])
                if isinstance(m, Metric) and count > 1 and not nested:
                    metric = type(m).from_config(m.get_config())
                if count > 1:
                    metric.name = f"output_{i + 1}_{metric.name}"
                ms.append(metric)
            per_output.append((losses[i], w[i], ms))
        self._per_output = per_output
        return per_output

    def _resolve_optimizer(self) -> Optimizer:
        if self.optimizer is not None:
            return self.optimizer
        spec = self._optimizer_spec
        if any(isinstance(m, LazyLinear) and not m.built for m in self.modules()):
            raise RuntimeError("the model has unbuilt lazy layers; call it on a batch first")
        params = list(self.parameters())
        if isinstance(spec, str):
            cls_name, kwargs = _OPTIMIZERS[spec.lower()]
            self.optimizer = getattr(ember.optim, cls_name)(params, **kwargs)
        elif callable(spec):
            self.optimizer = spec(params)
        else:
            raise TypeError(f"can't make an optimizer from {spec!r}")
        return self.optimizer

    def _check_optimizer_covers(self, opt: Optimizer) -> None:
        """Every trainable parameter must be in the optimizer (Keras trains them all)."""
        held = {id(p) for g in opt.param_groups for p in g["params"]}
        missing = [n for n, p in self.named_parameters() if p.requires_grad and id(p) not in held]
        if missing:
            raise ValueError(
                f"the optimizer passed to compile() does not hold the parameters {missing}; "
                "lazy layers get their parameters at the first call, so build the model first "
                "(call it on a batch), or pass an optimizer name or a factory such as "
                "functools.partial(ember.optim.SGD, lr=0.1); freeze parameters you don't want "
                "trained with requires_grad_(False)"
            )

    # ----------------------------------------------------------------- steps
    def _compute_losses(
        self, batch: Batch, preds: tuple[Tensor, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The total loss and each output's (sample-weighted mean) loss."""
        _, ys, sw = batch
        per_output = self._setup_outputs(len(preds))
        if len(ys) != len(preds):
            raise ValueError(f"got {len(ys)} target arrays for {len(preds)} model outputs")
        n = preds[0].shape[0]
        total: Tensor | None = None
        each = []
        for (loss, weight, _), y, p in zip(per_output, ys, preds):
            values = loss(y, p)
            if sw is not None:
                values = values * sw.to(values.dtype)
            value = values.sum() / n
            each.append(value)
            total = value * weight if total is None else total + value * weight
        assert total is not None
        return total, tuple(each)

    def _update_metrics(
        self, batch: Batch, preds: tuple[Tensor, ...], total: Tensor, each: tuple[Tensor, ...]
    ) -> None:
        """Streaming loss trackers and metrics (always eager: they keep Python state)."""
        _, ys, sw = batch
        n = preds[0].shape[0]
        with ember.no_grad():
            if len(preds) > 1:
                for i, value in enumerate(each):
                    self._trackers[f"output_{i + 1}_loss"].update_state(value.detach(), n)
            for (_, _, metrics), y, p in zip(self._setup_outputs(len(preds)), ys, preds):
                for m in metrics:
                    m.update_state(y, p.detach(), sample_weight=sw)
            self._trackers["loss"].update_state(total.detach(), n)

    def _train_core(
        self, xs: tuple[Tensor, ...], ys: tuple[Tensor, ...], sw: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        """Forward, loss, backward and update: what ``jit=True`` compiles."""
        preds = _as_tuple(self(*xs))
        total, each = self._compute_losses((xs, ys, sw), preds)
        opt = self._resolve_optimizer()
        opt.zero_grad()
        total.backward()
        opt.step()
        detached = tuple(p.detach() for p in preds)
        return total.detach(), tuple(v.detach() for v in each), detached

    def _test_core(
        self, xs: tuple[Tensor, ...], ys: tuple[Tensor, ...], sw: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        preds = _as_tuple(self(*xs))
        total, each = self._compute_losses((xs, ys, sw), preds)
        return total, each, preds

    def _jitted(self, kind: str, fn: Any) -> Any:
        """``fn`` itself, or with ``jit=True`` its ``ember.compile`` (one per kind)."""
        if not getattr(self, "_jit", False):
            return fn
        step = self._jit_steps.get(kind)
        if step is None:
            step = self._jit_steps[kind] = ember.compile(fn)
        return step

    def _reset_metrics(self, outputs: int | None = None) -> None:
        self._trackers = {"loss": Mean(name="loss")}
        count = len(self._per_output) if self._per_output is not None else (outputs or 1)
        if count > 1:
            for i in range(count):
                self._trackers[f"output_{i + 1}_loss"] = Mean()
        for _, _, ms in self._per_output or []:
            for m in ms:
                m.reset_state()

    def _logs(self) -> dict[str, float]:
        logs = {k: float(t.result().item()) for k, t in self._trackers.items()}
        for _, _, ms in self._per_output or []:
            for m in ms:
                r = m.result()
                logs[m.name] = float(r.item()) if r.numel() == 1 else float("nan")
        return logs

    def _on_device(self, batch: Batch) -> Batch:
        """Move a batch to the device of the model's parameters (data is built on the host)."""
        param = next(self.parameters(), None)
        if param is None:
            return batch
        dev = param.device
        xs, ys, sw = batch
        return (
            tuple(t.to(dev) for t in xs),
            tuple(t.to(dev) for t in ys),
            None if sw is None else sw.to(dev),
        )

    def _train_step(self, batch: Batch) -> None:
        self.train()
        batch = self._on_device(batch)
        first = self._per_output is None
        step = self._train_core
        if not first and self.optimizer is not None:
            step = self._jitted("train", step)  # the first step is eager: it builds things
        total, each, preds = step(*batch)
        if first:  # the outputs are known now
            self._reset_metrics()
        self._update_metrics(batch, preds, total, each)

    def _test_step(self, batch: Batch) -> None:
        self.eval()
        batch = self._on_device(batch)
        with ember.no_grad():
            first = self._per_output is None
            step = self._test_core if first else self._jitted("test", self._test_core)
            total, each, preds = step(*batch)
            if first:
                self._reset_metrics()
            self._update_metrics(batch, preds, total, each)

    def _loss_and_update(self, batch: Batch, preds: tuple[Tensor, ...]) -> Tensor:
        """The total loss of ``preds``, with the loss trackers and metrics updated."""
        total, each = self._compute_losses(batch, preds)
        self._update_metrics(batch, preds, total, each)
        return total

    def _build_from(self, data: Any, batch_size: int) -> None:
        """Run the first batch through unbuilt lazy layers so that parameters exist."""
        if not any(isinstance(m, LazyLinear) and not m.built for m in self.modules()):
            return
        first = next(iter(data.batches(batch_size)))
        was = self.training
        self.eval()
        with ember.no_grad():
            self(*first[0])
        self.train(was)

    # ----------------------------------------------------------------- loops
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: Iterable[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: Mapping[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
    ) -> History:
        """Train for ``epochs`` epochs; returns the :class:`History` of logged values.

        Args:
            x: inputs (a Tensor/array, a list of them for several inputs), a
                ``Dataset`` or a ``DataLoader`` whose batches are ``(x, y[, sample_weight])``.
            y: targets, like ``x`` (one per output); None when ``x`` yields them.
            batch_size: samples per step for arrays and Datasets (32 by default).
            epochs: the epoch to stop at (counting ``initial_epoch``).
            verbose: 0 silent, 1 a live bar on a terminal (one line per epoch
                otherwise), 2 one line per epoch; ``"auto"`` is 1.
            callbacks: ``Callback`` objects.
            validation_split: the fraction of array data, taken from the end before
                shuffling, kept for validation.
            validation_data: ``(x_val, y_val[, sw_val])``, a Dataset or a DataLoader.
            shuffle: reshuffle array data (and Datasets) every epoch.
            class_weight: ``{class: weight}`` multiplying each sample's loss.
            sample_weight: one weight per sample (arrays only).
            initial_epoch: the epoch to start from (to resume).

        Returns:
            The History callback; ``history.history`` maps names to per-epoch lists.
        """
        self._check_compiled()
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(epochs, int) or epochs < 0 or not 0 <= initial_epoch <= epochs:
            raise ValueError(
                f"epochs must be an int >= initial_epoch >= 0, got epochs={epochs!r}, "
                f"initial_epoch={initial_epoch!r}"
            )
        data = adapt(x, y, sample_weight, class_weight, batch_size, shuffle)
        val = None
        if validation_split:
            if not isinstance(data, ArrayData):
                raise ValueError("validation_split needs array data; pass validation_data instead")
            data, val = data.split(validation_split)
        if validation_data is not None:
            val = _adapt_validation(validation_data, batch_size)
        bs = batch_size or 32
        self._build_from(data, bs)
        self._check_optimizer_covers(self._resolve_optimizer())
        history = History()
        verbose = 1 if verbose == "auto" else int(verbose)
        steps = data.steps(bs)
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        cbs = CallbackList([*(callbacks or []), history], self, params)
        bar = Progress(epochs, steps) if verbose else None
        self.stop_training = False
        self.history = history
        cbs.call("on_train_begin", {})
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            cbs.call("on_epoch_begin", epoch, {})
            if bar is not None:
                bar.epoch_begin(epoch)
            done = 0
            for step, batch in enumerate(data.batches(bs, shuffle)):
                cbs.call("on_train_batch_begin", step, {})
                self._train_step(batch)
                logs = self._logs()
                done = step + 1
                cbs.call("on_train_batch_end", step, logs)
                if bar is not None and verbose == 1:
                    bar.batch_end(done, logs)
                if self.stop_training:
                    break
            epoch_logs = self._logs()
            if val is not None:
                val_logs = self._run_test(val, bs, cbs)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.call("on_epoch_end", epoch, epoch_logs)
            if bar is not None:
                bar.epoch_end(done, epoch_logs)
            if self.stop_training:
                break
        cbs.call("on_train_end", {})
        return history

    def _run_test(self, data: Any, batch_size: int, cbs: CallbackList) -> dict[str, float]:
        self._reset_metrics()
        cbs.call("on_test_begin", {})
        for step, batch in enumerate(data.batches(batch_size)):
            cbs.call("on_test_batch_begin", step, {})
            self._test_step(batch)
            cbs.call("on_test_batch_end", step, self._logs())
        logs = self._logs()
        cbs.call("on_test_end", logs)
        return logs

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: Any = None,
        callbacks: Iterable[Callback] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """The loss and metrics on data (in eval mode, without gradients).

        Returns the loss alone when there are no metrics and one output, else the list
        ``[loss, *metrics]`` in the order of ``metrics_names``, or a dict with
        ``return_dict=True``.
        """
        self._check_compiled()
        data = adapt(x, y, sample_weight, batch_size=batch_size)
        logs = self._run_test(data, batch_size or 32, CallbackList(callbacks or [], self))
        if verbose not in (0, "0"):
            from ember._src.models.progress import format_logs

            print(format_logs(logs))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    @property
    def metrics_names(self) -> list[str]:
        """The names of the logged values: ``loss`` first, then per-output losses and metrics."""
        return list(self._logs()) if hasattr(self, "_trackers") else ["loss"]

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int | str = 0,
        callbacks: Iterable[Callback] | None = None,
    ) -> Any:
        """The model's outputs on ``x``, computed in batches in eval mode.

        Returns:
            One Tensor with every sample (a list of them for several outputs).
        """
        data = adapt(x, None, batch_size=batch_size)
        cbs = CallbackList(callbacks or [], self)
        self.eval()
        chunks: list[tuple[Tensor, ...]] = []
        cbs.call("on_predict_begin", {})
        with ember.no_grad():
            for step, batch in enumerate(data.batches(batch_size or 32)):
                cbs.call("on_predict_batch_begin", step, {})
                out = _as_tuple(self._jitted("predict", self)(*self._on_device(batch)[0]))
                chunks.append(out)
                cbs.call("on_predict_batch_end", step, {"outputs": out})
        cbs.call("on_predict_end", {})
        if not chunks:
            raise ValueError("predict got no data")
        joined = [ember.cat([c[i] for c in chunks]) for i in range(len(chunks[0]))]
        return joined[0] if len(joined) == 1 else joined

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Mapping[int, float] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """One optimizer step on one batch; returns that batch's loss (and metrics)."""
        self._check_compiled()
        data = adapt(x, y, sample_weight, class_weight)
        assert isinstance(data, ArrayData)
        self._build_from(data, max(data.n, 1))
        self._reset_metrics()
        self._train_step(next(iter(data.batches(max(data.n, 1)))))
        return self._batch_result(return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """The loss (and metrics) on one batch, without training."""
        self._check_compiled()
        data = adapt(x, y, sample_weight)
        assert isinstance(data, ArrayData)
        self._reset_metrics()
        self._test_step(next(iter(data.batches(max(data.n, 1)))))
        return self._batch_result(return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """The model's outputs on one batch (eval mode, no gradients)."""
        return self.predict(x, batch_size=max(ArrayData(_arrays(x), []).n, 1))

    def _batch_result(self, return_dict: bool) -> Any:
        logs = self._logs()
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values


def _arrays(x: Any) -> list[Any]:
    from ember._src.models.data_adapter import to_arrays

    return to_arrays(x)


def _adapt_validation(validation_data: Any, batch_size: int | None) -> Any:
    if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
        sw = validation_data[2] if len(validation_data) == 3 else None
        return adapt(validation_data[0], validation_data[1], sw)
    return adapt(
        validation_data, batch_size=batch_size if isinstance(validation_data, Dataset) else None
    )


class Sequential(Model):
    """A stack of layers, each fed the previous one's output.

    Args:
        layers: the layers (any ``ember.nn`` modules); may start with an
            ``ember.models.Input(shape)`` to fix the input shape (builds lazy layers).
        name: the model's name.

    Example:
        >>> import ember
        >>> from ember.models import Sequential, layers
        >>> model = Sequential([layers.Dense(8, activation="relu"), layers.Dense(1)])
        >>> model.add(layers.Activation("sigmoid"))
        >>> model(ember.ones(4, 3)).shape
        (4, 1)
    """

    def __init__(self, layers: Iterable[Any] | None = None, name: str | None = None) -> None:
        super().__init__(name=name)
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Any) -> None:
        """Append a layer (or set the input shape with an ``Input``)."""
        if isinstance(layer, SymbolicTensor):
            if len(self._modules):
                raise ValueError("an Input can only be the first entry of a Sequential")
            self._input_specs = [(layer.sample_shape, layer.dtype)]
            return
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.add takes ember.nn modules, got {type(layer).__name__}")
        if not self._modules and isinstance(layer, LazyLinear) and layer.in_features is not None:
            # Dense(units, input_dim=n) first: the input shape is known, so later layers build.
            self._input_specs = [((layer.in_features,), layer.weight.dtype)]
        self.add_module(str(len(self._modules)), layer)
        if self._input_specs is not None:
            shape, dtype = self._input_specs[0]
            with ember.no_grad():
                was = self.training
                self.eval()
                self(ember.zeros(1, *shape, dtype=dtype))
                self.train(was)

    @property
    def layers(self) -> list[Module]:
        """The layers, in order."""
        return [m for m in self._modules.values() if m is not None]

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x
