"""examples/deploy_node: the exported Digits CNN, run by Node.js, predicts what ember does.

Runs only where Node.js is on PATH and ``npm ci`` has installed the example's
pinned onnxruntime-node (tests never download); otherwise it skips, saying which.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("onnx")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "deploy_node"


def _export_module():
    spec = importlib.util.spec_from_file_location("export_digits", EXAMPLE / "export_digits.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_package_json_pins_onnxruntime_node_and_node_modules_is_ignored() -> None:
    package = json.loads((EXAMPLE / "package.json").read_text())
    version = package["dependencies"]["onnxruntime-node"]
    assert version[0].isdigit(), f"onnxruntime-node must be pinned exactly, got {version!r}"
    lock = json.loads((EXAMPLE / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/onnxruntime-node"]["version"] == version
    assert "node_modules/" in (EXAMPLE / ".gitignore").read_text().split()


def test_node_predictions_match_ember(tmp_path: pathlib.Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (no `node` on PATH); the Node deployment is untested")
    if not (EXAMPLE / "node_modules" / "onnxruntime-node").is_dir():
        pytest.skip(
            "onnxruntime-node is not installed: run `ONNXRUNTIME_NODE_INSTALL=skip npm ci` in "
            "examples/deploy_node (tests never download)"
        )
    images, logits = _export_module().export(tmp_path, epochs=1, count=32)
    assert images.shape == (32, 1, 8, 8)
    run = subprocess.run(
        [
            node,
            "predict.js",
            str(tmp_path / "digits_cnn.onnx"),
            str(tmp_path / "inputs.json"),
            "--json",
        ],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    np.testing.assert_allclose(np.asarray(got["logits"], np.float32), logits, rtol=1e-5, atol=1e-5)
    assert got["predictions"] == [int(i) for i in logits.argmax(axis=1)]
    assert len(set(got["predictions"])) > 3  # a trained model, not a constant answer
