"""ember.onnx.load: small real models against onnxruntime, fine-tuning, malformed input."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
import ember  # noqa: E402
from ember.onnx import OnnxImportError  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ort = pytest.importorskip("onnxruntime")


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array, name)


def _model(nodes, inputs, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # what onnxruntime reads for opset 17
    return model


def _mlp(rng: np.random.Generator) -> onnx.ModelProto:
    w1 = rng.standard_normal((8, 16)).astype(np.float32)
    b1 = rng.standard_normal(16).astype(np.float32)
    w2 = rng.standard_normal((16, 3)).astype(np.float32)
    b2 = rng.standard_normal(3).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="bias1"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("Gemm", ["h2", "w2", "b2"], ["logits"], name="fc2"),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1, name="softmax"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [_init("w1", w1), _init("b1", b1), _init("w2", w2), _init("b2", b2)],
    )


def _cnn(rng: np.random.Generator) -> onnx.ModelProto:
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "k1", "c1"], ["a"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node(
            "BatchNormalization", ["a", "g", "be", "mu", "var"], ["b"], epsilon=1e-5, name="bn"
        ),
        helper.make_node("Relu", ["b"], ["c"]),
        helper.make_node("MaxPool", ["c"], ["d"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["d", "k2"], ["e"], strides=[2, 2], pads=[1, 1, 1, 1], group=2),
        helper.make_node("AveragePool", ["e"], ["e2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["e2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["q"]),
        helper.make_node("Gemm", ["q", "wf", "bf"], ["y"], transB=1),
    ]
    inits = {
        "k1": f(4, 3, 3, 3),
        "c1": f(4),
        "g": f(4),
        "be": f(4),
        "mu": f(4),
        "var": np.abs(f(4)) + 0.5,
        "k2": f(6, 2, 3, 3),
        "wf": f(5, 6),
        "bf": f(5),
    }
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        [_init(k, v) for k, v in inits.items()],
    )


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("build, shape", [(_mlp, (4, 8)), (_cnn, (2, 3, 12, 12))])
def test_small_models_match_onnxruntime(build, shape) -> None:
    rng = np.random.default_rng(0)
    model = build(rng)
    x = rng.standard_normal(shape).astype(np.float32)
    got = ember.onnx.load(model)(ember.tensor(x)).numpy()
    np.testing.assert_allclose(got, _ort(model, x), rtol=1e-5, atol=1e-5)


def test_load_from_path_bytes_and_proto(tmp_path) -> None:
    model = _mlp(np.random.default_rng(1))
    path = tmp_path / "mlp.onnx"
    path.write_bytes(model.SerializeToString())
    x = np.random.default_rng(2).standard_normal((3, 8)).astype(np.float32)
    outs = [
        ember.onnx.load(src)(x=x).numpy() for src in (path, str(path), path.read_bytes(), model)
    ]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_as_module_trains_the_initializers() -> None:
    module = ember.onnx.load(_mlp(np.random.default_rng(3))).as_module()
    names = [n for n, _ in module.named_parameters()]
    assert names == ["w1", "b1", "w2", "b2"]
    x = ember.tensor(np.random.default_rng(4).standard_normal((4, 8)).astype(np.float32))
    opt = ember.optim.SGD(module.parameters(), lr=0.5)
    target = ember.tensor([0, 1, 2, 0])
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ember.nn.functional.nll_loss(ember.log(module(x)), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in module.parameters())
    assert losses[-1] < losses[0]


def test_truncated_file_is_a_clear_error(tmp_path) -> None:
    data = _cnn(np.random.default_rng(5)).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxImportError, match="not a valid ONNX model|invalid"):
        ember.onnx.load(path)


def test_empty_and_garbage_inputs() -> None:
    with pytest.raises(OnnxImportError, match="empty"):
        ember.onnx.load(b"")
    with pytest.raises(OnnxImportError):
        ember.onnx.load(b"\xff\xfe not a protobuf at all \x00\x01")
    with pytest.raises(TypeError, match="path, bytes or an onnx.ModelProto"):
        ember.onnx.load(3.5)
    with pytest.raises(FileNotFoundError):
        ember.onnx.load("/nonexistent/model.onnx")


@pytest.mark.parametrize("ir_version", [0, 2, 999])
def test_wrong_ir_version(ir_version: int) -> None:
    model = _mlp(np.random.default_rng(6))
    model.ir_version = ir_version
    with pytest.raises(OnnxImportError, match="IR version"):
        ember.onnx.load(model.SerializeToString())


def test_missing_initializer() -> None:
    model = _mlp(np.random.default_rng(7))
    del model.graph.initializer[1]  # b1
    with pytest.raises(OnnxImportError, match="b1"):
        ember.onnx.load(model)


def test_unknown_op_names_op_node_and_opset() -> None:
    node = helper.make_node("Det", ["x"], ["y"], name="my_det")
    model = _model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        opset=17,
    )
    with pytest.raises(OnnxImportError, match=r"Det node 'my_det' \(opset 17\).*not supported"):
        ember.onnx.load(model)


def test_foreign_domain_is_named() -> None:
    node = helper.make_node("FusedThing", ["x"], ["y"], name="f", domain="com.example")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    with pytest.raises(OnnxImportError, match="FusedThing.*com.example"):
        ember.onnx.load(model)


def test_wrong_inputs_are_type_errors() -> None:
    m = ember.onnx.load(_mlp(np.random.default_rng(8)))
    with pytest.raises(TypeError, match="missing"):
        m()
    with pytest.raises(TypeError, match="unknown input"):
        m(z=np.ones((1, 8), np.float32))


def test_runtime_failure_names_the_node() -> None:
    m = ember.onnx.load(_mlp(np.random.default_rng(9)))
    with pytest.raises(OnnxImportError, match="MatMul node 'fc1'"):
        m(np.ones((2, 5), np.float32))
