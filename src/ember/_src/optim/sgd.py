"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any

from ember._src.optim.optimizer import Optimizer, Params, check_range, gradient


class SGD(Optimizer):
    """Stochastic gradient descent (PyTorch's algorithm, option for option).

    With ``g = ±grad + weight_decay * p``: the momentum buffer starts as ``g`` and then
    becomes ``momentum * b + (1 - dampening) * g``; the step is ``p -= lr * d`` with
    ``d = g + momentum * b`` (Nesterov), ``d = b`` (momentum) or ``d = g``.

    Args:
        params: Tensors or parameter groups to optimize.
        lr: learning rate.
        momentum: momentum factor (0 turns momentum off).
        dampening: dampening of the gradient added to the momentum buffer.
        weight_decay: L2 penalty coefficient.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: ascend the objective instead of descending it.

    Example:
        >>> import ember.optim
        >>> w = ember.tensor([1.0], requires_grad=True)
        >>> opt = ember.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.zero_grad()
        ...     (w * w).sum().backward()
        ...     opt.step()
        >>> round(w.item(), 4)
        0.46
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, hparams: dict[str, Any]) -> None:
        for name in ("lr", "momentum", "weight_decay"):
            check_range(hparams, name, 0.0)
        if hparams.get("nesterov") and (hparams["momentum"] <= 0 or hparams["dampening"] != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening; set momentum > 0 "
                "and dampening=0, or nesterov=False"
            )

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        for p, grad in self._with_grad(group):
            g = gradient(p, grad, group["weight_decay"], group["maximize"])
            owned = g is not grad  # a temporary of ours: safe to scale in place
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g if owned else g.clone()
                else:
                    buf.mul_(momentum)
                    buf.add_(g if dampening == 0 else g * (1 - dampening))
                if group["nesterov"]:
                    step = buf * momentum
                    g, owned = step.add_(g), True
                else:
                    g, owned = buf, False
            if owned:
                p.sub_(g.mul_(lr))
            else:
                p.sub_(g * lr)
