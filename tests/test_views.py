"""Surface views: display model, 3D view, heatmap, 1D curves, comparison and controls.

GUI tests need an X server: QT_API=pyside6 xvfb-run -a -s "-screen 0 1280x1024x24" \
    .venv/bin/python -m pytest tests/test_views.py
Screenshots are written to /tmp/views_*.png for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from app.display import DisplaySettings, parse_levels
from app.display_data import (
    HEIGHT_FRACTION,
    color_limits,
    contour_lines,
    display_values,
    fill_for_display,
    probe,
)
from engine.errors import ConfigError
from engine.storage.surface_file import Surface

SHOTS = Path("/tmp")


def landscape(scale: float = 1.0, holes: bool = True) -> Surface:
    """A 21 x 15 (non-square) valley spanning two orders of magnitude, with pending points."""
    x, y = np.linspace(-1, 1, 21), np.linspace(-0.7, 0.7, 15)
    xx, yy = np.meshgrid(x, y)
    loss = scale * (np.exp(0.45 + 3 * (xx**2 + 0.6 * yy**2) + 0.4 * np.sin(4 * xx) * np.cos(3 * yy) ** 2) - 1)
    acc = np.clip(1 - 0.3 * np.log1p(loss / scale), 0, 1)
    values = {"train_loss": loss, "train_acc": acc, "test_acc": acc * 0.9}
    if holes:
        for v in values.values():
            v[2:6, 3:9] = np.nan
            v[10, 15] = np.nan
    t = np.linspace(0, 1, 12)
    path = np.c_[0.85 * (1 - t) ** 1.5 - 0.05, -0.6 * (1 - t) + 0.1 * np.sin(6 * t)]
    return Surface(Path("synthetic.h5"), x, y, values, trajectory=path)


def computed_cells(values: np.ndarray) -> int:
    ok = np.isfinite(values)
    return int((ok[:-1, :-1] & ok[:-1, 1:] & ok[1:, :-1] & ok[1:, 1:]).sum())


def colours(image: np.ndarray) -> int:
    return len(np.unique(image[..., :3].reshape(-1, 3), axis=0))


# ---- Qt-free display model ------------------------------------------------------------
def test_settings_validate_and_name_the_field() -> None:
    with pytest.raises(ConfigError, match="colormap"):
        DisplaySettings(colormap="rainbowz")
    with pytest.raises(ConfigError, match="specular"):
        DisplaySettings().replace(specular=1.5)
    with pytest.raises(ConfigError, match="color_range"):
        DisplaySettings(color_range=(2.0, 1.0))
    with pytest.raises(ConfigError, match="nonsense"):
        DisplaySettings().replace(nonsense=1)
    assert parse_levels("0.5, 1;2 ") == (0.5, 1.0, 2.0)
    with pytest.raises(ConfigError, match="abc"):
        parse_levels("1, abc")


def test_display_values_keep_nan_and_clamp_before_log() -> None:
    raw = np.array([0.5, np.nan, 100.0, 0.0])
    shown = display_values(raw, DisplaySettings(log_scale=True, clamp_max=10.0))
    assert np.isnan(shown[1])
    assert shown[2] == pytest.approx(1.0)  # log10 of the clamp, as the exporters draw it
    assert shown[3] == pytest.approx(np.log10(0.5))  # 0 floored at the smallest value, not -inf
    assert color_limits([shown], DisplaySettings()) == (pytest.approx(np.log10(0.5)), pytest.approx(1.0))


def test_fill_is_display_only_and_contours_stop_at_holes() -> None:
    s = landscape()
    shown = s.values["train_loss"]
    filled = fill_for_display(shown)
    assert np.isnan(shown[3, 4]) and np.isfinite(filled[3, 4])
    assert np.isnan(s.values["train_loss"][3, 4])  # the surface itself is untouched
    lines = contour_lines(s.x, s.y, shown, np.array([np.nanmedian(shown)]))
    points = np.vstack(lines[0][1])
    inside_hole = (points[:, 0] > s.x[3]) & (points[:, 0] < s.x[8]) & (points[:, 1] > s.y[2]) & (
        points[:, 1] < s.y[5])
    assert not inside_hole.any()
    p = probe(s, 0.52, -0.01)
    assert (p.alpha, p.beta) == (pytest.approx(0.5), pytest.approx(0.0))
    assert "train_acc" in p.describe() and "%" in p.describe()


# ---- widgets ----------------------------------------------------------------------------
@pytest.fixture
def show(qtbot):
    """Put a widget in a 900x700 QMainWindow, show it, and close everything after the test."""
    from PySide6.QtWidgets import QMainWindow

    opened = []

    def _show(widget, size=(900, 700)):
        window = QMainWindow()
        window.resize(*size)
        window.setCentralWidget(widget)
        window.show()
        qtbot.waitExposed(window)
        opened.append((window, widget))
        return window

    yield _show
    for window, widget in opened:
        widget.close()  # the view releases its GL context before its window goes
        window.close()
        window.deleteLater()


def grab(window, name: str) -> np.ndarray:
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    path = SHOTS / f"views_{name}.png"
    assert window.grab().save(str(path))
    return imageio.imread(path)


def test_3d_view_renders_and_log_scale_changes_image(show) -> None:
    from app.views.surface_3d import Surface3DView

    view = Surface3DView()
    window = show(view)
    view.set_surface(landscape())
    linear = grab(window, "3d_linear")
    assert colours(linear) > 500
    view.apply_settings(view.settings.replace(log_scale=True))
    logged = grab(window, "3d_log")
    assert colours(logged) > 500
    assert np.abs(logged.astype(int) - linear.astype(int)).sum(axis=-1).astype(bool).mean() > 0.02


def test_new_points_update_in_place_and_pending_points_are_holes(show) -> None:
    from app.views.surface_3d import Surface3DView

    view = Surface3DView()
    window = show(view)
    partial = landscape(holes=True)
    view.set_surface(partial)
    mesh = view.scene.relief
    assert view.drawn_cells == computed_cells(partial.values["train_loss"]) < 20 * 14
    before = grab(window, "3d_partial")
    full = landscape(holes=False)
    view.update_values(full.values)
    after = grab(window, "3d_full")
    assert view.scene.relief is mesh  # edited in place, not rebuilt
    assert view.drawn_cells == 20 * 14
    assert np.abs(after.astype(int) - before.astype(int)).sum() > 0
    # Pending values must not sit at height 0: every drawn point's height is a real value's.
    view.update_values(partial.values)
    used = np.unique(view.scene.relief.faces.reshape(-1, 5)[:, 1:])
    heights = view.scene.relief.points[used, 2]
    expected = view.scene.heights(partial.values["train_loss"].ravel()[used])
    assert np.allclose(heights, expected)


def test_heights_are_normalised_to_the_plane(show) -> None:
    from app.views.surface_3d import Surface3DView

    view = Surface3DView()
    show(view)
    for scale in (1e-3, 1e5):
        view.set_surface(landscape(scale=scale))
        z = view.scene.relief.points[:, 2]
        drawn = np.unique(view.scene.relief.faces.reshape(-1, 5)[:, 1:])
        assert np.ptp(z[drawn]) == pytest.approx(HEIGHT_FRACTION * 2.0, rel=1e-6)


def test_fixing_the_colour_range_changes_colours_not_heights(show) -> None:
    from app.views.surface_3d import Surface3DView

    view = Surface3DView()
    show(view)
    view.set_surface(landscape(holes=False))
    heights = np.array(view.scene.relief.points[:, 2])
    view.apply_settings(view.settings.replace(color_range=(0.5, 3.0)))
    assert np.array_equal(view.scene.relief.points[:, 2], heights)
    assert tuple(view.scene.actors["relief"].mapper.scalar_range) == pytest.approx((0.5, 3.0))


@pytest.mark.parametrize("changes", [{}, {"log_scale": True, "z_scale": 2.5, "contour_count": 7},
                                     {"clamp_max": 20.0, "contour_count": 4},
                                     {"color_range": (1.0, 6.0), "log_scale": True}])
def test_exported_png_shows_what_the_view_shows(show, tmp_path, changes) -> None:
    """Same settings -> same z range, colour range, contour levels and relief height in the PNG."""
    from app.display_data import contour_levels
    from app.views.surface_3d import Surface3DView
    from engine.export import ExportOptions
    from engine.export.render import render_surface_png

    surface = landscape(holes=True)
    settings = DisplaySettings(metric="train_loss", **changes)
    view = Surface3DView(settings=settings)
    show(view)
    view.set_surface(surface)
    options = ExportOptions(metric="train_loss", log_scale=settings.log_scale, clamp_max=settings.clamp_max,
                            z_scale=settings.z_scale, contours=settings.contour_count, size=(320, 240),
                            color_range=settings.color_range)
    picture = render_surface_png(surface, tmp_path / "same.png", options)
    heights = view.scene.heights
    assert picture.z_range == pytest.approx((heights.low, heights.high))
    assert picture.color_limits == pytest.approx(view.color_limits())
    assert picture.levels == pytest.approx(contour_levels(settings, *view.color_limits()))
    assert len(picture.levels) == settings.contour_count
    assert picture.height == pytest.approx(heights.height)
    assert (tmp_path / "same.png").stat().st_size > 1000


def test_hover_reports_alpha_beta_and_metrics(show, qtbot) -> None:
    from PySide6.QtCore import QPoint

    from app.views.surface_3d import Surface3DView

    view = Surface3DView()
    show(view)
    s = landscape()
    view.set_surface(s)
    view.set_camera("top")
    renderer = view.plotter.renderer
    j, i = 9, 12
    renderer.SetWorldPoint(s.x[i], s.y[j], float(view.scene.relief.points[j * 21 + i, 2]), 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    found = view.probe_at(int(round(x)), int(round(y)))
    assert found is not None and found.index == (j, i)
    assert found.values["train_loss"] == pytest.approx(s.values["train_loss"][j, i])
    assert view.probe_at(2, 2) is None  # background
    # The same through a real mouse move (Qt's y axis points down, VTK's up).
    with qtbot.waitSignal(view.hovered, timeout=2000) as signal:
        qtbot.mouseMove(view.plotter, QPoint(int(round(x)), view.plotter.height() - int(round(y))))
    assert signal.args[0] is not None and signal.args[0].index == (j, i)
    assert f"α = {s.x[i]:.4g}" in view.info.text() and "train_acc = " in view.info.text()


def test_screenshot_and_movie_files(show, tmp_path) -> None:
    from app.views.surface_3d import Surface3DView

    view = Surface3DView()
    show(view)
    view.set_surface(landscape())
    shot = view.screenshot(SHOTS / "views_screenshot_800x600.png", (800, 600))
    image = imageio.imread(shot)
    assert image.shape[:2] == (600, 800) and colours(image) > 500
    with pytest.raises(ConfigError, match="screenshot"):
        view.screenshot(tmp_path / "shot.bmp")
    gif = view.orbit_movie(tmp_path / "orbit.gif", frames=4, size=(160, 120))
    frames = imageio.mimread(gif)
    assert len(frames) == 4 and frames[0].shape[:2] == (120, 160)
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).sum() > 0  # the camera moved
    mp4 = view.orbit_movie(tmp_path / "orbit.mp4", frames=4, size=(160, 120))
    assert mp4.stat().st_size > 1000


def test_heatmap_shows_pending_points_grey(show) -> None:
    from PySide6.QtCore import QPointF

    from app.views.heatmap import PENDING_GREY, HeatmapView

    view = HeatmapView()
    window = show(view)
    s = landscape()
    view.set_surface(s, DisplaySettings(log_scale=True))
    image = grab(window, "heatmap")
    assert colours(image) > 200
    scene_pos = view.plot.getViewBox().mapViewToScene(QPointF(s.x[5], s.y[3]))  # inside the hole
    pixel = view.graphics.mapFromScene(scene_pos)
    shot = view.graphics.grab().toImage()
    colour = shot.pixelColor(pixel.x(), pixel.y()).name()
    assert colour == PENDING_GREY
    view.update_values(landscape(holes=False).values)
    colour = view.graphics.grab().toImage().pixelColor(pixel.x(), pixel.y()).name()
    assert colour != PENDING_GREY


def test_curve_view_overlays_curves_with_spread(show) -> None:
    import pyqtgraph as pg

    from app.views.curve_1d import Curve1DView

    alpha = np.linspace(-1, 1, 41)
    loss = 0.1 + alpha**2
    mean = Surface(Path("synthetic.h5"), alpha, None, {"train_loss": loss, "train_acc": 1 - loss / 3},
                       std={"train_loss": 0.05 + 0 * alpha, "train_acc": 0.02 + 0 * alpha})
    other = Surface(Path("synthetic.h5"), alpha, None, {"train_loss": 0.2 + 2 * alpha**2, "train_acc": 1 - loss / 2})
    view = Curve1DView()
    window = show(view, (700, 500))
    view.set_surface(mean, "skip")
    view.add_surface(other, "no skip")
    image = grab(window, "curves")
    assert colours(image) > 20
    key = view.key.text()  # every curve named in its colour, the line styles and the band explained
    assert "skip" in key and "no skip" in key and "dashed: test" in key and "band" in key
    bands = [i for i in view.loss_plot.items if isinstance(i, pg.FillBetweenItem)]
    assert len(bands) == 1
    view.apply_settings(DisplaySettings(log_scale=True))
    assert view.loss_plot.getViewBox().state["logMode"][1]


def test_comparison_uses_one_colour_range(show) -> None:
    from app.views.comparison import ComparisonView, PanelTitle

    view = ComparisonView()
    window = show(view, (1100, 550))
    small, large = landscape(scale=1.0, holes=False), landscape(scale=3.0, holes=True)
    view.set_surfaces([(small, PanelTitle("skip", 0.91, 0.05)), (large, "no skip")],
                      DisplaySettings(log_scale=True))
    low = np.log10(np.nanmin(small.values["train_loss"]))
    high = np.log10(np.nanmax(large.values["train_loss"]))
    assert view.shared_limits == (pytest.approx(low), pytest.approx(high))
    for scene in view.scenes:
        assert tuple(scene.actors["relief"].mapper.scalar_range) == pytest.approx(view.shared_limits)
    assert "91.0 %" in view.titles[0].text() and "test acc" in view.titles[1].text()
    assert view.plotter.renderers[0].camera is view.plotter.renderers[1].camera  # linked
    assert colours(grab(window, "comparison")) > 500


def test_controls_change_settings_and_view(show, qtbot) -> None:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtWidgets import QScrollArea, QSplitter

    from app.views.controls import DisplayControls
    from app.views.surface_3d import Surface3DView

    view, controls = Surface3DView(), DisplayControls()
    scroll = QScrollArea()  # as in the main window's dock: this once crashed on paint
    scroll.setWidget(controls)
    scroll.setWidgetResizable(True)
    splitter = QSplitter()
    splitter.addWidget(scroll)
    splitter.addWidget(view)
    splitter.setSizes([380, 820])
    window = show(splitter, (1200, 800))
    surface = landscape()
    controls.set_surface(surface)
    view.set_surface(surface, controls.settings())
    controls.connect_view(view)
    before = grab(window, "controls_before")
    with qtbot.waitSignal(controls.changed, timeout=2000) as signal:
        box = controls.log_scale
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))  # the tick box
    assert signal.args[0].log_scale and view.settings.log_scale
    after = grab(window, "controls_log")
    assert np.abs(after.astype(int) - before.astype(int)).sum() > 0
    with qtbot.waitSignal(controls.changed, timeout=2000):
        controls.contour_count.setValue(4)
        controls.pbr.setChecked(True)
    assert view.settings.contour_count == 4 and view.settings.pbr
    controls.levels.setText("1, abc")
    controls.levels.editingFinished.emit()
    qtbot.waitUntil(lambda: "abc" in controls.levels_error.text(), timeout=2000)
    assert view.settings.contour_levels == ()  # the bad value never reached the view
    qtbot.mouseClick(controls.camera_buttons["top"], Qt.MouseButton.LeftButton)
    assert view.plotter.renderer.camera.parallel_projection
    grab(window, "controls_top")
    view.close()  # inside a splitter: closing the window would not reach the view


def test_views_start_from_an_empty_grid_and_fill_in(show) -> None:
    """A job's first moments: nothing computed, then a few points, then coarse-to-fine filling."""
    from PySide6.QtWidgets import QSplitter

    from app.views.heatmap import HeatmapView
    from app.views.surface_3d import Surface3DView

    full = landscape(holes=False)
    empty = Surface(Path("synthetic.h5"), full.x, full.y, {k: np.full_like(v, np.nan) for k, v in full.values.items()},
                        trajectory=full.trajectory)
    view3d, heatmap = Surface3DView(), HeatmapView()
    splitter = QSplitter()
    splitter.addWidget(view3d)
    splitter.addWidget(heatmap)
    window = show(splitter, (1200, 500))
    for view in (view3d, heatmap):
        view.set_surface(empty, DisplaySettings(log_scale=True, fill_holes=True))
    assert view3d.drawn_cells == 0
    coarse = {k: np.where(np.add.outer(np.arange(15) % 2, np.arange(21) % 2) == 0, v, np.nan)
              for k, v in full.values.items()}  # every other point: no cell has 4 computed corners
    for view in (view3d, heatmap):
        view.update_values(coarse)
    assert view3d.drawn_cells == 20 * 14  # filled for display only...
    assert np.isnan(view3d.scene.surface.values["train_loss"][1, 1])  # ...never written back
    view3d.apply_settings(view3d.settings.replace(fill_holes=False))
    assert view3d.drawn_cells == 0
    grab(window, "coarse_to_fine")
    view3d.close()


@pytest.mark.parametrize("grid", [{"x": "-1:1:5", "average": 3}, {"x": "-1:1:5", "y": "-1:1:3"}])
def test_a_live_surface_equals_its_file(trained_run, tmp_path, grid) -> None:
    """The one Surface type: points recorded from a job's events (mean/std over directions
    included) give the same arrays as the file the job wrote."""
    from app.live_surface import LiveSurface
    from engine.landscape.options import SurfaceOptions
    from engine.landscape.surface import compute_surface
    from engine.storage.surface_file import load_surface

    options = SurfaceOptions(subset=60, **grid)
    out = tmp_path / "live.h5"
    live = LiveSurface(out, options)
    compute_surface(str(trained_run), options, out,
                    on_event=lambda e: live.add(e.payload) if "indices" in e.payload else None)
    stored = load_surface(out)
    assert live.surface.is_complete and live.done_fraction == 1.0
    assert set(live.surface.values) == set(stored.values)
    for metric, values in stored.values.items():
        assert np.allclose(live.surface.values[metric], values, equal_nan=False)
        if options.average_count > 1:
            assert np.allclose(live.surface.std[metric], stored.std[metric])
            assert live.surface.samples[metric].shape == (3, 5)
    copy = stored.copy()
    copy.values["train_loss"][...] = -1.0
    assert (stored.values["train_loss"] > 0).all()  # a view's copy never writes into the file's arrays
