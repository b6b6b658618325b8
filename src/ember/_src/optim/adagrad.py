"""Adagrad: per-coordinate step sizes from the running sum of squared gradients."""

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


class Adagrad(Optimizer):
    """Adagrad (PyTorch's algorithm, option for option).

    With ``g = ±grad + weight_decay * p`` at step ``t``: ``s += g²`` (``s`` starts at
    ``initial_accumulator_value``) and ``p -= lr / (1 + (t-1)*lr_decay) * g / (sqrt(s) + eps)``.

    Args:
        params: Tensors or parameter groups to optimize.
        lr: learning rate.
        lr_decay: learning-rate decay per step.
        weight_decay: L2 penalty coefficient.
        initial_accumulator_value: starting value of the sum of squares.
        eps: added to the denominator for numerical stability.
        maximize: ascend the objective instead of descending it.

    Example:
        >>> import ember.optim
        >>> w = ember.tensor([1.0, -3.0], requires_grad=True)
        >>> opt = ember.optim.Adagrad([w], lr=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        tensor([ 0.5000, -2.5000], requires_grad=True)
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, hparams: dict[str, Any]) -> None:
        for name in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_range(hparams, name, 0.0)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        for p, grad in self._with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["sum"] = ember.full_like(p, group["initial_accumulator_value"])
            step = next_step(state)
            g = gradient(p, grad, group["weight_decay"], group["maximize"])
            clr = lr / (1 + (step - 1) * lr_decay)
            total = state["sum"]
            total.add_(g * g)
            std = total.sqrt().add_(eps)
            p.sub_((g / std).mul_(clr))
