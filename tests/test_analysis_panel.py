"""The Analysis panel driven like a user: analyse a run with its surface, read the numbers, turn on
the convexity overlay and the sub-level boundary, cancel a job. Needs a display:
QT_API=pyside6 xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest tests/test_analysis_panel.py
Set LOSSLAB_SHOTS=DIR to keep a screenshot of the window.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_API", "pyside6")

from app.main_window import MainWindow  # noqa: E402
from app.panels.analysis_panel import level_boundary  # noqa: E402
from app.settings import AppSettings  # noqa: E402
from app.worker import JobState, preload_engine_libraries  # noqa: E402
from engine.analysis.convexity import convexity_ratio  # noqa: E402
from engine.storage.surface_file import load_surface  # noqa: E402

preload_engine_libraries()
pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def hessian_surface(tmp_path_factory, trained_run) -> Path:
    from engine.landscape.options import SurfaceOptions
    from engine.landscape.surface import compute_surface

    out = tmp_path_factory.mktemp("surfaces") / "hessian.h5"
    options = SurfaceOptions(x="-1:1:5", y="-1:1:5", split="test", subset=50, hessian=True, workers=1)
    return compute_surface(str(trained_run), options, out)


@pytest.fixture
def window(qtbot, tmp_path) -> MainWindow:
    settings = AppSettings(tmp_path / "settings.ini")
    w = MainWindow(settings=settings, restore_layout=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _quick(panel) -> None:
    panel.editors["subset"].setValue(100)
    panel.editors["top_k"].setValue(2)
    panel.editors["trace_samples"].setValue(4)
    panel.editors["density_steps"].setValue(12)
    panel.editors["density_runs"].setValue(1)
    panel.editors["sharpness_steps"].setValue(2)
    panel.editors["perturbations"].setValue(3)
    panel.editors["level"].setText("0.5")
    panel.editors["relative_level"].setChecked(True)


def test_analysis_panel_shows_numbers_density_and_overlays(qtbot, window, trained_run, hessian_surface, tmp_path):
    panel = window.analysis
    window.show_panel("analysis")
    surface = window.views.show_surface_file(hessian_surface)
    panel.set_run(trained_run)
    panel.set_surface(hessian_surface)
    _quick(panel)
    job = panel.start()
    qtbot.waitUntil(lambda: job.state is JobState.FINISHED, timeout=240000)
    report = panel.report
    assert len(report["top_eigenvalues"]) == 2 and report["subset"] == 100
    text = panel.results.text()
    assert f"{report['top_eigenvalues'][0]:.4g}" in text and f"{report['trace']['mean']:.4g}" in text
    stored = json.loads((trained_run.with_name(f"{trained_run.stem}.flatness-e{report['checkpoint_epoch']}.json"))
                        .read_text())
    assert stored["top_eigenvalues"] == pytest.approx(report["top_eigenvalues"])
    xs, ys = panel.density_curve.getData()
    values = np.asarray(report["density"]["values"])
    assert np.allclose(10**ys, np.clip(values, values.max() * 1e-6, None))  # drawn on a log axis
    # convexity: the panel's heatmap and the 3D colours are |min_eig / max_eig| of the surface
    ratio = convexity_ratio(surface)
    assert np.allclose(panel.convexity_image.image, ratio, equal_nan=True)
    panel.convexity_check.setChecked(True)
    relief = window.views.view3d.scene.relief
    assert np.allclose(relief.point_data["overlay"], ratio.ravel(), equal_nan=True)
    assert window.views.view3d.scene.actors["relief"].mapper.array_name == "overlay"
    panel.level_check.setChecked(True)
    drawn = panel.level_item.getData()[0]
    expected = level_boundary(surface.x, surface.y, surface.values["test_loss"], report["sublevel"]["level"])[0]
    assert len(drawn) == len(expected) > 0
    window.views.setCurrentIndex(0)
    qtbot.wait(300)
    if os.environ.get("LOSSLAB_SHOTS"):
        window.grab().save(str(Path(os.environ["LOSSLAB_SHOTS"]) / "analysis-convexity-3d.png"))
        window.views.setCurrentIndex(1)
        qtbot.wait(300)
        window.grab().save(str(Path(os.environ["LOSSLAB_SHOTS"]) / "analysis-sublevel-heatmap.png"))
    panel.convexity_check.setChecked(False)
    assert window.views.view3d.scene.actors["relief"].mapper.array_name == "display"


def test_comparison_titles_carry_the_stored_curvature(qtbot, window, trained_run, hessian_surface):
    from engine.analysis.report import report_path

    epoch = int(load_surface(hessian_surface).attrs["checkpoint_epoch"])
    report_path(trained_run, epoch).write_text(json.dumps(
        {"top_eigenvalues": [12.5], "trace": {"mean": 345.0, "stderr": 1.0}, "sharpness": {"value": 2.25}}))
    window.views.compare_files([hessian_surface, hessian_surface])
    assert all("max eig 12.5 · trace 345 · sharpness 2.25 %" in t.text() for t in window.views.compare.titles)


def test_a_surface_without_eigenvalues_disables_the_convexity_overlay(qtbot, window, trained_run, tmp_path):
    from engine.landscape.options import SurfaceOptions
    from engine.landscape.surface import compute_surface

    plain = compute_surface(str(trained_run), SurfaceOptions(x="-1:1:3", y="-1:1:3", subset=30, workers=1),
                            tmp_path / "plain.h5")
    window.analysis.convexity_check.setChecked(True)
    window.views.show_surface_file(plain)  # must not raise in the event loop
    assert not window.analysis.convexity_check.isEnabled()
    assert window.views.view3d.overlay is None


def test_cancel_keeps_what_was_computed(qtbot, window, trained_run):
    panel = window.analysis
    panel.set_run(trained_run)
    _quick(panel)
    panel.editors["subset"].setValue(0)
    job = panel.start()
    qtbot.waitUntil(lambda: "top_eigenvalues" in panel.report, timeout=120000)
    panel.cancel()
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED, timeout=120000)
    assert "cancelled" in panel.status.text()
    assert "top_eigenvalues" in panel.report and "sharpness" not in panel.report
    assert "λmax" in panel.results.text()
