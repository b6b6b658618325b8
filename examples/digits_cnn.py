"""A small CNN on scikit-learn's Digits (8x8 images): train, evaluate, report test accuracy.

    python examples/digits_cnn.py [--epochs 20] [--batch-size 64] [--seed 0]

conv 1->16 3x3, ReLU, max-pool 2, conv 16->32 3x3, ReLU, max-pool 2, linear to 10,
Adam. Reaches about 98% test accuracy in well under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import ember
from ember import nn
from ember.data import DataLoader, Digits


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x: ember.Tensor) -> ember.Tensor:
        return self.classifier(self.features(x).flatten(1))


def evaluate(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with ember.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(dim=1) == y).sum().item())
            total += len(y)
    model.train()
    return correct / total


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    ember.manual_seed(args.seed)
    train = DataLoader(Digits(train=True), batch_size=args.batch_size, shuffle=True)
    test = DataLoader(Digits(train=False), batch_size=256)
    model = DigitsCNN()
    opt = ember.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        total, n = 0.0, 0
        for x, y in train:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            n += len(y)
        if epoch == 1 or epoch % 5 == 0 or epoch == args.epochs:
            acc = evaluate(model, test)
            print(f"epoch {epoch:3d}  loss {total / n:.4f}  test accuracy {acc:.2%}")
    acc = evaluate(model, test)
    print(f"final test accuracy {acc:.2%} in {time.perf_counter() - start:.1f}s")
    return acc


if __name__ == "__main__":
    main()
