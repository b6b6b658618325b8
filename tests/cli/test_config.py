"""Config files for ``ember train``: errors name the file, line, key and allowed values."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ember._src.cli import config
from ember._src.cli.config import ConfigError
from ember._src.cli.main import main
from ember._src.cli.train import Prepared, resolve

GOOD = """\
model:
  layers:
    - {type: Dense, units: 8, activation: relu}
    - {type: Dense, units: 3}
data:
  train: {path: data.npz}
  validation_split: 0.25
solver:
  loss: cross_entropy
  optimizer: {type: adam, lr: 0.01}
  epochs: 2
  batch_size: 16
metrics: [accuracy]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x, y=np.argmax(x[:, :3], axis=1))
    (tmp_path / "data.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    return tmp_path


def write(folder: Path, text: str, name: str = "run.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        cfg, values = resolve(str(path))
        Prepared(cfg, values)
    return e.value


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "key", "message", "allowed"),
    [
        ("solver:", "solvr:", "solvr", "unknown key 'solvr' (did you mean 'solver'?)", "solver"),
        ("type: adam", "type: adamx", "solver.optimizer.type", "'adamx' is not allowed", "adamw"),
        ("epochs: 2", "epochs: 0", "solver.epochs", "0 is out of range", ">= 1"),
        ("epochs: 2", "epochs: ten", "solver.epochs", "'ten' is not an integer", "an integer"),
        ("batch_size: 16", "batch_size: 1.5", "solver.batch_size", "1.5 is not an integer", None),
        ("validation_split: 0.25", "validation_split: 1", "data.validation_split", "out of range",
         "< 1"),
        ("metrics: [accuracy]", "metrics: accuracy", "metrics", "'accuracy' is not a list", None),
        ("{type: Dense, units: 3}", "{type: Dence, units: 3}", "model.layers[1].type",
         "unknown layer 'Dence' (did you mean 'Dense'?)", "Conv2d"),
        ("{type: Dense, units: 3}", "{type: Dense, unit: 3}", "model.layers[1].unit",
         "Dense has no argument 'unit' (did you mean 'units'?)", "units"),
        ("{type: Dense, units: 3}", "{type: Dense}", "model.layers[1]",
         "Dense needs the argument 'units'", "units"),
        ("{type: Dense, units: 3}", "{type: Dense, units: 5}", "model.layers[1]",
         "output has shape (5,) per sample, but the data has 3 classes", "3 outputs"),
        ("loss: cross_entropy", "loss: cross_entropie", "solver.loss",
         "unknown loss 'cross_entropie' (did you mean 'cross_entropy'?)", "mse"),
        ("lr: 0.01}", "lr: 0.01, momentum: 0.9}", "solver.optimizer.momentum",
         "Adam has no argument 'momentum'", "betas"),
        ("path: data.npz", "path: nothere.npz", "data.train.path", "no such file", None),
        ("metrics: [accuracy]", "metrics: [acuracy]", "metrics[0]", "acuracy", None),
    ],
)  # fmt: skip
def test_bad_value_names_file_line_key_and_allowed(
    folder: Path, old: str, new: str, key: str, message: str, allowed: str | None
) -> None:
    assert old in GOOD
    path = write(folder, GOOD.replace(old, new))
    e = error_of(path)
    assert e.file == str(path)
    assert e.line == line_of(path, new.split(":")[0].strip("{ ") if new.endswith(":") else new)
    assert e.key == key
    assert message in e.problem
    if allowed is not None:
        assert e.allowed is not None and allowed in e.allowed
    text = str(e)
    assert text.startswith(f"{path}:{e.line}: {key}: ")
    assert new.strip() in text  # the offending source line is quoted


def test_missing_required_key(folder: Path) -> None:
    path = write(folder, GOOD.replace("  loss: cross_entropy\n", ""))
    e = error_of(path)
    assert (e.key, e.line) == ("solver", line_of(path, "solver:"))
    assert "'loss' is missing" in e.problem


def test_model_needs_layers_or_architecture(folder: Path) -> None:
    path = write(folder, GOOD.replace("  layers:", "  layer:"))
    e = error_of(path)
    assert e.key == "model"
    assert "none of the accepted forms" in e.problem
    assert e.allowed is not None and "'layers'" in e.allowed and "'architecture'" in e.allowed


def test_shape_mismatch_names_the_layer(folder: Path) -> None:
    text = GOOD.replace(
        "    - {type: Dense, units: 8, activation: relu}",
        "    - {type: Linear, in_features: 5, out_features: 8}",
    )
    path = write(folder, text)
    e = error_of(path)
    assert e.key == "model.layers[0]"
    assert e.line == line_of(path, "in_features: 5")
    assert "shape (1, 4)" in e.problem


def test_csv_column_names_are_checked(folder: Path) -> None:
    path = write(folder, GOOD.replace("{path: data.npz}", "{path: data.csv, target: lable}"))
    e = error_of(path)
    assert e.key == "data.train.target"
    assert "no column 'lable' (did you mean 'label'?)" in e.problem
    assert e.allowed == "a, b, label"


def test_yaml_syntax_error_has_the_line(folder: Path) -> None:
    path = write(folder, GOOD.replace("  epochs: 2", "  epochs: [2"))
    with pytest.raises(ConfigError) as e:
        config.load(path)
    assert e.value.line is not None and e.value.line >= line_of(path, "epochs: [2")
    assert "not valid YAML" in str(e.value)


def test_duplicate_key(folder: Path) -> None:
    path = write(folder, GOOD + "metrics: [mse]\n")
    with pytest.raises(ConfigError) as e:
        config.load(path)
    assert e.value.line == len(GOOD.splitlines()) + 1
    assert f"appears twice in this mapping (first on line {line_of(path, 'metrics:')})" in str(
        e.value
    )


def test_json_configs_work_and_report_lines(folder: Path) -> None:
    import yaml

    values = yaml.safe_load(GOOD)
    good = folder / "run.json"
    good.write_text(json.dumps(values, indent=2))
    _, resolved = resolve(str(good))
    assert resolved["solver"]["epochs"] == 2
    values["solver"]["epochs"] = -3
    bad = folder / "bad.json"
    bad.write_text(json.dumps(values, indent=2))
    e = error_of(bad)
    assert (e.key, e.line) == ("solver.epochs", line_of(bad, '"epochs": -3'))


def test_defaults_are_filled_in(folder: Path) -> None:
    _, values = resolve(str(write(folder, GOOD)))
    assert values["solver"]["seed"] == 0
    assert values["solver"]["clip_grad_norm"] is None
    assert values["outputs"] == {
        "dir": "runs", "name": "run", "monitor": None, "mode": "auto", "tensorboard": True,
        "onnx": True,
    }  # fmt: skip
    assert values["data"]["train"]["path"] == str(folder / "data.npz")


def test_schema_uses_only_the_keywords_the_validator_knows() -> None:
    seen: set[str] = set()

    def walk(node: object, in_properties: bool = False) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if not in_properties:
                    seen.add(k)
                walk(v, in_properties=k in ("properties", "$defs") and not in_properties)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config.schema())
    assert seen <= config.KEYWORDS, seen - config.KEYWORDS
    assert {"anyOf", "enum", "additionalProperties", "$ref"} <= seen


def test_cli_prints_a_message_not_a_traceback(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(folder, GOOD.replace("epochs: 2", "epochs: 0"))
    assert main(["train", str(path), "--validate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:{line_of(path, 'epochs: 0')}: solver.epochs: ")
    assert "Traceback" not in err
    with pytest.raises(ConfigError):
        main(["train", str(path), "--validate", "--debug"])


def test_validate_checks_without_training(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(folder)
    path = write(folder, GOOD)
    assert main(["train", str(path), "--validate"]) == 0
    out = capsys.readouterr().out
    assert f"{path}: OK" in out
    assert "train 48, validation 16" in out
    assert not (folder / "runs").exists()


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
