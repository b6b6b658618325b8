"""``Optimizer``: parameter groups, per-parameter state and PyTorch-shaped state dicts.

An optimizer holds ``param_groups`` (dicts with ``"params"`` and the group's
hyperparameters) and ``state`` (a dict per parameter, keyed by the parameter
itself). Subclasses implement ``_update_group(group)``, which runs under
``ember.no_grad()`` and updates each parameter in place, and optionally
``_validate(hparams)``, which checks hyperparameters for the defaults and every
group added.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import ember
from ember._src.ops import registry
from ember._src.ops.registry import is_tracing

Params = Iterable[ember.Tensor] | Iterable[dict[str, Any]]

_SET_MESSAGE = (
    "optimizer parameters must be an ordered collection (a list or tuple), not a {}: "
    "the order of parameters decides which state belongs to which parameter in "
    "state_dict(), and a set's order changes between runs; use list(model.parameters())"
)


class Optimizer:
    """Base class of the optimizers: parameter groups, state, ``step`` and state dicts.

    Args:
        params: an iterable of Tensors, or of dicts (parameter groups) each with a
            ``"params"`` entry and hyperparameters that override ``defaults``.
        defaults: the hyperparameters every group starts from.

    Example:
        >>> import ember.optim
        >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
        >>> opt = ember.optim.SGD([w], lr=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        tensor([0., 0.], requires_grad=True)
    """

    def __init__(self, params: Params, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self._validate(self.defaults)
        self.state: defaultdict[ember.Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, ember.Tensor):
            raise TypeError(
                "params must be an iterable of Tensors or of dicts (parameter groups), "
                "got a single Tensor; wrap it in a list: [tensor]"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE.format(type(params).__name__))
        if isinstance(params, dict):
            raise TypeError(
                "params must be an iterable of Tensors or of dicts (parameter groups), got a "
                "dict; pass a list of group dicts, e.g. [{'params': [...], 'lr': 0.1}]"
            )
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with hyperparameters that override the defaults.

        Args:
            param_group: a dict with ``"params"`` (a Tensor or an ordered iterable of
                Tensors) and optionally hyperparameters such as ``"lr"``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(
                f"a parameter group must be a dict with a 'params' entry, got "
                f"{type(param_group).__name__}; when passing groups, every element must be a dict"
            )
        if "params" not in param_group:
            raise ValueError("a parameter group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, ember.Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE.format(type(params).__name__))
        else:
            params = list(params)
        seen: set[int] = set()
        for i, p in enumerate(params):
            if not isinstance(p, ember.Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but parameter {i} of the group is a "
                    f"{type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"can't optimize a non-leaf Tensor (parameter {i} of the group); optimize the "
                    "leaf it was computed from, or detach().requires_grad_() it"
                )
            if id(p) in seen:
                raise ValueError(
                    f"parameter {i} of the group appears twice in it; pass each parameter once"
                )
            seen.add(id(p))
        for group in self.param_groups:
            if any(id(p) in seen for p in group["params"]):
                raise ValueError(
                    "some parameters appear in more than one parameter group; "
                    "each parameter may belong to one group only"
                )
        group = dict(param_group)
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, hparams: dict[str, Any]) -> None:
        """Raise ValueError for bad hyperparameters (defaults, or a group being added)."""

    # ----------------------------------------------------------------- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None  # unconditionally: ember.compile sees a write, not a read
                elif p.grad is not None:
                    p.grad.detach_()
                    p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, once.

        Args:
            closure: optional function that recomputes the loss (zeroing grads and
                calling ``backward()`` itself); it runs with grad enabled before the update.

        Returns:
            The closure's loss, or None without a closure.
        """
        loss = None
        if closure is not None:
            with ember.enable_grad():
                loss = closure()
        tracer = registry._tracer
        with ember.no_grad():
            for group in self.param_groups:
                if tracer is None:
                    self._update_group(group)
                    continue
                # ember.compile: the learning rate is a graph input read from the group on
                # every call (schedulers change it); the other hyperparameters are guarded.
                tracer.optimizers[id(self)] = self
                lr = group["lr"]
                group["lr"] = tracer.dynamic(group, "lr")
                try:
                    self._update_group(group)
                finally:
                    group["lr"] = lr
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} must implement _update_group(group) (or override step())"
        )

    @staticmethod
    def _with_grad(group: dict[str, Any]) -> Iterator[tuple[ember.Tensor, ember.Tensor]]:
        """The ``(param, grad)`` pairs of a group, skipping parameters without a gradient."""
        for p in group["params"]:
            if p.grad is not None:
                yield p, p.grad

    # ----------------------------------------------------------------- state dicts
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, PyTorch's layout: parameters are named by their index.

        Returns:
            ``{"state": {index: {name: Tensor | number}}, "param_groups": [{..., "params":
            [index, ...]}]}``. The state tensors are the live buffers (not copies), as in
            PyTorch: save or load the dict before stepping again.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load state from :meth:`state_dict` (of this optimizer class, same groups).

        Tensors are copied (and cast to each parameter's dtype and device, except
        ``"step"``); hyperparameters come from the saved groups. Nothing changes if the
        dict does not fit.
        """
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ValueError(
                "an optimizer state dict is a dict with 'state' and 'param_groups' entries; "
                "pass what Optimizer.state_dict() returned"
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, but this optimizer "
                f"has {len(self.param_groups)}"
            )
        id_map: dict[Any, ember.Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"loaded state dict's parameter group {i} has {len(saved['params'])} "
                    f"parameters, but this optimizer's group {i} has {len(group['params'])}"
                )
            id_map.update(zip(saved["params"], group["params"]))
        state: defaultdict[ember.Tensor, dict[str, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key not in id_map:
                raise ValueError(
                    f"loaded state dict has state for parameter {key!r}, which none of its "
                    "parameter groups lists"
                )
            p = id_map[key]
            state[p] = {name: _copy_value(p, name, v) for name, v in value.items()}
        groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new["params"] = group["params"]
            groups.append(new)
        self.state = state
        self.param_groups = groups

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        return "\n".join([*lines, ")"])


def _copy_value(param: ember.Tensor, name: str, value: Any) -> Any:
    if name == "step":  # a step count: kept as a float64 tensor whatever the parameter's dtype
        return ember.tensor(float(value), dtype=ember.float64)
    if isinstance(value, ember.Tensor):
        return value.detach().to(dtype=param.dtype, device=param.device).clone()
    return copy.deepcopy(value)


def check_range(
    hparams: dict[str, Any],
    name: str,
    low: float,
    high: float | None = None,
    high_open: bool = False,
    index: int | None = None,
) -> None:
    """Raise ValueError unless ``hparams[name]`` lies in [low, high] (or [low, high))."""
    if name not in hparams:
        return
    value = hparams[name] if index is None else hparams[name][index]
    ok = value >= low and (high is None or (value < high if high_open else value <= high))
    if not ok:
        what = name if index is None else f"{name}[{index}]"
        what = "learning rate" if what == "lr" else what
        interval = f"[{low}, ∞)" if high is None else f"[{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"Invalid {what} value: {value} (expected a value in {interval})")


def gradient(
    p: ember.Tensor, grad: ember.Tensor, weight_decay: float, maximize: bool
) -> ember.Tensor:
    """The gradient an update descends: ``±grad + weight_decay * p``.

    Returns ``grad`` itself when there is nothing to add (callers must not write
    into it), else one fresh tensor.
    """
    if weight_decay != 0:
        g = p * weight_decay
        return g.sub_(grad) if maximize else g.add_(grad)
    return -grad if maximize else grad


def next_step(state: dict[str, Any]) -> Any:
    """Count one more step in ``state["step"]`` (a 0-d float64 tensor, as PyTorch keeps it).

    Returns the new count as a float, or while ``ember.compile`` traces as the 0-d
    tensor itself (its value is only known when the compiled step runs)."""
    t = state["step"]
    t.add_(1)
    if is_tracing():  # ember.compile: the count is a graph value, not a Python number
        return t
    return float(t.item())


def new_step() -> ember.Tensor:
    return ember.zeros((), dtype=ember.float64)
