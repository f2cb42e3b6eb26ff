"""Live training curves: loss, accuracy, learning rate and ‖θ‖ against epoch (pyqtgraph)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

TRAIN_PEN = pg.mkPen("#1565c0", width=2)
TEST_PEN = pg.mkPen("#e65100", width=2)
OTHER_PEN = pg.mkPen("#2e7d32", width=2)
# Legends sit where the curves usually are not: loss falls (top right free), accuracy rises.
LEGEND_OFFSET = {"Loss": (-5, 5), "Accuracy": (-5, -5)}
# plot title -> [(metric name, legend label, pen)]
PLOTS = {
    "Loss": [("train_loss", "train", TRAIN_PEN), ("test_loss", "test", TEST_PEN)],
    "Accuracy": [("train_acc", "train", TRAIN_PEN), ("test_acc", "test", TEST_PEN)],
    "Learning rate": [("lr", "lr", OTHER_PEN)],
    "‖θ‖ (parameter norm)": [("param_norm", "‖θ‖", OTHER_PEN)],
}


class TrainingCurves(QWidget):
    """Four small plots that grow by one point per epoch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("w")
        self.curves: dict[str, pg.PlotDataItem] = {}
        for i, (title, series) in enumerate(PLOTS.items()):
            plot = self.canvas.addPlot(row=i // 2, col=i % 2, title=title)
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.setLabel("bottom", "epoch")
            if title == "Learning rate":
                self.lr_plot = plot
            if title in LEGEND_OFFSET:
                plot.addLegend(offset=LEGEND_OFFSET[title])
            for name, label, pen in series:
                self.curves[name] = plot.plot([], [], pen=pen, name=label, symbol="o", symbolSize=4,
                                              symbolBrush=pen.color(), symbolPen=None)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

    def clear(self) -> None:
        self.history, self.epochs = {}, []
        self._redraw()

    def set_history(self, metrics: Mapping[str, np.ndarray]) -> None:
        """Show a run's stored per-epoch metrics (index = epoch)."""
        count = max((len(np.atleast_1d(v)) for k, v in metrics.items() if k in self.curves), default=0)
        self.epochs = list(range(count))
        self.history = {k: [float(x) for x in np.atleast_1d(metrics[k])] for k in self.curves if k in metrics}
        self._redraw()

    def append_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        # A resumed run repeats nothing, but be safe: drop epochs at or after this one first.
        keep = sum(1 for e in self.epochs if e < epoch)
        self.epochs = self.epochs[:keep] + [epoch]
        for name in self.curves:
            values = self.history.get(name, [])[:keep]
            values += [math.nan] * (keep - len(values))
            self.history[name] = values + [float(metrics.get(name, math.nan))]
        self._redraw()

    def _redraw(self) -> None:
        # Schedules change the rate by factors of 10: log axis then; a constant rate on a log
        # axis would only show a crowd of minor tick labels.
        lr = np.asarray(self.history.get("lr", []), dtype=float)
        lr = lr[np.isfinite(lr) & (lr > 0)]
        self.lr_plot.setLogMode(y=bool(lr.size and lr.max() >= 10 * lr.min()))
        x = np.asarray(self.epochs, dtype=float)
        for name, curve in self.curves.items():
            y = np.asarray(self.history.get(name, []), dtype=float)
            if len(y) == len(x) and len(x):
                curve.setData(x, y, connect="finite")
            else:
                curve.setData([], [])
