"""The docs and README say what ember does: their snippets run and their tables hold.

* ```pycon blocks anywhere in docs/ are doctests, run in order in one namespace per file
  (write ```pycon for a snippet that runs exactly as shown);
* ```python blocks in the pages listed in SCRIPTED run as one script per page, in order
  (other pages may show fragments that need a network or a model);
* the dtype tables in docs/dtypes.md are checked entry by entry against ember.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from typing import Any

import pytest

import ember

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
SCRIPTED = [ROOT / "README.md", ROOT / "docs" / "dtypes.md"]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL


def blocks(path: Path, lang: str) -> list[tuple[int, str]]:
    text = path.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == lang
    ]


@pytest.fixture(autouse=True)
def _restore_default_dtype() -> Any:
    yield
    ember.set_default_dtype(ember.float32)


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p, "pycon")], ids=lambda p: p.name)
def test_pycon_snippets(path: Path) -> None:
    found = blocks(path, "pycon")
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=FLAGS)
    globs: dict[str, Any] = {}
    for lineno, text in found:
        test = parser.get_doctest(text, globs, path.name, str(path), lineno)
        runner.run(test, clear_globs=False)
        globs = test.globs  # DocTest copies its globals: carry them to the next snippet
    assert runner.failures == 0, f"{runner.failures} snippet example(s) in {path.name} failed"


@pytest.mark.parametrize("path", SCRIPTED, ids=lambda p: p.name)
def test_python_snippets(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = blocks(path, "python")
    assert found, f"{path.name} has no python snippets to run"
    namespace: dict[str, Any] = {"__name__": "__snippet__"}
    for lineno, text in found:
        # Pad so tracebacks point at the line in the markdown file.
        exec(compile("\n" * lineno + text, str(path), "exec"), namespace)


# ----------------------------------------------------------------- docs/dtypes.md tables
DTYPES_MD = ROOT / "docs" / "dtypes.md"
NAMES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
         "float64")  # fmt: skip
OPERAND = re.compile(r"\b(" + "|".join(NAMES) + r")\[(\d*)\]")


def dtype(name: str) -> Any:
    if name == "bfloat16" and not hasattr(ember, "bfloat16"):
        pytest.skip("bfloat16 needs ml_dtypes")
    return getattr(ember, name)


def operand(name: str, dims: str) -> ember.Tensor:
    shape = (int(dims),) if dims else ()
    return ember.ones(*shape, dtype=dtype(name))


def table(title: str) -> list[list[str]]:
    """The rows (cells stripped of ` and **) of the first table after ``title``."""
    text = DTYPES_MD.read_text()
    start = text.index(title)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [c.strip().strip("`").strip("*") for c in line.strip("|").split("|")]
            if not set(cells[0]) <= {"-"}:
                rows.append(cells)
        elif rows:
            break
    return rows


def name_of(d: Any) -> str:
    return repr(d).removeprefix("ember.")


def tensor_tensor_cases() -> list[tuple[str, str, str]]:
    head, *rows = table("### Tensor with tensor")
    return [(r[0], b, want) for r in rows for b, want in zip(head[1:], r[1:])]


@pytest.mark.parametrize("a,b,want", tensor_tensor_cases())
def test_tensor_tensor_table(a: str, b: str, want: str) -> None:
    assert name_of((operand(a, "2") + operand(b, "2")).dtype) == want
    assert name_of(ember.promote_types(dtype(a), dtype(b))) == want


def scalar_cases() -> list[tuple[str, str, str]]:
    head, *rows = table("### Tensor with Python scalar")
    return [(r[0], s.removeprefix("+ "), want) for r in rows for s, want in zip(head[1:], r[1:])]


@pytest.mark.parametrize("a,scalar,want", scalar_cases())
def test_tensor_scalar_table(a: str, scalar: str, want: str) -> None:
    value = {"True": True, "2": 2, "2.5": 2.5}[scalar]
    assert name_of((operand(a, "3") + value).dtype) == want


def expression_cases() -> list[tuple[str, str]]:
    _, *rows = table("### Zero-dim tensors, division")
    return [(r[0], r[1]) for r in rows]


@pytest.mark.parametrize("expr,want", expression_cases())
def test_expression_table(expr: str, want: str) -> None:
    for name in set(OPERAND.findall(expr)):
        dtype(name[0])  # skips when the table needs a dtype this install lacks
    code = OPERAND.sub(lambda m: f'_t("{m[1]}", "{m[2]}")', expr)
    namespace = {n: getattr(ember, n) for n in ("sqrt", "exp", "sigmoid", "maximum", "where",
                                                "sum", "prod", "cumsum", "mean")}  # fmt: skip
    namespace["_t"] = operand
    assert name_of(eval(code, namespace).dtype) == want


def test_tables_are_not_empty() -> None:
    assert len(tensor_tensor_cases()) == 100
    assert len(scalar_cases()) == 30
    assert len(expression_cases()) >= 30
