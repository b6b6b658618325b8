"""Digits: scikit-learn's bundled 8x8 handwritten digits, with a fixed train/test split."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

import ember
from ember._src.data.dataset import Dataset


@functools.lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            "ember.data.Digits reads the digits that ship with scikit-learn: "
            "pip install scikit-learn (or pip install 'ember[data]')"
        ) from e
    d = load_digits()
    images = (d.images.astype(np.float32) / 16.0)[:, None]  # pixel values are 0..16
    labels = d.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


class Digits(Dataset[tuple[Any, Any]]):
    """scikit-learn's 1,797 8x8 handwritten digits (UCI optdigits), split 1437 / 360.

    The split is fixed: sample ``i`` of ``sklearn.datasets.load_digits()`` is
    in the test set when ``i % 5 == 0`` (360 images) and in the training set
    otherwise (1437), so every run and machine sees the same split.

    A sample is ``(image, label)``: a float32 tensor of shape (1, 8, 8) scaled
    to [0, 1] and an int, before ``transform``/``target_transform``. ``data``
    holds the split's images as float32 (N, 1, 8, 8) and ``targets`` the int64
    labels. Needs scikit-learn (imported on first use).

    Args:
        train: the training split (else the test split).
        transform: applied to each image tensor.
        target_transform: applied to each label.

    Example:
        >>> from ember.data import Digits
        >>> train, test = Digits(train=True), Digits(train=False)
        >>> len(train), len(test), train.data.shape, train.targets.dtype
        (1437, 360, (1437, 1, 8, 8), ember.int64)
    """

    classes: ClassVar[list[str]] = [str(i) for i in range(10)]

    def __init__(
        self,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        images, labels = _load()
        test = np.arange(len(labels)) % 5 == 0
        keep = ~test if train else test
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self._images = np.ascontiguousarray(images[keep])
        self._labels = np.ascontiguousarray(labels[keep])
        self.data = ember.from_numpy(self._images)
        self.targets = ember.from_numpy(self._labels)

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image: Any = ember.from_numpy(self._images[index])
        target: Any = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target
