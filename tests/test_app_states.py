"""The app tells the truth about its jobs and its files (issue: the app's job state machine).

Real window, real training and surface jobs, real HDF5 files. Each test that drives a job
holds the engine at a chosen event until the GUI has acted (paused, cancelled, taken a
screenshot), so nothing depends on how fast the CPU is compared with the event loop.
Screenshots of each job state go to $LOSSLAB_SHOTS (default: the test's tmp folder).

QT_API=pyside6 xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest tests/test_app_states.py
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from app.settings import AppSettings  # noqa: E402
from app.worker import JobState, preload_engine_libraries  # noqa: E402
from engine.storage.run import load_run  # noqa: E402
from engine.storage.surface_file import SurfaceWriter, create_surface_file, load_surface  # noqa: E402

preload_engine_libraries()
pytestmark = pytest.mark.gui
LEFT = Qt.MouseButton.LeftButton
SCREEN_WIDTH, SCREEN_HEIGHT = 1280, 1024  # the xvfb screen the GUI tests run on


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("LOSSLAB_SHOTS", tmp_path / "shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def snap(window: MainWindow, folder: Path, name: str) -> Path:
    QApplication.processEvents()
    window.views.view3d.plotter.render()  # the 3D view draws on change; make sure the last one is drawn
    QApplication.processEvents()
    path = folder / f"state_{name}.png"
    assert window.grab().save(str(path))
    return path


@pytest.fixture
def window(qtbot, tmp_path) -> MainWindow:
    settings = AppSettings(tmp_path / "settings.ini")
    settings.set_runs_folder(tmp_path / "runs")
    w = MainWindow(settings=settings, restore_layout=False)
    w.resize(SCREEN_WIDTH, 900)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.experiment.is_valid, timeout=30000)
    return w


class Gate:
    """Holds the engine thread after an event matching ``when`` until the GUI opens the gate
    (or cancels the job): the GUI acts in a known state, however fast the job runs."""

    def __init__(self) -> None:
        self.open = threading.Event()

    def sink(self, on_event, cancel, when):
        def hold(event) -> None:
            on_event(event)
            deadline = time.monotonic() + 60
            while when(event) and not cancel.cancelled and not self.open.is_set():
                assert time.monotonic() < deadline, "the GUI never acted"
                time.sleep(0.005)
        return hold


def type_text(qtbot, widget, text: str) -> None:
    line = widget.lineEdit() if hasattr(widget, "lineEdit") else widget
    line.selectAll()
    qtbot.keyClick(line, Qt.Key.Key_Backspace)
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key.Key_Return)


def test_pause_resume_finish_tell_the_truth(qtbot, window, shots, trained_run, monkeypatch) -> None:
    import engine.training

    real_train, gate = engine.training.train, Gate()
    held_epoch = {False: 1, True: 3}  # first job: epoch 1 (to pause); resumed job: epoch 3 (to look)

    def train(cfg, out, *, on_event, cancel, **kwargs):
        when = held_epoch[bool(kwargs.get("resume"))]
        sink = gate.sink(on_event, cancel, lambda e: e.payload.get("epoch") == when)
        return real_train(cfg, out, on_event=sink, cancel=cancel, **kwargs)

    monkeypatch.setattr(engine.training, "train", train)
    w, panel = window, window.training
    type_text(qtbot, w.experiment.rows["train.epochs"].editor, "6")
    type_text(qtbot, w.experiment.rows["model.hidden"].editor, "16")
    qtbot.waitUntil(lambda: w.experiment.is_valid, timeout=30000)

    qtbot.mouseClick(panel.buttons["start"], LEFT)
    qtbot.waitUntil(lambda: 1 in panel.curves.epochs or panel.state.is_final, timeout=60000)  # held at 1
    assert 1 in panel.curves.epochs, (panel.state, panel.run_label.text())
    assert panel.state is JobState.RUNNING and "remaining" in panel.eta.text()
    snap(w, shots, "running")
    assert w.open_file(trained_run) is None  # another run cannot replace the running job's view
    assert "is running" in w.last_error.text() and panel.state is JobState.RUNNING
    w.last_error.close()
    qtbot.mouseClick(panel.buttons["pause"], LEFT)
    # Reported at once, before the engine has reached its next safe point.
    assert panel.state is JobState.PAUSING and "pausing" in w.job_label.text()
    assert not panel.buttons["pause"].isEnabled() and not panel.buttons["resume"].isEnabled()
    qtbot.waitUntil(lambda: panel.state is JobState.PAUSED, timeout=30000)
    assert "paused" in w.job_label.text() and "cancelled" not in w.job_label.text()
    paused_at = panel.progress.value()
    assert 0 < paused_at < 100 and f"paused at {paused_at} %" in panel.eta.text()
    assert panel.buttons["resume"].isEnabled() and load_run(panel.run_path).final_epoch == 1
    snap(w, shots, "paused")
    paused_run = panel.run_path

    # Another (complete) run opened meanwhile: nothing of the paused job's progress stays on screen.
    w.open_file(trained_run, interactive=False)
    assert panel.state is JobState.FINISHED and panel.progress.value() == 100
    assert "remaining" not in panel.eta.text() and "paused" not in panel.eta.text()
    w.open_file(paused_run, interactive=False)
    assert panel.state is JobState.PAUSED and panel.progress.value() == paused_at

    seen: list[int] = []
    qtbot.mouseClick(panel.buttons["resume"], LEFT)
    panel.job.progress.connect(lambda _e: seen.append(panel.progress.value()))
    qtbot.waitUntil(lambda: 3 in panel.curves.epochs, timeout=60000)
    assert panel.state is JobState.RUNNING and seen and min(seen) >= paused_at  # continues, no restart
    assert w.job_progress.value() == panel.progress.value()  # the status bar tells the same
    snap(w, shots, "resumed")
    gate.open.set()
    qtbot.waitUntil(lambda: panel.state is JobState.FINISHED, timeout=60000)
    assert panel.progress.value() == 100 and "done in" in panel.eta.text()
    assert "remaining" not in panel.eta.text() and "finished" in w.job_label.text()
    assert not w.job_progress.isVisible()
    assert load_run(paused_run).final_epoch == 6 and panel.curves.epochs == list(range(7))
    snap(w, shots, "finished")


def test_cancelled_surface_resumes_from_compute(qtbot, window, shots, trained_run, monkeypatch) -> None:
    import engine.landscape.surface

    real, gate = engine.landscape.surface.compute_surface, Gate()

    def compute(run, options, out, *, on_event, cancel, **kwargs):
        sink = gate.sink(on_event, cancel, lambda e: "indices" in e.payload)
        return real(run, options, out, on_event=sink, cancel=cancel, **kwargs)

    monkeypatch.setattr(engine.landscape.surface, "compute_surface", compute)
    w, panel = window, window.surface
    w.open_file(trained_run, interactive=False)
    for axis in ("x", "y"):
        type_text(qtbot, panel.form.rows[axis].editor.points, "9")
    assert panel.revalidate(), panel.status.text()
    qtbot.waitUntil(lambda: panel.compute.isEnabled(), timeout=10000)
    qtbot.mouseClick(panel.compute, LEFT)
    first = panel.job.output
    qtbot.waitUntil(lambda: panel.live is not None and panel.live.has_points, timeout=60000)
    panel.cancel()
    qtbot.waitUntil(lambda: panel.state is JobState.CANCELLED, timeout=30000)
    assert "cancelled" in w.job_label.text() and "Compute with the same options resumes" in panel.eta.text()
    partial = load_surface(first)
    done_before = int(partial.computed.sum())
    assert 0 < done_before < 81 and f"cancelled with {done_before} of 81 points" in panel.eta.text()
    assert panel.progress.value() == int(100 * done_before / 81)  # what the file holds
    snap(w, shots, "cancelled")

    gate.open.set()
    qtbot.mouseClick(panel.compute, LEFT)
    assert panel.job.output == first  # the same file, not a new "-2" one
    assert "Resuming" in panel.status.text() and panel.progress.value() == int(100 * done_before / 81)
    qtbot.waitUntil(lambda: panel.state is JobState.FINISHED, timeout=90000)
    surface = load_surface(first)
    assert surface.is_complete and not Path(str(first).replace(".h5", "-2.h5")).exists()
    assert np.array_equal(surface.values["train_loss"][partial.computed],
                          partial.values["train_loss"][partial.computed])  # kept, not recomputed
    assert panel.progress.value() == 100 and "remaining" not in panel.eta.text()


def surface_file(path: Path, metrics: dict[str, float]) -> Path:
    """A small complete 2D LossLab surface file with the given metrics (value = scale * bowl)."""
    x, y = np.linspace(-1, 1, 7), np.linspace(-1, 1, 5)
    create_surface_file(path, x, y, list(metrics), {}, {"directions": "random"})
    writer = SurfaceWriter(path)
    for j in range(len(y)):
        for i in range(len(x)):
            bowl = 0.2 + x[i] ** 2 + y[j] ** 2
            writer.record((j, i), {m: scale * bowl for m, scale in metrics.items()}, 0.01)
    writer.close()
    return path


def test_a_metric_chosen_for_one_surface_does_not_block_another(qtbot, window, tmp_path) -> None:
    w = window
    first = surface_file(tmp_path / "first.h5", {"train_loss": 1.0, "train_acc": 0.5})
    second = surface_file(tmp_path / "second.h5", {"test_loss": 2.0})
    assert w.open_file(first, interactive=False) == "surface"
    box = w.views.controls.metric_box
    box.setCurrentIndex(box.findData("train_acc"))
    qtbot.waitUntil(lambda: w.views.settings.metric == "train_acc", timeout=5000)
    assert w.views.view3d.info.text().startswith("train_acc")  # the status line names what is drawn
    assert w.open_file(second, interactive=False) == "surface"
    assert w.views.current_metric() == "test_loss" and w.views.settings.metric == ""
    assert w.views.view3d.info.text().startswith("test_loss")
    assert w.views.heatmap.info.text().startswith("test_loss")
    assert box.currentData() == ""  # the Metric box shows the default, not the other file's choice


def test_a_long_hover_readout_never_widens_the_window(qtbot, window, tmp_path, shots) -> None:
    w = window
    metrics = {f"per_class_recall_of_a_rather_long_class_name_{k}": 1.0 + k for k in range(12)}
    path = surface_file(tmp_path / "many.h5", metrics)
    w.open_file(path, interactive=False)
    from app.display_data import probe

    text = probe(w.views.surface, 0.0, 0.0).describe()
    assert len(text) > 600
    for view in (w.views.view3d, w.views.heatmap):
        view.info.setText(text)  # what hovering over the centre writes
    qtbot.wait(100)
    assert w.width() <= SCREEN_WIDTH and w.minimumSizeHint().width() <= SCREEN_WIDTH
    assert w.minimumSizeHint().height() <= SCREEN_HEIGHT  # no dock forces the window off the screen either
    display = w.docks["display"]
    assert display.isVisible() and display.geometry().right() <= w.width()
    assert w.views.view3d.info.toolTip() == text  # the whole read-out is still there


def test_errors_are_in_words_next_to_the_field(qtbot, window, tmp_path, shots) -> None:
    w, panel = window, window.surface
    w.show_panel("surface")
    type_text(qtbot, panel.form.rows["x"].editor.points, "1")
    row = panel.form.rows["x"]
    qtbot.waitUntil(lambda: row.error.isVisible(), timeout=5000)
    assert not panel.compute.isEnabled() and "-1:1:1" in row.error.text()
    assert not re.match(r"^[\w.]+ = ", row.error.text())  # words, not "x = ..." internals
    snap(w, shots, "error_next_to_field")

    first = surface_file(tmp_path / "only.h5", {"train_loss": 1.0})
    from engine.errors import LossLabError

    with pytest.raises(LossLabError, match="2 to 4 surfaces side by side; 1 was chosen"):
        w.views.compare_files([first])

    damaged = tmp_path / "damaged.h5"
    damaged.write_text("these are not the bytes of an HDF5 file")
    assert w.open_file(damaged) is None
    message = w.last_error.text()
    assert str(damaged) in message and "it is not an HDF5 file" in message
    assert "signature" not in message and "synchronously" not in message  # HDF5's words stay out


def _parentless_menus() -> int:
    from PySide6.QtWidgets import QMenu

    return sum(1 for w in QApplication.allWidgets() if isinstance(w, QMenu) and w.parent() is None)


def test_a_closed_window_leaves_no_plot_menus_for_a_job_thread_to_free(qtbot, tmp_path) -> None:
    """pyqtgraph's parentless plot menus, freed by a garbage collection on a job thread, froze
    the app (GIL against a Qt mutex); closing the window deletes them on the GUI thread."""
    from PySide6.QtCore import QEvent

    before = _parentless_menus()
    settings = AppSettings(tmp_path / "settings.ini")
    settings.set_runs_folder(tmp_path / "runs")
    w = MainWindow(settings=settings, restore_layout=False)
    w.show()
    qtbot.waitExposed(w)
    assert _parentless_menus() > before + 10  # every plot's ViewBox and control menu
    w.close()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert _parentless_menus() <= before
    w.deleteLater()
