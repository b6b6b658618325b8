"""Whole-model files: ``model.save`` / ``ember.models.load_model``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import ember
from ember import nn
from ember._src.io.safetensors_io import read_file, write_file
from ember.models import (
    Input,
    Model,
    ModelFormatError,
    Sequential,
    layers,
    load_model,
    register_serializable,
    save_model,
)


@register_serializable(name="tests.Residual")
class Residual(nn.Module):
    def __init__(self, features: int, scale: float = 1.0, act: str = "tanh") -> None:
        super().__init__()
        self.fc = nn.Linear(features, features)
        self.scale = scale
        self.act = act

    def forward(self, x: ember.Tensor) -> ember.Tensor:
        y = self.fc(x)
        return x + self.scale * (ember.tanh(y) if self.act == "tanh" else y)


@register_serializable(name="tests.Net")
class Net(nn.Module):
    def __init__(self, block: nn.Module, sizes: tuple[int, int], dtype: object = None) -> None:
        super().__init__()
        self.block = block
        self.head = nn.Linear(*sizes, dtype=dtype)

    def forward(self, x: ember.Tensor) -> ember.Tensor:
        return self.head(self.block(x).to(self.head.weight.dtype))


class Unregistered(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: ember.Tensor) -> ember.Tensor:
        return self.fc(x)


def roundtrip(model: nn.Module, path: str, *inputs: ember.Tensor) -> nn.Module:
    model.eval()
    expected = model(*inputs)
    save_model(model, path)
    loaded = load_model(path)
    assert type(loaded) is type(model)
    loaded.eval()
    got = loaded(*inputs)
    outs = (got, expected) if not isinstance(got, list) else None
    pairs = [outs] if outs else list(zip(got, expected))
    for g, e in pairs:
        np.testing.assert_array_equal(g.detach().numpy(), e.detach().numpy())
    assert list(loaded.state_dict()) == list(model.state_dict())
    return loaded


def test_sequential_mlp(tmp_path: os.PathLike[str]) -> None:
    ember.manual_seed(0)
    model = Sequential([nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3)])
    roundtrip(model, os.path.join(tmp_path, "mlp.safetensors"), ember.randn(5, 4))


def test_sequential_mlp_model_save_method(tmp_path: os.PathLike[str]) -> None:
    ember.manual_seed(1)
    model = Sequential(
        [Input(shape=(3,)), layers.Dense(6, activation="relu"), layers.Dense(2)], name="m"
    )
    path = os.path.join(tmp_path, "dense.safetensors")
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, Sequential) and loaded.name == "m"
    x = ember.randn(4, 3)
    np.testing.assert_array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())


def test_sequential_cnn(tmp_path: os.PathLike[str]) -> None:
    ember.manual_seed(2)
    model = Sequential(
        [
            nn.Conv2d(1, 4, kernel_size=3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 4 * 4, 10),
        ]
    )
    model.train()
    model(ember.randn(8, 1, 8, 8))  # move the batch-norm running statistics off their init
    loaded = roundtrip(model, os.path.join(tmp_path, "cnn.safetensors"), ember.randn(3, 1, 8, 8))
    np.testing.assert_array_equal(
        loaded.state_dict()["1.running_mean"].detach().numpy(),
        model.state_dict()["1.running_mean"].detach().numpy(),
    )


def test_functional_two_inputs(tmp_path: os.PathLike[str]) -> None:
    ember.manual_seed(3)
    a, b = Input(shape=(3,), name="a"), Input(shape=(5,), name="b")
    shared = layers.Dense(4, activation="tanh")
    h = layers.Concatenate()([shared(layers.Dense(3)(a)), layers.Dense(4)(b)])
    h = layers.Add()([h, layers.Lambda(nn.Linear(8, 8))(h)])
    out1 = layers.Dense(1)(h)
    out2 = layers.Activation("sigmoid")(shared(a))
    model = Model([a, b], [out1, out2], name="two")
    loaded = roundtrip(
        model,
        os.path.join(tmp_path, "functional.safetensors"),
        ember.randn(2, 3),
        ember.randn(2, 5),
    )
    assert isinstance(loaded, Model) and loaded.name == "two"


def test_functional_single_output(tmp_path: os.PathLike[str]) -> None:
    x = Input(shape=(4,))
    model = Model(x, layers.Dense(2)(layers.Flatten()(x)))
    loaded = roundtrip(model, os.path.join(tmp_path, "f1.safetensors"), ember.randn(3, 4))
    assert not isinstance(loaded(ember.randn(3, 4)), list)


def test_registered_custom_module(tmp_path: os.PathLike[str]) -> None:
    ember.manual_seed(4)
    model = Net(Residual(6, scale=0.5), (6, 2), dtype=ember.float64)
    loaded = roundtrip(model, os.path.join(tmp_path, "net.safetensors"), ember.randn(3, 6))
    assert isinstance(loaded.block, Residual) and loaded.block.scale == 0.5
    assert loaded.head.weight.dtype == ember.float64


def test_wrapped_and_nested_containers(tmp_path: os.PathLike[str]) -> None:
    ember.manual_seed(5)
    inner = nn.Sequential(nn.Linear(3, 3), nn.GELU(), Residual(3, act="linear"))
    model = Model(inner)
    roundtrip(model, os.path.join(tmp_path, "wrapped.safetensors"), ember.randn(2, 3))


def test_unregistered_class_refused_at_save_and_no_file(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "x.safetensors")
    with open(path, "wb") as f:
        f.write(b"old")
    with pytest.raises(TypeError, match="Unregistered is not registered.*register_serializable"):
        save_model(Sequential([Unregistered()]), path)
    with pytest.raises(TypeError, match="function"):
        save_model(Sequential([layers.Lambda(lambda t: t * 2)]), path)
    with open(path, "rb") as f:
        assert f.read() == b"old"
    assert os.listdir(tmp_path) == ["x.safetensors"]  # no temp file left behind


def test_modified_after_construction_refused(tmp_path: os.PathLike[str]) -> None:
    seq = nn.Sequential(nn.Linear(2, 2))
    seq.append(nn.Linear(2, 2))
    path = os.path.join(tmp_path, "x.safetensors")
    with pytest.raises(ValueError, match="changed after construction"):
        save_model(seq, path)
    assert not os.path.exists(path)


def test_failed_write_leaves_old_file(tmp_path: os.PathLike[str], monkeypatch) -> None:
    path = os.path.join(tmp_path, "m.safetensors")
    model = Sequential([nn.Linear(2, 2)])
    model.save(path)
    before = Path(path).read_bytes()

    from ember._src.io import safetensors_io

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(safetensors_io, "_write_array", boom)
    with pytest.raises(OSError, match="disk full"):
        Sequential([nn.Linear(2, 3)]).save(path)
    assert Path(path).read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]


def _tamper(path: str, edit) -> None:
    arrays, meta = read_file(path)
    arch = json.loads(meta["ember_model"])
    edit(arch)
    meta["ember_model"] = json.dumps(arch)
    write_file(path, arrays, meta)


def test_unknown_class_names_it_and_imports_nothing(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "m.safetensors")
    Sequential([nn.Linear(2, 2)]).save(path)
    _tamper(path, lambda a: a["model"]["layers"][0].update({"class": "evil_pkg_xyz.Boom"}))
    with pytest.raises(ModelFormatError, match=r"'evil_pkg_xyz\.Boom'.*register_serializable"):
        load_model(path)
    assert "evil_pkg_xyz" not in sys.modules


def test_tampered_json_bad_types(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "m.safetensors")
    x = Input(shape=(2,))
    Model(x, layers.Dense(2)(x)).save(path)
    clean = read_file(path)

    def reset() -> None:
        write_file(path, *clean)

    cases = [
        (lambda a: a["model"].update({"class": 7}), "'class' must be a str"),
        (lambda a: a["model"]["layers"][0].update({"args": "oops"}), "'args' must be a list"),
        (lambda a: a["model"]["layers"][0].update({"args": ["two"]}), "Dense can't be built"),
        (lambda a: a["model"]["inputs"][0].update({"dtype": "float9"}), "unknown dtype"),
        (lambda a: a["model"]["inputs"][0].update({"shape": [-1]}), "shape"),
        (lambda a: a["model"]["nodes"][1].update({"layer": 5}), "no layer 5"),
        (lambda a: a["model"].update({"outputs": [[9, 0]]}), "bad tensor reference"),
        (lambda a: a["model"]["layers"][0]["kwargs"].update({"x": {"__eval__": 1}}), "tag"),
        (lambda a: a.update({"format": 99}), "upgrade ember"),
    ]
    for edit, message in cases:
        reset()
        _tamper(path, edit)
        with pytest.raises(ModelFormatError, match=message):
            load_model(path)


def test_not_json_and_weights_only_files(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "m.safetensors")
    ember.save(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(ModelFormatError, match="no model architecture"):
        load_model(path)
    arrays, meta = read_file(path)
    write_file(path, arrays, {**meta, "ember_model": "{not json"})
    with pytest.raises(ModelFormatError, match="not JSON"):
        load_model(path)


def test_weights_loaded_strictly(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "m.safetensors")
    Sequential([nn.Linear(2, 2)]).save(path)
    _tamper(path, lambda a: a["model"]["layers"][0].update({"kwargs": {"bias": False}}))
    with pytest.raises(KeyError, match="unexpected keys"):
        load_model(path)


def test_register_validation() -> None:
    with pytest.raises(TypeError, match="Module subclasses"):
        register_serializable(int)
    with pytest.raises(ValueError, match="taken by Residual"):
        register_serializable(name="tests.Residual")(Unregistered)


def test_redefined_class_replaces_registration(tmp_path: os.PathLike[str]) -> None:
    def define(k: int) -> type:
        @register_serializable(name="tests.Redefined")
        class Redefined(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(k, k)

        return Redefined

    define(2)
    new = define(3)
    path = os.path.join(tmp_path, "r.safetensors")
    save_model(new(), path)
    assert type(load_model(path)) is new


def test_cloned_module_saves(tmp_path: os.PathLike[str]) -> None:
    from ember._src.nn.transformer import clone_module

    ember.manual_seed(6)
    twin = clone_module(Net(Residual(3), (3, 2)))
    roundtrip(twin, os.path.join(tmp_path, "twin.safetensors"), ember.randn(2, 3))
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16), 2)
    roundtrip(enc, os.path.join(tmp_path, "enc.safetensors"), ember.randn(4, 3, 8))
