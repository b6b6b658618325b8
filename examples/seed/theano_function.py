"""The seed's Theano program in ember's symbolic API.

Symbolic variables (``T.matrix`` and friends) are ``ember.placeholder``s; the
forward pass computes scores through a ReLU layer, the softmax probabilities
and the categorical cross-entropy of integer labels; ``ember.grad`` gives the
gradients with respect to the weight matrices, and ``ember.function``
compiles a function from ``[x, y, w1, w2]`` to ``[loss, scores, dw1, dw2]``,
as ``theano.function`` does. The loop calls it with NumPy arrays and updates
the weights in NumPy.

The seed draws the inputs uniformly from [0, 1); with all-positive inputs plain
SGD at the seed's learning rate (0.1) wanders, so the inputs here are standard
normal.
``train(shared=True)`` runs the idiomatic Theano variant instead: the weights
are tensors kept by the function (Theano's shared variables) and
``updates=[(w1, w1 - lr * dw1), ...]`` applies the step inside each call.

Run:  python examples/seed/theano_function.py [--steps 200] [--print-every 20] [--shared]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ember
import ember.nn.functional as F

BATCH, D_IN, HIDDEN, CLASSES = 32, 500, 50, 5


def categorical_crossentropy(probs: ember.Tensor, y: ember.Tensor) -> ember.Tensor:
    """-log of each row's label probability (Theano's ``T.nnet.categorical_crossentropy``)."""
    return -probs.gather(1, y.unsqueeze(1)).squeeze(1).log()


def train(
    steps: int = 200,
    lr: float = 0.1,
    print_every: int = 20,
    seed: int = 0,
    shared: bool = False,
) -> list[float]:
    """Fit random labels with a compiled symbolic function; returns the loss at every step."""
    rng = np.random.default_rng(seed)
    xx = rng.standard_normal((BATCH, D_IN))
    yy = rng.integers(0, CLASSES, size=BATCH)
    ww1 = 1e-2 * rng.standard_normal((D_IN, HIDDEN))
    ww2 = 1e-2 * rng.standard_normal((HIDDEN, CLASSES))

    # Symbolic variables.
    x = ember.placeholder((None, D_IN), ember.float64, name="x")
    y = ember.placeholder((None,), ember.int64, name="y")
    if shared:  # weights live in tensors the compiled function reads and updates
        w1 = ember.tensor(ww1, requires_grad=True)
        w2 = ember.tensor(ww2, requires_grad=True)
    else:  # weights are inputs, as in the seed
        w1 = ember.placeholder((D_IN, HIDDEN), ember.float64, name="w1")
        w2 = ember.placeholder((HIDDEN, CLASSES), ember.float64, name="w2")
    # Forward pass: scores, softmax, cross-entropy.
    a = x.matmul(w1)
    a_relu = F.relu(a)
    scores = a_relu.matmul(w2)
    probs = F.softmax(scores, dim=1)
    loss = categorical_crossentropy(probs, y).mean()
    # Backward pass: symbolic gradients.
    dw1, dw2 = ember.grad(loss, [w1, w2])

    losses = []
    if shared:
        f = ember.function(
            [x, y], [loss, scores], updates=[(w1, w1 - lr * dw1), (w2, w2 - lr * dw2)]
        )
    else:
        f = ember.function([x, y, w1, w2], [loss, scores, dw1, dw2])
    for t in range(steps):
        if shared:
            loss_val, _ = f(xx, yy)
        else:
            loss_val, _, dww1, dww2 = f(xx, yy, ww1, ww2)
            ww1 -= lr * dww1
            ww2 -= lr * dww2
        losses.append(float(loss_val))
        if print_every and (t % print_every == 0 or t == steps - 1):
            print(f"step {t:4d}  loss {losses[-1]:.6g}")
    return losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--print-every", type=int, default=20)
    parser.add_argument("--shared", action="store_true", help="shared weights and updates=")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    losses = train(args.steps, args.lr, args.print_every, shared=args.shared)
    took = time.perf_counter() - start
    print(f"loss {losses[0]:.6g} -> {losses[-1]:.6g} in {args.steps} steps ({took:.2f} s)")


if __name__ == "__main__":
    main()
