"""The seed's Torch (Lua) program in ember: nn.Sequential, a cross-entropy criterion,
and Adam driven through a closure that returns the loss.

x (32, 500) -> Linear(500, 50) -> ReLU -> Linear(50, 5), random class labels in 0..4.
Like Lua Torch's ``optim.adam(f, weights, state)``, each step hands the optimizer a
function that zeroes the gradients, runs forward and backward and returns the loss.

Run:  python examples/seed/torch_lua_net.py [--steps 25]
"""

from __future__ import annotations

import argparse

import ember
from ember import nn


def train(steps: int = 25, lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Fit random labels with Adam through a closure; returns the loss at every step."""
    ember.manual_seed(seed)
    model = nn.Sequential(nn.Linear(500, 50), nn.ReLU(), nn.Linear(50, 5))
    loss_fn = nn.CrossEntropyLoss()
    x = ember.randn(32, 500)
    y = ember.randint(0, 5, (32,))
    opt = ember.optim.Adam(model.parameters(), lr=lr)

    def closure() -> ember.Tensor:
        opt.zero_grad()
        scores = model(x)
        loss = loss_fn(scores, y)
        loss.backward()
        return loss

    losses = []
    for t in range(1, steps + 1):
        loss = opt.step(closure)
        losses.append(loss.item())
        print(f"step {t:3d}  loss {losses[-1]:.4f}")
    return losses


def main(argv: list[str] | None = None) -> list[float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--lr", type=float, default=1e-3)
    args = p.parse_args(argv)
    return train(args.steps, args.lr)


if __name__ == "__main__":
    main()
