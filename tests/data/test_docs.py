"""The examples in docs/data.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def test_data_md_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) > 10
    namespace: dict[str, object] = {"__name__": "data_md"}
    for block in blocks:
        if block.startswith("# not run"):
            continue
        exec(compile(block, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "Caught ValueError in DataLoader worker process 1" in out
    assert "bad record 3" in out
