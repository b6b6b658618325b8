"""Training curves from a ``History`` as a PNG, with matplotlib (an optional extra)."""

from __future__ import annotations

import os
from typing import Any

#: Inches per panel, and pixels per inch: a PNG of n panels is (n * 400) x 300 pixels.
PANEL_SIZE = (4.0, 3.0)
DPI = 100


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plotting training curves needs matplotlib: pip install matplotlib "
            "(or pip install 'ember[plot]')"
        ) from None
    return Figure, FigureCanvasAgg


def plot_history(history: Any, path: str | os.PathLike[str]) -> str:
    """Write a PNG of the training curves in ``history``: one panel per logged quantity.

    Each panel plots one quantity (``loss``, each metric, ``learning_rate`` when logged)
    against the epoch (counting from 1), the training values and, when ``fit`` had
    validation data, the ``val_`` values on the same axes. The figure is drawn off-screen
    (matplotlib's Agg canvas), so it works without a display.

    Args:
        history: The ``History`` that ``fit`` returns (or anything with ``history`` and
            ``epoch`` attributes like it).
        path: Where to write the PNG.

    Returns:
        ``path``, as a str.

    Example:
        >>> import os, tempfile
        >>> import ember
        >>> from ember.models import Sequential, layers
        >>> model = Sequential([layers.Dense(3)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x = ember.randn(32, 3)
        >>> history = model.fit(x, x, epochs=3, validation_split=0.25, verbose=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     os.path.isfile(history.plot(os.path.join(d, "curves.png")))
        True
    """
    Figure, FigureCanvasAgg = _matplotlib()
    logs: dict[str, list[float]] = dict(history.history)
    names = [k for k in logs if not k.startswith("val_")]
    names += [k for k in logs if k.startswith("val_") and k.removeprefix("val_") not in logs]
    if not names:
        raise ValueError("the history is empty: plot it after fit has run at least one epoch")
    epochs = [e + 1 for e in history.epoch]
    width, height = PANEL_SIZE
    figure = Figure(figsize=(width * len(names), height), dpi=DPI)
    FigureCanvasAgg(figure)
    for i, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), i + 1)
        base = name.removeprefix("val_")
        for key, label in ((base, "train"), (f"val_{base}", "validation")):
            if key in logs:
                axes.plot(epochs[-len(logs[key]) :], logs[key], marker=".", label=label)
        axes.set_title(base)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    path = os.fspath(path)
    figure.savefig(path, format="png", dpi=DPI)
    return path
