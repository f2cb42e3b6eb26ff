"""The export dialog: pictures of the view at a chosen size and DPI, vector files, the orbit movie
with Cancel, the data formats, and settings remembered between uses."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import QSettings  # noqa: E402

from app.export_dialog import ExportDialog, ExportSpec  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from app.settings import AppSettings  # noqa: E402
from app.view_export import ExportCancelled, write_movie  # noqa: E402
from engine.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def plane(trained_run, tmp_path_factory):
    from engine.landscape import SurfaceOptions, compute_surface

    out = tmp_path_factory.mktemp("export") / "plane.h5"
    return compute_surface(trained_run, SurfaceOptions(x="-1:1:7", y="-1:1:7", split="test", workers=1, seed=0), out)


@pytest.fixture
def window(qtbot, tmp_path, plane) -> MainWindow:
    w = MainWindow(settings=AppSettings(tmp_path / "settings.ini"), restore_layout=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.open_file(plane)
    w.views.setCurrentWidget(w.views.view3d)
    return w


def test_pictures_of_the_3d_view(window, tmp_path):
    from PIL import Image

    spec = ExportSpec("png", tmp_path / "view.png", width=640, height=400, dpi=300, transparent=True)
    path = window.files.write_export(spec)
    with Image.open(path) as image:
        assert image.size == (640, 400) and image.mode == "RGBA"
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.5)
        alpha = np.asarray(image)[:, :, 3]
    assert alpha[0, 0] == 0 and (alpha == 255).mean() > 0.02  # transparent around an opaque surface
    svg = window.files.write_export(ExportSpec("svg", tmp_path / "view.svg"))
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()[:400]
    pdf = window.files.write_export(ExportSpec("pdf", tmp_path / "view.pdf"))
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_pictures_of_a_plot_view(window, tmp_path):
    from PIL import Image

    window.views.setCurrentWidget(window.views.heatmap)
    path = window.files.write_export(ExportSpec("png", tmp_path / "map.png", width=800, height=500, dpi=96))
    with Image.open(path) as image:
        assert image.size == (800, 500) and image.info["dpi"] == pytest.approx((96, 96), abs=0.5)
    assert window.files.write_export(ExportSpec("pdf", tmp_path / "map.pdf")).read_bytes()[:5] == b"%PDF-"


def test_data_formats_go_through_the_engine(window, tmp_path):
    html = window.files.write_export(ExportSpec("html", tmp_path / "scene.html"))
    assert "vtk" in html.read_text(errors="replace").lower()
    csv = window.files.write_export(ExportSpec("csv", tmp_path / "table.csv"))
    assert csv.read_text().splitlines()[0].startswith("x,y,test_loss")


def test_orbit_movie_and_cancel(window, tmp_path):
    import imageio.v3 as iio

    spec = ExportSpec("gif", tmp_path / "orbit.gif", width=160, height=120, duration=1.0, frames=6)
    path = write_movie(window.views.view3d, spec, lambda _d, _t: True)
    assert iio.imread(path, index=None).shape[:3] == (6, 120, 160)
    cancelled = ExportSpec("gif", tmp_path / "stopped.gif", width=160, height=120, duration=1.0, frames=6)
    with pytest.raises(ExportCancelled):
        write_movie(window.views.view3d, cancelled, lambda done, _t: done < 3)
    assert not cancelled.path.exists()


def test_dialog_remembers_its_settings_and_checks_them(qtbot, tmp_path):
    QSettings().remove("export")
    dialog = ExportDialog(str(tmp_path), "plane")
    qtbot.addWidget(dialog)
    dialog.kind.setCurrentIndex(dialog.kind.findData("mp4"))
    assert dialog.path.text().endswith("plane.mp4") and dialog.frames.isEnabled() and not dialog.dpi.isEnabled()
    dialog.width_box.setValue(800)
    dialog.frames.setValue(48)
    dialog.duration.setValue(4.0)
    dialog.remember(dialog.spec())
    again = ExportDialog(str(tmp_path / "elsewhere"), "plane")
    qtbot.addWidget(again)
    assert again.kind.currentData() == "mp4" and again.width_box.value() == 800 and again.frames.value() == 48
    assert Path(again.path.text()).parent == tmp_path  # the last folder used
    again.frames.setValue(600)
    again.duration.setValue(1.0)
    with pytest.raises(ConfigError, match="1 to 60 frames per second"):
        again.spec()
    QSettings().remove("export")
