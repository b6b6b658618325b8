"""An LSTM learns to add: read a sequence of digits, output their sum.

    python examples/lstm_sequence.py [--steps 1500] [--length 5] [--seed 0] [--compile]

Each sample is ``length`` random digits 0-9; the target is their sum (a class in
0..9*length). An embedding feeds a 1-layer LSTM whose last hidden state is
classified by a linear layer. Reaches over 95% exact-sum accuracy on held-out
sequences in about a minute on 2 cores (accuracy by chance: under 13%).
``--compile`` runs the whole training step (forward, backward, clipping, Adam)
through ``ember.compile``: the same training, about twice as fast.
"""

from __future__ import annotations

import argparse
import time

import ember
from ember import nn


class DigitSum(nn.Module):
    def __init__(self, length: int, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 16)
        self.lstm = nn.LSTM(16, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 9 * length + 1)

    def forward(self, digits: ember.Tensor) -> ember.Tensor:
        _, (h, _) = self.lstm(self.embed(digits))
        return self.head(h[-1])


def batch(n: int, length: int, gen: ember.Generator) -> tuple[ember.Tensor, ember.Tensor]:
    x = ember.randint(0, 10, (n, length), generator=gen)
    return x, x.sum(dim=1)


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--length", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="compile the training step")
    args = p.parse_args(argv)

    ember.manual_seed(args.seed)
    gen = ember.Generator().manual_seed(args.seed)
    model = DigitSum(args.length)
    opt = ember.optim.Adam(model.parameters(), lr=args.lr)
    sched = ember.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps)
    loss_fn = nn.CrossEntropyLoss()
    x_test, y_test = batch(2000, args.length, ember.Generator().manual_seed(args.seed + 1))

    def accuracy() -> float:
        with ember.no_grad():
            return float((model(x_test).argmax(dim=1) == y_test).float().mean().item())

    def train_step(x: ember.Tensor, y: ember.Tensor) -> ember.Tensor:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    step_fn = ember.compile(train_step) if args.compile else train_step
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = batch(args.batch_size, args.length, gen)
        loss = step_fn(x, y)
        sched.step()  # the learning rate is read by the compiled step on every call
        if step % 250 == 0 or step == args.steps:
            print(f"step {step:5d}  loss {loss.item():.4f}  held-out accuracy {accuracy():.2%}")
    acc = accuracy()
    print(f"final held-out accuracy {acc:.2%} in {time.perf_counter() - start:.1f}s")
    return acc


if __name__ == "__main__":
    main()
