"""history.plot(): a PNG of the training curves, drawn off-screen with matplotlib."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import ember
from ember import nn
from ember._src.models.plot import DPI, PANEL_SIZE, plot_history
from ember.models import Model, callbacks


def fit(validation: bool, epochs: int = 3) -> callbacks.History:
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    model = Model(nn.Linear(3, 1))
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model.fit(x, y, epochs=epochs, validation_split=0.25 if validation else 0.0, verbose=0)


def decode(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # decodes every pixel: a truncated file raises here
        return image.size


@pytest.mark.parametrize("validation", [True, False])
def test_plot_writes_a_png_with_a_panel_per_quantity(tmp_path: Path, validation: bool) -> None:
    pytest.importorskip("matplotlib")
    history = fit(validation)
    path = tmp_path / "curves.png"
    assert history.plot(path) == str(path)
    width, height = PANEL_SIZE
    panels = 2  # loss and mae; val_ values share their panel
    assert decode(path) == (round(panels * width * DPI), round(height * DPI))


def test_plot_history_function_and_learning_rate_panel(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    history = fit(validation=True)
    history.history["learning_rate"] = [0.01, 0.01, 0.001]
    path = plot_history(history, tmp_path / "curves.png")
    width, height = PANEL_SIZE
    assert decode(Path(path)) == (round(3 * width * DPI), round(height * DPI))


def test_plot_of_an_empty_history_raises(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="empty"):
        callbacks.History().plot(tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def test_without_matplotlib_the_error_names_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    history = fit(validation=False, epochs=1)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        history.plot(tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()
