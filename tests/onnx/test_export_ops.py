"""ember.onnx.export for every entry of the op table: onnxruntime against ember, static and batched.

Each sample of each op (in float32 where the op takes it, else its first dtype)
becomes a small function of the sample's arrays; it is exported, checked with
``onnx.checker`` (full check) and run by onnxruntime, and the outputs must match
ember's eager outputs (float32 within 1e-5, integers and bools exactly). Where
the sample's arrays share a leading axis, that axis is also exported as a
dynamic ``batch`` axis and run at the example size and one larger.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from tests.ops.op_table import OPS, OpInfo, Sample  # noqa: E402

import ember  # noqa: E402
from ember.onnx import OnnxExportError  # noqa: E402

# Op-table entries that cannot be exported: the regex their export error must match. A new
# lowering (or a regression) shows up here. Both are data-dependent shapes, which a trace
# with shapes only cannot record.
NOT_EXPORTABLE: dict[str, str] = {
    "masked_select": "getitem: a boolean mask made inside",  # shape follows the mask's values
}
# Samples of exportable entries refused for the same reason: a boolean mask that is a model
# input (a constant mask exports: see test_export.py), one_hot without num_classes.
REFUSED_SAMPLES: dict[str, tuple[Callable[[Sample, list[np.ndarray]], bool], str]] = {
    "getitem": (lambda s, arrays: any(a.dtype == bool for a in arrays), "boolean mask"),
    "setitem": (lambda s, arrays: any(a.dtype == bool for a in arrays), "boolean mask"),
    "one_hot": (lambda s, arrays: len(s.args) < 2, r"Tensor\.item\(\)"),
}
# Entries whose leading axis cannot be dynamic in some samples, and the error's regex.
STATIC_ONLY: dict[str, str] = {
    "unbind": "graph changes with the size",  # one output per row
    "split": "graph changes with the size|other than as a",  # piece count and sizes follow it
    "chunk": "graph changes with the size|other than as a",
    "roll": "constant array",  # the rolled positions are a constant of the axis' size
    "tril": "varying values",  # the triangle mask is a constant of the axes' sizes
    "triu": "varying values",
}

TOL = {"float32": (1e-5, 1e-5), "float64": (1e-10, 1e-12)}


class _Slot:
    def __init__(self, i: int) -> None:
        self.i = i


def _split(value: Any, arrays: list[np.ndarray]) -> Any:
    """``value`` with its NumPy arrays (at any tuple / list depth) cut out as slots."""
    if isinstance(value, np.ndarray):
        arrays.append(np.array(value, order="C"))  # ascontiguousarray makes 0-d 1-d
        return _Slot(len(arrays) - 1)
    if isinstance(value, (tuple, list)):
        return type(value)(_split(v, arrays) for v in value)
    return value


def _fill(value: Any, tensors: tuple[Any, ...]) -> Any:
    if isinstance(value, _Slot):
        return tensors[value.i]
    if isinstance(value, (tuple, list)):
        return type(value)(_fill(v, tensors) for v in value)
    return value


def _flat(out: Any) -> list[np.ndarray]:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flat(o)]
    return [np.asarray(out.numpy())]


def _case(info: OpInfo, sample: Sample) -> tuple[Any, list[np.ndarray]]:
    arrays: list[np.ndarray] = []
    args = _split(sample.args, arrays)
    kwargs = {k: _split(v, arrays) for k, v in sample.kwargs.items()}

    def fn(*tensors: Any) -> Any:
        return info.op(*_fill(args, tensors), **_fill(kwargs, tensors))

    return fn, arrays


def _eager(fn: Any, arrays: list[np.ndarray]) -> list[np.ndarray]:
    return _flat(fn(*[ember.from_numpy(a.copy()) for a in arrays]))


def _compare(got: list[np.ndarray], want: list[np.ndarray], dtype: str, what: str) -> None:
    assert len(got) == len(want), what
    rtol, atol = TOL.get(dtype, (0.0, 0.0))
    for g, w in zip(got, want):
        assert g.dtype == w.dtype, f"{what}: dtype {g.dtype} != {w.dtype}"
        assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
        else:
            np.testing.assert_array_equal(g, w, err_msg=what)


def _run(model: Any, names: list[str], arrays: list[np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, dict(zip(names, arrays)))]


def _names(arrays: list[np.ndarray]) -> list[str]:
    return ["input"] if len(arrays) == 1 else [f"input_{i}" for i in range(len(arrays))]


def _batched(arrays: list[np.ndarray]) -> list[int]:
    """The arrays that share the first array's leading axis (of size 2 or more)."""
    if not arrays or arrays[0].ndim == 0 or arrays[0].shape[0] < 2:
        return []
    n = arrays[0].shape[0]
    return [i for i, a in enumerate(arrays) if a.ndim and a.shape[0] == n]


def _dtype(info: OpInfo) -> str:
    return "float32" if "float32" in info.dtypes else info.dtypes[0]


EXPORTABLE = [info for info in OPS if info.name not in NOT_EXPORTABLE]


@pytest.mark.parametrize("info", EXPORTABLE, ids=lambda i: i.name)
def test_op_exports_and_matches_onnxruntime(info: OpInfo) -> None:
    dtype = _dtype(info)
    refused = REFUSED_SAMPLES.get(info.name)
    exported = batched = static_only = 0
    for sample in info.make_samples(dtype):
        fn, arrays = _case(info, sample)
        if not arrays:
            continue
        inputs = tuple(ember.from_numpy(a) for a in arrays)
        if refused is not None and refused[0](sample, arrays):
            with pytest.raises(OnnxExportError, match=refused[1]):
                ember.onnx.export(fn, inputs, None)
            continue
        names = _names(arrays)
        want = _eager(fn, arrays)
        model = ember.onnx.export(fn, inputs, None)
        _compare(_run(model, names, arrays), want, dtype, f"{info.name} {sample}")
        exported += 1
        batch = _batched(arrays)
        if not batch:
            continue
        bigger = [np.concatenate([a, a[:1]]) if i in batch else a for i, a in enumerate(arrays)]
        try:
            want_big = _eager(fn, bigger)
        except Exception:
            continue  # the op itself does not take the larger batch (shapes must agree)
        axes = {names[i]: {0: "batch"} for i in batch}
        if info.name in STATIC_ONLY:
            try:
                model = ember.onnx.export(fn, inputs, None, dynamic_axes=axes)
            except OnnxExportError as e:
                assert re.search(STATIC_ONLY[info.name], str(e)), str(e)
                static_only += 1
                continue
        else:
            model = ember.onnx.export(fn, inputs, None, dynamic_axes=axes)
        _compare(_run(model, names, arrays), want, dtype, f"{info.name} {sample} batch")
        _compare(_run(model, names, bigger), want_big, dtype, f"{info.name} {sample} batch+1")
        batched += 1
    assert exported, f"{info.name}: no sample was exported"
    if info.name in STATIC_ONLY:  # keep the list honest: some sample must still be refused
        assert static_only, f"{info.name} now exports with a dynamic batch: update STATIC_ONLY"


@pytest.mark.parametrize("name", sorted(NOT_EXPORTABLE))
def test_non_exportable_op_raises_a_clear_error(name: str) -> None:
    info = next(i for i in OPS if i.name == name)
    for sample in info.make_samples(_dtype(info)):
        fn, arrays = _case(info, sample)
        with pytest.raises(OnnxExportError, match=NOT_EXPORTABLE[name]):
            ember.onnx.export(fn, tuple(ember.from_numpy(a) for a in arrays), None)


def test_dynamic_batch_is_exercised_for_most_of_the_table() -> None:
    """Guards the harness itself: most entries must run at two batch sizes."""
    count = 0
    for info in EXPORTABLE:
        for sample in info.make_samples(_dtype(info)):
            _, arrays = _case(info, sample)
            if _batched(arrays) and info.name not in STATIC_ONLY:
                count += 1
                break
    assert count >= 120, count
