"""SummaryWriter's event files, read back with the tensorboard package's EventAccumulator."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ember

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util.tensor_util import make_ndarray

from ember.tensorboard import SummaryWriter


def read(run: Path | str) -> EventAccumulator:
    """Everything logged to ``run`` (no sampling: size_guidance 0 keeps all events)."""
    acc = EventAccumulator(
        str(run),
        size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0},
    )
    acc.Reload()
    return acc


def scalars(run: Path | str, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in read(run).Scalars(tag)]


def png(encoded: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))


# ----------------------------------------------------------------- scalars
def test_scalar_values_and_steps_from_every_input_kind(tmp_path: Path) -> None:
    w = ember.ones(1, requires_grad=True)
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("loss", 3, 0)
        writer.add_scalar("loss", 2.5, 1)
        writer.add_scalar("loss", np.float32(2.0), 2)
        writer.add_scalar("loss", ember.tensor(1.5), 3)
        writer.add_scalar("loss", (w * 0.5).sum(), ember.tensor(4))  # requires grad: detached
        writer.add_scalar("loss", np.array([[0.25]]), 5, walltime=123.0)
    events = read(tmp_path).Scalars("loss")
    assert [(e.step, e.value) for e in events] == [
        (0, 3.0), (1, 2.5), (2, 2.0), (3, 1.5), (4, 0.5), (5, 0.25)
    ]  # fmt: skip
    assert events[-1].wall_time == 123.0


def test_scalar_rejects_non_numbers_and_several_values(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match=r"single number, got shape \(2,\)"):
            writer.add_scalar("loss", ember.tensor([1.0, 2.0]))
        with pytest.raises(TypeError, match="got str"):
            writer.add_scalar("loss", "0.5")
        with pytest.raises(TypeError, match="tag must be a non-empty str"):
            writer.add_scalar(3, 0.5)  # type: ignore[arg-type]


def test_add_scalars_writes_one_run_per_key_named_like_pytorch(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.add_scalars(
                "run/loss", {"train": 1.0 / (step + 1), "val": ember.tensor(step)}, step
            )
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "run_loss_train",
        "run_loss_val",
    ]
    assert scalars(tmp_path / "run_loss_train", "run/loss") == [
        (0, 1.0),
        (1, 0.5),
        (2, pytest.approx(1 / 3)),
    ]
    assert scalars(tmp_path / "run_loss_val", "run/loss") == [(0, 0.0), (1, 1.0), (2, 2.0)]


def test_flush_makes_events_readable_before_close(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path, flush_secs=3600)
    try:
        writer.add_scalar("a", 1.0, 0)
        writer.add_scalars("b", {"x": 2.0}, 0)
        writer.flush()
        assert scalars(tmp_path, "a") == [(0, 1.0)]
        assert scalars(tmp_path / "b_x", "b") == [(0, 2.0)]
    finally:
        writer.close()


def test_close_then_add_opens_a_new_event_file(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path, filename_suffix=".ember")
    writer.add_scalar("a", 1.0, 0)
    writer.close()
    writer.add_scalar("a", 2.0, 1)
    writer.close()
    assert scalars(tmp_path, "a") == [(0, 1.0), (1, 2.0)]
    assert all(name.endswith(".ember") for name in os.listdir(tmp_path))


def test_purge_step_hides_the_crashed_runs_later_steps(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        for step in range(10):
            writer.add_scalar("loss", float(step), step)
    with SummaryWriter(tmp_path, purge_step=5) as writer:
        for step in range(5, 8):
            writer.add_scalar("loss", step + 0.5, step)
    assert scalars(tmp_path, "loss") == [(s, float(s)) for s in range(5)] + [
        (5, 5.5), (6, 6.5), (7, 7.5)
    ]  # fmt: skip


def test_default_log_dir_is_under_runs_with_the_comment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with SummaryWriter(comment="_lr0.1") as writer:
        writer.add_scalar("a", 1.0, 0)
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("_lr0.1")
    assert writer.get_logdir() == writer.log_dir == os.path.join("runs", run.name)
    assert scalars(run, "a") == [(0, 1.0)]


# ----------------------------------------------------------------- histograms
def test_histogram_counts_every_value(tmp_path: Path) -> None:
    values = ember.randn(1000, generator=ember.Generator().manual_seed(0))
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("w", values, 0)
        writer.add_histogram("w", values.numpy() + 1, 1, bins="auto")
        writer.add_histogram("ints", [1, 2, 2, 3, 3, 3], 0, bins=3)
    acc = read(tmp_path)
    assert acc.Tags()["histograms"] == ["w", "ints"]
    h0, h1 = (e.histogram_value for e in acc.Histograms("w"))
    x = values.numpy().astype(np.float64)
    assert (h0.num, h0.min, h0.max) == (1000, x.min(), x.max())
    assert h0.sum == pytest.approx(x.sum()) and h0.sum_squares == pytest.approx((x * x).sum())
    assert sum(h0.bucket) == sum(h1.bucket) == 1000
    assert h1.min == pytest.approx(x.min() + 1)
    (ints,) = acc.Histograms("ints")
    assert list(ints.histogram_value.bucket)[-3:] == [1, 2, 3]


def test_histogram_rejects_empty_and_non_finite_values(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match="values are empty"):
            writer.add_histogram("w", np.zeros(0))
        with pytest.raises(ValueError, match="2 of 3 values are NaN or infinite"):
            writer.add_histogram("w", ember.tensor([1.0, float("nan"), float("inf")]))


# ----------------------------------------------------------------- images
def test_image_layouts_write_the_same_picture(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    chw = rng.integers(0, 256, size=(3, 4, 6)).astype(np.uint8)
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("chw", ember.tensor(chw), 0)
        writer.add_image("hwc", chw.transpose(1, 2, 0), 0, dataformats="HWC")
        writer.add_image("float", chw.astype(np.float32) / 255, 0)
        writer.add_image("gray", np.full((4, 6), 2.0), 0, dataformats="HW")  # clipped to 255
    acc = read(tmp_path)
    got = {tag: acc.Images(tag)[0] for tag in ("chw", "hwc", "float", "gray")}
    assert (got["chw"].height, got["chw"].width) == (4, 6)
    want = chw.transpose(1, 2, 0)
    np.testing.assert_array_equal(png(got["chw"].encoded_image_string), want)
    np.testing.assert_array_equal(png(got["hwc"].encoded_image_string), want)
    assert np.abs(png(got["float"].encoded_image_string).astype(int) - want).max() <= 1
    assert (png(got["gray"].encoded_image_string) == 255).all()


def test_images_make_a_grid_of_the_batch(tmp_path: Path) -> None:
    batch = np.zeros((10, 4, 5, 1), dtype=np.uint8)
    batch[3] = 255
    with SummaryWriter(tmp_path) as writer:
        writer.add_images("nhwc", batch, 7, dataformats="NHWC")
        writer.add_images("nchw", ember.rand(2, 3, 4, 5), 7)
    acc = read(tmp_path)
    (grid,) = acc.Images("nhwc")
    assert (grid.step, grid.height, grid.width) == (7, 8, 40)  # 8 a row: 2 rows of 8 columns
    pixels = png(grid.encoded_image_string)
    assert (pixels[:4, 15:20] == 255).all() and pixels.sum() == 255 * 4 * 5 * 3
    assert (acc.Images("nchw")[0].height, acc.Images("nchw")[0].width) == (4, 10)


@pytest.mark.parametrize(
    "shape,dataformats,match",
    [
        ((3, 4, 4), "CWH ", "must order the letters"),
        ((3, 4, 4), "CCH", "must order the letters"),
        ((3, 4), "CHW", "needs a 3-d array"),
        ((2, 4, 4), "CHW", r"1 \(gray\), 3 \(RGB\) or 4 \(RGBA\) channels, got 2"),
    ],
)
def test_image_argument_errors_name_the_problem(
    tmp_path: Path, shape: tuple[int, ...], dataformats: str, match: str
) -> None:
    with SummaryWriter(tmp_path) as writer, pytest.raises(ValueError, match=match):
        writer.add_image("x", np.zeros(shape), dataformats=dataformats)


# ----------------------------------------------------------------- text, hparams, PR curves
def test_text_is_stored_under_the_text_plugin(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        writer.add_text("notes", "**lr** = 0.1", 3)
        with pytest.raises(TypeError, match="needs a str, got float"):
            writer.add_text("notes", 0.1)  # type: ignore[arg-type]
    acc = read(tmp_path)
    assert "notes/text_summary" in acc.PluginTagToContent("text")
    (event,) = acc.Tensors("notes/text_summary")
    assert event.step == 3
    assert make_ndarray(event.tensor_proto).tolist() == [b"**lr** = 0.1"]


def test_hparams_are_readable_by_the_hparams_plugin(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        writer.add_hparams(
            {"lr": ember.tensor(0.5), "layers": np.int64(3), "opt": "adam", "bn": True, "x": None},
            {"hparam/accuracy": ember.tensor(0.75)},
            run_name="trial0",
        )
        with pytest.raises(ValueError, match="hparam 'shape' must be a bool, int"):
            writer.add_hparams({"shape": (1, 2)}, {"m": 1.0})
    acc = read(tmp_path / "trial0")
    content = acc.PluginTagToContent("hparams")
    assert set(content) == {
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    }
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["lr"].number_value == 0.5 and hp["layers"].number_value == 3
    assert hp["opt"].string_value == "adam" and hp["bn"].bool_value is True
    assert "x" not in hp
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in exp.metric_infos] == ["hparam/accuracy"]
    assert scalars(tmp_path / "trial0", "hparam/accuracy") == [(0, 0.75)]


def test_pr_curve_counts(tmp_path: Path) -> None:
    labels = ember.tensor([1, 0, 1, 1, 0])
    predictions = ember.tensor([0.9, 0.8, 0.6, 0.2, 0.1])
    with SummaryWriter(tmp_path) as writer:
        writer.add_pr_curve("pr", labels, predictions, 2, num_thresholds=11)
        with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
            writer.add_pr_curve("pr", labels, predictions * 3)
        with pytest.raises(ValueError, match="labels must be 0/1"):
            writer.add_pr_curve("pr", labels * 2, predictions)
        with pytest.raises(ValueError, match="differ in shape"):
            writer.add_pr_curve("pr", labels[:3], predictions)
    acc = read(tmp_path)
    assert "pr" in acc.PluginTagToContent("pr_curves")
    (event,) = acc.Tensors("pr")
    tp, fp, tn, fn, precision, recall = make_ndarray(event.tensor_proto)
    assert event.step == 2 and tp.shape == (11,)
    assert (tp[0], fp[0], tn[0], fn[0]) == (3, 2, 0, 0)  # threshold 0: everything positive
    assert (tp[7], fp[7]) == (1, 1)  # threshold 0.7: 0.9 and 0.8 are called positive
    assert recall[0] == 1.0 and precision[0] == pytest.approx(0.6)


# ----------------------------------------------------------------- embeddings
def test_embedding_writes_the_projector_files(tmp_path: Path) -> None:
    mat = ember.randn(6, 3)
    with SummaryWriter(tmp_path) as writer:
        writer.add_embedding(
            mat,
            metadata=[[i, "odd" if i % 2 else "even"] for i in range(6)],
            metadata_header=["index", "parity"],
            label_img=ember.rand(6, 1, 4, 4),
            global_step=1,
            tag="points",
        )
        with pytest.raises(ValueError, match="5 metadata rows for 6 points"):
            writer.add_embedding(mat, metadata=list(range(5)))
        with pytest.raises(ValueError, match=r"must be \(N, D\)"):
            writer.add_embedding(ember.randn(6))
        with pytest.raises(ValueError, match="H == W"):
            writer.add_embedding(mat, label_img=np.zeros((6, 3, 4, 5)))
    folder = tmp_path / "00001" / "points"
    written = np.loadtxt(folder / "tensors.tsv", delimiter="\t")
    np.testing.assert_allclose(written, mat.numpy(), rtol=1e-6)
    assert (folder / "metadata.tsv").read_text().splitlines()[:2] == ["index\tparity", "0\teven"]
    with Image.open(folder / "sprite.png") as sprite:
        assert sprite.size == (12, 12)  # 6 thumbnails of 4 px, 3 a row
    config = (tmp_path / "projector_config.pbtxt").read_text()
    assert 'tensor_name: "points:00001"' in config and "sprite.png" in config


def test_unsupported_values_raise_type_error(tmp_path: Path) -> None:
    values: Any = {"a": 1}
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(TypeError, match="ember Tensor, a NumPy array or a Python number"):
            writer.add_histogram("h", values)
        with pytest.raises(TypeError, match="dict of name -> number"):
            writer.add_scalars("s", [1.0])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="must hold numbers"):
            writer.add_histogram("h", np.array(["a"]))


def test_purge_step_hides_only_an_earlier_runs_events_not_this_writers(tmp_path: Path) -> None:
    crashed = SummaryWriter(tmp_path)
    for step in range(5):
        crashed.add_scalar("a", float(step), step)
    crashed.close()
    resumed = SummaryWriter(tmp_path, purge_step=3)  # resume from a checkpoint at step 3
    resumed.add_scalar("a", 30.0, 3)
    resumed.flush()  # a reopened file must not hide the events written above
    resumed.add_scalar("a", 40.0, 4)
    resumed.close()
    assert scalars(tmp_path, "a") == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]
