"""``ember info``: the version, backends, BLAS and thread counts this process sees.

BLAS is read without threadpoolctl: NumPy's build configuration names the
library, and for OpenBLAS the shared object NumPy loaded is asked directly
(through ctypes) for its runtime core type and thread count.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import Any

import numpy as np

import ember
from ember._src.core import threads

_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
)


def cuda_status() -> tuple[bool, str]:
    """Whether CUDA is usable through CuPy, and a line saying what was found or why not."""
    try:
        cupy: Any = importlib.import_module("cupy")
    except ImportError as e:
        if e.name == "cupy":
            return False, "not available: CuPy is not installed (pip install cupy-cuda12x)"
        return False, f"not available: CuPy failed to import ({e})"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as e:  # CuPy raises its own CUDA errors when no driver/GPU is present
        return False, f"not available: CuPy {cupy.__version__} sees no GPU ({e})"
    if count == 0:
        return False, f"not available: CuPy {cupy.__version__} sees no GPU"
    names = []
    for i in range(count):
        props = cupy.cuda.runtime.getDeviceProperties(i)
        name = props["name"]
        names.append(name.decode() if isinstance(name, bytes) else str(name))
    return True, f"CuPy {cupy.__version__}, {count} GPU(s): {', '.join(names)}"


def _openblas_runtime() -> dict[str, Any]:
    """Ask the OpenBLAS that NumPy loaded for its core type and thread count."""
    found = threads.openblas()
    if found is None:
        return {}
    path, fns = found
    return {
        "library": path,
        "core": (fns["get_corename"]() or b"?").decode(),
        "threads": int(fns["get_num_threads"]()),
    }


def blas_info() -> dict[str, Any]:
    """The BLAS NumPy uses: name and version from its build config, runtime details if known."""
    info: dict[str, Any] = {"name": "unknown", "version": ""}
    try:
        config: Any = np.show_config(mode="dicts")  # NumPy >= 1.25
        blas = config["Build Dependencies"]["blas"]
        info["name"], info["version"] = blas.get("name", "unknown"), blas.get("version", "")
    except Exception:  # older NumPy prints instead of returning; keep the defaults
        pass
    if "openblas" in info["name"].lower():
        info.update(_openblas_runtime())
    return info


def collect() -> dict[str, Any]:
    """Everything ``ember info`` prints, as a dict."""
    cuda_ok, cuda_line = cuda_status()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return {
        "ember": ember.__version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "numpy": np.__version__,
        "platform": platform.platform(),
        "backends": {"cpu": f"NumPy {np.__version__}", "cuda": cuda_line},
        "cuda_available": cuda_ok,
        "blas": blas_info(),
        "cpus": {"logical": os.cpu_count(), "usable": usable},
        "env": {k: os.environ[k] for k in _THREAD_ENV if k in os.environ},
    }


def render(info: dict[str, Any]) -> str:
    """The report as aligned ``key: value`` lines."""
    blas = info["blas"]
    blas_line = f"{blas['name']} {blas['version']}".strip()
    if "core" in blas:
        blas_line += f" (core {blas['core']})"
    threads = f"{info['cpus']['usable']} usable of {info['cpus']['logical']} logical CPUs"
    if "threads" in blas:
        threads += f"; BLAS threads {blas['threads']}"
    env = ", ".join(f"{k}={v}" for k, v in info["env"].items()) or "none set"
    rows = [
        ("ember", info["ember"]),
        ("python", info["python"]),
        ("numpy", info["numpy"]),
        ("platform", info["platform"]),
        ("backend cpu", info["backends"]["cpu"]),
        ("backend cuda", info["backends"]["cuda"]),
        ("blas", blas_line),
        ("threads", threads),
        ("thread env", env),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in rows)


def run(args: Any) -> int:
    if args.json:
        import json

        print(json.dumps(collect(), indent=2))
    else:
        print(render(collect()))
    return 0
