"""The ``ember`` command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import ember
from ember._src.cli import info
from ember._src.cli.main import main


def test_info_prints_versions_backends_blas_threads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["ember"].strip() == ember.__version__
    assert fields["numpy"].strip() == np.__version__
    assert fields["python"].strip().startswith(".".join(map(str, sys.version_info[:2])))
    assert fields["backend cpu"].strip() == f"NumPy {np.__version__}"
    assert fields["backend cuda"].strip()  # found, or says why not
    assert fields["blas"].strip()
    assert "usable" in fields["threads"]


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ember"] == ember.__version__
    assert set(report["backends"]) == {"cpu", "cuda"}
    assert report["cpus"]["usable"] >= 1


def test_cuda_without_cupy_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    ok, line = info.cuda_status()
    assert not ok
    assert "CuPy is not installed" in line


def test_openblas_is_introspected_when_numpy_uses_it() -> None:
    blas = info.blas_info()
    if "openblas" not in blas["name"].lower():
        pytest.skip(f"NumPy uses {blas['name']}, not OpenBLAS")
    assert blas["threads"] >= 1
    assert blas["core"]


def test_unknown_subcommand_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'no-such-command'" in err
    assert "info" in err


def test_no_subcommand_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "required" in capsys.readouterr().err


def test_console_script_entry_point() -> None:
    code = "import sys; from ember._src.cli.main import main; sys.exit(main(['info']))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.startswith("ember:")
