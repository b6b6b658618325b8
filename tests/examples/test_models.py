"""The issue's example programs reach their stated results (run in-process, small budgets)."""

from __future__ import annotations

import importlib.util
import itertools
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


def test_seed_torch_lua_program_fits_its_labels_with_adam_through_a_closure():
    spec = importlib.util.spec_from_file_location("lua_net", EXAMPLES / "seed" / "torch_lua_net.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    losses = mod.train(steps=25)
    assert losses[-1] < 0.5 * losses[0]
    assert all(b < a for a, b in itertools.pairwise(losses))  # Adam at lr 1e-3 descends steadily
