"""RMSprop: divide the gradient by a running root mean square, optionally centered."""

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


class RMSprop(Optimizer):
    """RMSprop (PyTorch's algorithm, option for option).

    With ``g = ±grad + weight_decay * p``: ``v = alpha*v + (1-alpha)*g²``; centered
    also keeps ``a = alpha*a + (1-alpha)*g`` and uses ``v - a²``; then
    ``d = g / (sqrt(v) + eps)`` and ``p -= lr * d``, or with momentum
    ``b = momentum*b + d`` and ``p -= lr * b``.

    Args:
        params: Tensors or parameter groups to optimize.
        lr: learning rate.
        alpha: smoothing constant of the squared-gradient average.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient.
        momentum: momentum factor (0 turns momentum off).
        centered: normalize by the estimated variance of the gradient.
        maximize: ascend the objective instead of descending it.

    Example:
        >>> import ember.optim
        >>> w = ember.tensor([1.0], requires_grad=True)
        >>> opt = ember.optim.RMSprop([w], lr=0.01, alpha=0.75)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> round(w.item(), 4)
        0.98
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, hparams: dict[str, Any]) -> None:
        for name in ("lr", "eps", "momentum", "weight_decay", "alpha"):
            check_range(hparams, name, 0.0)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        for p, grad in self._with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["square_avg"] = ember.zeros_like(p)
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = ember.zeros_like(p)
            if group["centered"] and "grad_avg" not in state:
                state["grad_avg"] = ember.zeros_like(p)
            next_step(state)
            g = gradient(p, grad, group["weight_decay"], group["maximize"])
            square_avg = state["square_avg"]
            square_avg.mul_(alpha).add_((g * g).mul_(1 - alpha))
            if group["centered"]:
                grad_avg = state["grad_avg"]
                grad_avg.mul_(alpha).add_(g * (1 - alpha))
                # -(a²) + v is v - a² exactly; sqrt then needs one fresh tensor
                avg = (grad_avg * grad_avg).neg_().add_(square_avg).sqrt()
            else:
                avg = square_avg.sqrt()
            avg.add_(eps)
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf.mul_(momentum).add_(g / avg)
                p.sub_(buf * lr)
            else:
                p.sub_((g / avg).mul_(lr))
