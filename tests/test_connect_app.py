"""Run > Connect two runs… driven like a user: files, options, Connect, curve vs line, the plane.

Needs a display: QT_API=pyside6 xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest \
    tests/test_connect_app.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import Qt  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from app.settings import AppSettings  # noqa: E402
from app.worker import preload_engine_libraries  # noqa: E402
from engine.config import from_dict  # noqa: E402
from engine.connect import load_curve  # noqa: E402
from engine.training import train  # noqa: E402

preload_engine_libraries()
pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("connect-app")
    paths = []
    for seed in (1, 2):
        cfg = from_dict({"name": f"app-{seed}", "seed": seed,
                         "data": {"source": "digits", "train_limit": 300, "test_limit": 150, "split_seed": 0},
                         "model": {"arch": "mlp", "hidden": [16]},
                         "train": {"lr": 0.1, "batch_size": 32, "epochs": 6, "threads": 1}})
        paths.append(train(cfg, folder / f"run{seed}.h5"))
    return paths


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(settings=AppSettings(tmp_path / "settings.ini"), restore_layout=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.worker.shutdown()


def _type(qtbot, edit, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


def test_connect_dialog_trains_shows_curve_vs_line_and_the_plane(qtbot, window, two_runs, tmp_path, monkeypatch):
    import app.panels.connect_dialog as dialog_module

    run_menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Run")
    assert window.actions["connect"] in run_menu.actions()
    window.actions["connect"].trigger()
    dialog = window.connect_dialog
    qtbot.waitExposed(dialog)
    out = tmp_path / "curve.h5"
    for edit, text in ((dialog.run_a, two_runs[0]), (dialog.run_b, two_runs[1]), (dialog.out, out)):
        _type(qtbot, edit, str(text))
    form = dialog.form.editors
    _type(qtbot, form["t"], "0:2:5")
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    assert "t = '0:2:5'" in dialog.form.error.text() and dialog.job is None
    _type(qtbot, form["t"], "0:1:5")
    dialog.form.set_value("epochs", 3)
    dialog.form.set_value("ensemble", 3)
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.record is not None, timeout=120000)
    stored = load_curve(out)
    assert stored.epochs_done == 3 and stored.options.t == "0:1:5"
    shown = dialog.view.curves
    assert set(shown) == {"trained curve", "straight line"}
    for name, path in (("trained curve", "curve"), ("straight line", "line")):
        np.testing.assert_array_equal(shown[name].x, stored.t)
        np.testing.assert_array_equal(shown[name].values["train_loss"], stored.values[path]["train_loss"])
    assert f"curve {stored.summary['barrier_curve_train_loss']:.4f}" in dialog.status.text()
    assert f"straight line {stored.summary['barrier_line_train_loss']:.4f}" in dialog.status.text()

    monkeypatch.setattr(dialog_module, "PLANE_GRID", {"x": "0:1:3", "y": "0:1:3"})
    qtbot.mouseClick(dialog.plane_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.views.surface is not None, timeout=120000)
    surface = window.views.surface
    t = np.linspace(0, 1, len(surface.trajectory))
    np.testing.assert_allclose(surface.trajectory, np.stack([t**2, 2 * t * (1 - t)], axis=1), atol=1e-5)
    assert np.isfinite(surface.values["train_loss"]).all()


def test_opening_a_curve_file_shows_it_in_the_connect_dialog(qtbot, window, two_runs, tmp_path):
    from engine.connect import ConnectOptions, connect

    out = tmp_path / "opened.h5"
    record = connect(*two_runs, out, ConnectOptions(epochs=1, t="0:1:3", ensemble=0))
    assert window.files.open(out) == "curve"
    dialog = window.connect_dialog
    assert dialog.isVisible() and dialog.out.text() == str(out)
    np.testing.assert_array_equal(dialog.view.curves["straight line"].values["test_loss"],
                                  record.values["line"]["test_loss"])
    assert f"straight line {record.summary['barrier_line_train_loss']:.4f}" in dialog.status.text()
