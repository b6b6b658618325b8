"""ember in the ONNX backend test suite (the node and small-model cases in the onnx wheel).

CI runs only the tests listed in ``allowlist.txt``, so a regression in any of
them fails. To regenerate the list, run every test once and keep the passes::

    EMBER_ONNX_ALL=1 python -m pytest tests/onnx/test_backend.py -q -p no:cacheprovider \
        -rA | grep '^PASSED' | sed 's/.*::\\(test_[^ ]*\\).*/\\1/' | grep '_cpu$' \
        | sort -u > tests/onnx/allowlist.txt
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
from onnx.backend.base import Backend, BackendRep

from onnx import TensorProto, helper

with warnings.catch_warnings():
    # Importing the suite builds its cases with NumPy casts that overflow on purpose.
    warnings.simplefilter("ignore")
    from onnx.backend.test import BackendTest

import ember

# The suite must never download: point ONNX_HOME at an empty temporary directory.
os.environ["ONNX_HOME"] = tempfile.mkdtemp(prefix="ember-onnx-home-")


class EmberRep(BackendRep):
    def __init__(self, model: ember.onnx.OnnxModel) -> None:
        self.model = model

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, dict):
            outs = self.model(**inputs)
        else:
            outs = self.model(*inputs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return tuple(o.numpy() for o in outs)


class EmberBackend(Backend):
    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> EmberRep:
        return EmberRep(ember.onnx.load(model))

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


def _allowlist() -> list[str]:
    path = Path(__file__).with_name("allowlist.txt")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    backend_test = BackendTest(EmberBackend, __name__)
# The node cases, plus the small models stored in the wheel (the "real" models would
# need a download and are left out). Only the chosen tests exist: the rest are removed
# rather than skipped.
OnnxBackendNodeModelTest = backend_test.test_cases["OnnxBackendNodeModelTest"]
OnnxBackendSimpleModelTest = backend_test.test_cases["OnnxBackendSimpleModelTest"]
OnnxBackendPyTorchConvertedModelTest = backend_test.test_cases[
    "OnnxBackendPyTorchConvertedModelTest"
]
OnnxBackendPyTorchOperatorModelTest = backend_test.test_cases["OnnxBackendPyTorchOperatorModelTest"]
_wanted = None if os.environ.get("EMBER_ONNX_ALL") else set(_allowlist())
for _case in (
    OnnxBackendNodeModelTest,
    OnnxBackendSimpleModelTest,
    OnnxBackendPyTorchConvertedModelTest,
    OnnxBackendPyTorchOperatorModelTest,
):
    for _name in [n for n in dir(_case) if n.startswith("test_")]:
        if (_wanted is not None and _name not in _wanted) or not _name.endswith("_cpu"):
            delattr(_case, _name)
backend_test.include(".*")


def test_allowlist_is_sorted_and_unique() -> None:
    names = _allowlist()
    assert names == sorted(set(names))
    assert all(n.startswith("test_") and n.endswith("_cpu") for n in names)


def test_backend_runs_a_node_model() -> None:
    node = helper.make_node("Add", ["a", "b"], ["c"])
    graph = helper.make_graph(
        [node],
        "add",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])],
    )
    rep = EmberBackend.prepare(helper.make_model(graph))
    (out,) = rep.run([np.ones(2, np.float32), np.ones(2, np.float32)])
    np.testing.assert_array_equal(out, [2.0, 2.0])
