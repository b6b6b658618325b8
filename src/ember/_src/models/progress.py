"""The fit loop's progress display: a live bar on a terminal, one line per epoch otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any


def format_logs(logs: dict[str, Any]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if isinstance(v, float))


class Progress:
    """Prints training progress to ``sys.stdout`` (looked up at each write).

    On a TTY each batch redraws ``step/total [=====>....] - ETA: 3s - loss: ...`` in
    place with ``\\r``; elsewhere only the finished epoch's line is printed.
    """

    width = 30

    def __init__(self, epochs: int, steps: int | None) -> None:
        self.epochs = epochs
        self.steps = steps
        self.start = 0.0

    def epoch_begin(self, epoch: int) -> None:
        self.start = time.perf_counter()
        sys.stdout.write(f"Epoch {epoch + 1}/{self.epochs}\n")
        sys.stdout.flush()

    def batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if not sys.stdout.isatty():
            return
        elapsed = time.perf_counter() - self.start
        line = f"{step}/{self.steps or '?'} {self._bar(step)}"
        if self.steps:
            eta = elapsed / step * (self.steps - step)
            line += f" - ETA: {eta:.0f}s"
        sys.stdout.write(f"\r{line} - {format_logs(logs)}\x1b[K")
        sys.stdout.flush()

    def epoch_end(self, steps_done: int, logs: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - self.start
        prefix = "\r" if sys.stdout.isatty() else ""
        line = f"{steps_done}/{steps_done} {self._bar(steps_done, steps_done)} - {elapsed:.1f}s"
        sys.stdout.write(f"{prefix}{line} - {format_logs(logs)}\n")
        sys.stdout.flush()

    def _bar(self, step: int, total: int | None = None) -> str:
        total = total or self.steps
        if not total:
            return ""
        done = int(self.width * min(step, total) / total)
        arrow = ">" if done < self.width else ""
        return "[" + "=" * done + arrow + "." * (self.width - done - len(arrow)) + "]"
