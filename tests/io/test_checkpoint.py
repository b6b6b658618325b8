"""ember.save_checkpoint / ember.load_checkpoint: exact resumption, JSON-only state."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.optim as optim
from ember._src.io import safetensors_io
from ember._src.io.safetensors_io import SafetensorsError
from ember.optim import lr_scheduler as S

# One training script for every run, so the only thing that differs between the
# uninterrupted run and the resumed one is the checkpoint. Data comes from NumPy's
# global generator, targets from ember's, a row shuffle from Python's `random`, and
# dropout from ember's: every RNG that training touches has to be restored.
TRAIN = textwrap.dedent(
    """
    import random, sys
    import numpy as np
    import ember, ember.nn as nn, ember.optim as optim

    def build(seed):
        ember.manual_seed(seed)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
        opt = optim.Adam(model.parameters(), lr=0.05)
        sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return model, opt, sched

    def train(model, opt, sched, steps):
        for _ in range(steps):
            x = ember.from_numpy(np.random.randn(8, 4).astype(np.float32))
            y = ember.randn(8, 2)
            order = list(range(8))
            random.shuffle(order)
            x, y = x[ember.tensor(order)], y[ember.tensor(order)]
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            sched.step()

    def seed_all(seed):
        ember.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

    mode, path = sys.argv[1], sys.argv[2]
    if mode == "full":
        model, opt, sched = build(0)
        seed_all(1)
        train(model, opt, sched, 10)
        ember.save(model.state_dict(), path)
    elif mode == "first":
        model, opt, sched = build(0)
        seed_all(1)
        train(model, opt, sched, 5)
        ember.save_checkpoint(path, model, opt, sched, epoch=0, step=5, extra={"note": "half"})
    elif mode == "resume":
        model, opt, sched = build(123)  # other initial weights and RNG states
        seed_all(456)
        info = ember.load_checkpoint(path, model, opt, sched)
        assert info == {"epoch": 0, "step": 5, "extra": {"note": "half"}}, info
        train(model, opt, sched, 5)
        ember.save(model.state_dict(), sys.argv[3])
    """
)


def _run(script: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_resume_in_a_fresh_process_is_bit_identical(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    full, ckpt, resumed = (tmp_path / n for n in ("full", "ckpt", "resumed"))
    _run(script, "full", str(full))
    _run(script, "first", str(ckpt))
    _run(script, "resume", str(ckpt), str(resumed))
    a, b = ember.load(full), ember.load(resumed)
    assert list(a) == list(b)
    for k in a:
        assert np.array_equal(a[k].numpy(), b[k].numpy()), k


# ================================================================= what is saved
def _trained(seed: int = 0) -> tuple[nn.Module, optim.Optimizer, Any]:
    ember.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt = optim.Adam(
        [
            {"params": model[0].parameters()},
            {"params": [*model[1].parameters(), *model[2].parameters()], "lr": 0.01},
        ],
        lr=0.1,
        amsgrad=True,
    )
    sched = S.MultiStepLR(opt, milestones=[1, 1, 3], gamma=0.5)
    for _ in range(3):
        opt.zero_grad()
        model(ember.randn(5, 3)).pow(2).mean().backward()
        opt.step()
        sched.step()
    return model, opt, sched


def _same(a: Any, b: Any) -> None:
    """Equal trees, tensors bit for bit, types preserved (tuple vs list, Counter vs dict)."""
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)), (a, b)
    if isinstance(a, Counter):
        assert type(b) is Counter
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, ember.Tensor):
        assert a.dtype is b.dtype and a.shape == b.shape
        assert a.numpy().tobytes() == b.numpy().tobytes()
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_model_optimizer_scheduler_round_trip_exactly(tmp_path: Path) -> None:
    model, opt, sched = _trained()
    path = tmp_path / "c.safetensors"
    ember.save_checkpoint(path, model, opt, sched, epoch=2, step=30)
    model2, opt2, sched2 = _trained(seed=5)
    info = ember.load_checkpoint(path, model2, opt2, sched2)
    assert info == {"epoch": 2, "step": 30, "extra": None}
    _same(model.state_dict(), model2.state_dict())
    _same(opt.state_dict(), opt2.state_dict())
    _same(sched.state_dict(), sched2.state_dict())
    assert isinstance(sched2.milestones, Counter) and sched2.milestones[1] == 2
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999)  # a tuple again, not a list
    assert opt2.state[model2[0].weight]["step"].dtype is ember.float64


@pytest.mark.parametrize(
    "make",
    [
        lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=10),
        lambda o: S.SequentialLR(
            o, [S.LinearLR(o, 0.5, total_iters=2), S.ExponentialLR(o, 0.9)], milestones=[2]
        ),
        lambda o: S.ReduceLROnPlateau(o, patience=0),
        lambda o: S.CosineAnnealingLR(o, T_max=4),
    ],
    ids=["onecycle", "sequential", "plateau", "cosine"],
)
def test_every_scheduler_state_survives(tmp_path: Path, make: Any) -> None:
    w = ember.zeros(2, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    sched = make(opt)
    for _ in range(3):
        opt.step()
        sched.step(1.0) if isinstance(sched, S.ReduceLROnPlateau) else sched.step()
    path = tmp_path / "s.safetensors"
    ember.save_checkpoint(path, optimizer=opt, scheduler=sched)
    opt2 = optim.SGD([ember.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    sched2 = make(opt2)
    ember.load_checkpoint(path, optimizer=opt2, scheduler=sched2)
    _same(sched.state_dict(), sched2.state_dict())
    for _ in range(3):  # and they keep going the same way
        for s, o in ((sched, opt), (sched2, opt2)):
            o.step()
            s.step(2.0) if isinstance(s, S.ReduceLROnPlateau) else s.step()
        assert sched.get_last_lr() == sched2.get_last_lr()
        assert opt.param_groups[0]["momentum"] == opt2.param_groups[0]["momentum"]


def test_extra_holds_json_values_tensors_and_arrays(tmp_path: Path) -> None:
    extra = {
        "loss": float("nan"),
        "best": float("inf"),
        "worst": -math.inf,
        "history": [1.5, 2, None, True, "x"],
        "shape": (3, (4, 5)),
        "by_epoch": {1: "a", 2: "b"},
        "odd keys": {(1, 2): 3, "$x": 4, None: 5},
        "seen": Counter({"cat": 2}),
        "ema": ember.arange(6.0).reshape(2, 3).t(),
        "mask": np.array([True, False]),
        "np_scalar": np.float32(0.25),
        "nested": {"deep": [{"t": ember.ones(2, dtype=ember.int64)}]},
    }
    path = tmp_path / "e.safetensors"
    ember.save_checkpoint(path, extra=extra, rng=False)
    got = ember.load_checkpoint(path)["extra"]
    expected = dict(extra, np_scalar=0.25)
    _same(expected, got)


def test_values_json_cant_hold_are_refused_with_their_place(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match=r"value at 'extra/fn' is a function.*without pickle"):
        ember.save_checkpoint(path, extra={"fn": lambda: 0})
    with pytest.raises(TypeError, match=r"'extra/s' is a set"):
        ember.save_checkpoint(path, extra={"s": {1, 2}})
    with pytest.raises(TypeError, match="epoch must be an int"):
        ember.save_checkpoint(path, epoch=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model must have a state_dict"):
        ember.save_checkpoint(path, model=object())
    assert not path.exists()


def test_rng_states_are_restored(tmp_path: Path) -> None:
    path = tmp_path / "r.safetensors"
    ember.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    np.random.randn()  # leaves a cached gaussian in NumPy's legacy state
    ember.save_checkpoint(path)
    after = (ember.rand(3).tolist(), np.random.randn(3).tolist(), random.random())
    ember.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    ember.load_checkpoint(path)
    assert (ember.rand(3).tolist(), np.random.randn(3).tolist(), random.random()) == after


def test_rng_false_leaves_generators_alone(tmp_path: Path) -> None:
    path = tmp_path / "r.safetensors"
    ember.save_checkpoint(path, rng=False)
    ember.manual_seed(3)
    expected = ember.rand(2).tolist()
    ember.manual_seed(3)
    ember.load_checkpoint(path)
    assert ember.rand(2).tolist() == expected


# ================================================================= the file
def test_the_file_is_one_plain_safetensors_file(tmp_path: Path) -> None:
    st_numpy = pytest.importorskip("safetensors.numpy")
    model, opt, sched = _trained()
    path = tmp_path / "c.safetensors"
    ember.save_checkpoint(path, model, opt, sched, step=3)
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]
    tensors = st_numpy.load_file(path)
    assert "model/0.weight" in tensors and "optimizer/state/0/exp_avg" in tensors
    np.testing.assert_array_equal(tensors["model/0.weight"], model[0].weight.detach().numpy())
    doc = json.loads(ember.load_metadata(path)["ember_checkpoint"])
    assert doc["model"]["0.weight"] == {"$tensor": "model/0.weight"}
    assert doc["optimizer"]["class"] == "Adam" and doc["scheduler"]["class"] == "MultiStepLR"
    assert set(doc["rng"]) == {"ember", "numpy", "python"}


def test_checkpoint_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.safetensors"
    ember.save_checkpoint(path, step=1)

    def boom(f: Any, a: np.ndarray) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(safetensors_io, "_write_array", boom)
    with pytest.raises(OSError, match="disk full"):
        ember.save_checkpoint(path, model=nn.Linear(2, 2), step=2)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]
    assert ember.load_checkpoint(path)["step"] == 1


# ================================================================= loading errors
def test_a_plain_weight_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    ember.save({"x": ember.zeros(1)}, path)
    with pytest.raises(SafetensorsError, match="not an ember training checkpoint.*ember.load"):
        ember.load_checkpoint(path)


def test_mismatches_are_refused_before_anything_changes(tmp_path: Path) -> None:
    model, opt, _ = _trained()
    path = tmp_path / "c.safetensors"
    ember.save_checkpoint(path, model, opt)
    fresh, fresh_opt, fresh_sched = _trained(seed=1)
    before = {k: v.numpy().copy() for k, v in fresh.state_dict().items()}

    with pytest.raises(ValueError, match="no scheduler state"):
        ember.load_checkpoint(path, fresh, fresh_opt, fresh_sched)
    sgd = optim.SGD(fresh.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="state of a Adam optimizer, but a SGD was passed"):
        ember.load_checkpoint(path, fresh, sgd)
    one_group = optim.Adam(fresh.parameters())
    with pytest.raises(ValueError, match=r"groups of sizes \[2, 4\], this one \[6\]"):
        ember.load_checkpoint(path, fresh, one_group)
    other = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Linear(5, 1))
    with pytest.raises(KeyError, match="size mismatch"):
        ember.load_checkpoint(path, other)
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ("{not json", "JSON is malformed"),
        ('{"extra": NaN}', "JSON constant NaN"),
        ('{"extra": {"$tensor": "missing"}}', "tensor 'missing' that the file does not hold"),
        ('{"extra": {"$nope": 1}}', "unknown tag"),
        ('{"extra": {"$tuple": [], "b": 1}}', "mixes the tag"),
        ('{"extra": {"$float": "1e400"}}', "must be 'nan'"),
        ('{"extra": {"$dict": [[[1], 2]]}}', "unhashable list"),
        ("[1]", "not an object"),
    ],
)
def test_malformed_checkpoint_json(tmp_path: Path, doc: str, match: str) -> None:
    path = tmp_path / "bad.safetensors"
    safetensors_io.write_file(path, {}, {"ember_checkpoint": doc})
    with pytest.raises(SafetensorsError, match=match):
        ember.load_checkpoint(path)
