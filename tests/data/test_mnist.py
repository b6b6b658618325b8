"""MNIST / FashionMNIST on small IDX files written here (nothing is ever downloaded)."""

from __future__ import annotations

import gzip
import hashlib
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import ember
from ember._src.data import download
from ember._src.data.mnist import read_idx
from ember.data import MNIST, DataLoader, FashionMNIST

_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, _CODES[array.dtype.type], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_split(folder: Path, prefix: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    write(folder / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(images))
    write(folder / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(labels))
    return images, labels


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    make_split(tmp_path / "MNIST", "train", 6, seed=0)
    make_split(tmp_path / "MNIST", "t10k", 3, seed=1)
    return tmp_path


# ------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    p = write(tmp_path / ("a.idx.gz" if gz else "a.idx"), idx_bytes(a), gz=gz)
    out = read_idx(p)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


def test_read_idx_truncated_data(tmp_path):
    data = idx_bytes(np.zeros((3, 4, 4), np.uint8))[:-5]
    with pytest.raises(ValueError, match=r"truncated: shape \(3, 4, 4\) of uint8 needs 48 bytes"):
        read_idx(write(tmp_path / "t.gz", data))


def test_read_idx_trailing_bytes(tmp_path):
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(write(tmp_path / "t.gz", idx_bytes(np.zeros(3, np.uint8)) + b"\0"))


def test_read_idx_bad_magic(tmp_path):
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(write(tmp_path / "t.gz", b"\x1f\x8b\x08\x03" + b"\0" * 12))
    with pytest.raises(ValueError, match="unknown IDX data type 0x42"):
        read_idx(write(tmp_path / "u.gz", b"\0\0\x42\x01\0\0\0\x01x"))
    with pytest.raises(ValueError, match="too short"):
        read_idx(write(tmp_path / "v.gz", b"\0\0"))
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(write(tmp_path / "w.gz", b"\0\0\x08\x03\0\0\0\x01"))


def test_read_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        read_idx(cut)
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(b"this is not gzip at all")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        read_idx(garbage)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.gz")


# ---------------------------------------------------------------------- MNIST
def test_mnist_loads_a_split(mnist_root):
    images, labels = make_split(mnist_root / "MNIST", "train", 6, seed=0)
    ds = MNIST(root=mnist_root, train=True)
    assert len(ds) == 6
    assert ds.data.dtype == ember.uint8 and ds.data.shape == (6, 28, 28)
    assert ds.targets.dtype == ember.int64 and ds.targets.tolist() == labels.tolist()
    image, label = ds[4]
    assert image.dtype == ember.float32 and image.shape == (1, 28, 28)
    np.testing.assert_allclose(image.numpy()[0], images[4] / 255, rtol=1e-6)
    assert label == int(labels[4]) and isinstance(label, int)
    assert len(MNIST(root=mnist_root, train=False)) == 3


def test_mnist_transforms_and_loader(mnist_root):
    ds = MNIST(root=mnist_root, transform=lambda x: x * 2, target_transform=lambda y: y + 100)
    image, label = ds[0]
    assert float(image.max()) > 1 or float(image.max()) == 0
    assert label >= 100
    x, y = next(iter(DataLoader(MNIST(root=mnist_root), batch_size=4)))
    assert x.shape == (4, 1, 28, 28) and y.dtype == ember.int64


def test_mnist_root_defaults_to_ember_data(mnist_root, monkeypatch):
    monkeypatch.setenv("EMBER_DATA", str(mnist_root))
    assert len(MNIST()) == 6
    assert download.data_root() == mnist_root
    monkeypatch.delenv("EMBER_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(mnist_root / "cache"))
    assert download.data_root() == mnist_root / "cache" / "ember" / "datasets"


def test_mnist_missing_files_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        MNIST(root=tmp_path, train=False)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)


def test_mnist_rejects_mismatched_files(tmp_path):
    folder = tmp_path / "MNIST"
    write(folder / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros((4, 28, 28), np.uint8)))
    write(folder / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match="expected 4 labels"):
        MNIST(root=tmp_path)
    write(folder / "train-labels-idx1-ubyte.gz", idx_bytes(np.full(4, 12, np.uint8)))
    with pytest.raises(ValueError, match="label 12 is out of range"):
        MNIST(root=tmp_path)
    write(folder / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros((4, 784), np.uint8)))
    with pytest.raises(ValueError, match=r"shape \(N, rows, cols\)"):
        MNIST(root=tmp_path)


def test_mnist_truncated_file_gives_a_clear_error(tmp_path):
    folder = tmp_path / "MNIST"
    make_split(folder, "train", 2)
    p = folder / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(p.read_bytes())
    write(p, raw[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: IDX data truncated"):
        MNIST(root=tmp_path)


# ------------------------------------------------------------------- download
def _serve(monkeypatch, files: dict[str, bytes], fail: tuple[str, ...] = ()) -> list[str]:
    """Replace the network: URLs ending in a name from ``files`` return its bytes."""
    requested: list[str] = []

    def fake_fetch(url, out):
        requested.append(url)
        if url.startswith(fail):
            raise urllib.error.URLError("mirror unreachable")
        out.write(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(download, "_fetch", fake_fetch)
    return requested


def _small_files(prefix: str) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        f"{prefix}-images-idx3-ubyte.gz": gzip.compress(
            idx_bytes(rng.integers(0, 256, (5, 28, 28), dtype=np.uint8))
        ),
        f"{prefix}-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(np.arange(5, dtype=np.uint8))),
    }


def _md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_download_verifies_and_stores(tmp_path, monkeypatch, cls):
    files = _small_files("t10k")
    monkeypatch.setattr(cls, "resources", {**cls.resources, **_md5s(files)})
    requested = _serve(monkeypatch, files)
    ds = cls(root=tmp_path, train=False, download=True)
    assert len(ds) == 5 and ds.targets.tolist() == [0, 1, 2, 3, 4]
    assert sorted(p.name for p in (tmp_path / cls.__name__).iterdir()) == sorted(files)
    assert requested == [cls.mirrors[0] + name for name in files]
    requested.clear()
    cls(root=tmp_path, train=False, download=True)  # already there: no new request
    assert requested == []


def test_download_falls_back_to_the_next_mirror(tmp_path, monkeypatch):
    files = _small_files("t10k")
    monkeypatch.setattr(MNIST, "resources", {**MNIST.resources, **_md5s(files)})
    requested = _serve(monkeypatch, files, fail=(MNIST.mirrors[0],))
    assert len(MNIST(root=tmp_path, train=False, download=True)) == 5
    assert requested[:2] == [m + "t10k-images-idx3-ubyte.gz" for m in MNIST.mirrors[:2]]


def test_download_checksum_mismatch(tmp_path, monkeypatch):
    files = _small_files("train")  # the real checksums do not match these small files
    _serve(monkeypatch, files)
    with pytest.raises(RuntimeError, match="checksum mismatch") as info:
        MNIST(root=tmp_path, train=True, download=True)
    message = str(info.value)
    assert MNIST.resources["train-images-idx3-ubyte.gz"] in message
    assert all(m in message for m in MNIST.mirrors)
    assert list((tmp_path / "MNIST").iterdir()) == []  # nothing half-written left behind


def test_download_helper_directly(tmp_path, monkeypatch):
    payload = b"hello"
    _serve(monkeypatch, {"f.bin": payload})
    dest = download.download(
        ["https://mirror.invalid/f.bin"],
        tmp_path / "sub" / "f.bin",
        hashlib.md5(payload).hexdigest(),
    )
    assert dest.read_bytes() == payload
    assert download.md5sum(dest) == hashlib.md5(payload).hexdigest()


def test_fashion_mnist_has_its_own_folder_and_classes(tmp_path):
    make_split(tmp_path / "FashionMNIST", "train", 2)
    ds = FashionMNIST(root=tmp_path)
    assert len(ds) == 2 and ds.classes[9] == "Ankle boot"
    with pytest.raises(FileNotFoundError):
        MNIST(root=tmp_path)
