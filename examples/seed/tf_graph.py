"""The seed's TensorFlow 1 program in ember's symbolic API.

Define the graph once: placeholders for the inputs ``x``, the targets ``y``
and the weights ``w1``, ``w2``; a forward pass (``maximum(x @ w1, 0) @ w2``);
the mean squared error; and its gradients with respect to the weights with
``ember.grad``. Then run it many times: ``ember.function`` compiles the graph
into a callable of NumPy arrays (TensorFlow's ``sess.run`` with a
``feed_dict``), and the loop updates the weight arrays in NumPy, as the seed
does. The batch dimension is ``None``, so any batch size runs (each new size
traces once).

The seed uses unit-variance weights and a learning rate of 1e-5, with which the
loss barely moves in 20 steps; here the weights start at 0.05 scale and, since
the loss is a mean over 32 x 500 entries, the learning rate is 3.

Run:  python examples/seed/tf_graph.py [--steps 200] [--print-every 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ember
import ember.nn.functional as F

BATCH, D_IN, HIDDEN, D_OUT = 32, 500, 50, 500


def train(steps: int = 200, lr: float = 3.0, print_every: int = 20, seed: int = 0) -> list[float]:
    """Fit random targets by feeding arrays to a compiled graph; returns the loss at every step."""
    # Define the computational graph: placeholders, forward pass, loss, gradients.
    x = ember.placeholder((None, D_IN), ember.float32, name="x")
    y = ember.placeholder((None, D_OUT), ember.float32, name="y")
    w1 = ember.placeholder((D_IN, HIDDEN), ember.float32, name="w1")
    w2 = ember.placeholder((HIDDEN, D_OUT), ember.float32, name="w2")
    h = ember.maximum(x @ w1, 0.0)
    y_pred = h @ w2
    loss = F.mse_loss(y_pred, y)
    grad_w1, grad_w2 = ember.grad(loss, [w1, w2])
    run = ember.function([x, y, w1, w2], [loss, grad_w1, grad_w2], name="tf_graph")

    # Run the graph many times, feeding NumPy arrays.
    rng = np.random.default_rng(seed)
    values = {
        "x": rng.standard_normal((BATCH, D_IN), dtype=np.float32),
        "w1": 0.05 * rng.standard_normal((D_IN, HIDDEN), dtype=np.float32),
        "w2": 0.05 * rng.standard_normal((HIDDEN, D_OUT), dtype=np.float32),
        "y": rng.standard_normal((BATCH, D_OUT), dtype=np.float32),
    }
    losses = []
    for t in range(steps):
        loss_val, grad_w1_val, grad_w2_val = run(
            values["x"], values["y"], values["w1"], values["w2"]
        )
        losses.append(float(loss_val))
        if print_every and (t % print_every == 0 or t == steps - 1):
            print(f"step {t:4d}  loss {losses[-1]:.6g}")
        values["w1"] -= lr * grad_w1_val
        values["w2"] -= lr * grad_w2_val
    return losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=3.0)
    parser.add_argument("--print-every", type=int, default=20)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    losses = train(args.steps, args.lr, args.print_every)
    took = time.perf_counter() - start
    print(f"loss {losses[0]:.6g} -> {losses[-1]:.6g} in {args.steps} steps ({took:.2f} s)")


if __name__ == "__main__":
    main()
