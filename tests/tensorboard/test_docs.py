"""The examples in docs/tensorboard.md run as written, and write what they say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

DOC = Path(__file__).resolve().parents[2] / "docs" / "tensorboard.md"


def test_tensorboard_md_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOC.read_text()
    blocks = [
        (text.count("\n", 0, m.start()) + 1, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    ]
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)  # the examples write under ./runs
    namespace: dict[str, object] = {"__name__": "tensorboard_md"}
    for lineno, block in blocks:
        # Pad so tracebacks point at the line in the markdown file.
        exec(compile("\n" * lineno + block, str(DOC), "exec"), namespace)
    runs = tmp_path / "runs"
    assert {p.name for p in (runs / "mlp").iterdir() if p.is_dir()} == {"loss_train", "loss_val"}
    assert {p.name for p in (runs / "sweep").iterdir()} >= {"lr=0.1", "lr=0.01"}
    assert (runs / "embedding" / "00000" / "features" / "sprite.png").is_file()
    assert (runs / "embedding" / "00001" / "default" / "metadata.tsv").is_file()
    graph = EventAccumulator(str(runs / "graph"))
    graph.Reload()
    assert "Net/Conv2d[conv]/conv" in {node.name for node in graph.Graph().node}
