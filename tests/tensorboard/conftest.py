"""The real ``tensorboard`` server for tests: on a free 127.0.0.1 port (nothing leaves the
machine), polled with a deadline, always terminated."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DEADLINE_S = 45.0

# fetch(get, base_url) -> a result, or None to ask again; get(url) -> the body
Fetch = Callable[[Callable[[str], bytes], str], Any]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    with opener.open(url, timeout=5) as response:
        return bytes(response.read())


@pytest.fixture
def serve_tensorboard(tmp_path: Path) -> Callable[[Path, Fetch], tuple[Any, str]]:
    """``serve(logdir, fetch)``: run tensorboard on ``logdir`` and call ``fetch`` every
    0.25 s until it returns something (or 45 s pass); returns that and the server's output."""

    def serve(logdir: Path, fetch: Fetch) -> tuple[Any, str]:
        port = _free_port()
        log_path = tmp_path / "tensorboard.log"
        log = log_path.open("w")
        server = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", f"--logdir={logdir}",
             "--host=127.0.0.1", f"--port={port}", "--load_fast=false", "--reload_interval=1"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        result = None
        try:
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline and server.poll() is None:
                # not listening yet, or the run not loaded yet: ask again
                with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                    result = fetch(_get, f"http://127.0.0.1:{port}")
                if result is not None:
                    break
                time.sleep(0.25)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
        return result, log_path.read_text()

    return serve
