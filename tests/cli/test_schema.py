"""The shipped JSON Schema is valid, and ember's validator agrees with the jsonschema package."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ember._src.cli import config

jsonschema = pytest.importorskip("jsonschema")
yaml = pytest.importorskip("yaml")

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def ours(value: Any) -> config._Invalid | None:
    try:
        config.Validator(config.schema()).check(copy.deepcopy(value), config.schema())
    except config._Invalid as e:
        return e
    return None


def theirs(value: Any) -> list[Any]:
    return list(jsonschema.Draft202012Validator(config.schema()).iter_errors(value))


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(config.schema())


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_examples_are_valid_for_both(name: str) -> None:
    value = yaml.safe_load((CONFIGS / name).read_text())
    assert theirs(value) == []
    assert ours(value) is None


def _set(value: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    out = copy.deepcopy(value)
    node = out
    for p in path[:-1]:
        node = node[p]
    if new is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return out


BAD = [
    (("solver", "epochs"), 0),
    (("solver", "epochs"), 2.5),
    (("solver", "epochs"), True),
    (("solver", "batch_size"), "32"),
    (("solver", "optimizer"), "adamx"),
    (("solver", "optimizer"), {"lr": 0.1}),
    (("solver", "optimizer"), {"type": "nadam"}),
    (("solver", "lr_schedule"), {"type": "OneCycleLR"}),
    (("solver", "clip_grad_norm"), 0),
    (("solver", "clip_grad_norm"), -1.0),
    (("solver", "loss"), KeyError),
    (("solver", "loss"), 3),
    (("solver", "lossy"), "mse"),
    (("data", "dataset"), "mnist"),
    (("data", "validation_split"), 1.0),
    (("data", "validation_split"), -0.1),
    (("data", "train"), {"features": "x"}),
    (("data", "train"), {"path": "a.csv", "delimiter": 1}),
    (("data", "train"), {"path": "a.csv", "features": [1.5]}),
    (("model",), {"layers": []}),
    (("model",), {"layers": [{"units": 3}]}),
    (("model",), {"layers": [7]}),
    (("model",), {"architecture": "resnet"}),
    (("model",), {"architecture": "mlp", "layers": []}),
    (("model",), ["Dense"]),
    (("metrics",), "accuracy"),
    (("metrics",), [1]),
    (("outputs",), {"name": "a/b"}),
    (("outputs",), {"mode": "up"}),
    (("outputs",), {"onnx": "yes"}),
    (("outputs",), {"folder": "runs"}),
    (("data",), KeyError),
]


@pytest.mark.parametrize(("path", "new"), BAD, ids=[f"{'.'.join(p)}={n!r}" for p, n in BAD])
def test_bad_configs_are_rejected_by_both(path: tuple[str, ...], new: Any) -> None:
    good = yaml.safe_load((CONFIGS / "digits_cnn.yaml").read_text())
    assert ours(good) is None and theirs(good) == []
    bad = _set(good, path, new)
    mine, reference = ours(bad), theirs(bad)
    assert reference, "the reference accepts it: the case is not bad"
    assert mine is not None, f"ember's validator accepts what jsonschema rejects: {reference[0]}"
    # ember reports a place jsonschema also finds fault with (or a parent of it, or inside
    # it: jsonschema reports an anyOf at the value, ember the branch's inner key).
    places = {tuple(e.absolute_path) for e in reference}
    for e in reference:
        for sub in e.context or []:
            places.add(tuple(sub.absolute_path))
    assert any(mine.path[: len(p)] == p or p[: len(mine.path)] == mine.path for p in places), (
        mine.path,
        places,
    )


GOOD = [
    (("solver", "optimizer"), "sgd"),
    (("solver", "loss"), {"type": "cross_entropy", "label_smoothing": 0.1}),
    (("solver", "lr_schedule"), None),
    (("solver", "clip_grad_norm"), 1.0),
    (("solver", "clip_grad_value"), None),
    (("data",), {"train": {"path": "a.csv", "features": ["x", 2], "target": "y"}}),
    (("data",), {"train": {"path": "a.npz", "features": "x"}, "test": {"path": "b.npz"}}),
    (("model",), {"architecture": "cnn", "args": {"channels": [8]}}),
    (("model",), {"layers": ["Flatten", {"type": "Dense", "units": 10}]}),
    (("outputs",), {"name": "run-1.a_b", "monitor": None, "mode": "max"}),
]


@pytest.mark.parametrize(("path", "new"), GOOD, ids=[f"{'.'.join(p)}={n!r}" for p, n in GOOD])
def test_good_variants_are_accepted_by_both(path: tuple[str, ...], new: Any) -> None:
    good = _set(yaml.safe_load((CONFIGS / "digits_cnn.yaml").read_text()), path, new)
    assert theirs(good) == []
    assert ours(good) is None


def test_train_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from ember._src.cli.main import main

    assert main(["train", "--schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == config.schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert main(["train"]) == 2
    assert "needs a config file" in capsys.readouterr().err
