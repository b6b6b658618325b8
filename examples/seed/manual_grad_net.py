"""The seed's 2-layer ReLU network with hand-written gradients, on ember tensors.

No autograd here: the forward pass is mm -> clamp -> mm, the loss is the summed
squared error, and the backward pass is written out by hand (transposes, a
clone and a boolean-mask assignment for the ReLU), followed by in-place SGD
updates of the weights. It is the PyTorch-tensor program of the seed tutorial
with the output widened to 500 features.

The seed uses unit-variance weights and a learning rate of 1e-6; with 500
outputs that drives the loss down to the variance of ``y`` and stalls there, so
the weights start at 0.05 scale and the learning rate is 2e-4.

Run:  python examples/seed/manual_grad_net.py [--steps 200] [--print-every 20]
"""

from __future__ import annotations

import argparse
import time

import ember

BATCH, D_IN, HIDDEN, D_OUT = 32, 500, 50, 500


def train(steps: int = 200, lr: float = 2e-4, print_every: int = 20, seed: int = 0) -> list[float]:
    """Fit random targets with manual gradients; returns the loss at every step."""
    ember.manual_seed(seed)
    x = ember.randn(BATCH, D_IN)
    y = ember.randn(BATCH, D_OUT)
    w1 = ember.randn(D_IN, HIDDEN) * 0.05
    w2 = ember.randn(HIDDEN, D_OUT) * 0.05

    losses = []
    for t in range(steps):
        # Forward pass: predictions and the summed squared error.
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        if print_every and (t % print_every == 0 or t == steps - 1):
            print(f"step {t:4d}  loss {losses[-1]:.6g}")

        # Backward pass by hand: the chain rule through mm, clamp and mm.
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h_relu = grad_y_pred.mm(w2.t())
        grad_h = grad_h_relu.clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)

        # Gradient descent, in place.
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
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
