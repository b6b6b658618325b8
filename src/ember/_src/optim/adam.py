"""Adam and AdamW: bias-corrected first and second moment estimates, optional AMSGrad."""

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


class Adam(Optimizer):
    """Adam (PyTorch's algorithm, option for option).

    With ``g = ±grad + weight_decay * p`` (or, with ``decoupled_weight_decay``,
    ``p *= 1 - lr * weight_decay`` first and ``g = ±grad``): ``m = b1*m + (1-b1)*g``,
    ``v = b2*v + (1-b2)*g²``, ``v̂ = max(v̂, v)`` with AMSGrad, and
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.

    Args:
        params: Tensors or parameter groups to optimize.
        lr: learning rate.
        betas: decay rates ``(b1, b2)`` of the moment estimates, each in [0, 1).
        eps: added to the denominator for numerical stability.
        weight_decay: weight decay coefficient (an L2 penalty unless decoupled).
        amsgrad: use the running maximum of ``v`` (AMSGrad).
        maximize: ascend the objective instead of descending it.
        decoupled_weight_decay: decay the weights directly, as AdamW does.

    Example:
        >>> import ember.optim
        >>> w = ember.tensor([1.0, -1.0], requires_grad=True)
        >>> opt = ember.optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        tensor([ 0.9000, -0.9000], requires_grad=True)
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _validate(self, hparams: dict[str, Any]) -> None:
        for name in ("lr", "eps", "weight_decay"):
            check_range(hparams, name, 0.0)
        if "betas" in hparams:
            if len(hparams["betas"]) != 2:
                raise ValueError(f"betas must be a pair (beta1, beta2), got {hparams['betas']!r}")
            for i in (0, 1):
                check_range(hparams, "betas", 0.0, 1.0, high_open=True, index=i)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        decoupled = group["decoupled_weight_decay"]
        for p, grad in self._with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["exp_avg"] = ember.zeros_like(p)
                state["exp_avg_sq"] = ember.zeros_like(p)
            if group["amsgrad"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = ember.zeros_like(p)
            step = next_step(state)
            if decoupled:
                if weight_decay != 0:
                    p.mul_(1 - lr * weight_decay)
                g = gradient(p, grad, 0.0, group["maximize"])
            else:
                g = gradient(p, grad, weight_decay, group["maximize"])
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            # b1*m + (1-b1)*g as ((b1/(1-b1))*m + g) * (1-b1): in place, no temporary
            exp_avg.mul_(beta1 / (1 - beta1)).add_(g).mul_(1 - beta1)
            exp_avg_sq.mul_(beta2).add_((g * g).mul_(1 - beta2))
            if group["amsgrad"]:
                exp_avg_sq = state["max_exp_avg_sq"].maximum_(exp_avg_sq)
            step_size = lr / (1 - beta1**step)
            denom = exp_avg_sq.sqrt().div_((1 - beta2**step) ** 0.5).add_(eps)
            p.sub_((exp_avg / denom).mul_(step_size))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's ``AdamW``.

    ``p *= 1 - lr * weight_decay`` before each Adam update; same arguments as
    :class:`Adam` (``weight_decay`` defaults to 0.01).

    Example:
        >>> import ember.optim
        >>> w = ember.tensor([1.0], requires_grad=True)
        >>> opt = ember.optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> round(w.item(), 4)
        0.85
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
