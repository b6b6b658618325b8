"""MNIST and Fashion-MNIST: download with checksums, parse the IDX files."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import ember
from ember._src.data import download as dl
from ember._src.data.dataset import Dataset

# IDX type byte -> big-endian NumPy dtype.
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Parse an IDX file (the MNIST format), gzipped if its name ends in ``.gz``.

    The header is two zero bytes, a type byte, the number of dimensions, then
    each dimension as a big-endian uint32; the data follow, big-endian.

    Returns:
        The array in native byte order.

    Raises:
        ValueError: the file is not IDX, is truncated or has trailing bytes;
            the message names the file and what is wrong.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(
            f"{path}: cannot decompress ({e}); the file is corrupt or truncated"
        ) from e
    if len(raw) < 4:
        raise ValueError(f"{path}: only {len(raw)} bytes, too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file (magic number starts {raw[:2].hex()}, expected 0000)"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions declared)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: IDX data {what}: shape {shape} of {dtype.name} needs {expected} bytes, "
            f"found {found}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


class MNIST(Dataset[tuple[Any, Any]]):
    """The MNIST handwritten digits: 60,000 training and 10,000 test 28x28 images.

    Files live in ``<root>/MNIST`` where root defaults to ``$EMBER_DATA`` or
    ``~/.cache/ember/datasets``. With ``download=True`` missing files are
    fetched from the first mirror that answers and checked against their
    published MD5 checksums.

    A sample is ``(image, label)``: a float32 tensor of shape (1, 28, 28)
    scaled to [0, 1] and an int, before ``transform``/``target_transform``.
    ``data`` holds all images as uint8 (N, 28, 28) and ``targets`` the int64
    labels.

    Args:
        root: the folder holding the dataset folders.
        train: the training split (else the test split).
        transform: applied to each image tensor.
        target_transform: applied to each label.
        download: fetch missing files.
    """

    mirrors: ClassVar[list[str]] = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    resources: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    classes: ClassVar[list[str]] = [str(i) for i in range(10)]

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        download: bool = False,
    ) -> None:
        self.root = dl.data_root(root)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        prefix = "train" if train else "t10k"
        names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
        missing = [n for n in names if not (self.folder / n).is_file()]
        if missing and download:
            for n in missing:
                dl.download([m + n for m in self.mirrors], self.folder / n, self.resources[n])
        elif missing:
            raise FileNotFoundError(
                f"{type(self).__name__}: {', '.join(missing)} not found in {self.folder}; pass "
                "download=True to fetch it, or set root= (or $EMBER_DATA) to where the files are"
            )
        images = read_idx(self.folder / names[0])
        labels = read_idx(self.folder / names[1])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{self.folder / names[0]}: expected uint8 images of shape (N, rows, cols), got "
                f"{images.dtype} {images.shape}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"{self.folder / names[1]}: expected {images.shape[0]} labels (one per image), "
                f"got shape {labels.shape}"
            )
        if labels.size and int(labels.max()) >= len(self.classes):
            raise ValueError(
                f"{self.folder / names[1]}: label {int(labels.max())} is out of range for "
                f"{len(self.classes)} classes"
            )
        self._images = images
        self._labels = labels.astype(np.int64)
        self.data = ember.from_numpy(self._images)
        self.targets = ember.from_numpy(self._labels)

    @property
    def folder(self) -> Path:
        return self.root / type(self).__name__

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image: Any = ember.from_numpy(self._images[index][None].astype(np.float32) / 255)
        target: Any = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, ten kinds of clothing.

    Same arguments and samples as ``MNIST``; files live in ``<root>/FashionMNIST``.
    """

    mirrors: ClassVar[list[str]] = [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ]
    resources: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    classes: ClassVar[list[str]] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
