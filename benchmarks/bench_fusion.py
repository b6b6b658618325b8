"""Elementwise fusion on the CPU: which form should ember.compile generate?

    python -m benchmarks.bench_fusion            # numexpr is used when installed
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1 python -m benchmarks.bench_fusion

Two chains from a training step, float32, at three sizes (an MLP layer's
weights, a transformer activation, a large batch):

* ``adam``: the Adam update ``p - lr * (b1*m + (1-b1)*g) / (sqrt(b2*v + (1-b2)*g*g) + eps)``
  (12 elementwise ops);
* ``sigmoid_grad``: ``g / (1 + exp(-x))`` (4 ops).

Forms: ``numpy`` (one ufunc call per op, each allocating its result: what
eager execution and unplanned generated code do), ``numpy_out`` (the same
calls writing through ``out=`` into buffers allocated once: what the memory
plan generates), and ``numexpr`` (one ``numexpr.evaluate`` of the whole
expression, its own threads). Each figure is the best of 5 repeats; all forms
are checked to agree.
"""

from __future__ import annotations

import importlib.util
import os
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

SIZES = (25_000, 262_144, 2_000_000)


def forms(n: int) -> dict[str, dict[str, Callable[[], Any]]]:
    rng = np.random.default_rng(0)
    p, g, m, v = (rng.standard_normal(n).astype(np.float32) for _ in range(4))
    v = np.abs(v)
    f = np.float32
    b1, b2, lr, eps = f(0.9), f(0.999), f(1e-3), f(1e-8)
    t1, t2, t3 = np.empty_like(p), np.empty_like(p), np.empty_like(p)

    def adam() -> Any:
        return p - lr * (b1 * m + (1 - b1) * g) / (np.sqrt(b2 * v + (1 - b2) * (g * g)) + eps)

    def adam_out() -> Any:
        np.multiply(m, b1, out=t1)
        np.multiply(g, 1 - b1, out=t2)
        np.add(t1, t2, out=t1)
        np.multiply(g, g, out=t2)
        np.multiply(t2, 1 - b2, out=t2)
        np.multiply(v, b2, out=t3)
        np.add(t3, t2, out=t3)
        np.sqrt(t3, out=t3)
        np.add(t3, eps, out=t3)
        np.multiply(t1, lr, out=t1)
        np.divide(t1, t3, out=t1)
        return np.subtract(p, t1, out=t1)

    def sig() -> Any:
        return g / (1 + np.exp(-p))

    def sig_out() -> Any:
        np.negative(p, out=t1)
        np.exp(t1, out=t1)
        np.add(t1, 1, out=t1)
        return np.divide(g, t1, out=t1)

    out: dict[str, dict[str, Callable[[], Any]]] = {
        "adam": {"numpy": adam, "numpy_out": adam_out},
        "sigmoid_grad": {"numpy": sig, "numpy_out": sig_out},
    }
    if importlib.util.find_spec("numexpr") is not None:
        import numexpr

        names = {"p": p, "g": g, "m": m, "v": v, "b1": b1, "b2": b2, "lr": lr, "eps": eps}
        adam_ex = "p - lr * (b1*m + (1-b1)*g) / (sqrt(b2*v + (1-b2)*(g*g)) + eps)"
        out["adam"]["numexpr"] = lambda: numexpr.evaluate(adam_ex, local_dict=names, out=t1)
        sig_ex = "g / (1 + exp(-p))"
        out["sigmoid_grad"]["numexpr"] = lambda: numexpr.evaluate(sig_ex, local_dict=names, out=t1)
    return out


def main() -> None:
    have = importlib.util.find_spec("numexpr") is not None
    threads = os.environ.get("NUMEXPR_NUM_THREADS", "numexpr's default")
    print(f"numexpr: {'threads ' + threads if have else 'not installed (pip install numexpr)'}")
    print(f"{'chain':<13} {'size':>9}  " + "  ".join(f"{k:>10}" for k in ("numpy", "numpy_out",
          "numexpr")) + "   (us per call)")  # fmt: skip
    for n in SIZES:
        for chain, fns in forms(n).items():
            ref = np.array(fns["numpy"]())
            cells = []
            for name in ("numpy", "numpy_out", "numexpr"):
                fn = fns.get(name)
                if fn is None:
                    cells.append(f"{'-':>10}")
                    continue
                np.testing.assert_allclose(np.array(fn()), ref, rtol=1e-4, atol=1e-6)
                number = max(1, 2_000_000 // n)
                best = min(timeit.repeat(fn, number=number, repeat=5)) / number
                cells.append(f"{best * 1e6:10.1f}")
            print(f"{chain:<13} {n:>9}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
