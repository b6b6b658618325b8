"""The CPU thread count of the BLAS NumPy uses: ``ember.get_num_threads`` /
``ember.set_num_threads`` (PyTorch's names).

NumPy does not expose its BLAS's thread control, so the OpenBLAS it loaded is found
among the process's shared objects (Linux ``/proc/self/maps``) and asked directly
through its exported C functions; no third-party package is needed.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any


def _loaded_libraries() -> list[str]:
    """Paths of shared objects mapped into this process (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if ".so" in line and "/" in line}
    except OSError:
        return []
    return sorted(paths)


@functools.cache
def openblas() -> tuple[str, dict[str, Any]] | None:
    """The loaded OpenBLAS: its path and its ``get_corename`` / ``get_num_threads`` /
    ``set_num_threads`` functions, or None when none is found."""
    for path in _loaded_libraries():
        if "openblas" not in os.path.basename(path).lower():
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", "_64_", ""):
                fns: dict[str, Any] = {
                    name: getattr(lib, f"{prefix}_{name}{suffix}", None)
                    for name in ("get_corename", "get_num_threads", "set_num_threads")
                }
                if any(fn is None for fn in fns.values()):
                    continue
                fns["get_corename"].restype = ctypes.c_char_p
                fns["get_num_threads"].restype = ctypes.c_int
                fns["set_num_threads"].argtypes = [ctypes.c_int]
                fns["set_num_threads"].restype = None
                return path, fns
    return None


def get_num_threads() -> int:
    """The number of threads the BLAS uses for matrix products (``os.cpu_count()`` when
    the BLAS cannot be asked).

    Example:
        >>> import ember
        >>> ember.get_num_threads() >= 1
        True
    """
    found = openblas()
    if found is None:
        return os.cpu_count() or 1
    return int(found[1]["get_num_threads"]())


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for the BLAS's matrix products in this process.

    On a machine whose cores are busy with other processes, one thread is often
    faster than several: the BLAS's threads wait for each other at every product.

    Args:
        n: a positive number of threads.

    Raises:
        RuntimeError: NumPy's BLAS is not an OpenBLAS ember can reach; set
            ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` before Python starts instead.

    Example:
        >>> import ember
        >>> before = ember.get_num_threads()
        >>> ember.set_num_threads(1)
        >>> ember.get_num_threads()
        1
        >>> ember.set_num_threads(before)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    found = openblas()
    if found is None:
        raise RuntimeError(
            "set_num_threads: NumPy's BLAS is not an OpenBLAS that ember can reach in this "
            "process; set OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS, MKL_NUM_THREADS) in the "
            "environment before starting Python instead"
        )
    found[1]["set_num_threads"](n)
