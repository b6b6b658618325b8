"""compile's losses: each name per sample against NumPy, nn losses and functions, errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn
from ember.models import losses

rng = np.random.default_rng(0)
LOGITS = rng.normal(size=(6, 4))
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
LABELS = np.array([0, 3, 1, 1, 2, 0])
ONE_HOT = np.eye(4)[LABELS]
REG_T, REG_P = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
BIN_T = (rng.random((6, 2)) > 0.5).astype(np.float64)
BIN_P = rng.uniform(0.05, 0.95, size=(6, 2))


def t(a: np.ndarray) -> ember.Tensor:
    return ember.from_numpy(a)


CASES = [
    ("mse", REG_T, REG_P, ((REG_P - REG_T) ** 2).mean(axis=1)),
    ("mae", REG_T, REG_P, np.abs(REG_P - REG_T).mean(axis=1)),
    (
        "binary_crossentropy",
        BIN_T,
        BIN_P,
        -(BIN_T * np.log(BIN_P) + (1 - BIN_T) * np.log(1 - BIN_P)).mean(axis=1),
    ),
    ("categorical_crossentropy", ONE_HOT, PROBS, -np.log(PROBS[np.arange(6), LABELS])),
    ("sparse_categorical_crossentropy", LABELS, PROBS, -np.log(PROBS[np.arange(6), LABELS])),
]


@pytest.mark.parametrize(("name", "y_true", "y_pred", "expected"), CASES, ids=[c[0] for c in CASES])
def test_names_match_numpy(
    name: str, y_true: np.ndarray, y_pred: np.ndarray, expected: np.ndarray
) -> None:
    got = losses.get(name)(t(y_true), t(y_pred))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_from_logits_and_module_losses_agree() -> None:
    expected = -np.log(PROBS[np.arange(6), LABELS])
    sparse = losses.SparseCategoricalCrossentropy(from_logits=True)(t(LABELS), t(LOGITS))
    dense = losses.CategoricalCrossentropy(from_logits=True)(t(ONE_HOT), t(LOGITS))
    module = losses.get(nn.CrossEntropyLoss())(t(LABELS), t(LOGITS))
    for got in (sparse, dense, module):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    labels_col = losses.get("sparse_categorical_crossentropy")(t(LABELS[:, None]), t(PROBS))
    np.testing.assert_allclose(labels_col.numpy(), expected, rtol=1e-12)


def test_functions_take_keras_order() -> None:
    fn = losses.get(lambda y_true, y_pred: (y_pred - 2 * y_true) ** 2)
    np.testing.assert_allclose(
        fn(t(REG_T), t(REG_P)).numpy(), ((REG_P - 2 * REG_T) ** 2).mean(axis=1), rtol=1e-12
    )


def test_errors() -> None:
    with pytest.raises(ValueError, match="Did you mean 'mse'") as err:
        losses.get("msee")
    assert "sparse_categorical_crossentropy" in str(err.value)
    with pytest.raises(TypeError, match="not a loss module"):
        losses.get(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="must be equal"):
        losses.get("mse")(t(REG_T), t(REG_P[:, :2]))
    with pytest.raises(ValueError, match="expected labels of shape"):
        losses.get("sparse_categorical_crossentropy")(t(LABELS[:3]), t(PROBS))
