"""``ember train CONFIG``: check a config, train the model it describes, write a run directory.

The loop is the Keras trainer's step (``Model`` computes the loss and metrics) with
what a long run needs around it: gradient clipping, a learning-rate schedule, the
last and best checkpoints, TensorBoard logs and ``metrics.json`` after every epoch,
Ctrl-C that saves a checkpoint, and ``--resume`` that continues bit for bit.

Resuming is exact because every source of randomness is in the checkpoint: the
RNG states (ember's, NumPy's, Python's), and, for a run stopped mid-epoch, that
epoch's sample order, the step reached and the running loss and metric sums.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import time
from typing import Any

import numpy as np

import ember
from ember._src.cli import build, config, run_dir
from ember._src.cli.config import Config, UserError
from ember._src.cli.run_dir import RunDir
from ember._src.io.checkpoint import load_checkpoint, save_checkpoint
from ember._src.models.callbacks import CallbackList
from ember._src.models.progress import Progress, format_logs
from ember._src.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

INTERRUPTED = 130  # the shell's status for a program stopped by SIGINT


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config",
        nargs="?",
        help="the config file (.yaml, .yml or .json), or a run directory with --resume",
    )
    p.add_argument(
        "--schema",
        action="store_true",
        help="print the JSON Schema of config files (for editors) and exit",
    )
    p.add_argument(
        "--validate",
        action="store_true",
        help="check the config (and the data it names) without training",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in <outputs.dir>/<name>/ from its last checkpoint; the result is "
        "bit-identical to a run that never stopped (solver.epochs may be raised)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="delete an existing run directory of the same name first",
    )
    p.add_argument("--name", help="the run's name (overrides outputs.name)")
    p.add_argument("--epochs", type=int, help="override solver.epochs")
    p.add_argument("--quiet", action="store_true", help="no progress output, only the summary")
    p.add_argument(
        "--threads",
        type=int,
        help="BLAS threads for matrix products (ember.set_num_threads); 1 is often faster "
        "when other processes keep the cores busy",
    )


class Prepared:
    """A checked config and everything built from it."""

    def __init__(self, cfg: Config, values: dict[str, Any]) -> None:
        self.cfg, self.values = cfg, values
        ember.manual_seed(values["solver"]["seed"])
        self.data = build.load_data(cfg, values)
        self.model = build.build_model(cfg, values, self.data)
        self.loss = build.build_loss(cfg, values)
        self.metrics = build.check_metrics(cfg, values, self.loss)
        self.optimizer = build.build_optimizer(cfg, values, self.model)
        self.scheduler = build.build_scheduler(cfg, values, self.optimizer)
        self.model.compile(optimizer=self.optimizer, loss=self.loss, metrics=self.metrics)
        self.model._setup_outputs(1)
        self.model._reset_metrics()
        out = values["outputs"]
        monitor = out["monitor"] or ("val_loss" if self.data.validation is not None else "loss")
        known = ["loss", *self.model._logs()]
        if self.data.validation is not None:
            known += [f"val_{k}" for k in self.model._logs()]
        known = list(dict.fromkeys(known))
        if monitor not in known:
            raise cfg.error(
                ("outputs", "monitor"),
                f"{monitor!r} is not logged by this run{config.did_you_mean(monitor, known)}",
                ", ".join(known),
            )
        self.monitor = monitor
        from ember._src.models.callbacks import _maximize

        self.mode = "max" if _maximize(monitor, out["mode"]) else "min"


def resolve(
    path: str, name: str | None = None, epochs: int | None = None
) -> tuple[Config, dict[str, Any]]:
    """Load and schema-check a config; fill in the run name and absolute data paths."""
    cfg = config.load(path)
    values = config.validate(cfg)
    out = values["outputs"]
    if name is not None:
        out["name"] = name
    if out["name"] is None:
        out["name"] = os.path.splitext(os.path.basename(cfg.file))[0]
    if epochs is not None:
        if epochs < 1:
            raise UserError(f"--epochs must be >= 1, got {epochs}")
        values["solver"]["epochs"] = epochs
    for key in ("train", "validation", "test"):
        spec = values["data"].get(key)
        if spec is not None and not os.path.isabs(spec["path"]):
            spec["path"] = os.path.normpath(os.path.join(cfg.folder, spec["path"]))
    return cfg, values


def run(args: argparse.Namespace) -> int:
    if args.schema:
        print(json.dumps(config.schema(), indent=2))
        return 0
    if args.config is None:
        raise UserError("ember train needs a config file: ember train CONFIG.yaml (see --help)")
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1, got {args.threads}")
        try:
            ember.set_num_threads(args.threads)
        except RuntimeError as e:
            raise UserError(str(e)) from None
    target, root = args.config, None
    if os.path.isdir(target):
        if not args.resume:
            raise UserError(
                f"{target} is a folder; give a config file, or add --resume to continue that run"
            )
        root, target = target, os.path.join(target, run_dir.CONFIG)
        if not os.path.isfile(target):
            raise UserError(f"{root} holds no {run_dir.CONFIG}: it is not a run of ember train")
    cfg, values = resolve(target, args.name, args.epochs)
    prepared = Prepared(cfg, values)
    if args.validate:
        d = prepared.data
        counts = ", ".join(
            f"{k} {len(s.x)}"
            for k, s in (("train", d.train), ("validation", d.validation), ("test", d.test))
            if s is not None
        )
        params = sum(p.numel() for p in prepared.model.parameters())
        print(f"{cfg.file}: OK")
        print(f"  data   {counts} samples of shape {d.input_shape}")
        print(f"  model  {len(prepared.model.layers)} layers, {params:,} parameters")
        print(f"  run    {os.path.join(values['outputs']['dir'], values['outputs']['name'])}")
        return 0
    run = RunDir(root or os.path.join(values["outputs"]["dir"], values["outputs"]["name"]))
    resume_from = _prepare_run_dir(run, values, args)
    return Trainer(prepared, run, quiet=args.quiet).train(resume_from)


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    out = {**values, "solver": {k: v for k, v in values["solver"].items() if k != "epochs"}}
    out.pop("description", None)
    return out


def _prepare_run_dir(run: RunDir, values: dict[str, Any], args: argparse.Namespace) -> str | None:
    import yaml

    if args.resume:
        if not run.exists(run_dir.LAST):
            raise UserError(
                f"nothing to resume: {run.path(run_dir.LAST)} does not exist (train without "
                "--resume)"
            )
        with open(run.path(run_dir.CONFIG), encoding="utf-8") as f:
            saved = yaml.safe_load(f)
        if _comparable(saved) != _comparable(values):
            diffs = _differences(_comparable(saved), _comparable(values))
            raise UserError(
                f"the config differs from the one {run.root} was trained with, at "
                + ", ".join(diffs[:5])
                + "; --resume continues the same run (only solver.epochs may change). "
                "Train under a new outputs.name instead"
            )
        run_dir.write_yaml(run.path(run_dir.CONFIG), values)
        return run.path(run_dir.LAST)
    if os.path.exists(run.root) and os.listdir(run.root):
        if not args.overwrite:
            raise UserError(
                f"{run.root} already holds a run; continue it with --resume, replace it with "
                "--overwrite, or give this run another name (--name or outputs.name)"
            )
        shutil.rmtree(run.root)
    os.makedirs(os.path.join(run.root, "checkpoints"), exist_ok=True)
    run_dir.write_yaml(run.path(run_dir.CONFIG), values)
    return None


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in dict.fromkeys([*a, *b]):
            out += _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    return [] if a == b else [path]


class Trainer:
    """The epoch loop of ``ember train`` over the arrays of a :class:`Prepared` config."""

    def __init__(self, prepared: Prepared, run: RunDir, quiet: bool = False) -> None:
        self.p = prepared
        self.run = run
        self.quiet = quiet
        self.values = prepared.values
        self.solver = prepared.values["solver"]
        self.history: dict[str, list[float]] = {}
        self.best: dict[str, Any] | None = None
        self.elapsed = 0.0
        self.notes: list[tuple[str, str]] = []
        self._stop = False

    # ------------------------------------------------------------ one step
    def _step(self, batch: Any) -> None:
        model, opt = self.p.model, self.p.optimizer
        model.train()
        batch = model._on_device(batch)
        preds = (model(*batch[0]),)
        loss = model._loss_and_update(batch, preds)
        opt.zero_grad()
        loss.backward()
        if self.solver["clip_grad_norm"] is not None:
            clip_grad_norm_(model.parameters(), self.solver["clip_grad_norm"])
        if self.solver["clip_grad_value"] is not None:
            clip_grad_value_(model.parameters(), self.solver["clip_grad_value"])
        opt.step()

    def _metric_states(self) -> dict[str, Any]:
        model = self.p.model
        states = {f"tracker/{k}": _state_of(t) for k, t in model._trackers.items()}
        for _, _, ms in model._per_output or []:
            for m in ms:
                states[f"metric/{m.name}"] = _state_of(m)
        return states

    def _set_metric_states(self, states: dict[str, Any]) -> None:
        model = self.p.model
        for k, t in model._trackers.items():
            _set_state(t, states[f"tracker/{k}"])
        for _, _, ms in model._per_output or []:
            for m in ms:
                _set_state(m, states[f"metric/{m.name}"])

    # ------------------------------------------------------------ checkpoints
    def _save_last(self, epoch: int, in_epoch: dict[str, Any] | None) -> None:
        save_checkpoint(
            self.run.path(run_dir.LAST),
            self.p.model,
            self.p.optimizer,
            self.p.scheduler,
            epoch=epoch,
            extra={
                "history": self.history,
                "best": self.best,
                "elapsed": self.elapsed,
                "in_epoch": in_epoch,
            },
        )

    def _restore(self, path: str) -> tuple[int, dict[str, Any] | None]:
        try:
            info = load_checkpoint(path, self.p.model, self.p.optimizer, self.p.scheduler)
        except (ValueError, KeyError) as e:
            raise UserError(f"can't resume from {path}: {e}") from None
        extra = info["extra"]
        self.history = extra["history"]
        self.best = extra["best"]
        self.elapsed = float(extra["elapsed"])
        return int(info["epoch"]), extra["in_epoch"]

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best["value"] if self.p.mode == "min" else value > self.best["value"]

    # ------------------------------------------------------------ the loop
    def train(self, resume_from: str | None) -> int:
        p, model = self.p, self.p.model
        epochs, bs = self.solver["epochs"], self.solver["batch_size"]
        x, y = p.data.train.x, p.data.train.y
        n = len(x)
        steps = -(-n // bs)
        start_epoch, in_epoch = 0, None
        if resume_from is not None:
            start_epoch, in_epoch = self._restore(resume_from)
            if start_epoch >= epochs and in_epoch is None:
                raise UserError(
                    f"{self.run.root} already trained {start_epoch} epochs (solver.epochs is "
                    f"{epochs}); raise --epochs to train longer"
                )
        self._write_run_info()
        callbacks = self._callbacks()
        cbs = CallbackList(callbacks, model, {"epochs": epochs, "steps": steps, "verbose": 0})
        bar = None if self.quiet else Progress(epochs, steps)
        live = bar is not None and sys.stdout.isatty()  # a bar redrawn every step
        cbs.call("on_train_begin", {})
        previous = _install_sigint(self)
        began = time.perf_counter() - self.elapsed
        stopped_at: tuple[int, int] | None = None
        try:
            for epoch in range(start_epoch, epochs):
                model._reset_metrics()
                if in_epoch is not None:
                    order, first = np.asarray(in_epoch["order"]), int(in_epoch["step"])
                    self._set_metric_states(in_epoch["metrics"])
                    in_epoch = None
                else:
                    order = (
                        ember.default_generator.numpy.permutation(n)
                        if self.solver["shuffle"]
                        else np.arange(n)
                    )
                    first = 0
                if bar is not None:
                    bar.epoch_begin(epoch)
                for step in range(first, steps):
                    idx = order[step * bs : (step + 1) * bs]
                    batch = ((ember.from_numpy(x[idx]),), (ember.from_numpy(y[idx]),), None)
                    self._step(batch)
                    if live:
                        assert bar is not None
                        bar.batch_end(step + 1, model._logs())
                    if self._stop and step + 1 < steps:
                        self.elapsed = time.perf_counter() - began
                        self._save_last(
                            epoch,
                            {"order": order, "step": step + 1, "metrics": self._metric_states()},
                        )
                        stopped_at = (epoch, step + 1)
                        break
                if stopped_at is not None:
                    if live:
                        print()  # end the progress bar's line
                    break
                logs = self._end_epoch(epoch, cbs)
                self.elapsed = time.perf_counter() - began
                self._save_last(epoch + 1, None)
                self._write_metrics(completed=False)
                if bar is not None:
                    bar.epoch_end(steps, logs)
                if self._stop and epoch + 1 < epochs:
                    stopped_at = (epoch + 1, 0)
                    break
        finally:
            signal.signal(signal.SIGINT, previous) if previous is not None else None
            cbs.call("on_train_end", {})
        self.elapsed = time.perf_counter() - began
        return self._finish(stopped_at)

    def _end_epoch(self, epoch: int, cbs: CallbackList) -> dict[str, float]:
        p, model = self.p, self.p.model
        logs = model._logs()
        lr = float(p.optimizer.param_groups[0]["lr"])
        if p.data.validation is not None:
            v = p.data.validation
            val = model.evaluate(
                v.x, v.y, batch_size=self.solver["batch_size"], verbose=0, return_dict=True
            )
            logs.update({f"val_{k}": float(x) for k, x in val.items()})
        logs["learning_rate"] = lr
        for k, value in logs.items():
            self.history.setdefault(k, []).append(value)
        cbs.call("on_epoch_end", epoch, logs)
        value = logs[p.monitor]
        if self._improved(value):
            self.best = {"epoch": epoch + 1, "monitor": p.monitor, "value": value}
            save_checkpoint(
                self.run.path(run_dir.BEST), model, epoch=epoch + 1, rng=False,
                extra={"monitor": p.monitor, "value": value},
            )  # fmt: skip
        if p.scheduler is not None:
            if isinstance(p.scheduler, ember.optim.lr_scheduler.ReduceLROnPlateau):
                p.scheduler.step(value)
            else:
                p.scheduler.step()
        return logs

    def _callbacks(self) -> list[Any]:
        if not self.values["outputs"]["tensorboard"]:
            return []
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            self.notes.append(("logs", "not written: pip install tensorboardX (or 'ember[cli]')"))
            return []
        from ember._src.models.tensorboard_callback import TensorBoard

        return [TensorBoard(self.run.path(run_dir.LOGS))]

    def _write_run_info(self) -> None:
        d = self.p.data
        info = {
            "ember_version": ember.__version__,
            "input_shape": list(d.input_shape),
            "classification": d.classification,
            "feature_names": d.feature_names,
            "standardize": d.standardize,
            "samples": {
                k: len(s.x)
                for k, s in (("train", d.train), ("validation", d.validation), ("test", d.test))
                if s is not None
            },
        }
        run_dir.write_json(self.run.path(run_dir.RUN_INFO), info)

    def _write_metrics(self, completed: bool, test: dict[str, float] | None = None) -> None:
        epochs_run = len(self.history.get("loss", []))
        run_dir.write_json(
            self.run.path(run_dir.METRICS),
            {
                "completed": completed,
                "epochs": epochs_run,
                "monitor": self.p.monitor,
                "best": self.best,
                "final": {k: v[-1] for k, v in self.history.items()} if epochs_run else {},
                "test": test,
                "time_s": round(self.elapsed, 3),
                "history": self.history,
            },
        )

    # ------------------------------------------------------------ the end
    def _finish(self, stopped_at: tuple[int, int] | None) -> int:
        p, model, run = self.p, self.p.model, self.run
        model.save(run.path(run_dir.MODEL))
        test = None
        if stopped_at is None and p.data.test is not None:
            t = p.data.test
            test = model.evaluate(
                t.x, t.y, batch_size=self.solver["batch_size"], verbose=0, return_dict=True
            )
            test = {k: float(v) for k, v in test.items()}
        onnx_note = None
        if stopped_at is None and self.values["outputs"]["onnx"]:
            try:
                onnx_note = export_onnx(model, p.data.input_shape, run.path(run_dir.ONNX))
            except Exception as e:  # the model is trained and saved; say why there is no ONNX
                onnx_note = f"not written: {type(e).__name__}: {e}"
        self._write_metrics(completed=stopped_at is None, test=test)
        self._summary(stopped_at, test, onnx_note)
        return 0 if stopped_at is None else INTERRUPTED

    def _summary(
        self,
        stopped_at: tuple[int, int] | None,
        test: dict[str, float] | None,
        onnx_note: str | None,
    ) -> None:
        run = self.run
        epochs = len(self.history.get("loss", []))
        rows: list[tuple[str, str]] = []
        if stopped_at is not None:
            epoch, step = stopped_at
            where = f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}"
            rows.append(
                ("stopped", f"by Ctrl-C at {where}; continue with: ember train {run.root} --resume")
            )
        rows.append(("epochs", f"{epochs} of {self.solver['epochs']} in {self.elapsed:.1f}s"))
        if self.best is not None:
            rows.append(
                (
                    "best epoch",
                    f"{self.best['epoch']} ({self.best['monitor']} {self.best['value']:.4f})",
                )
            )
        if epochs:
            final = {k: v[-1] for k, v in self.history.items() if k != "learning_rate"}
            rows.append(("final", format_logs(final)))
        if test is not None:
            rows.append(("test", format_logs(test)))
        paths = [
            run_dir.CONFIG,
            run_dir.RUN_INFO,
            run_dir.MODEL,
            run_dir.LAST,
            run_dir.BEST,
            run_dir.METRICS,
        ]
        if self.values["outputs"]["tensorboard"]:
            paths.append(run_dir.LOGS)
        if onnx_note is None and run.exists(run_dir.ONNX) and stopped_at is None:
            paths.append(run_dir.ONNX)
        first = True
        for rel in paths:
            if run.exists(rel):
                rows.append(("wrote" if first else "", run.path(rel)))
                first = False
        if onnx_note is not None:
            rows.append(("onnx", onnx_note))
        rows += self.notes
        width = max(len(k) for k, _ in rows)
        title = f"Run {run.root}" + (" (stopped)" if stopped_at is not None else "")
        print(title)
        print("-" * len(title))
        for k, v in rows:
            print(f"  {k:<{width}}  {v}")


def export_onnx(model: Any, input_shape: tuple[int, ...], path: str) -> str | None:
    """Write ``model`` as ONNX; returns why not (a line) when export is unavailable."""
    exporter = getattr(ember.onnx, "export", None)
    if exporter is None:
        return "not written: this ember has no ONNX exporter yet"
    try:
        import onnx  # noqa: F401
    except ImportError:
        return "not written: pip install onnx (or 'ember[onnx]') to export"
    model.eval()
    exporter(
        model,
        (ember.zeros(2, *input_shape),),  # batch 2: a dynamic axis must not look broadcast
        path,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )
    return None


def _state_of(metric: Any) -> dict[str, Any]:
    """A metric's running sums; ``accuracy`` keeps them in the kind it inferred (``_inner``)."""
    inner = getattr(metric, "_inner", None)
    return {
        "state": metric._state,
        "kind": getattr(metric, "kind", None),
        "inner": None if inner is None else inner._state,
    }


def _set_state(metric: Any, saved: dict[str, Any]) -> None:
    metric._state = dict(saved["state"])
    if saved["inner"] is not None:
        if metric._inner is None:
            metric._inner, metric.kind = metric._build(saved["kind"]), saved["kind"]
        metric._inner._state = dict(saved["inner"])


def _install_sigint(trainer: Trainer) -> Any:
    """Ctrl-C asks the loop to stop after the current step; a second one stops at once."""

    def handler(signum: int, frame: Any) -> None:
        trainer._stop = True
        if not trainer.quiet:
            print(
                "\nCtrl-C: saving a checkpoint after this step (press again to abort)", flush=True
            )
        signal.signal(signal.SIGINT, signal.default_int_handler)

    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C alone
        return None
