"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any

import ember
from ember._src.optim.optimizer import (
    Optimizer,
    Params,
    check_range,
    gradient,
    new_step,
    next_step,
)


class Adadelta(Optimizer):
    """Adadelta (PyTorch's algorithm, option for option).

    With ``g = ±grad + weight_decay * p``: ``v = rho*v + (1-rho)*g²``,
    ``d = sqrt(u + eps) / sqrt(v + eps) * g``, ``u = rho*u + (1-rho)*d²``, ``p -= lr * d``.

    Args:
        params: Tensors or parameter groups to optimize.
        lr: coefficient that scales the update.
        rho: decay rate of the running averages, in [0, 1].
        eps: added inside the square roots for numerical stability.
        weight_decay: L2 penalty coefficient.
        maximize: ascend the objective instead of descending it.

    Example:
        >>> import ember.optim
        >>> w = ember.tensor([1.0], requires_grad=True)
        >>> opt = ember.optim.Adadelta([w], rho=0.0, eps=1e-4)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> round(w.item(), 4)
        0.99
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, hparams: dict[str, Any]) -> None:
        check_range(hparams, "lr", 0.0)
        check_range(hparams, "rho", 0.0, 1.0)
        check_range(hparams, "eps", 0.0)
        check_range(hparams, "weight_decay", 0.0)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        for p, grad in self._with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["square_avg"] = ember.zeros_like(p)
                state["acc_delta"] = ember.zeros_like(p)
            next_step(state)
            g = gradient(p, grad, group["weight_decay"], group["maximize"])
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            square_avg.mul_(rho).add_((g * g).mul_(1 - rho))
            std = (square_avg + eps).sqrt()
            delta = (acc_delta + eps).sqrt().div_(std).mul_(g)
            acc_delta.mul_(rho).add_((delta * delta).mul_(1 - rho))
            p.sub_(delta.mul_(lr))
