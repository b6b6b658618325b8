"""ember.save / ember.load: the safetensors format, its errors, atomic writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember._src.io import atomic, safetensors_io
from ember._src.io.safetensors_io import SafetensorsError

ALL_DTYPES = [
    ember.float16,
    ember.float32,
    ember.float64,
    ember.int8,
    ember.int16,
    ember.int32,
    ember.int64,
    ember.uint8,
    ember.bool_,
    *([ember.bfloat16] if hasattr(ember, "bfloat16") else []),
]


def raw_file(path: Path, header: Any, data: bytes = b"", length: int | None = None) -> Path:
    """A file with a hand-made header (a dict is JSON-encoded) and data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes((len(raw) if length is None else length).to_bytes(8, "little") + raw + data)
    return path


def entry(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# ================================================================= round trips
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_round_trip_every_dtype(tmp_path: Path, dtype: ember.dtype) -> None:
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 5)) * 50).astype(dtype.np)
    path = tmp_path / "x.safetensors"
    ember.save({"a": ember.from_numpy(a), "scalar": ember.from_numpy(a[0, 0, ...].copy())}, path)
    out = ember.load(path)
    assert out["a"].dtype is dtype and out["scalar"].shape == ()
    assert out["a"].numpy().tobytes() == a.tobytes()
    assert out["scalar"].numpy().tobytes() == a[0, 0, ...].tobytes()


def test_reference_safetensors_reads_ember_files_and_back(tmp_path: Path) -> None:
    st_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "h": np.arange(5, dtype=np.float16),
        "i": np.arange(7, dtype=np.int64),
        "m": np.array([True, False, True]),
        "e": np.zeros((0, 3), np.float64),
        "s": np.array(2.5, np.float64),
    }
    mine, theirs = tmp_path / "mine.safetensors", tmp_path / "theirs.safetensors"
    ember.save(tensors, mine)
    for k, v in st_numpy.load_file(mine).items():
        np.testing.assert_array_equal(v, tensors[k])
        assert v.dtype == tensors[k].dtype and v.shape == tensors[k].shape
    st_numpy.save_file(tensors, theirs, metadata={"who": "reference"})
    loaded = ember.load(theirs)
    assert list(loaded) == sorted(tensors) or set(loaded) == set(tensors)
    for k, v in loaded.items():
        assert v.numpy().tobytes() == tensors[k].tobytes() and v.shape == tensors[k].shape
    assert ember.load_metadata(theirs) == {"who": "reference"}


def test_keys_keep_their_order_and_data_is_aligned(tmp_path: Path) -> None:
    sd = {"b": ember.ones(3, dtype=ember.int8), "a": ember.ones(3, dtype=ember.float64)}
    path = tmp_path / "x.safetensors"
    ember.save(sd, path)
    assert list(ember.load(path)) == ["b", "a"]
    entries, _ = safetensors_io.read_header(path)
    assert entries["a"][2] == 0  # the widest dtype first: every tensor starts aligned
    n = int.from_bytes(path.read_bytes()[:8], "little")
    assert n % 8 == 0


def test_non_contiguous_tensors_are_saved_in_c_order(tmp_path: Path) -> None:
    base = ember.arange(24.0).reshape(4, 6)
    views = {"t": base.t(), "step": base[:, ::2], "perm": base.reshape(2, 3, 4).permute(2, 0, 1)}
    assert not any(v.is_contiguous() for v in views.values())
    path = tmp_path / "x.safetensors"
    ember.save(views, path)
    out = ember.load(path)
    for k, v in views.items():
        np.testing.assert_array_equal(out[k].numpy(), v.numpy())
        assert out[k].is_contiguous()


def test_shared_memory_tensors_are_each_saved_in_full(tmp_path: Path) -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(5, 3)
            self.out = nn.Linear(3, 5, bias=False)
            self.out.weight = self.emb.weight

    model = Tied()
    base = ember.arange(10.0)
    sd = {**model.state_dict(), "all": base, "half": base[5:], "same": base}
    path = tmp_path / "x.safetensors"
    ember.save(sd, path)
    out = ember.load(path)
    np.testing.assert_array_equal(out["out.weight"].numpy(), model.emb.weight.detach().numpy())
    np.testing.assert_array_equal(out["half"].numpy(), [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(out["same"].numpy(), np.arange(10.0))
    # Loaded tensors own their memory, and loading keeps the model's tie.
    out["all"][0] = 100.0
    assert out["same"][0].item() == 0.0
    fresh = Tied()
    fresh.load_state_dict({k: out[k] for k in ("emb.weight", "out.weight")})
    assert fresh.out.weight is fresh.emb.weight
    np.testing.assert_array_equal(fresh.emb.weight.detach().numpy(), out["emb.weight"].numpy())


def test_model_state_dict_round_trip_and_gradients_are_not_saved(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2))
    model(ember.randn(2, 2, 4, 4)).sum().backward()
    path = tmp_path / "m.safetensors"
    ember.save(model.state_dict(), path)
    loaded = ember.load(path)
    assert not any(t.requires_grad for t in loaded.values())
    other = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2))
    other.load_state_dict(loaded)
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert a.dtype is b.dtype, k
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert loaded["1.num_batches_tracked"].dtype is ember.int64


def test_metadata_is_stored_and_ember_keys_are_reserved(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    ember.save({"x": ember.zeros(1)}, path, metadata={"epoch": "3"})
    meta = ember.load_metadata(path)
    assert meta["epoch"] == "3" and meta["ember_version"] == ember.__version__
    assert meta["ember_format_version"] == "1" and meta["format"] == "pt"
    with pytest.raises(ValueError, match="reserved"):
        ember.save({"x": ember.zeros(1)}, path, metadata={"ember_version": "9"})
    with pytest.raises(TypeError, match="strings to strings"):
        ember.save({"x": ember.zeros(1)}, path, metadata={"epoch": 3})  # type: ignore[dict-item]


def test_load_to_a_device_and_path_types(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    ember.save({"x": ember.ones(2)}, str(path))
    assert ember.load(path, device="cpu")["x"].device == ember.device("cpu")
    with pytest.raises(TypeError, match="file path"):
        ember.load(123)  # type: ignore[arg-type]


# ================================================================= bad input to save
def test_save_rejects_what_is_not_a_dict_of_tensors(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="dict of tensors"):
        ember.save([ember.zeros(1)], path)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"key 'lr' is a float, not a Tensor"):
        ember.save({"lr": 0.1}, path)
    with pytest.raises(ValueError, match="can't name a tensor"):
        ember.save({"__metadata__": ember.zeros(1)}, path)
    with pytest.raises(ValueError, match="can't name a tensor"):
        ember.save({3: ember.zeros(1)}, path)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="does not support dtype"):
        ember.save({"c": np.zeros(2, np.complex64)}, path)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_save_into_a_missing_directory_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ember.save({"x": ember.zeros(1)}, tmp_path / "nope" / "x.safetensors")
    with pytest.raises(IsADirectoryError):
        ember.save({"x": ember.zeros(1)}, tmp_path)


# ================================================================= bad files
def test_too_short_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    for content in (b"", b"\x01\x02"):
        path.write_bytes(content)
        with pytest.raises(
            SafetensorsError,
            match=r"x.safetensors is not a safetensors file.*"
            "too short",
        ):
            ember.load(path)


def test_pickles_and_torch_zip_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04\x95" + b"\x00" * 30)  # how a protocol-4 pickle starts
    with pytest.raises(SafetensorsError, match="is a Python pickle.*never loads pickle"):
        ember.load(path)
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 30)
    with pytest.raises(SafetensorsError, match="zip archive.*torch.save"):
        ember.load(path)


def test_truncated_header_and_truncated_data(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    ember.save({"a": ember.arange(10.0), "b": ember.ones(3, 3)}, path)
    full = path.read_bytes()
    n = int.from_bytes(full[:8], "little")
    path.write_bytes(full[: 8 + n // 2])
    with pytest.raises(
        SafetensorsError,
        match=r"truncated or not a safetensors file.*"
        f"{n}-byte header",
    ):
        ember.load(path)
    path.write_bytes(full[:-5])
    with pytest.raises(SafetensorsError, match=r"is truncated: its header describes \d+ bytes"):
        ember.load(path)
    path.write_bytes(full + b"junk")
    with pytest.raises(SafetensorsError, match="has trailing bytes"):
        ember.load(path)


def test_text_files_are_not_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is a text file and not weights\n")
    with pytest.raises(SafetensorsError, match="notes.txt is truncated or not a safetensors file"):
        ember.load(path)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (b"{not json}", "header is not valid JSON"),
        (b"\xff\xfe{}", "header is not valid JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"a": 1, "a": 2}', "'a' appears twice"),
        ({"__metadata__": {"k": 1}}, "__metadata__ must map strings to strings"),
        ({"a": {"dtype": "F32"}}, "'a' needs 'dtype', 'shape' and 'data_offsets'"),
        ({"a": entry("F32", [-1], 0, 0)}, "bad shape"),
        ({"a": entry("F32", [True], 0, 0)}, "bad shape"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, "bad data_offsets"),
        ({"a": entry("F32", [2, 3], 0, 20)}, r"shape \[2, 3\] of F32 needs 24 bytes.* span 20"),
        ({"a": entry("Q4", [1], 0, 1)}, "dtype Q4: 'Q4' is not a dtype ember knows"),
        ({"a": entry(7, [1], 0, 1)}, "dtype that is not a string"),
        ({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 2, 6)}, "overlaps"),
        ({"a": entry("F32", [1], 4, 8)}, "leaves a gap"),
    ],
)
def test_bad_headers_are_named(tmp_path: Path, header: Any, match: str) -> None:
    path = raw_file(tmp_path / "bad.safetensors", header, b"\x00" * 8)
    with pytest.raises(SafetensorsError, match=match) as info:
        ember.load(path)
    assert "bad.safetensors" in str(info.value)


def test_dtypes_ember_lacks_are_refused_before_reading_data(tmp_path: Path) -> None:
    path = raw_file(tmp_path / "u.safetensors", {"ids": entry("U32", [2], 0, 8)}, b"\x00" * 8)
    with pytest.raises(SafetensorsError, match="'ids' has dtype U32.*ember convert torch-weights"):
        ember.load(path)
    path = raw_file(tmp_path / "f8.safetensors", {"q": entry("F8_E4M3", [2], 0, 2)}, b"\0\0")
    with pytest.raises(SafetensorsError, match="'q' has dtype F8_E4M3: ember has no F8_E4M3"):
        ember.load(path)


def test_corrupt_bool_bytes_are_refused(tmp_path: Path) -> None:
    path = raw_file(tmp_path / "b.safetensors", {"m": entry("BOOL", [2], 0, 2)}, b"\x01\x07")
    with pytest.raises(SafetensorsError, match="bool tensor 'm' holds bytes other than 0 and 1"):
        ember.load(path)


def test_files_from_a_newer_ember_are_refused(tmp_path: Path) -> None:
    meta = {"ember_format_version": "99"}
    path = raw_file(tmp_path / "new.safetensors", {"__metadata__": meta})
    with pytest.raises(SafetensorsError, match="newer ember.*format version 99"):
        ember.load(path)


def test_empty_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "e.safetensors"
    ember.save({}, path)
    assert ember.load(path) == {}


# ================================================================= atomic writes
@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "w.safetensors"
    ember.save({"x": ember.zeros(3)}, path)
    return path


def _assert_untouched(path: Path) -> None:
    assert os.listdir(path.parent) == [path.name]  # no temp file left
    np.testing.assert_array_equal(ember.load(path)["x"].numpy(), np.zeros(3))


def test_failure_while_writing_data_keeps_the_old_file(
    old_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = safetensors_io._write_array

    def failing(f: Any, a: np.ndarray) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(f, a)

    monkeypatch.setattr(safetensors_io, "_write_array", failing)
    with pytest.raises(OSError, match="No space left"):
        ember.save({"x": ember.ones(3), "y": ember.ones(1000)}, old_file)
    assert len(calls) == 2  # the first tensor was written to the temp file
    _assert_untouched(old_file)


@pytest.mark.parametrize("error", [OSError("fsync failed"), KeyboardInterrupt()])
def test_failure_at_fsync_or_interrupt_keeps_the_old_file(
    old_file: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    def boom(fd: int) -> None:
        raise error

    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(type(error)):
        ember.save({"x": ember.ones(3)}, old_file)
    monkeypatch.undo()
    _assert_untouched(old_file)


def test_failure_at_rename_keeps_the_old_file(
    old_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(src: str, dst: str) -> None:
        raise PermissionError("rename refused")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(PermissionError):
        ember.save({"x": ember.ones(3)}, old_file)
    monkeypatch.undo()
    _assert_untouched(old_file)


def test_written_file_has_ordinary_permissions(tmp_path: Path) -> None:
    path = tmp_path / "p.safetensors"
    ember.save({"x": ember.zeros(1)}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
