"""The issue's example programs reach their stated results (run in-process, small budgets)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_digits_cnn_reaches_97_percent():
    pytest.importorskip("sklearn")
    acc = load("digits_cnn").main(["--epochs", "20"])
    assert acc >= 0.97


def test_lstm_learns_digit_sums_above_95_percent():
    assert load("lstm_sequence").main([]) >= 0.95


def test_char_transformer_loss_falls_well_below_unigram_entropy():
    final, unigram = load("char_transformer").main(["--steps", "300"])
    assert final < 0.7 * unigram
