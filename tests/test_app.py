"""The desktop app driven like a user would: typing into forms, clicking buttons, menus, files.

Needs a display (the 3D view is an OpenGL widget):
QT_API=pyside6 xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest tests/test_app.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QAction, QDropEvent, QImage  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from app.settings import AppSettings  # noqa: E402
from app.worker import preload_engine_libraries  # noqa: E402
from engine.storage.run import load_run  # noqa: E402
from engine.storage.surface_file import load_surface  # noqa: E402

# At collection, before any test opens a GL context: triton's LLVM must load before Mesa's.
preload_engine_libraries()
pytestmark = pytest.mark.gui
LEFT = Qt.MouseButton.LeftButton


# -- helpers: act on widgets the way a user does ------------------------------------------
def type_text(qtbot, widget, text: str) -> None:
    """Replace the text of a line edit or spin box and press Enter."""
    line = widget.lineEdit() if hasattr(widget, "lineEdit") else widget
    line.selectAll()
    qtbot.keyClick(line, Qt.Key.Key_Backspace)
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key.Key_Return)


def choose(qtbot, combo, text: str) -> None:
    """Pick a combo box entry by typing its first letters (keyboard search, emits ``activated``)."""
    qtbot.wait(QApplication.keyboardInputInterval() + 50)  # a fresh search, not a continued one
    qtbot.keyClicks(combo, text)
    assert combo.currentText().startswith(text), (combo.currentText(), text)


def tick(qtbot, box) -> None:
    """Click a check box on its tick mark (a wide box has empty space at its centre)."""
    qtbot.mouseClick(box, LEFT, pos=QPoint(8, box.height() // 2))


def field(window: MainWindow, key: str):
    return window.experiment.rows[key].editor


def error_of(window: MainWindow, key: str) -> str:
    row = window.experiment.rows[key]
    return row.error.text() if row.error.isVisible() else ""


def image_of(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    data = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    return data.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width(), :3].copy()


def colours(pixels: np.ndarray) -> int:
    return len(np.unique(pixels.reshape(-1, 3), axis=0))


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def settings(tmp_path) -> AppSettings:
    s = AppSettings(tmp_path / "settings.ini")
    s.set_runs_folder(tmp_path / "runs")
    return s


@pytest.fixture
def window(qtbot, settings) -> MainWindow:
    w = MainWindow(settings=settings, restore_layout=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.experiment.is_valid, timeout=30000)
    return w


@pytest.fixture(scope="module")
def small_surface(tmp_path_factory, trained_run) -> Path:
    from engine.landscape.options import SurfaceOptions
    from engine.landscape.surface import compute_surface

    out = tmp_path_factory.mktemp("surfaces") / "small.h5"
    return compute_surface(str(trained_run), SurfaceOptions(x="-1:1:7", y="-1:1:7", subset=100), out)


# -- the whole flow ------------------------------------------------------------------------
def test_preset_bias_train_surface_display_export_screenshot(qtbot, window, tmp_path, monkeypatch) -> None:
    w = window
    choose(qtbot, w.experiment.presets, "digits-mlp-quick")
    assert field(w, "name").text() == "digits-mlp-quick"
    type_text(qtbot, field(w, "train.epochs"), "2")
    type_text(qtbot, field(w, "model.hidden"), "16")
    choose(qtbot, field(w, "bias.kind"), "size")
    choose(qtbot, field(w, "bias.class"), "3")
    type_text(qtbot, field(w, "bias.fraction"), "0.5")
    table = w.experiment.preview.table
    qtbot.waitUntil(lambda: w.experiment.is_valid and table.rowCount() == 10, timeout=30000)
    before, after = int(table.item(3, 1).text()), int(table.item(3, 2).text())
    assert after == before - round(0.5 * before) and table.item(4, 1).text() == table.item(4, 2).text()

    qtbot.mouseClick(w.training.buttons["start"], LEFT)
    qtbot.waitUntil(lambda: w.training.state == "finished", timeout=60000)
    run = load_run(w.training.run_path)
    assert run.epochs == [0, 1, 2] and run.config.bias.kind == "size" and run.config.bias.target_class == 3
    assert run.config.model.hidden == [16] and w.training.curves.epochs == [0, 1, 2]
    assert w.training.report.table.rowCount() == 10 and w.training.report.checkpoints.count() == 3
    assert "generalisation error" in w.training.summary.text()

    panel = w.surface
    assert panel.runs.currentData() == str(w.training.run_path.resolve())
    for axis in ("x", "y"):
        type_text(qtbot, panel.form.rows[axis].editor.points, "9")
    drawn: list[tuple[int, int, int]] = []
    panel.points_arrived.connect(lambda live: drawn.append(
        (w.views.view3d.drawn_cells, w.views.view3d.scene.pending.n_points, int(np.isnan(live.surface.values[
            "train_loss"]).sum()))))
    qtbot.mouseClick(panel.compute, LEFT)
    qtbot.waitUntil(lambda: panel.state == "finished", timeout=90000)
    surface = load_surface(w.views.surface.path)
    assert surface.is_complete and surface.values["train_loss"].shape == (9, 9)
    cells, marked, pending = drawn[0]
    # The first coarse batch is previewed over the whole grid (display-only interpolation), its
    # pending points are marked, and the data itself keeps them as NaN.
    assert w.views.settings.fill_holes and cells == 64 and 0 < marked == pending < 81
    assert w.views.view3d.drawn_cells == 64 and not np.isnan(w.views.surface.values["train_loss"]).any()

    controls = w.views.controls
    was_log = w.views.settings.log_scale  # on if the loss spans orders of magnitude
    assert controls.log_scale.isChecked() == was_log
    before = image_of(w.views.view3d)
    tick(qtbot, controls.log_scale)
    qtbot.waitUntil(lambda: w.views.settings.log_scale != was_log, timeout=5000)
    after = image_of(w.views.view3d)
    assert colours(before) > 500 and colours(after) > 500
    assert np.abs(before.astype(int) - after.astype(int)).sum(axis=2).astype(bool).mean() > 0.01
    tick(qtbot, controls.clamp_on)
    type_text(qtbot, controls.contour_count, "5")
    qtbot.waitUntil(lambda: w.views.settings.clamp_max is not None and w.views.settings.contour_count == 5,
                    timeout=5000)

    vts = tmp_path / "surface.vts"
    from app.export_dialog import ExportSpec

    monkeypatch.setattr("app.file_actions.ask_export", lambda *a, **k: ExportSpec("vts", vts))  # the dialog's answer
    w.actions["export"].trigger()
    from vtkmodules.vtkIOXML import vtkXMLStructuredGridReader

    reader = vtkXMLStructuredGridReader()
    reader.SetFileName(str(vts))
    reader.Update()
    grid, dims = reader.GetOutput(), [0, 0, 0]
    grid.GetDimensions(dims)
    assert dims[:2] == [9, 9] and grid.GetPointData().GetArray("train_loss") is not None

    picture = tmp_path / "window.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(picture), ""))
    w.actions["window_picture"].trigger()
    shot = QImage(str(picture))
    assert shot.width() == w.width() and colours(image_of(w)) > 500


def test_wide_ranging_losses_open_in_log_scale_until_the_user_chooses_linear(qtbot, window, tmp_path) -> None:
    import h5py

    path = tmp_path / "steep.h5"
    x, y = np.linspace(-1, 1, 9), np.linspace(-1, 1, 7)
    with h5py.File(path, "w") as f:  # loss-landscape's layout, loss from 0.1 to 1000
        f["xcoordinates"], f["ycoordinates"] = x, y
        f["train_loss"] = 0.1 * 10 ** (4 * (x[None, :] ** 2 + y[:, None] ** 2) / 2)
    w = window
    w.open_file(path, interactive=False)
    assert w.views.settings.log_scale and w.views.controls.log_scale.isChecked()
    tick(qtbot, w.views.controls.log_scale)
    qtbot.waitUntil(lambda: not w.views.settings.log_scale, timeout=5000)
    w.open_file(path, interactive=False)
    assert not w.views.settings.log_scale


def test_bad_inputs_show_the_reason_and_start_nothing(qtbot, window, tmp_path, settings) -> None:
    w = window
    choose(qtbot, field(w, "bias.kind"), "mislabel")
    type_text(qtbot, field(w, "bias.fraction"), "1.5")
    assert "1.5" in error_of(w, "bias.fraction") and "expected" in error_of(w, "bias.fraction")
    assert not w.experiment.is_valid and not w.training.buttons["start"].isEnabled()
    qtbot.mouseClick(w.training.buttons["start"], LEFT)
    w.actions["start"].trigger()
    assert not w.worker.busy and not Path(settings.runs_folder()).exists()

    type_text(qtbot, field(w, "bias.fraction"), "0.3")
    assert error_of(w, "bias.fraction") == ""
    type_text(qtbot, field(w, "train.lr"), "fast")
    assert "not a number" in error_of(w, "train.lr")
    type_text(qtbot, field(w, "train.lr"), "0.05")

    empty = tmp_path / "empty-cifar"
    empty.mkdir()
    choose(qtbot, field(w, "data.source"), "cifar10")
    assert "data folder" in error_of(w, "data.root")  # no folder typed yet
    type_text(qtbot, field(w, "data.root").line, str(empty))
    qtbot.waitUntil(lambda: str(empty) in error_of(w, "data.root"), timeout=30000)
    assert not w.experiment.is_valid and not w.training.buttons["start"].isEnabled()
    assert "cannot start" in w.experiment.status.text().lower()
    qtbot.mouseClick(w.training.buttons["start"], LEFT)
    assert not w.worker.busy

    choose(qtbot, field(w, "data.source"), "digits")
    qtbot.waitUntil(lambda: w.experiment.is_valid, timeout=30000)
    assert error_of(w, "data.root") == "" and w.training.buttons["start"].isEnabled()


def test_experiment_toml_save_and_load(qtbot, window, tmp_path, monkeypatch) -> None:
    from engine.config import load_experiment

    w = window
    type_text(qtbot, field(w, "train.epochs"), "7")
    toml = tmp_path / "mine.toml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(toml), ""))
    w.actions["save_experiment"].trigger()  # saving needs valid fields, not the data check
    qtbot.waitUntil(lambda: w.experiment.is_valid, timeout=30000)
    assert load_experiment(toml) == w.experiment.config() and load_experiment(toml).train.epochs == 7
    type_text(qtbot, field(w, "train.epochs"), "3")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(toml), ""))
    w.actions["load_experiment"].trigger()
    assert field(w, "train.epochs").value() == 7 and w.settings.recent_files()[0] == str(toml.resolve())
    import torch

    device = w.device_label.text()
    assert device.startswith("GPU: " if torch.cuda.is_available() else "CPU (")


def test_pause_then_resume_continues_the_same_run(qtbot, window, monkeypatch) -> None:
    import time

    import engine.training

    real_train = engine.training.train

    def train_waiting_for_pause(cfg, out, *, on_event, cancel, **kwargs):
        """The real training; after epoch 1 of the first job it waits for the Pause click,
        so the test does not race a fast CPU against the event loop."""
        def sink(event) -> None:
            on_event(event)
            deadline = time.monotonic() + 30
            while event.payload.get("epoch") == 1 and not kwargs.get("resume") and not cancel.cancelled:
                assert time.monotonic() < deadline
                time.sleep(0.005)

        return real_train(cfg, out, on_event=sink, cancel=cancel, **kwargs)

    monkeypatch.setattr(engine.training, "train", train_waiting_for_pause)
    w = window
    type_text(qtbot, field(w, "train.epochs"), "6")
    type_text(qtbot, field(w, "model.hidden"), "16")
    qtbot.waitUntil(lambda: w.experiment.is_valid, timeout=30000)

    live_report_rows = []

    def pause_after_first_epoch(event) -> None:
        if event.payload.get("epoch") == 1 and w.training.state == "running":
            live_report_rows.append(w.training.report.table.rowCount())
            qtbot.mouseClick(w.training.buttons["pause"], LEFT)

    qtbot.mouseClick(w.training.buttons["start"], LEFT)
    w.training.job.progress.connect(pause_after_first_epoch)  # this job's own signal
    qtbot.waitUntil(lambda: w.training.state not in ("running", "pausing"), timeout=60000)
    assert w.training.state == "paused"
    assert live_report_rows == [10]  # the per-class report filled in during the job, not after it
    paused_at = load_run(w.training.run_path).final_epoch
    assert paused_at == 1 and w.training.buttons["resume"].isEnabled()
    qtbot.mouseClick(w.training.buttons["resume"], LEFT)
    qtbot.waitUntil(lambda: w.training.state == "finished", timeout=60000)
    run = load_run(w.training.run_path)
    assert run.final_epoch == 6 and run.status == "complete"
    assert w.training.curves.epochs == list(range(7))


def test_files_open_by_menu_drop_and_recent_list(qtbot, window, trained_run, small_surface,
                                                 tmp_path, monkeypatch) -> None:
    w = window
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(trained_run), ""))
    w.actions["open"].trigger()
    assert w.training.curves.epochs == [0, 1, 2, 3, 4] and w.training.report.table.rowCount() == 10
    assert w.surface.runs.currentData() == str(Path(trained_run).resolve())

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_surface))])
    # Qt routes drop events only inside a real drag, so the event goes to the window's handler.
    copy, no_keys = Qt.DropAction.CopyAction, Qt.KeyboardModifier.NoModifier
    w.dropEvent(QDropEvent(QPointF(50, 50), copy, mime, LEFT, no_keys))
    assert w.views.surface.path == small_surface and w.views.view3d.drawn_cells == 36

    picture = w.files.save_view_picture(tmp_path / "view.png", (640, 480))
    assert (QImage(str(picture)).width(), QImage(str(picture)).height()) == (640, 480)
    import imageio.v2 as imageio

    movie = w.files.save_orbit_movie(tmp_path / "orbit.gif", frames=6)
    assert len(imageio.mimread(movie)) == 6
    table = w.files.export_to(tmp_path / "curves.csv").read_text().splitlines()
    assert "train_loss" in table[0] and len(table) == 1 + 49

    recent = [a.toolTip() for a in w.recent_menu.actions() if a.toolTip().endswith(".h5")]
    assert recent[:2] == [str(small_surface.resolve()), str(Path(trained_run).resolve())]

    # A surface written by tomgoldstein/loss-landscape: flat (nx*ny) arrays, -1 = not computed.
    import h5py

    ll = tmp_path / "resnet56_sgd_lr=0.1.h5_[-1.0,1.0,5]x[-1.0,1.0,5].h5"
    with h5py.File(ll, "w") as f:
        f["xcoordinates"] = f["ycoordinates"] = np.linspace(-1, 1, 5)
        losses = np.linspace(0.1, 3.0, 25)
        losses[-3:] = -1
        f["train_loss"], f["train_acc"] = losses, np.full(25, 90.0)
    assert w.open_file(ll) == "surface" and w.views.view3d.drawn_cells == 16 - 3  # 3 cells touch a hole

    garbage = tmp_path / "notes.h5"
    garbage.write_text("not hdf5")
    assert w.open_file(garbage) is None
    assert w.last_error.isVisible() and "notes.h5" in w.last_error.text()
    w.last_error.close()


def test_compare_two_surfaces_side_by_side(qtbot, window, small_surface, trained_run, tmp_path) -> None:
    from engine.landscape.options import SurfaceOptions
    from engine.landscape.surface import compute_surface

    other = compute_surface(str(trained_run), SurfaceOptions(x="-1:1:5", y="-1:1:5", subset=100, seed=1),
                            tmp_path / "other.h5")
    window.views.compare_files([small_surface, other])
    assert window.views.currentWidget() is window.views.compare
    titles = [t.text() for t in window.views.compare.titles]
    assert all("test acc" in t and "gen. error" in t and "test_loss rise within 0.5" in t for t in titles)
    width = window.views.width()
    # Views only (F11): the side-by-side panels get the whole window. Xvfb has no window
    # manager to make the window active for a key press, so the menu action is triggered.
    views_only = next(a for a in window.findChildren(QAction) if a.shortcut().toString() == "F11")
    views_only.trigger()
    qtbot.waitUntil(lambda: window.views.width() > width + 400, timeout=5000)
    window.toggle_panels()
    assert all(dock.isVisible() for dock in window.docks.values())


def test_window_layout_and_recent_files_are_remembered(qtbot, settings, trained_run) -> None:
    first = MainWindow(settings=settings, restore_layout=False)
    qtbot.addWidget(first)
    first.show()
    first.resize(1100, 750)
    first.open_file(trained_run)
    first.docks["surface"].raise_()
    first.close()
    again = MainWindow(settings=AppSettings(settings.file_name))
    qtbot.addWidget(again)
    again.show()
    assert (again.width(), again.height()) == (1100, 750)
    assert settings.recent_files()[0] == str(Path(trained_run).resolve())
    assert again.recent_menu.actions()[0].toolTip() == settings.recent_files()[0]


@pytest.mark.parametrize("kind", ["surface", "run"])
def test_gui_command_writes_a_screenshot_and_exits(qtbot, kind, small_surface, trained_run, tmp_path,
                                                   monkeypatch) -> None:
    from app.cli import main

    monkeypatch.setenv("LOSSLAB_SETTINGS", str(tmp_path / "cli.ini"))
    out = tmp_path / "cli.png"
    file = small_surface if kind == "surface" else trained_run
    assert main(["gui", str(file), "--screenshot", str(out), "--size", "1200x800"]) == 0
    shot = QImage(str(out))
    assert (shot.width(), shot.height()) == (1200, 800)
    pixels = np.array([[shot.pixel(x, y) for x in range(0, 1200, 7)] for y in range(0, 800, 7)])
    assert len(np.unique(pixels)) > 300  # a 3D surface or the training curves, not an empty window


def test_gui_command_reports_a_bad_file_and_writes_nothing(qtbot, tmp_path, monkeypatch, capsys) -> None:
    from app.cli import main

    monkeypatch.setenv("LOSSLAB_SETTINGS", str(tmp_path / "cli.ini"))
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    assert main(["gui", str(bad), "--screenshot", str(tmp_path / "x.png")]) == 2
    assert "bad.h5" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_the_engine_cli_does_not_load_qt() -> None:
    code = ("import sys, engine.cli as c; c.build_parser(); "
            "sys.exit(any(m.startswith(('PySide6', 'pyvistaqt', 'app')) for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0


def test_run_files_get_safe_names_and_never_overwrite(tmp_path) -> None:
    from app.panels.training_panel import unused_path

    first = unused_path(tmp_path, "../mislabel 60%")
    assert first == tmp_path / "mislabel-60.h5"
    first.write_text("taken")
    assert unused_path(tmp_path, "../mislabel 60%") == tmp_path / "mislabel-60-2.h5"


def test_learning_rate_axis_is_logarithmic_only_for_schedules_that_span_decades(qtbot) -> None:
    from app.panels.training_curves import TrainingCurves

    curves = TrainingCurves()
    qtbot.addWidget(curves)
    curves.set_history({"lr": np.array([0.05, 0.05, 0.05])})
    assert not curves.lr_plot.ctrl.logYCheck.isChecked()
    curves.set_history({"lr": np.array([0.1, 0.1, 0.01, 0.001])})
    assert curves.lr_plot.ctrl.logYCheck.isChecked()
