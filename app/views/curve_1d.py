"""1D surfaces as curves: loss above, accuracy below, sharing the α axis.

Several surfaces can be overlaid (one colour each, named in the key above the plots); averaged curves
(a surface with ``std`` arrays) get a mean ± one standard deviation band.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.display import DisplaySettings
from app.display_data import probe
from app.views.elided_label import ElidedLabel
from engine.errors import ConfigError
from engine.storage.surface_file import Surface

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def is_accuracy(metric: str) -> bool:
    return "acc" in metric


def percent_factor(values: np.ndarray) -> float:
    """100 for accuracies stored as fractions (drawn in percent, like the hover label), else 1."""
    finite = values[np.isfinite(values)]
    return 100.0 if finite.size and np.abs(finite).max() <= 1.0 else 1.0


def log_ticks(values: np.ndarray) -> list[list[tuple[float, str]]] | None:
    """Labelled ticks of a log10 axis: 1-2-5 steps over a short range, decades over a long one, so
    labels never pile up as pyqtgraph's 2..9 sub-decade labels do on a short axis."""
    positive = values[np.isfinite(values) & (values > 0)]
    if not positive.size:
        return None
    low, high = np.floor(np.log10(positive.min())), np.ceil(np.log10(positive.max()))
    steps = (1.0,) if high - low > 2 else (1.0, 2.0, 5.0)
    ticks = [m * 10.0 ** k for k in range(int(low), int(high) + 1) for m in steps if m * 10.0 ** k <= 10.0 ** high]
    return [[(float(np.log10(t)), f"{t:g}") for t in ticks]]


def curve_key(colours: dict[str, str], spread: bool) -> str:
    """The key above the plots: one colour per curve, the line style per split, the band if any."""
    if not colours:
        return ""
    names = "&nbsp;&nbsp; ".join(f'<span style="color:{c}">■</span>&nbsp;{n}' for n, c in colours.items())
    styles = "solid: train · dashed: test" + (" · band: ± 1 std over directions" if spread else "")
    return f"{names}<br><span style='color:#505050'>{styles}</span>"


class Curve1DView(QWidget):
    """Loss and accuracy against α for one or more 1D surfaces."""

    def __init__(self, parent: QWidget | None = None, settings: DisplaySettings | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or DisplaySettings()
        self.curves: dict[str, Surface] = {}  # the view's own copies
        self.colours: dict[str, str] = {}  # curve name -> colour chosen elsewhere (the workspace)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.loss_plot = self.graphics.addPlot(row=0, col=0)
        self.acc_plot = self.graphics.addPlot(row=1, col=0)
        self.acc_plot.setXLink(self.loss_plot)
        self.loss_plot.setLabel("left", "loss")
        self.acc_plot.setLabel("left", "accuracy (%)")
        self.acc_plot.setLabel("bottom", "α")
        for plot in (self.loss_plot, self.acc_plot):
            plot.showGrid(x=True, y=True, alpha=0.25)
            for side in ("left", "bottom"):
                plot.getAxis(side).enableAutoSIPrefix(False)  # numbers as they are, never "(x0.001)"
        self.acc_plot.setLabel("bottom", "α (step along the direction)")
        # The probe: a line at the grid point under the mouse, in both plots.
        self.probes = [pg.InfiniteLine(angle=90, pen=pg.mkPen("#505050", width=1, style=Qt.PenStyle.DotLine))
                       for _ in range(2)]
        for line in self.probes:
            line.setVisible(False)  # until the mouse is over a plot
        # The key sits above the plots, not in them: a legend inside covered the curves' peaks.
        self.key = QLabel()
        self.key.setObjectName("curve_key")
        self.key.setWordWrap(True)
        self.key.setTextFormat(Qt.TextFormat.RichText)
        self.info = ElidedLabel("Open or compute a 1D surface to see its curves here.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.key)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.info)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_move)

    def set_surface(self, surface: Surface, name: str = "") -> None:
        """Show only ``surface`` (named ``name`` in the legend)."""
        self.curves.clear()
        self.add_surface(surface, name)

    def add_surface(self, surface: Surface, name: str = "") -> None:
        """Overlay another 1D surface; a name already shown is replaced."""
        if surface.y is not None:
            raise ConfigError("surface", "2D", "a 1D surface (use the 3D or heatmap view for 2D ones)",
                              str(getattr(surface, "path", "") or "surface"))
        name = name or str(getattr(surface, "path", "") or f"curve {len(self.curves) + 1}")
        self.curves[name] = surface.copy()
        self._redraw()

    def update_values(self, values: dict[str, np.ndarray], name: str | None = None) -> None:
        """New values for curve ``name`` (default: the only or last one added)."""
        if not self.curves:
            raise ConfigError("curve", name, "a curve shown before its values are updated", "curve view")
        key = name if name is not None else list(self.curves)[-1]
        if key not in self.curves:
            raise ConfigError("curve", key, f"one of {', '.join(self.curves)}", "curve view")
        self.curves[key].update_values(values)
        self._redraw()

    def apply_settings(self, settings: DisplaySettings) -> None:
        self.settings = settings
        self._redraw()

    def clear(self) -> None:
        self.curves.clear()
        self._redraw()

    def _redraw(self) -> None:
        for plot in (self.loss_plot, self.acc_plot):
            plot.clear()
        for plot, line in zip((self.loss_plot, self.acc_plot), self.probes):
            plot.addItem(line, ignoreBounds=True)
        self.loss_plot.setLogMode(y=self.settings.log_scale)
        shown = {}
        for k, (name, curve) in enumerate(self.curves.items()):
            colour = shown[name] = self.colours.get(name, PALETTE[k % len(PALETTE)])
            for metric, values in curve.values.items():
                self._draw(curve, metric, values, colour)
        self.key.setText(curve_key(shown, any(c.std for c in self.curves.values())))
        self.loss_plot.getAxis("left").setTicks(log_ticks(self._loss_values()) if self.settings.log_scale else None)
        if self.curves:
            total = sum(c.values[m].size for c in self.curves.values() for m in c.values)
            done = sum(int(np.isfinite(c.values[m]).sum()) for c in self.curves.values() for m in c.values)
            self.info.setText(f"{len(self.curves)} curve(s), {done} of {total} values computed.")

    def _loss_values(self) -> np.ndarray:
        arrays = [v.ravel() for c in self.curves.values() for m, v in c.values.items() if not is_accuracy(m)]
        return np.concatenate(arrays) if arrays else np.empty(0)

    def _draw(self, curve: Surface, metric: str, values: np.ndarray, colour: str) -> None:
        acc = is_accuracy(metric)
        plot = self.acc_plot if acc else self.loss_plot
        style = Qt.PenStyle.DashLine if "test" in metric else Qt.PenStyle.SolidLine
        factor = percent_factor(values) if acc else 1.0
        mean = values * factor
        if metric in curve.std:
            spread = curve.std[metric] * factor
            low, high = mean - spread, mean + spread
            if not acc and self.settings.log_scale:
                # Raw curve items are not log-transformed by the plot (data items are): do it here.
                low, high = (np.log10(np.where(e > 0, e, np.nan)) for e in (low, high))
            band = [pg.PlotCurveItem(curve.x, edge, pen=None) for edge in (low, high)]
            fill = pg.FillBetweenItem(*band, brush=pg.mkBrush(colour + "40"))
            plot.addItem(fill)
        plot.plot(curve.x, mean, pen=pg.mkPen(colour, width=2, style=style), connect="finite")

    def _on_mouse_move(self, pos) -> None:
        if not self.curves:
            return
        for plot in (self.loss_plot, self.acc_plot):
            if plot.sceneBoundingRect().contains(pos):
                alpha = plot.getViewBox().mapSceneToView(pos).x()
                for line in self.probes:
                    line.setPos(probe(next(iter(self.curves.values())), alpha).alpha)
                    line.setVisible(True)
                parts = [f"{name}: {probe(c, alpha).describe()}" for name, c in self.curves.items()]
                self.info.setText(" | ".join(parts))
                return
