"""PyTorch state dicts in safetensors load into ember modules; `ember convert torch-weights`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ember
import ember.nn as enn
from ember._src.cli.main import main

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")
pytestmark = pytest.mark.torch


def mlp(nn: Any) -> Any:
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def cnn(nn: Any) -> Any:
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 5),
    )


def _train_torch_a_little(model: Any, x: Any) -> None:
    """Non-trivial weights and batch-norm statistics."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


@pytest.mark.parametrize(
    ("build", "shape"), [(mlp, (5, 6)), (cnn, (3, 2, 8, 8))], ids=["mlp", "cnn_batchnorm"]
)
def test_torch_state_dict_loads_into_the_matching_ember_module(
    tmp_path: Path, build: Any, shape: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    tmodel = build(torch.nn)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    _train_torch_a_little(tmodel, torch.from_numpy(x))
    tmodel.eval()
    path = tmp_path / "torch.safetensors"
    st_torch.save_file(tmodel.state_dict(), path)

    emodel = build(enn)
    emodel.load_state_dict(ember.load(path))
    emodel.eval()
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    got = emodel(ember.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    if build is cnn:
        assert emodel[1].num_batches_tracked.item() == 3


def test_ember_weights_load_into_torch(tmp_path: Path) -> None:
    ember.manual_seed(0)
    emodel = cnn(enn)
    emodel.eval()
    path = tmp_path / "ember.safetensors"
    ember.save(emodel.state_dict(), path)
    tmodel = cnn(torch.nn)
    tmodel.load_state_dict(st_torch.load_file(path))
    tmodel.eval()
    x = np.random.default_rng(1).standard_normal((2, 2, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(
        emodel(ember.from_numpy(x)).detach().numpy(), expected, rtol=1e-5, atol=1e-5
    )


def test_bfloat16_round_trips_with_torch(tmp_path: Path) -> None:
    if not hasattr(ember, "bfloat16"):
        pytest.skip("ml_dtypes is not installed")
    t = torch.randn(4, 3).to(torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    st_torch.save_file({"w": t}, path)
    w = ember.load(path)["w"]
    assert w.dtype is ember.bfloat16
    np.testing.assert_array_equal(w.float().numpy(), t.float().numpy())
    ember.save({"w": w}, path)
    assert torch.equal(st_torch.load_file(path)["w"], t)


# ================================================================= the converter
def _torch_file(path: Path, tensors: dict[str, Any], metadata: Any = None) -> Path:
    st_torch.save_file(tensors, path, metadata=metadata)
    return path


def test_convert_strips_wrapper_prefixes_and_writes_ember_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tmodel = mlp(torch.nn)
    wrapped = {"module._orig_mod." + k: v for k, v in tmodel.state_dict().items()}
    src = _torch_file(tmp_path / "ddp.safetensors", wrapped, {"format": "pt", "author": "me"})
    dst = tmp_path / "ember.safetensors"
    assert main(["convert", "torch-weights", str(src), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "module._orig_mod.0.weight -> 0.weight" in out and "wrote" in out
    emodel = mlp(enn)
    emodel.load_state_dict(ember.load(dst))  # strict: the names match now
    np.testing.assert_array_equal(emodel[2].bias.detach().numpy(), tmodel[2].bias.detach().numpy())
    meta = ember.load_metadata(dst)
    assert meta["converted_from"] == "torch" and meta["author"] == "me"
    assert meta["ember_version"] == ember.__version__


def test_convert_explicit_prefix_and_dtype(tmp_path: Path) -> None:
    src = _torch_file(
        tmp_path / "in.safetensors",
        {"backbone.w": torch.randn(2, 2, dtype=torch.float64), "head.b": torch.ones(2)},
    )
    dst = tmp_path / "out.safetensors"
    rc = main(
        [
            "convert",
            "torch-weights",
            str(src),
            str(dst),
            "--strip-prefix",
            "backbone.",
            "--dtype",
            "float16",
        ]
    )
    assert rc == 0
    out = ember.load(dst)
    assert set(out) == {"w", "head.b"}
    assert out["w"].dtype is ember.float16 and out["head.b"].dtype is ember.float16


def test_convert_makes_unsigned_integers_signed(tmp_path: Path) -> None:
    src = _torch_file(
        tmp_path / "u.safetensors",
        {
            "a": torch.tensor([1, 65535], dtype=torch.uint16),
            "b": torch.tensor([7], dtype=torch.uint32),
            "c": torch.tensor([2**40], dtype=torch.uint64),
            "d": torch.tensor([3], dtype=torch.uint8),
        },
    )
    dst = tmp_path / "s.safetensors"
    assert main(["convert", "torch-weights", str(src), str(dst)]) == 0
    out = ember.load(dst)
    assert [out[k].dtype for k in "abcd"] == [ember.int32, ember.int64, ember.int64, ember.uint8]
    assert out["a"].tolist() == [1, 65535] and out["c"].tolist() == [2**40]

    src = _torch_file(
        tmp_path / "big.safetensors", {"x": torch.tensor([2**64 - 1], dtype=torch.uint64)}
    )
    with pytest.raises(ValueError, match="'x' \\(U64\\) holds 18446744073709551615"):
        from ember._src.io.convert import convert_torch_weights

        convert_torch_weights(src, dst)


def test_convert_rejects_dtypes_ember_lacks_and_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _torch_file(
        tmp_path / "f8.safetensors",
        {"ok": torch.ones(2), "q": torch.ones(2).to(torch.float8_e4m3fn)},
    )
    dst = tmp_path / "out.safetensors"
    assert main(["convert", "torch-weights", str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert "tensor 'q' has dtype F8_E4M3: ember has no F8_E4M3 dtype" in err
    assert not dst.exists()

    bad = tmp_path / "model.pt"
    torch.save({"w": torch.ones(1)}, bad)  # a zip with a pickle inside
    assert main(["convert", "torch-weights", str(bad), str(dst)]) == 1
    assert "zip archive" in capsys.readouterr().err

    # A file that is fine but has an unknown dtype code written by hand.
    raw = b'{"x":{"dtype":"I4","shape":[1],"data_offsets":[0,1]}}'
    (tmp_path / "i4.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw + b"\0")
    assert main(["convert", "torch-weights", str(tmp_path / "i4.safetensors"), str(dst)]) == 1
    assert "'I4' is not a dtype ember knows" in capsys.readouterr().err


def test_convert_refuses_name_collisions(tmp_path: Path) -> None:
    from ember._src.io.convert import convert_torch_weights

    src = _torch_file(tmp_path / "c.safetensors", {"a.w": torch.ones(1), "w": torch.ones(1)})
    with pytest.raises(ValueError, match="same name"):
        convert_torch_weights(src, tmp_path / "o.safetensors", strip_prefixes=["a."])
