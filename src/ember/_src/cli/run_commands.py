"""The commands that read a run directory: ``evaluate``, ``predict``, ``export`` and ``plot``."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np

from ember._src.cli import build, config, run_dir
from ember._src.cli.config import UserError
from ember._src.cli.run_dir import RunDir
from ember._src.io.atomic import atomic_write
from ember._src.models.progress import format_logs

CHECKPOINTS = ("final", "best", "last")


def _run_arguments(p: argparse.ArgumentParser, checkpoint: bool = True) -> None:
    p.add_argument("run_dir", help="a run directory written by ember train (runs/<name>)")
    if checkpoint:
        p.add_argument(
            "--checkpoint",
            choices=CHECKPOINTS,
            default="final",
            help="which weights: final (model.safetensors, the default), best or last "
            "(checkpoints/*.safetensors)",
        )


def load_run_model(run: RunDir, checkpoint: str = "final") -> Any:
    """The run's model (architecture from model.safetensors) with the chosen weights."""
    from ember._src.io.checkpoint import load_checkpoint
    from ember._src.models.serialization import load_model

    if not run.exists(run_dir.MODEL):
        raise UserError(
            f"{run.path(run_dir.MODEL)} is missing: the run has not finished an epoch, or was "
            "started by a crashed process; train it (again) with ember train"
        )
    model = load_model(run.path(run_dir.MODEL))
    if checkpoint != "final":
        path = run.path(run_dir.BEST if checkpoint == "best" else run_dir.LAST)
        if not os.path.exists(path):
            raise UserError(f"{path} does not exist; choose another --checkpoint")
        load_checkpoint(path, model)
    model.eval()
    return model


# ================================================================= evaluate
def add_evaluate(p: argparse.ArgumentParser) -> None:
    _run_arguments(p)
    p.add_argument(
        "--split",
        choices=("test", "validation", "train"),
        help="the data to evaluate on (default: test when the run has it, else validation)",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    run = run_dir.open_run(args.run_dir)
    cfg = config.load(run.path(run_dir.CONFIG))
    values = config.validate(cfg)
    data = build.load_data(cfg, values)
    splits = {"test": data.test, "validation": data.validation, "train": data.train}
    name = args.split or next(k for k in ("test", "validation", "train") if splits[k] is not None)
    split = splits[name]
    if split is None:
        have = ", ".join(k for k, s in splits.items() if s is not None)
        raise UserError(f"this run has no {name} split; it has: {have}")
    model = load_run_model(run, args.checkpoint)
    model.compile(optimizer="sgd", loss=build.build_loss(cfg, values), metrics=values["metrics"])
    logs = model.evaluate(
        split.x, split.y, batch_size=values["solver"]["batch_size"], verbose=0, return_dict=True
    )
    logs = {k: float(v) for k, v in logs.items()}
    if args.json:
        print(
            json.dumps(
                {"split": name, "samples": len(split.x), "checkpoint": args.checkpoint, **logs}
            )
        )
    else:
        print(f"{name} ({len(split.x)} samples, {args.checkpoint} weights): {format_logs(logs)}")
    return 0


# ================================================================= predict
def add_predict(p: argparse.ArgumentParser) -> None:
    _run_arguments(p)
    p.add_argument(
        "--input", required=True, help="the samples: a .npy array or a numeric .csv file"
    )
    p.add_argument(
        "--output",
        help="write the model's outputs to a .npy or .csv file (default: print one prediction "
        "per line: the class for a classifier, the values for a regression)",
    )
    p.add_argument("--batch-size", type=int, default=256, help="samples per forward pass")
    p.set_defaults(func=predict)


def _read_input(path: str, info: dict[str, Any]) -> np.ndarray:
    shape = tuple(info["input_shape"])
    if not os.path.isfile(path):
        raise UserError(f"--input {path}: no such file")
    if path.endswith(".npy"):
        try:
            x = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise UserError(f"--input {path}: not a numeric .npy array ({e})") from None
    elif path.endswith(".csv"):
        x = _read_csv(path, info.get("feature_names"))
    else:
        raise UserError(f"--input {path}: unknown file type; give a .npy or .csv file")
    if x.dtype.kind not in "biuf":
        raise UserError(f"--input {path}: holds {x.dtype} values, expected numbers")
    if tuple(x.shape) == shape:
        x = x[None]
    elif tuple(x.shape[1:]) != shape:
        size = int(np.prod(shape))
        if x.ndim >= 2 and int(np.prod(x.shape[1:])) == size:
            x = x.reshape(len(x), *shape)
        else:
            raise UserError(
                f"--input {path}: samples have shape {tuple(x.shape[1:])}, the model takes "
                f"{shape} (or {size} values per row)"
            )
    return build.apply_standardize(x.astype(np.float32), info.get("standardize"))


def _read_csv(path: str, names: list[str] | None) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r]
    if not rows:
        raise UserError(f"--input {path}: the file is empty")
    header = None
    try:
        [float(c) for c in rows[0]]
    except ValueError:
        header = [c.strip() for c in rows.pop(0)]
    try:
        values = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    except ValueError as e:
        raise UserError(f"--input {path}: {e}; predict reads numeric columns") from None
    if header is not None and names is not None and set(names) <= set(header):
        values = values[:, [header.index(n) for n in names]]
    return values


def predict(args: argparse.Namespace) -> int:
    run = run_dir.open_run(args.run_dir)
    info = run.read_json(run_dir.RUN_INFO)
    x = _read_input(args.input, info)
    model = load_run_model(run, args.checkpoint)
    out = model.predict(x, batch_size=args.batch_size).numpy()
    out2 = out.reshape(len(out), -1)
    classes = out2.argmax(axis=1) if info["classification"] and out2.shape[1] > 1 else None
    if args.output:
        if args.output.endswith(".npy"):
            with atomic_write(args.output) as f:
                np.save(f, out)
        elif args.output.endswith(".csv"):
            buf = io.StringIO()
            w = csv.writer(buf)
            cols = [f"output_{i}" for i in range(out2.shape[1])]
            w.writerow((["prediction"] if classes is not None else []) + cols)
            for i, row in enumerate(out2):
                w.writerow(
                    ([int(classes[i])] if classes is not None else []) + [f"{v:.7g}" for v in row]
                )
            run_dir.write_text(args.output, buf.getvalue())
        else:
            raise UserError(f"--output {args.output}: give a .npy or .csv file")
        print(f"wrote {len(out)} predictions to {args.output}")
        return 0
    lines = (
        [str(int(c)) for c in classes]
        if classes is not None
        else [", ".join(f"{v:.6g}" for v in row) for row in out2]
    )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# ================================================================= export
def add_export(p: argparse.ArgumentParser) -> None:
    _run_arguments(p)
    p.add_argument("--format", choices=("onnx",), default="onnx", help="the file format (onnx)")
    p.add_argument("--output", help="the file to write (default: <run_dir>/model.onnx)")
    p.set_defaults(func=export)


def export(args: argparse.Namespace) -> int:
    from ember._src.cli.train import export_onnx

    run = run_dir.open_run(args.run_dir)
    info = run.read_json(run_dir.RUN_INFO)
    model = load_run_model(run, args.checkpoint)
    path = args.output or run.path(run_dir.ONNX)
    why_not = export_onnx(model, tuple(info["input_shape"]), path)
    if why_not is not None:
        raise UserError(f"ONNX export: {why_not}")
    print(f"wrote {path}")
    return 0


# ================================================================= plot
def add_plot(p: argparse.ArgumentParser) -> None:
    _run_arguments(p, checkpoint=False)
    p.add_argument("--output", help="the PNG to write (default: <run_dir>/curves.png)")
    p.set_defaults(func=plot)


def plot(args: argparse.Namespace) -> int:
    from ember._src.models.plot import plot_history

    run = run_dir.open_run(args.run_dir)
    metrics = run.read_json(run_dir.METRICS)
    history = metrics.get("history") or {}
    if not history.get("loss"):
        raise UserError(f"{run.root} has no finished epoch to plot yet")
    epochs = len(history["loss"])
    path = args.output or run.path(run_dir.PLOT)
    plot_history(SimpleNamespace(history=history, epoch=list(range(epochs))), path)
    print(f"wrote {path}")
    return 0
