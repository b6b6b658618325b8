"""The real ``tensorboard`` server reads ember's event files and serves them over HTTP.

The server runs in a subprocess on a free 127.0.0.1 port (nothing leaves the machine), is
waited for with a deadline, and is always terminated (the ``serve_tensorboard`` fixture).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

import ember

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")

from ember.tensorboard import SummaryWriter


def test_tensorboard_serves_the_scalars_written(tmp_path: Path, serve_tensorboard: Any) -> None:
    logdir = tmp_path / "runs"
    with SummaryWriter(logdir / "exp1") as writer:
        for step in range(4):
            writer.add_scalar("train/loss", ember.tensor(1.0 / (step + 1)), step)

    query = urllib.parse.urlencode({"run": "exp1", "tag": "train/loss"})

    def fetch(get: Any, base: str) -> Any:
        if "exp1" not in json.loads(get(f"{base}/data/runs")):
            return None
        points = json.loads(get(f"{base}/data/plugin/scalars/scalars?{query}"))
        return points if len(points) == 4 else None

    points, output = serve_tensorboard(logdir, fetch)
    assert points is not None, f"tensorboard never served run exp1; its output:\n{output}"
    assert [(step, value) for _, step, value in points] == [
        (0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3)), (3, 0.25)
    ]  # fmt: skip
