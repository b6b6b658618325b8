"""``ember train`` and the commands that read its run directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ember
from ember._src.cli.main import main
from ember._src.core import threads
from ember.models import load_model

CONFIG = """\
model:
  layers:
    - {{type: Dense, units: 16, activation: relu}}
    - {{type: Dropout, p: 0.1}}
    - {{type: Dense, units: 3}}
data:
  train: {{path: train.npz}}
  test: {{path: test.npz}}
  validation_split: 0.25
solver:
  loss: cross_entropy
  optimizer: {{type: adam, lr: 0.01}}
  epochs: {epochs}
  batch_size: {batch_size}
  seed: 3
metrics: [accuracy]
outputs:
  dir: {runs}
  monitor: val_accuracy
  onnx: {onnx}
"""


def make(
    folder: Path, epochs: int = 3, n: int = 160, batch_size: int = 16, onnx: bool = False, **kw: str
) -> Path:
    rng = np.random.default_rng(0)
    for name, size in (("train", n), ("test", 60)):
        x = rng.normal(size=(size, 4)).astype(np.float32)
        np.savez(folder / f"{name}.npz", x=x, y=np.argmax(x[:, :3], axis=1))
    text = CONFIG.format(
        epochs=epochs, batch_size=batch_size, runs=folder / "runs", onnx=str(onnx).lower()
    )
    for key, value in kw.items():
        text = text.replace(key, value)
    path = folder / "tiny.yaml"
    path.write_text(text)
    return path


def outputs(run: Path, x: np.ndarray) -> np.ndarray:
    """The saved model's outputs, computed here without the CLI."""
    with ember.no_grad():
        return load_model(run / "model.safetensors").eval()(ember.from_numpy(x)).numpy()


def weights(run: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in load_model(run / "model.safetensors").state_dict().items()}


def same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), k  # bit-identical, not merely close


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    assert main(["train", str(make(folder, epochs=4, onnx=True)), "--quiet"]) == 0
    return folder / "runs" / "tiny"


def test_run_directory_layout(trained: Path) -> None:
    for rel in ("config.yaml", "run.json", "model.safetensors", "metrics.json",
                "checkpoints/last.safetensors", "checkpoints/best.safetensors",
                "logs/train", "logs/validation"):  # fmt: skip
        assert (trained / rel).exists(), rel
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["completed"] is True and metrics["epochs"] == 4
    history = metrics["history"]
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert all(len(v) == 4 for v in history.values())
    # The best epoch is the first maximum of the monitored values.
    val = history["val_accuracy"]
    assert metrics["best"]["epoch"] == int(np.argmax(val)) + 1
    assert metrics["best"]["value"] == max(val)
    assert history["loss"][-1] < history["loss"][0]
    best = ember.load_checkpoint(trained / "checkpoints/best.safetensors")
    assert best["epoch"] == metrics["best"]["epoch"]


def test_tensorboard_logs_hold_the_history(trained: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = json.loads((trained / "metrics.json").read_text())["history"]
    acc = EventAccumulator(str(trained / "logs" / "validation"))
    acc.Reload()
    values = [e.value for e in acc.Scalars("epoch_accuracy")]
    assert values == pytest.approx(history["val_accuracy"], rel=1e-6)


def test_evaluate_agrees_with_an_independent_computation(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(trained), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["samples"] == 60
    with np.load(trained.parent.parent / "test.npz") as z:
        x, y = z["x"], z["y"]
    logits = outputs(trained, x)
    assert report["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y), abs=1e-6)
    shifted = logits - logits.max(1, keepdims=True)
    nll = np.log(np.exp(shifted).sum(1)) - shifted[np.arange(len(y)), y]
    assert report["loss"] == pytest.approx(nll.mean(), rel=1e-5)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(report["accuracy"])


def test_evaluate_best_checkpoint(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(trained), "--split", "validation", "--checkpoint", "best"]) == 0
    out = capsys.readouterr().out
    best = json.loads((trained / "metrics.json").read_text())["best"]
    assert out.startswith("validation (40 samples, best weights): ")
    assert f"accuracy: {best['value']:.4f}" in out


def test_predict_prints_classes_and_writes_files(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(5).normal(size=(7, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    expected = outputs(trained, x)
    assert main(["predict", str(trained), "--input", str(tmp_path / "x.npy")]) == 0
    printed = [int(v) for v in capsys.readouterr().out.split()]
    assert printed == expected.argmax(1).tolist()
    out = tmp_path / "p.npy"
    assert (
        main(["predict", str(trained), "--input", str(tmp_path / "x.npy"), "--output", str(out)])
        == 0
    )
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-6)
    (tmp_path / "x.csv").write_text(
        "a,b,c,d\n" + "\n".join(",".join(map(repr, r.tolist())) for r in x)
    )
    out_csv = tmp_path / "p.csv"
    assert (
        main(
            ["predict", str(trained), "--input", str(tmp_path / "x.csv"), "--output", str(out_csv)]
        )
        == 0
    )
    rows = out_csv.read_text().splitlines()
    assert rows[0] == "prediction,output_0,output_1,output_2"
    assert [int(r.split(",")[0]) for r in rows[1:]] == expected.argmax(1).tolist()


def test_predict_rejects_the_wrong_shape(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.float32))
    assert main(["predict", str(trained), "--input", str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err
    assert "samples have shape (5,), the model takes (4,)" in err
    assert "Traceback" not in err


def test_onnx_export_matches_onnxruntime(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if getattr(ember.onnx, "export", None) is None:  # the exporter is optional: say so, don't fail
        assert not (trained / "model.onnx").exists()
        assert main(["export", str(trained)]) == 2
        assert "this ember has no ONNX exporter yet" in capsys.readouterr().err
        return
    import onnxruntime as ort

    assert (trained / "model.onnx").exists()
    path = tmp_path / "again.onnx"
    assert main(["export", str(trained), "--format", "onnx", "--output", str(path)]) == 0
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    expected = outputs(trained, x)
    for file in (trained / "model.onnx", path):
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"input": x})
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_plot_writes_a_png(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    assert main(["plot", str(trained), "--output", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_existing_run_is_not_overwritten_silently(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = trained.parent.parent / "tiny.yaml"
    assert main(["train", str(config), "--quiet"]) == 2
    assert "already holds a run; continue it with --resume" in capsys.readouterr().err


def test_resume_at_an_epoch_boundary_is_bit_identical(tmp_path: Path) -> None:
    config = make(tmp_path, epochs=3)
    assert main(["train", str(config), "--quiet", "--name", "whole"]) == 0
    assert main(["train", str(config), "--quiet", "--name", "split", "--epochs", "2"]) == 0
    assert (
        main(["train", str(config), "--quiet", "--name", "split", "--epochs", "3", "--resume"]) == 0
    )
    runs = tmp_path / "runs"
    same_weights(runs / "whole", runs / "split")
    a = json.loads((runs / "whole" / "metrics.json").read_text())
    b = json.loads((runs / "split" / "metrics.json").read_text())
    assert a["history"] == b["history"]
    assert a["test"] == b["test"]


def test_resume_refuses_a_changed_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make(tmp_path, epochs=1)
    assert main(["train", str(config), "--quiet"]) == 0
    config.write_text(config.read_text().replace("lr: 0.01", "lr: 0.02"))
    assert main(["train", str(config), "--quiet", "--resume", "--epochs", "2"]) == 2
    assert "differs from the one" in capsys.readouterr().err


def test_learning_rate_schedule_and_gradient_clipping(tmp_path: Path) -> None:
    config = make(
        tmp_path,
        epochs=3,
        **{
            "optimizer: {type: adam, lr: 0.01}": "optimizer: {type: sgd, lr: 0.5}\n"
            "  lr_schedule: {type: StepLR, step_size: 1, gamma: 0.5}\n"
            "  clip_grad_norm: 1.0e-6"
        },
    )
    assert main(["train", str(config), "--quiet"]) == 0
    run = tmp_path / "runs" / "tiny"
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert history["learning_rate"] == [0.5, 0.25, 0.125]
    # Each step moves the weights by lr * (a gradient of norm <= 1e-6); the steps of all
    # three epochs together move them by at most the sum of those bounds.
    ember.manual_seed(3)  # the seed the config sets: the same initial weights
    from ember._src.cli import build
    from ember._src.cli.train import resolve

    cfg, values = resolve(str(config))
    start = build.build_model(cfg, values, build.load_data(cfg, values)).state_dict()
    end = load_model(run / "model.safetensors").state_dict()
    moved = np.sqrt(sum(float(((end[k] - start[k]) ** 2).sum().item()) for k in end))
    steps = -(-120 // 16)
    assert 0 < moved <= steps * (0.5 + 0.25 + 0.125) * 1e-6 * 1.0001


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    code = "import sys; from ember._src.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_ctrl_c_saves_a_checkpoint_and_resume_is_bit_identical(tmp_path: Path) -> None:
    config = make(tmp_path, epochs=3, n=2000, batch_size=4)  # 375 steps per epoch
    reference = _cli("train", str(config), "--name", "reference", cwd=tmp_path)
    run = _cli("train", str(config), cwd=tmp_path)
    try:
        assert run.stdout is not None
        lines = []
        for line in run.stdout:  # interrupt as the second epoch begins: inside it
            lines.append(line)
            if line.startswith("Epoch 2/3"):
                run.send_signal(signal.SIGINT)
                break
        output = "".join(lines) + run.communicate(timeout=120)[0]
        ref_output = reference.communicate(timeout=300)[0]
    finally:
        for proc in (run, reference):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert run.returncode == 130, output
    assert "Traceback" not in output
    assert "continue with: ember train" in output
    metrics = json.loads((tmp_path / "runs" / "tiny" / "metrics.json").read_text())
    assert metrics["completed"] is False
    saved = ember.load_checkpoint(tmp_path / "runs" / "tiny" / "checkpoints" / "last.safetensors")
    assert saved["epoch"] == 1  # stopped inside the second epoch (counting from 0)
    assert 0 < saved["extra"]["in_epoch"]["step"] < 375
    resumed = _cli("train", str(tmp_path / "runs" / "tiny"), "--resume", "--quiet", cwd=tmp_path)
    out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, out
    assert reference.returncode == 0, ref_output
    same_weights(tmp_path / "runs" / "reference", tmp_path / "runs" / "tiny")
    a = json.loads((tmp_path / "runs" / "reference" / "metrics.json").read_text())
    b = json.loads((tmp_path / "runs" / "tiny" / "metrics.json").read_text())
    assert a["history"] == b["history"]  # the interrupted epoch's running sums were saved too


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("train", "evaluate", "predict", "export", "plot", "info", "convert"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for option in ("--validate", "--resume", "--overwrite", "--epochs", "--debug"):
        assert option in out


def test_regression_with_standardized_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(2)
    scale = np.array([1.0, 100.0, 0.01], np.float32)  # very different feature scales
    x = (rng.normal(size=(200, 3)) * scale + 5).astype(np.float32)
    y = (x - 5) @ (1 / scale) + rng.normal(scale=0.1, size=200)
    np.savez(tmp_path / "reg.npz", x=x[:160], y=y[:160])
    np.savez(tmp_path / "reg_test.npz", x=x[160:], y=y[160:])
    config = tmp_path / "reg.yaml"
    config.write_text(
        "model: {layers: [{type: Dense, units: 1}]}\n"
        "data: {train: {path: reg.npz}, test: {path: reg_test.npz}, validation_split: 0.25,"
        " standardize: true}\n"
        "solver: {loss: mse, optimizer: {type: adam, lr: 0.05}, epochs: 30, batch_size: 16}\n"
        f"metrics: [mae]\noutputs: {{dir: {tmp_path / 'runs'}}}\n"
    )
    assert main(["train", str(config), "--quiet"]) == 0
    run = tmp_path / "runs" / "reg"
    capsys.readouterr()
    # The statistics come from the 120 training samples (the last 40 validate).
    mean, std = x[:120].mean(0), x[:120].std(0)
    info = json.loads((run / "run.json").read_text())
    np.testing.assert_allclose(info["standardize"]["mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(info["standardize"]["std"], std, rtol=1e-5)
    predicted = outputs(run, (x[160:] - mean) / std)[:, 0]
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mae"] == pytest.approx(np.abs(predicted - y[160:]).mean(), rel=1e-4)
    assert report["loss"] == pytest.approx(((predicted - y[160:]) ** 2).mean(), rel=1e-4)
    assert report["mae"] < 0.5  # a linear target: the linear model learns it
    np.save(tmp_path / "new.npy", x[160:165])
    assert main(["predict", str(run), "--input", str(tmp_path / "new.npy")]) == 0
    printed = [float(v) for v in capsys.readouterr().out.split()]
    np.testing.assert_allclose(printed, predicted[:5], rtol=1e-4)


def test_threads_option_sets_the_blas_threads_and_rejects_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make(tmp_path, epochs=1)
    if threads.openblas() is None:  # no OpenBLAS to drive: a clear error, no run
        assert main(["train", str(config), "--quiet", "--threads", "1"]) == 2
        assert "OPENBLAS_NUM_THREADS" in capsys.readouterr().err
    else:
        before = ember.get_num_threads()
        try:
            ember.set_num_threads(2)
            assert main(["train", str(config), "--quiet", "--threads", "1"]) == 0
            assert ember.get_num_threads() == 1
        finally:
            ember.set_num_threads(before)
    assert main(["train", str(config), "--quiet", "--threads", "0", "--name", "z"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
