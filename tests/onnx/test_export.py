"""ember.onnx.export on whole models: onnxruntime and ember's own ONNX import against ember.

Every model is exported with a dynamic batch axis, checked with
``onnx.checker.check_model(full_check=True)``, run by onnxruntime at two batch
sizes and loaded back with ``ember.onnx.load``; all must match the model run
eagerly (float32 within 1e-5).
"""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import ember  # noqa: E402
import ember.nn as nn  # noqa: E402
from ember.onnx import OnnxExportError  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"onnx_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _session(model: Any) -> Any:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _outputs(out: Any) -> list[np.ndarray]:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _outputs(o)]
    return [out.numpy()]


def _close(got: list[np.ndarray], want: list[np.ndarray], what: str) -> None:
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (what, g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=what)


class _Seq(nn.Module):
    """GRU and bidirectional LSTM stacked, returning the output and final states (a tuple)."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(6, 8, num_layers=2, batch_first=True)
        self.lstm = nn.LSTM(8, 5, batch_first=True, bidirectional=True)

    def forward(self, x: ember.Tensor) -> Any:
        y, _ = self.gru(x)
        z, (h2, _) = self.lstm(y)
        return z, h2.permute(1, 0, 2)


class _Convs(nn.Module):
    """Conv, batch norm (eval), transposed conv, average and adaptive pools, dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        self.pool = nn.AvgPool2d(2)
        self.adaptive = nn.AdaptiveAvgPool2d((3, 2))
        self.amax = nn.AdaptiveMaxPool2d(2)
        self.drop = nn.Dropout(0.5)
        self.gn = nn.GroupNorm(2, 4)

    def forward(self, x: ember.Tensor) -> Any:
        h = self.drop(ember.relu(self.bn(self.conv(x))))
        a = self.adaptive(self.gn(h))
        return self.pool(self.up(h)), a, self.amax(h)


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(11, 16, padding_idx=0)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.dec = nn.TransformerDecoderLayer(
            16, 2, dim_feedforward=32, dropout=0.1, batch_first=True
        )
        self.head = nn.Linear(16, 3)

    def forward(self, ids: ember.Tensor, memory: ember.Tensor) -> Any:
        x = self.embed(ids)
        y, w = self.attn(x, memory, memory)
        return nn.functional.log_softmax(self.head(self.dec(y, memory)), dim=-1), w


def _models() -> list[tuple[str, Any, tuple[ember.Tensor, ...], tuple[ember.Tensor, ...]]]:
    ember.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4), nn.Softmax(dim=-1))
    convs = _Convs()
    convs.bn.running_mean.copy_(ember.randn(4))  # non-trivial statistics for eval mode
    convs.bn.running_var.copy_(ember.rand(4) + 0.5)
    chars = _example("char_transformer").CharTransformer(20, 8)
    return [
        ("mlp", mlp, (ember.randn(2, 8),), (ember.randn(5, 8),)),
        (
            "digits_cnn",
            _example("digits_cnn").DigitsCNN(),
            (ember.randn(2, 1, 8, 8),),
            (ember.randn(3, 1, 8, 8),),
        ),
        ("convs", convs, (ember.randn(2, 3, 9, 9),), (ember.randn(4, 3, 9, 9),)),
        (
            "lstm_digits",
            _example("lstm_sequence").DigitSum(5),
            (ember.randint(0, 10, (3, 5)),),
            (ember.randint(0, 10, (6, 5)),),
        ),
        ("gru_lstm", _Seq(), (ember.randn(2, 4, 6),), (ember.randn(5, 4, 6),)),
        (
            "char_transformer",
            chars,
            (ember.randint(0, 20, (2, 8)),),
            (ember.randint(0, 20, (3, 8)),),
        ),
        (
            "attention",
            _Attention(),
            (ember.randint(0, 11, (2, 5)), ember.randn(2, 7, 16)),
            (ember.randint(0, 11, (4, 5)), ember.randn(4, 7, 16)),
        ),
    ]


MODELS = _models()


@pytest.mark.parametrize("case", MODELS, ids=[m[0] for m in MODELS])
def test_model_exports_runs_in_onnxruntime_at_two_batch_sizes_and_loads_back(
    case: Any, tmp_path: pathlib.Path
) -> None:
    name, model, inputs, bigger = case
    model.train()  # export switches to eval and restores this afterwards
    n_in = len(inputs)
    names = ["input"] if n_in == 1 else [f"input_{i}" for i in range(n_in)]
    path = tmp_path / f"{name}.onnx"
    proto = ember.onnx.export(model, inputs, path, dynamic_axes={n: {0: "batch"} for n in names})
    assert model.training and all(m.training for m in model.modules())
    stored = onnx.load(str(path))
    onnx.checker.check_model(stored, full_check=True)
    assert stored.SerializeToString() == proto.SerializeToString()
    assert stored.producer_name == "ember" and stored.producer_version == ember.__version__
    assert stored.opset_import[0].version == ember.onnx.default_opset()
    for v in stored.graph.input:
        assert v.type.tensor_type.shape.dim[0].dim_param == "batch"
    model.eval()
    session = _session(stored)
    loaded = ember.onnx.load(path)
    with ember.no_grad():
        for xs in (inputs, bigger):
            want = _outputs(model(*xs))
            feeds = {n: x.numpy() for n, x in zip(names, xs)}
            _close([np.asarray(o) for o in session.run(None, feeds)], want, f"{name} onnxruntime")
            _close(_outputs(loaded(*xs)), want, f"{name} ember.onnx.load")


def test_parameters_become_initializers_named_by_state_dict_keys() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    proto = ember.onnx.export(model, ember.randn(2, 3), None)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(inits[key], value.numpy())
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Transpose", "MatMul", "Add", "Relu", "Transpose", "MatMul", "Add", "Identity"]


def test_default_opset_is_onnx_newest_capped_to_what_onnxruntime_loads() -> None:
    opset = ember.onnx.default_opset()
    assert 18 <= opset <= onnx.defs.onnx_opset_version()
    proto = ember.onnx.export(nn.Linear(2, 2), ember.randn(2, 2), None)
    _session(proto)  # loads
    next_opset = [onnx.helper.make_opsetid("", opset + 1)]
    above = onnx.helper.make_model(proto.graph, opset_imports=next_opset)
    above.ir_version = onnx.helper.find_min_ir_version_for(next_opset)
    if opset < onnx.defs.onnx_opset_version():  # capped: onnxruntime really rejects the next
        with pytest.raises(Exception, match="(?i)opset|domain"):
            _session(above)


def test_explicit_opset_and_names_and_list_dynamic_axes(tmp_path: pathlib.Path) -> None:
    model = nn.Linear(3, 2)
    proto = ember.onnx.export(
        model,
        (ember.randn(4, 3),),
        tmp_path / "m.onnx",
        input_names=["features"],
        output_names=["scores"],
        dynamic_axes={"features": [0], "scores": [0]},
        opset=18,
    )
    assert proto.opset_import[0].version == 18
    assert [i.name for i in proto.graph.input] == ["features"]
    assert [o.name for o in proto.graph.output] == ["scores"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "features_dynamic_axes_1"
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "scores_dynamic_axes_1"
    x = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32)
    (got,) = _session(proto).run(None, {"features": x})
    w, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    np.testing.assert_allclose(got, x @ w.T + b, rtol=1e-5, atol=1e-6)


def test_a_function_with_a_constant_boolean_mask_and_int_index_exports() -> None:
    mask = np.array([True, False, True, True])
    rows = ember.tensor([2, 0])

    def fn(x: ember.Tensor) -> Any:
        return x[:, mask] * 2, x[rows], ember.where(x > 0, x, 0.0).sum(dim=1, keepdim=True)

    proto = ember.onnx.export(fn, ember.randn(3, 4), None, dynamic_axes={"input": {0: "batch"}})
    xn = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    got = _session(proto).run(None, {"input": xn})
    np.testing.assert_allclose(got[0], xn[:, mask] * 2, rtol=1e-6)
    np.testing.assert_allclose(got[1], xn[[2, 0]], rtol=1e-6)
    np.testing.assert_allclose(got[2], np.where(xn > 0, xn, 0).sum(1, keepdims=True), rtol=1e-5)


def test_an_lstm_whose_state_is_made_at_the_batch_size_exports_with_a_dynamic_batch() -> None:
    # nn.LSTM makes zeros of (layers, batch, hidden) as its first state: a constant of the
    # input's size, exported as a fill of the run-time shape.
    lstm = nn.LSTM(3, 4)
    x = ember.randn(5, 2, 3)  # (time, batch, features): the batch is axis 1
    proto = ember.onnx.export(lstm, x, None, dynamic_axes={"input": {1: "batch"}})
    big = ember.randn(5, 6, 3)
    with ember.no_grad():
        want = _outputs(lstm(big))
    _close([np.asarray(o) for o in _session(proto).run(None, {"input": big.numpy()})], want, "lstm")


def test_failed_export_leaves_no_file_and_names_the_problem(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "m.onnx"

    def branchy(x: ember.Tensor) -> ember.Tensor:
        return x * 2 if x.shape[0] < 3 else x + 1  # control flow on the batch size

    with pytest.raises(
        OnnxExportError, match="graph changes with the size of dynamic axis 'batch'"
    ):
        ember.onnx.export(branchy, ember.randn(2, 3), path, dynamic_axes={"input": {0: "batch"}})
    assert not path.exists() and list(tmp_path.iterdir()) == []

    def ranged(x: ember.Tensor) -> ember.Tensor:
        return x + ember.arange(x.shape[0], dtype=ember.float32).reshape(-1, 1)

    with pytest.raises(OnnxExportError, match="varying values"):
        ember.onnx.export(ranged, ember.randn(3, 2), path, dynamic_axes={"input": {0: "b"}})
    assert not path.exists()


def test_bad_arguments_raise_clear_errors() -> None:
    model = nn.Linear(2, 2)
    x = ember.randn(3, 2)
    with pytest.raises(TypeError, match="example_inputs"):
        ember.onnx.export(model, x.numpy(), None)
    with pytest.raises(ValueError, match="neither an input nor an output"):
        ember.onnx.export(model, x, None, dynamic_axes={"x": {0: "batch"}})
    with pytest.raises(ValueError, match="has 2 dimensions"):
        ember.onnx.export(model, x, None, dynamic_axes={"input": {2: "batch"}})
    with pytest.raises(ValueError, match="size 2 or more"):
        ember.onnx.export(model, ember.randn(1, 2), None, dynamic_axes={"input": [0]})
    with pytest.raises(ValueError, match="opset 12 is not supported"):
        ember.onnx.export(model, x, None, opset=12)
    with pytest.raises(ValueError, match="2 input_names given for 1 inputs"):
        ember.onnx.export(model, x, None, input_names=["a", "b"])
    with pytest.raises(OnnxExportError, match="returned str"):
        ember.onnx.export(lambda t: "no", x, None)


def test_backward_only_primitives_are_refused_by_name() -> None:
    x = ember.randn(1, 1, 4, 4)
    w = ember.randn(1, 1, 3, 3, requires_grad=True)

    def weight_grad(x: ember.Tensor) -> ember.Tensor:
        with ember.enable_grad():
            return ember.grad(nn.functional.conv2d(x, w).sum(), [w], create_graph=True)[0]

    with pytest.raises(OnnxExportError, match="cannot export op 'conv_weight'.*backward-only"):
        ember.onnx.export(weight_grad, x, None)


def test_every_primitive_has_a_lowering_or_a_stated_reason() -> None:
    from ember._src.io.onnx_lower import NOT_EXPORTABLE, RULES
    from ember._src.ops.registry import REGISTRY

    missing = sorted(set(REGISTRY) - set(RULES) - set(NOT_EXPORTABLE))
    assert not missing, f"primitives with neither an ONNX lowering nor a reason: {missing}"
    assert not set(RULES) & set(NOT_EXPORTABLE)
    assert sorted(set(REGISTRY) & set(NOT_EXPORTABLE)) == [
        "conv_weight",
        "spatial_scatter_add",
        "sum_pool_transpose",
    ]


def test_a_size_that_is_not_linear_in_a_dynamic_axis_is_refused() -> None:
    conv = nn.Conv2d(1, 2, 3, stride=2, padding=1)  # output height (h - 1) // 2 + 1

    def fn(x: ember.Tensor) -> ember.Tensor:
        return conv(x).flatten(1)

    x = ember.randn(2, 1, 9, 4)
    with pytest.raises(OnnxExportError, match="other than as a \\* axis \\+ c"):
        ember.onnx.export(fn, x, None, dynamic_axes={"input": {0: "batch", 2: "height"}})
    proto = ember.onnx.export(fn, x, None, dynamic_axes={"input": {0: "batch"}})  # static h: fine
    big = ember.randn(3, 1, 9, 4)
    with ember.no_grad():
        want = fn(big).numpy()
    np.testing.assert_allclose(
        _session(proto).run(None, {"input": big.numpy()})[0], want, atol=1e-5
    )
