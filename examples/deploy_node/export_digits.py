"""Train ember's Digits CNN briefly, export it to ONNX and write test images for Node.js.

    python examples/deploy_node/export_digits.py [--epochs 5] [--count 16] [--out DIR]

Writes ``DIR/digits_cnn.onnx`` (dynamic batch axis), ``DIR/inputs.bin`` (the first
``count`` test images as raw little-endian float32, N x 1 x 8 x 8) with
``DIR/inputs.json`` (their shape and file name), and prints ember's predictions,
which ``node predict.js DIR/digits_cnn.onnx DIR/inputs.json`` must reproduce.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
from typing import Any

import numpy as np

import ember
from ember import nn
from ember.data import DataLoader, Digits

HERE = pathlib.Path(__file__).resolve().parent


def digits_cnn() -> Any:
    """The DigitsCNN class of examples/digits_cnn.py (one model definition)."""
    spec = importlib.util.spec_from_file_location("digits_cnn", HERE.parent / "digits_cnn.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.DigitsCNN


def train(epochs: int, seed: int = 0) -> nn.Module:
    ember.manual_seed(seed)
    model = digits_cnn()()
    if epochs:
        loader = DataLoader(Digits(train=True), batch_size=64, shuffle=True)
        opt = ember.optim.Adam(model.parameters(), lr=3e-3)
        loss_fn = nn.CrossEntropyLoss()
        for _ in range(epochs):
            for x, y in loader:
                opt.zero_grad()
                loss_fn(model(x), y).backward()
                opt.step()
    return model.eval()


def test_images(count: int) -> np.ndarray:
    test = Digits(train=False)
    return np.stack([np.asarray(test[i][0].numpy(), dtype=np.float32) for i in range(count)])


def export(out: pathlib.Path, epochs: int = 5, count: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Write the model and inputs to ``out``; returns (images, ember's logits)."""
    out.mkdir(parents=True, exist_ok=True)
    model = train(epochs)
    images = test_images(count)
    ember.onnx.export(
        model,
        ember.from_numpy(images),
        out / "digits_cnn.onnx",
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
    )
    images.astype("<f4").tofile(out / "inputs.bin")
    (out / "inputs.json").write_text(json.dumps({"file": "inputs.bin", "shape": images.shape}))
    with ember.no_grad():
        logits = model(ember.from_numpy(images)).numpy()
    return images, logits


def main(argv: list[str] | None = None) -> list[int]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--count", type=int, default=16)
    p.add_argument("--out", type=pathlib.Path, default=HERE / "out")
    args = p.parse_args(argv)
    _, logits = export(args.out, args.epochs, args.count)
    predictions = [int(i) for i in logits.argmax(axis=1)]
    print(f"wrote {args.out / 'digits_cnn.onnx'} and {args.out / 'inputs.bin'}")
    print("ember predictions:", " ".join(map(str, predictions)))
    return predictions


if __name__ == "__main__":
    main()
