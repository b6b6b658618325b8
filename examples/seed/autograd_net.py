"""The seed's 2-layer ReLU network trained with ember's autograd.

The same network as ``manual_grad_net.py`` (x (32, 500) -> 50 hidden ReLU
units -> 500 outputs, summed squared error, plain SGD), but the weights
require grad, ``loss.backward()`` fills ``w.grad``, and the update runs under
``ember.no_grad()`` so it is not recorded, after which the gradients are zeroed
for the next step. This is what ``make demo`` runs.

Run:  python examples/seed/autograd_net.py [--steps 200] [--print-every 20]
"""

from __future__ import annotations

import argparse
import time

import ember

BATCH, D_IN, HIDDEN, D_OUT = 32, 500, 50, 500


def train(steps: int = 200, lr: float = 2e-4, print_every: int = 20, seed: int = 0) -> list[float]:
    """Fit random targets with autograd; returns the loss at every step."""
    ember.manual_seed(seed)
    x = ember.randn(BATCH, D_IN)
    y = ember.randn(BATCH, D_OUT)
    # Scale first, then mark as leaves that require grad.
    w1 = (ember.randn(D_IN, HIDDEN) * 0.05).requires_grad_()
    w2 = (ember.randn(HIDDEN, D_OUT) * 0.05).requires_grad_()

    losses = []
    for t in range(steps):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        if print_every and (t % print_every == 0 or t == steps - 1):
            print(f"step {t:4d}  loss {losses[-1]:.6g}")

        loss.backward()  # fills w1.grad and w2.grad

        with ember.no_grad():  # the update itself must not be recorded
            w1 -= lr * w1.grad
            w2 -= lr * w2.grad
            w1.grad.zero_()  # backward accumulates, so reset for the next step
            w2.grad.zero_()
    return losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--print-every", type=int, default=20)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    losses = train(args.steps, args.lr, args.print_every)
    took = time.perf_counter() - start
    print(f"loss {losses[0]:.6g} -> {losses[-1]:.6g} in {args.steps} steps ({took:.2f} s)")


if __name__ == "__main__":
    main()
