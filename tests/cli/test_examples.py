"""The configs in examples/configs/ are valid, and the CSV example learns its data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ember._src.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_example_config_is_valid(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")  # the built-in datasets ship with scikit-learn
    assert main(["train", str(CONFIGS / name), "--validate"]) == 0
    assert f"{CONFIGS / name}: OK" in capsys.readouterr().out


def test_the_four_documented_examples_exist() -> None:
    names = {p.name for p in CONFIGS.glob("*.yaml")}
    assert {"digits_cnn.yaml", "digits_mlp.yaml", "diabetes_regression.yaml",
            "fruit_csv.yaml"} <= names  # fmt: skip


def test_csv_example_trains_and_predicts_by_column_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(CONFIGS / "fruit_csv.yaml"), "--quiet"]) == 0
    run = tmp_path / "runs" / "fruit_csv"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9  # the three kinds overlap a little
    capsys.readouterr()
    # The test file's columns in another order, with the target: predict picks features by name.
    rows = (CONFIGS / "data" / "fruit_test.csv").read_text().splitlines()
    header = rows[0].split(",")
    order = [4, 3, 2, 1, 0]
    shuffled = [",".join(r.split(",")[i] for i in order) for r in rows]
    (tmp_path / "in.csv").write_text("\n".join(shuffled) + "\n")
    assert main(["predict", str(run), "--input", str(tmp_path / "in.csv")]) == 0
    predicted = np.array([int(v) for v in capsys.readouterr().out.split()])
    labels = np.array([int(r.split(",")[header.index("kind")]) for r in rows[1:]])
    assert np.mean(predicted == labels) == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
