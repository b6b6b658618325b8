"""``Model.summary()``: layers, output shapes and parameter counts as a text table."""

from __future__ import annotations

from typing import Any

import ember
from ember._src.nn.module import Module


def count_params(module: Module) -> tuple[int, int]:
    """``(trainable, non_trainable)`` parameter counts (shared parameters counted once)."""
    trainable = frozen = 0
    for p in module.parameters():
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return trainable, frozen


def _output_shapes(model: Any) -> dict[str, str]:
    """Each child's output shape from one call on a zero batch of size 1."""
    specs = model._input_specs
    if specs is None:
        return {}
    shapes: dict[str, str] = {}
    hooks = []
    for name, child in model.named_children():

        def record(mod: Module, args: Any, out: Any, name: str = name) -> None:
            outs = out if isinstance(out, (list, tuple)) else (out,)
            shapes[name] = ", ".join(
                str((None, *o.shape[1:])) if hasattr(o, "shape") else "?" for o in outs
            )

        hooks.append(child.register_forward_hook(record))
    was = model.training
    model.eval()
    try:
        with ember.no_grad():
            model(*[ember.zeros(1, *shape, dtype=dtype) for shape, dtype in specs])
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return shapes


def summarize(model: Any) -> str:
    """The summary table of ``model`` as a string."""
    shapes = _output_shapes(model)
    rows = [("Layer (type)", "Output Shape", "Param #")]
    for name, child in model.named_children():
        trainable, frozen = count_params(child)
        rows.append(
            (f"{name} ({type(child).__name__})", shapes.get(name, "?"), f"{trainable + frozen:,}")
        )
    widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
    line = "=" * sum(widths)
    trainable, frozen = count_params(model)
    out = [f'Model: "{model.name}"', line]
    out.append("".join(c.ljust(w) for c, w in zip(rows[0], widths)).rstrip())
    out.append(line)
    for r in rows[1:]:
        out.append("".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    out.append(line)
    out.append(f"Total params: {trainable + frozen:,}")
    out.append(f"Trainable params: {trainable:,}")
    out.append(f"Non-trainable params: {frozen:,}")
    if not shapes:
        out.append("(output shapes unknown: call the model once, or start it with an Input)")
    return "\n".join(out)
