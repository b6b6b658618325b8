"""A run directory: where ``ember train`` writes and what the other commands read back.

runs/<name>/
  config.yaml                  the resolved config (defaults filled in, absolute data paths)
  run.json                     what the data looked like (input shape, classes, scaling)
  model.safetensors            the final model: architecture and weights (ember.models.load_model)
  checkpoints/last.safetensors everything to resume (ember.save_checkpoint)
  checkpoints/best.safetensors the weights of the best epoch
  metrics.json                 per-epoch history, best epoch, final and test metrics, time
  logs/train, logs/validation  TensorBoard event files
  model.onnx                   the final model as ONNX (when export is available)
"""

from __future__ import annotations

import json
import os
from typing import Any

from ember._src.cli.config import UserError
from ember._src.io.atomic import atomic_write

CONFIG = "config.yaml"
RUN_INFO = "run.json"
MODEL = "model.safetensors"
METRICS = "metrics.json"
LAST = os.path.join("checkpoints", "last.safetensors")
BEST = os.path.join("checkpoints", "best.safetensors")
LOGS = "logs"
ONNX = "model.onnx"
PLOT = "curves.png"


def write_text(path: str, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


def write_json(path: str, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2, allow_nan=True) + "\n")


def write_yaml(path: str, value: Any) -> None:
    import yaml

    write_text(path, yaml.safe_dump(value, sort_keys=False, default_flow_style=None))


class RunDir:
    """Paths inside one run directory."""

    def __init__(self, root: str) -> None:
        self.root = os.fspath(root)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    def read_json(self, name: str) -> Any:
        try:
            with open(self.path(name), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            raise UserError(
                f"{self.path(name)} is missing: is {self.root} a run of ember train?"
            ) from None
        except json.JSONDecodeError as e:
            raise UserError(f"{self.path(name)} is not valid JSON: {e}") from None


def open_run(root: str) -> RunDir:
    """A run directory that ``ember train`` wrote (at least its config)."""
    if not os.path.isdir(root):
        raise UserError(f"{root}: no such run directory (ember train writes runs/<name>/)")
    run = RunDir(root)
    if not run.exists(CONFIG):
        raise UserError(f"{root} holds no {CONFIG}: it is not a run directory of ember train")
    return run
