"""Pictures and movies of the view on screen, for the export dialog.

A 3D view (3D surface, Compare, the Workspace scene) is rendered by VTK: PNG through an
off-screen render at the chosen size (transparent background on request), SVG and PDF as
vector files through GL2PS. A plot view (heatmap, 1D curves) is a pyqtgraph scene: PNG laid out
and painted at the chosen size, SVG through pyqtgraph's exporter, PDF painted into a QPdfWriter.
The DPI is written into the PNG so that print layouts place it at the intended physical size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtWidgets import QApplication, QWidget

from app.export_dialog import ExportSpec
from app.views.camera import write_orbit_movie
from engine.errors import LossLabError


class ExportCancelled(LossLabError):
    """The user pressed Cancel; the partial file was removed."""


def view_plotter(view: QWidget):
    """The pyvista plotter a view draws with, or None for plot (pyqtgraph) views."""
    scene = getattr(view, "scene", None)
    if hasattr(scene, "plotter") and getattr(scene, "entries", None):  # the Workspace tab with surfaces
        return scene.plotter
    plotter = getattr(view, "plotter", None)
    return plotter if plotter is not None and hasattr(plotter, "screenshot") else None


def view_graphics(view: QWidget):
    """The pyqtgraph GraphicsLayoutWidget of a plot view (the Workspace tab's curves too), or None."""
    for candidate in (view, getattr(view, "curves", None)):
        graphics = getattr(candidate, "graphics", None)
        if graphics is not None:
            return graphics
    return None


def write_picture(view: QWidget, spec: ExportSpec) -> Path:
    plotter = view_plotter(view)
    if plotter is not None:
        return _plotter_picture(plotter, spec)
    graphics = view_graphics(view)
    if graphics is None:
        raise LossLabError("this view has nothing to export as a picture; show the 3D, heatmap or curve view")
    return _plot_picture(graphics, spec)


def _plotter_picture(plotter, spec: ExportSpec) -> Path:
    if spec.kind == "png":
        gradients = [r.GetGradientBackground() for r in plotter.renderers]
        if spec.transparent:  # a gradient background would be drawn over the transparent one
            for renderer in plotter.renderers:
                renderer.GradientBackgroundOff()
        try:
            plotter.screenshot(str(spec.path), transparent_background=spec.transparent, window_size=list(spec.size))
        finally:
            for renderer, gradient in zip(plotter.renderers, gradients):
                renderer.SetGradientBackground(gradient)
            plotter.render()
        _set_dpi(spec.path, spec.dpi)
    else:
        plotter.save_graphic(str(spec.path), title="LossLab", raster=True, painter=True)
    return spec.path


def _plot_picture(graphics, spec: ExportSpec) -> Path:
    import pyqtgraph.exporters as exporters

    scene = graphics.scene()
    if spec.kind == "png":
        _plot_png(graphics, spec)
    elif spec.kind == "svg":
        exporters.SVGExporter(scene).export(str(spec.path))
    else:
        _pdf(scene, spec.path)
    return spec.path


def _plot_png(graphics, spec: ExportSpec) -> None:
    """Lay the plot out at the chosen size (axes and labels placed as on screen), paint it, restore."""
    shown = graphics.size()
    graphics.resize(*spec.size)
    QApplication.processEvents()
    image = QImage(*spec.size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent if spec.transparent else Qt.GlobalColor.white)
    background = graphics.backgroundBrush()
    if spec.transparent:
        graphics.setBackground(None)
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        graphics.render(painter)
    finally:
        painter.end()
        graphics.setBackgroundBrush(background)
        graphics.resize(shown)
    image.setDotsPerMeterX(round(spec.dpi / 0.0254))
    image.setDotsPerMeterY(round(spec.dpi / 0.0254))
    if not image.save(str(spec.path)):
        raise LossLabError(f"{spec.path}: could not write the picture (folder missing or not writable?)")


def _pdf(scene, path: Path) -> None:
    rect = scene.sceneRect()
    writer = QPdfWriter(str(path))
    writer.setPageLayout(QPageLayout(QPageSize(QSizeF(rect.width(), rect.height()), QPageSize.Unit.Point),
                                     QPageLayout.Orientation.Portrait, QMarginsF()))
    writer.setResolution(72)  # one scene pixel per point: the page has the view's proportions
    painter = QPainter(writer)
    try:
        scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
    finally:
        painter.end()


def _set_dpi(path: Path, dpi: int) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        image.save(path, dpi=(dpi, dpi))


def write_movie(view: QWidget, spec: ExportSpec, on_frame: Callable[[int, int], bool]) -> Path:
    """The orbit movie; ``on_frame`` returns False to cancel (the partial file is then deleted)."""
    plotter = view_plotter(view)
    if plotter is None:
        raise LossLabError("an orbit movie needs a 3D view: show the 3D surface, Compare or Workspace tab")

    def frame(done: int, total: int) -> None:
        if not on_frame(done, total):
            raise ExportCancelled("movie cancelled; no file was written")

    try:
        return write_orbit_movie(plotter, spec.path, frames=spec.frames, fps=spec.fps, size=spec.size,
                                 on_frame=frame)
    except ExportCancelled:
        spec.path.unlink(missing_ok=True)
        raise
