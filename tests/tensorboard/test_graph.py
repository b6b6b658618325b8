"""add_graph and the TensorBoard callback's graph, read back with the tensorboard package."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ember
from ember import nn

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from ember.models import Model, callbacks
from ember.tensorboard import SummaryWriter

#: The GraphDef's node kinds that are not op applications.
VALUE_KINDS = {"IO Node", "Parameter", "Buffer", "Constant"}
DT_FLOAT = 1  # tensorflow/core/framework/types.proto


def read_graph(run: Path) -> Any:
    acc = EventAccumulator(str(run))
    acc.Reload()
    return acc.Graph()


def graph_events(run: Path) -> int:
    """How many graph events the event files of ``run`` hold, all files together."""
    files = sorted(p for p in run.iterdir() if p.name.startswith("events.out.tfevents"))
    loaded = [e for f in files for e in EventFileLoader(str(f)).Load()]
    return sum(e.HasField("graph_def") for e in loaded)


def by_name(graph: Any) -> dict[str, Any]:
    return {n.name: n for n in graph.node}


def shape(node: Any) -> list[int]:
    (s,) = node.attr["_output_shapes"].list.shape
    return [d.size for d in s.dim]


def ops(graph: Any) -> list[Any]:
    return [n for n in graph.node if n.op not in VALUE_KINDS]


def compiled_graph(model: nn.Module, *inputs: ember.Tensor) -> Any:
    """The graph ``ember.compile`` traces for ``model`` in eval mode, without gradients."""
    was = model.training
    model.eval()
    fn = ember.compile(model)
    with ember.no_grad():
        fn(*inputs)
    model.train(was)
    return fn.graph


def reaches(graph: Any, source: str, target: str) -> bool:
    """Whether an edge path leads from node ``source`` to node ``target``."""
    users: dict[str, list[str]] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n.name)
    seen, todo = set(), [source]
    while todo:
        name = todo.pop()
        if name == target:
            return True
        if name not in seen:
            seen.add(name)
            todo += users.get(name, [])
    return False


@pytest.fixture
def mlp() -> nn.Module:
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_mlp_graph_nodes_names_wiring_and_shapes(tmp_path: Path, mlp: nn.Module) -> None:
    x = ember.randn(3, 4)
    with SummaryWriter(tmp_path) as writer:
        writer.add_graph(mlp, x)
    graph = read_graph(tmp_path)
    nodes = by_name(graph)
    reference = compiled_graph(mlp, x)
    assert len(ops(graph)) == len(reference.nodes)
    assert [n.op for n in ops(graph)] == [n.op.name for n in reference.nodes]
    assert [shape(n) for n in ops(graph)] == [list(n.out.shape) for n in reference.nodes]
    # One box per module, with its parameters inside, named by the module path.
    assert {n.name.rpartition("/")[0] for n in ops(graph)} == {
        "Sequential/Linear[0]",
        "Sequential/ReLU[1]",
        "Sequential/Linear[2]",
    }
    params = {n.name: n.op for n in graph.node if n.op == "Parameter"}
    assert params == {
        f"Sequential/Linear[{i}]/{leaf}": "Parameter" for i in (0, 2) for leaf in ("weight", "bias")
    }
    assert shape(nodes["Sequential/Linear[0]/weight"]) == [8, 4]
    # The input feeds the first layer's matmul; everything reaches the one output.
    assert shape(nodes["input/input0"]) == [3, 4] and shape(nodes["output/output0"]) == [3, 2]
    assert "input/input0" in nodes["Sequential/Linear[0]/matmul"].input
    assert list(nodes["Sequential/ReLU[1]/relu"].input) == ["Sequential/Linear[0]/add"]
    for name in ["input/input0", *params]:
        assert reaches(graph, name, "output/output0"), name
    for n in graph.node:
        assert all(i in nodes for i in n.input), f"{n.name} has a dangling input"
        assert n.attr["dtype"].type == DT_FLOAT


def test_cnn_graph_has_buffers_op_attributes_and_restores_training(tmp_path: Path) -> None:
    ember.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 10),
    )
    cnn.train()
    x = ember.randn(2, 1, 8, 8)
    with SummaryWriter(tmp_path) as writer:
        writer.add_graph(cnn, x)
    assert all(m.training for m in cnn.modules())  # traced in eval mode, then restored
    graph = read_graph(tmp_path)
    nodes = by_name(graph)
    reference = compiled_graph(cnn, x)
    assert len(ops(graph)) == len(reference.nodes)
    conv = nodes["Sequential/Conv2d[0]/conv"]
    assert list(conv.input) == ["input/input0", "Sequential/Conv2d[0]/weight"]
    assert shape(conv) == [2, 4, 6, 6]
    assert conv.attr["stride"].s == b"(1, 1)" and conv.attr["groups"].s == b"1"
    assert shape(nodes["Sequential/MaxPool2d[3]/max_pool"]) == [2, 4, 3, 3]
    # Eval mode: batch norm reads its running statistics, which are buffers.
    for stat in ("running_mean", "running_var"):
        name = f"Sequential/BatchNorm2d[1]/{stat}"
        assert nodes[name].op == "Buffer"
        assert reaches(graph, name, "output/output0")
    assert reaches(graph, "input/input0", "output/output0")
    assert shape(nodes["output/output0"]) == [2, 10]


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: ember.Tensor) -> ember.Tensor:
        return self.fc(x) * 2.0


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(3, 1)

    def forward(self, a: ember.Tensor, b: ember.Tensor) -> tuple[ember.Tensor, ember.Tensor]:
        h = self.block(a) + b
        return self.head(h), h + ember.ones(3)  # ember.ones: a constant made inside forward


def test_nested_scopes_several_inputs_and_outputs_and_constants(tmp_path: Path) -> None:
    ember.manual_seed(0)
    with SummaryWriter(tmp_path) as writer:
        writer.add_graph(TwoInputs(), (ember.randn(5, 3), np.ones((5, 3), np.float32)))
    graph = read_graph(tmp_path)
    nodes = by_name(graph)
    mul = nodes["TwoInputs/Block[block]/mul"]
    assert list(mul.input) == ["TwoInputs/Block[block]/Linear[fc]/add"]
    assert mul.attr["arg1"].s == b"2.0"  # the Python scalar operand
    assert "TwoInputs/Block[block]/Linear[fc]/weight" in nodes
    assert list(nodes["TwoInputs/add"].input) == ["TwoInputs/Block[block]/mul", "input/input1"]
    assert nodes["TwoInputs/constant"].op == "Constant"
    assert shape(nodes["output/output0"]) == [5, 1] and shape(nodes["output/output1"]) == [5, 3]
    assert reaches(graph, "input/input1", "output/output0")
    assert not reaches(graph, "TwoInputs/Linear[head]/weight", "output/output1")


def test_verbose_prints_the_traced_graph(
    tmp_path: Path, mlp: nn.Module, capsys: pytest.CaptureFixture[str]
) -> None:
    with SummaryWriter(tmp_path) as writer:
        writer.add_graph(mlp, ember.randn(3, 4), verbose=True)
    printed = capsys.readouterr().out
    assert printed.startswith("graph Sequential(x0: float32[3, 4])")
    assert printed.count("matmul(") == 2


class ReadsValues(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, x: ember.Tensor) -> ember.Tensor:
        out = self.fc(x)
        if out.sum() > 0:  # needs the data: the tracer cannot follow it
            return out
        return -out


def test_untraceable_forward_raises_naming_the_line_and_writes_nothing(tmp_path: Path) -> None:
    model = ReadsValues()
    model.train()
    with SummaryWriter(tmp_path) as writer, pytest.raises(ember.TracerError) as info:
        writer.add_graph(model, ember.randn(4, 3))
    assert "test_graph.py" in str(info.value) and "ember.where" in str(info.value)
    with pytest.raises(ValueError, match="no graph"):
        read_graph(tmp_path)
    assert model.training and model.fc.training
    assert model(ember.ones(4, 3)).shape == (4, 1)  # hooks gone, runs eagerly as before


def test_bad_example_inputs_name_the_fix(tmp_path: Path, mlp: nn.Module) -> None:
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match="example input"):
            writer.add_graph(mlp)
        with pytest.raises(TypeError, match=r"input_to_model\[0\] is a list"):
            writer.add_graph(mlp, ([[1.0, 2.0, 3.0, 4.0]],))


# ----------------------------------------------------------------- the fit callback
@pytest.fixture
def _float64() -> Iterator[None]:
    saved = ember.get_default_dtype()
    ember.set_default_dtype(ember.float64)
    yield
    ember.set_default_dtype(saved)


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    return x, x @ np.array([[1.0], [-2.0], [0.5]])


def fitted(log_dir: Path, write_graph: bool) -> tuple[Model, callbacks.TensorBoard]:
    ember.manual_seed(0)
    model = Model(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)))
    model.compile(optimizer="sgd", loss="mse")
    x, y = data()
    tb = callbacks.TensorBoard(log_dir, write_graph=write_graph)
    model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0, callbacks=[tb])
    return model, tb


@pytest.mark.usefixtures("_float64")
def test_fit_writes_the_graph_once_from_the_first_batch(tmp_path: Path) -> None:
    model, tb = fitted(tmp_path, write_graph=True)
    assert graph_events(tmp_path / "train") == 1
    assert graph_events(tmp_path / "validation") == 0
    nodes = by_name(read_graph(tmp_path / "train"))
    assert shape(nodes["input/input0"]) == [8, 3]  # a training batch
    assert "input/input0" in nodes["Model/Sequential[module]/Linear[0]/matmul"].input
    assert nodes["Model/Sequential[module]/Tanh[1]/tanh"].attr["dtype"].type == 2  # DT_DOUBLE
    # Tracing leaves training alone: the same weights as a run that draws no graph.
    plain, _ = fitted(tmp_path / "plain", write_graph=False)
    assert graph_events(tmp_path / "plain" / "train") == 0
    for (name, p), (_, q) in zip(model.named_parameters(), plain.named_parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=name)
    # A second fit with the same callback draws the graph once more, in new event files.
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[tb])
    assert graph_events(tmp_path / "train") == 2


@pytest.mark.usefixtures("_float64")
def test_fit_warns_and_trains_on_when_the_model_cannot_be_traced(tmp_path: Path) -> None:
    ember.manual_seed(0)
    model = Model(ReadsValues())
    model.compile(optimizer="sgd", loss="mse")
    x, y = data()
    with pytest.warns(RuntimeWarning, match=r"could not trace Model.*TracerError"):
        history = model.fit(
            x, y, epochs=3, batch_size=8, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path)]
        )
    assert len(history.history["loss"]) == 3
    assert [s for s, _ in scalars(tmp_path / "train", "epoch_loss")] == [0, 1, 2]
    assert graph_events(tmp_path / "train") == 0


def scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(run))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


# ----------------------------------------------------------------- the real server
def test_tensorboard_graphs_plugin_serves_the_graph(
    tmp_path: Path, mlp: nn.Module, serve_tensorboard: Any
) -> None:
    logdir = tmp_path / "runs"
    with SummaryWriter(logdir / "mlp") as writer:
        writer.add_graph(mlp, ember.randn(3, 4))

    def fetch(get: Any, base: str) -> Any:
        info = json.loads(get(f"{base}/data/plugin/graphs/info"))
        if not info.get("mlp", {}).get("run_graph"):
            return None
        return get(f"{base}/data/plugin/graphs/graph?run=mlp")

    body, output = serve_tensorboard(logdir, fetch)
    assert body, f"tensorboard never served a graph for run mlp; its output:\n{output}"
    text = body.decode()
    assert 'name: "Sequential/Linear[0]/matmul"' in text
    assert text.count('op: "matmul"') == 2
