"""The real ``tensorboard`` server reads ember's event files and serves them over HTTP.

The server runs in a subprocess on a free 127.0.0.1 port (nothing leaves the machine), is
waited for with a deadline, and is always terminated.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import ember

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")

from ember.tensorboard import SummaryWriter

DEADLINE_S = 45.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    # No proxies: the request must go straight to the loopback server.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())


def test_tensorboard_serves_the_scalars_written(tmp_path: Path) -> None:
    logdir = tmp_path / "runs"
    with SummaryWriter(logdir / "exp1") as writer:
        for step in range(4):
            writer.add_scalar("train/loss", ember.tensor(1.0 / (step + 1)), step)

    port = free_port()
    log = (tmp_path / "tensorboard.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", f"--logdir={logdir}", "--host=127.0.0.1",
         f"--port={port}", "--load_fast=false", "--reload_interval=1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    query = urllib.parse.urlencode({"run": "exp1", "tag": "train/loss"})
    points: Any = None
    try:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if "exp1" in get_json(f"{base}/data/runs"):
                    points = get_json(f"{base}/data/plugin/scalars/scalars?{query}")
                    if len(points) == 4:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening, or the run not loaded yet
            time.sleep(0.25)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    output = (tmp_path / "tensorboard.log").read_text()
    assert points is not None, f"tensorboard never served run exp1; its output:\n{output}"
    assert [(step, value) for _, step, value in points] == [
        (0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3)), (3, 0.25)
    ]  # fmt: skip
