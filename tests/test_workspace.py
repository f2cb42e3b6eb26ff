"""The workspace: several runs, surfaces and curves at once, one 3D scene, overlaid curves, a project file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QPushButton  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from app.project_file import read_project  # noqa: E402
from app.settings import AppSettings  # noqa: E402
from engine.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.gui
ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def files(trained_run, tmp_path_factory):
    """Two small 2D surfaces (different seeds, different extents) and two 1D curves of one run."""
    from engine.landscape import SurfaceOptions, compute_surface

    folder = tmp_path_factory.mktemp("workspace")
    plans = {"plane-a": dict(x="-1:1:5", y="-1:1:5", seed=0), "plane-b": dict(x="-0.5:0.5:5", y="-0.5:0.5:5", seed=1),
             "line-a": dict(x="-1:1:7", seed=0), "line-b": dict(x="-1:1:7", seed=2),
             "plane-train": dict(x="-1:1:5", y="-1:1:5", seed=3, split="train")}
    return {name: compute_surface(trained_run, SurfaceOptions(**({"split": "test", "workers": 1} | plan)),
                                  folder / f"{name}.h5")
            for name, plan in plans.items()}


@pytest.fixture
def window(qtbot, tmp_path) -> MainWindow:
    settings = AppSettings(tmp_path / "settings.ini")
    w = MainWindow(settings=settings, restore_layout=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def tree_rows(w: MainWindow) -> list[tuple[str, str, bool]]:
    tree = w.workspace.dock.tree
    return [(tree.topLevelItem(k).text(0), tree.topLevelItem(k).text(1),
             tree.topLevelItem(k).checkState(0) == Qt.CheckState.Checked) for k in range(tree.topLevelItemCount())]


def x_bounds(w: MainWindow) -> list[tuple[float, float]]:
    """The x extent of every surface mesh in the workspace scene (frames and labels excluded)."""
    actors = w.workspace.view.scene.plotter.renderer.actors.values()
    meshes = [getattr(getattr(a, "mapper", None), "dataset", None) for a in actors]
    # Smooth shading turns each grid into polygons; frames are lines, labels have no dataset.
    grids = [m for m in meshes if m is not None and m.n_cells and getattr(m, "faces", np.empty(0)).size]
    return sorted((g.bounds[0], g.bounds[1]) for g in grids)


def test_surfaces_share_one_scene_and_curves_one_plot(window, files, qtbot):
    w = window
    assert w.workspace.dock.welcome.isVisible()  # first launch: the path and the demo button
    for name in ("plane-a", "plane-b", "line-a", "line-b"):
        assert w.open_file(files[name]) in ("surface",)
    assert not w.workspace.dock.welcome.isVisible()
    assert tree_rows(w) == [("plane-a", "surface", True), ("plane-b", "surface", True),
                            ("line-a", "curve", True), ("line-b", "curve", True)]
    w.workspace.show_tab()
    bounds = x_bounds(w)
    assert len(bounds) == 2 and bounds[0][1] < bounds[1][0], bounds  # side by side, not overlapping
    assert bounds[1][1] - bounds[1][0] == pytest.approx(1.0)  # each keeps its own extent
    colours = {i.name: i.colour for i in w.workspace.model.items}
    assert len(set(colours.values())) == 4
    curves = w.workspace.view.curves
    assert list(curves.curves) == ["line-a", "line-b"]
    assert curves.colours == {"line-a": colours["line-a"], "line-b": colours["line-b"]}
    key = w.workspace.view.curves.key.text()
    assert colours["line-a"] in key and "line-b" in key and "dashed: test" in key

    w.workspace.dock.layout_choice.setCurrentText("stacked")
    stacked = x_bounds(w)
    assert stacked[0][0] < stacked[1][0] < stacked[1][1] < stacked[0][1]  # one above the other

    tree = w.workspace.dock.tree
    tree.topLevelItem(0).setCheckState(0, Qt.CheckState.Unchecked)  # hide plane-a
    qtbot.waitUntil(lambda: len(x_bounds(w)) == 1, timeout=5000)
    tree.topLevelItem(3).setText(0, "seed 2")  # rename line-b
    qtbot.waitUntil(lambda: list(curves.curves) == ["line-a", "seed 2"], timeout=5000)
    assert "seed 2" in w.workspace.view.curves.key.text()
    tree.topLevelItem(2).setSelected(True)
    w.workspace.dock._close_selected()
    assert [r[0] for r in tree_rows(w)] == ["plane-a", "plane-b", "seed 2"]
    assert list(curves.curves) == ["seed 2"]


def test_a_train_and_a_test_surface_are_both_drawn_and_named_with_their_metric(window, files):
    w = window
    for name in ("plane-a", "plane-train"):
        w.open_file(files[name])
    w.workspace.show_tab()
    assert len(x_bounds(w)) == 2  # no common loss metric: each shows its own, on one colour scale
    legend = w.workspace.view.scene.plotter.legend
    text = [legend.GetEntryString(k) for k in range(legend.GetNumberOfEntries())]
    assert text == ["plane-a (test_loss)", "plane-train (train_loss)"]
    bar = next(iter(w.workspace.view.scene.plotter.scalar_bars.values()))
    assert bar.GetTitle() in ("loss", "log10 loss")  # not one surface's metric name


def test_compare_selected_surfaces(window, files):
    w = window
    for name in ("plane-a", "plane-b", "line-a"):
        w.open_file(files[name])
    tree = w.workspace.dock.tree
    for k in range(3):
        tree.topLevelItem(k).setSelected(True)
    w.workspace.dock._compare()  # the curve is left out: only surfaces are compared
    assert w.views.currentWidget() is w.views.compare
    assert len(w.views.compare.scenes) == 2


def test_project_file_restores_the_session(window, files, qtbot, tmp_path):
    w = window
    for name in ("plane-a", "plane-b", "line-a"):
        w.open_file(files[name])
    w.workspace.dock.tree.topLevelItem(1).setCheckState(0, Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: not w.workspace.model.items[1].visible, timeout=5000)
    w.workspace.model.update(w.workspace.model.items[0], name="baseline", colour="#123456")
    w.views.apply_settings(w.views.settings.replace(log_scale=True, colormap="plasma"))
    w.workspace.dock.layout_choice.setCurrentText("stacked")
    w.workspace.show_tab()
    camera = [list(v) for v in w.workspace.view.scene.plotter.camera_position]
    saved = w.workspace.save_project(tmp_path / "session")
    assert saved.name == "session.losslab.json"
    data = json.loads(saved.read_text())
    assert data["items"][0]["path"].startswith("/")  # outside the project folder: absolute

    again = MainWindow(settings=AppSettings(tmp_path / "other.ini"), restore_layout=False)
    qtbot.addWidget(again)
    again.show()
    assert again.open_file(saved) == "project"
    items = again.workspace.model.items
    assert [(i.name, i.kind, i.colour, i.visible) for i in items] == [
        ("baseline", "surface", "#123456", True), ("plane-b", "surface", items[1].colour, False),
        ("line-a", "curve", items[2].colour, True)]
    assert again.views.settings.log_scale and again.views.settings.colormap == "plasma"
    assert again.workspace.view.layout_name == "stacked"
    restored = [list(v) for v in again.workspace.view.scene.plotter.camera_position]
    assert np.allclose(restored, camera)


def test_bad_project_files_name_the_field(tmp_path):
    bad = tmp_path / "x.losslab.json"
    bad.write_text(json.dumps({"format": "losslab-project", "version": 1, "items": [], "layout": "diagonal"}))
    with pytest.raises(ConfigError, match=r"layout = 'diagonal' is not valid; expected one of side by side, stacked"):
        read_project(bad)
    bad.write_text(json.dumps({"format": "losslab-project", "version": 1, "display": {"z_scale": -3}}))
    with pytest.raises(ConfigError, match=r"x.losslab.json: display.z_scale = -3"):
        read_project(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="a LossLab project"):
        read_project(bad)


@pytest.mark.slow
def test_gui_command_opens_several_files_for_a_screenshot(files, tmp_path):
    out = tmp_path / "window.png"
    result = subprocess.run([sys.executable, "-m", "app.cli", str(files["plane-a"]), str(files["plane-b"]),
                             str(files["line-a"]), "--screenshot", str(out), "--size", "1280x800"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "LOSSLAB_SETTINGS": str(tmp_path / "cli.ini")})
    assert result.returncode == 0, result.stderr[-2000:]
    from PIL import Image

    with Image.open(out) as image:
        assert image.width == 1280


def test_readable_curves_and_colour_map_previews(window, files):
    w = window
    w.open_file(files["line-a"])
    curves = w.views.curves
    small = curves.curves["line-a"]
    curves.update_values({m: v * 1e-3 for m, v in small.values.items() if "loss" in m})  # values of 0.001s
    for plot in (curves.loss_plot, curves.acc_plot):
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            assert not axis.autoSIPrefix and "(x" not in axis.labelString() and "×" not in axis.labelString()
    assert "α" in curves.acc_plot.getAxis("bottom").labelString()
    scene_pos = curves.loss_plot.getViewBox().mapViewToScene(pg_point(0.31, 1.0))
    curves._on_mouse_move(scene_pos)
    grid = small.x
    assert curves.probes[0].value() == pytest.approx(grid[np.argmin(np.abs(grid - 0.31))])
    combo = w.views.controls.colormap
    assert combo.count() > 3 and all(not combo.itemIcon(k).isNull() for k in range(combo.count()))
    viridis = combo.itemIcon(combo.findText("viridis")).pixmap(64, 14).toImage()
    left, right = viridis.pixelColor(1, 7), viridis.pixelColor(62, 7)
    assert left.blue() > 60 and left.green() < 20 and right.red() > 200 and right.blue() < 80  # purple -> yellow


def pg_point(x: float, y: float):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_log_axis_ticks_never_pile_up():
    from app.views.curve_1d import log_ticks

    short = [label for _pos, label in log_ticks(np.array([1.1, 3.0, 48.0]))[0]]
    assert short == ["1", "2", "5", "10", "20", "50", "100"]
    long = [label for _pos, label in log_ticks(np.array([0.01, 5.0, 2000.0]))[0]]
    assert long == ["0.01", "0.1", "1", "10", "100", "1000", "10000"]
    assert log_ticks(np.array([np.nan, -1.0])) is None


@pytest.mark.slow
def test_run_the_demo_from_the_welcome_text(qtbot, tmp_path):
    """First launch: one click runs the quick demo as a job, and its files fill the workspace."""
    settings = AppSettings(tmp_path / "settings.ini")
    settings.set_runs_folder(tmp_path / "runs")
    w = MainWindow(settings=settings, restore_layout=False)
    qtbot.addWidget(w)
    w.show()
    button = w.workspace.dock.welcome.findChild(QPushButton, "run_demo")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(w.workspace.model.items) == 6, timeout=240000)
    kinds = sorted(i.kind for i in w.workspace.model.items)
    assert kinds == ["curve", "curve", "run", "run", "surface", "surface"]
    assert all(Path(i.path).is_relative_to(tmp_path / "runs" / "losslab-demo") for i in w.workspace.model.items)
    assert w.views.currentWidget() is w.workspace.view and len(w.workspace.view.scene.entries) == 2


def test_3d_probe_marker_follows_the_mouse(window, files, qtbot):
    from PySide6.QtCore import QPoint

    w = window
    w.open_file(files["plane-a"])
    view = w.views.view3d
    w.views.setCurrentWidget(view)
    view.set_camera("top")
    s = view.scene.surface
    j, i = 2, 3
    renderer = view.plotter.renderer
    relief_point = np.asarray(view.scene.relief.points[j * len(s.x) + i], dtype=float)
    renderer.SetWorldPoint(*relief_point, 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    with qtbot.waitSignal(view.hovered, timeout=3000) as signal:
        qtbot.mouseMove(view.plotter, QPoint(int(round(x)), view.plotter.height() - int(round(y))))
    assert signal.args[0] is not None and signal.args[0].index == (j, i)
    assert view._marker.GetVisibility() and np.allclose(view._marker_mesh.points[0], relief_point)
    view._mark(None)  # the mouse left the surface
    assert not view._marker.GetVisibility()
