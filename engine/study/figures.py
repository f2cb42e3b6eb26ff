"""The report's figures as PNG bytes (matplotlib Agg; 3D pictures from engine.export's renderer).

Every comparison figure of surfaces uses one colour range, computed from all of them with the
export's height rule (:func:`engine.export.display_z`), so equal colours mean equal loss.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.export.heights import display_z, height_label
from engine.storage.run import Run
from engine.storage.surface_file import Surface

COLUMNS = 4
DPI = 100
# A metric spanning more than this factor is drawn as log10, as the app opens wide-ranging surfaces.
LOG_RATIO = 100.0


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def use_log(surfaces: Sequence[Surface], metric: str) -> bool:
    values = np.concatenate([np.ravel(s.values[metric]) for s in surfaces])
    values = values[np.isfinite(values) & (values > 0)]
    return bool(values.size) and values.max() / values.min() > LOG_RATIO


def shared_range(surfaces: Sequence[Surface], metric: str) -> tuple[float, float]:
    """One (low, high) of ``metric`` over every surface's computed points, in the metric's units."""
    values = np.concatenate([np.ravel(s.values[metric]) for s in surfaces])
    values = values[np.isfinite(values)]
    return (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)


def displayed(limits: tuple[float, float], log: bool) -> tuple[float, float]:
    low, high = display_z(np.asarray(limits, dtype=float), log=log)
    return float(low), float(high)


def surface_heatmaps(items: Sequence[tuple[str, Surface]], metric: str, log: bool,
                     limits: tuple[float, float]) -> bytes:
    """Top views of every surface with shared colours and contour levels, one colour bar."""
    clim = displayed(limits, log)
    rows = -(-len(items) // COLUMNS)
    cols = min(COLUMNS, len(items))
    figure = _figure(3.2 * cols + 0.8, 3.0 * rows)
    axes = figure.subplots(rows, cols, squeeze=False)
    levels = np.linspace(clim[0], clim[1], 12)
    image = None
    for ax, (name, surface) in zip(axes.flat, items):
        z = display_z(surface.values[metric], log=log)
        image = ax.pcolormesh(surface.x, surface.y, z, vmin=clim[0], vmax=clim[1], cmap="viridis",
                              shading="nearest")
        if np.isfinite(z).sum() > 3 and clim[1] > clim[0]:
            ax.contour(surface.x, surface.y, np.where(np.isfinite(z), z, np.nan), levels=levels,
                       colors="white", linewidths=0.6, alpha=0.7)
        ax.plot([0], [0], marker="+", color="red", markersize=10)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("α")
        if ax in axes[:, 0]:
            ax.set_ylabel("β")
        ax.set_aspect("equal")
    for ax in list(axes.flat)[len(items):]:
        ax.set_visible(False)
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), label=height_label(metric, log), shrink=0.8)
    return _png(figure)


def surface_pictures(items: Sequence[tuple[str, Surface]], metric: str, log: bool,
                     limits: tuple[float, float], size: tuple[int, int] = (560, 420)) -> list[bytes]:
    """3D pictures by the export renderer, all with the colour range ``limits`` (metric units)."""
    from engine.export.options import ExportOptions
    from engine.export.render import render_surface_png

    options = ExportOptions(format="png", metric=metric, log_scale=log, size=size, contours=10, color_range=limits)
    pictures = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, surface) in enumerate(items):
            out = Path(tmp) / f"{k}.png"
            # The renderer titles a picture with the surface's file name: every variant's is surface.h5.
            render_surface_png(dataclasses.replace(surface, path=Path(name)), out, options)
            pictures.append(out.read_bytes())
    return pictures


def curves_figure(items: Sequence[tuple[str, Surface]]) -> bytes:
    """1D curves of every variant overlaid: test loss solid, train loss dashed, ± 1 std bands."""
    figure = _figure(9, 4.2)
    ax_loss, ax_acc = figure.subplots(1, 2)
    colours = _colours(len(items))
    for colour, (name, curve) in zip(colours, items):
        for metric, style, ax in (("test_loss", "-", ax_loss), ("train_loss", "--", ax_loss),
                                  ("test_acc", "-", ax_acc), ("train_acc", "--", ax_acc)):
            if metric not in curve.values:
                continue
            values = np.asarray(curve.values[metric], dtype=float)
            ax.plot(curve.x, values, style, color=colour, label=f"{name} {metric.split('_')[0]}")
            std = curve.std.get(metric) if curve.std else None
            if std is not None:
                ax.fill_between(curve.x, values - std, values + std, color=colour, alpha=0.15, linewidth=0)
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy (%)")):
        ax.set_xlabel("α")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    ax_loss.legend(fontsize=7, ncol=2)
    return _png(figure)


def training_figure(runs: Sequence[tuple[str, Run]]) -> bytes:
    """Loss and accuracy per epoch: test solid, (biased) train dashed."""
    figure = _figure(9, 4.2)
    ax_loss, ax_acc = figure.subplots(1, 2)
    for colour, (name, run) in zip(_colours(len(runs)), runs):
        m = run.metrics
        epochs = np.arange(len(m["test_loss"]))
        for key, ax, style in (("test_loss", ax_loss, "-"), ("train_loss", ax_loss, "--"),
                               ("test_acc", ax_acc, "-"), ("train_acc", ax_acc, "--")):
            ax.plot(epochs, m[key], style, color=colour, label=name if style == "-" else None)
    losses = np.concatenate([np.asarray(r.metrics[k], dtype=float) for _, r in runs
                             for k in ("test_loss", "train_loss")])
    losses = losses[np.isfinite(losses) & (losses > 0)]
    wide = bool(losses.size) and losses.max() / losses.min() > 10
    if wide:
        ax_loss.set_yscale("log")
    for ax, label in ((ax_loss, "loss (log)" if wide else "loss"), (ax_acc, "accuracy (fraction)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    ax_acc.legend(fontsize=7)
    return _png(figure)


def per_class_figure(runs: Sequence[tuple[str, Run]]) -> bytes | None:
    """Final test recall and precision per class and variant, as annotated heat maps."""
    usable = [(n, r) for n, r in runs if "test_recall" in r.metrics]
    if not usable:
        return None
    classes = usable[0][1].classes
    figure = _figure(1.0 + 0.55 * len(classes) * 2, 0.9 + 0.35 * len(usable))
    for ax, key in zip(figure.subplots(1, 2), ("test_recall", "test_precision")):
        table = np.array([np.asarray(r.metrics[key][-1], dtype=float) for _, r in usable])
        ax.imshow(table, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        for (i, j), value in np.ndenumerate(table):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(classes)), classes, fontsize=8)
        ax.set_yticks(range(len(usable)), [n for n, _ in usable], fontsize=8)
        ax.set_title(key.replace("_", " "), fontsize=10)
    return _png(figure)


def weight_arrays(run: Run) -> list[tuple[str, np.ndarray]]:
    """The final model's weight tensors (dim > 1: no biases or batch-norm scales), in layer order."""
    state = run.state_dict("final")
    return [(k, v.detach().cpu().numpy().ravel()) for k, v in state.items()
            if v.dim() > 1 and v.is_floating_point()]


def weights_figure(runs: Sequence[tuple[str, Run]]) -> bytes:
    """Li et al.'s small- vs large-batch figure: weight histograms and per-layer weight norms."""
    figure = _figure(9, 4.2)
    ax_hist, ax_norm = figure.subplots(1, 2)
    for colour, (name, run) in zip(_colours(len(runs)), runs):
        layers = weight_arrays(run)
        values = np.concatenate([v for _, v in layers])
        ax_hist.hist(values, bins=80, histtype="step", density=True, color=colour, label=name)
        ax_norm.plot(range(1, len(layers) + 1), [float(np.linalg.norm(v)) for _, v in layers], "o-",
                     color=colour, markersize=3, label=name)
    ax_hist.set_xlabel("weight value")
    ax_hist.set_ylabel("density")
    ax_hist.set_yscale("log")
    ax_norm.set_xlabel("layer (weight tensors in order)")
    ax_norm.set_ylabel("‖W‖ (Frobenius)")
    for ax in (ax_hist, ax_norm):
        ax.grid(True, alpha=0.3)
    ax_norm.legend(fontsize=7)
    return _png(figure)


def _colours(count: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(count)]


FLATNESS_BARS = (("test_acc", "test accuracy"), ("loss_rise", "loss rise around the minimum"),
                 ("top_eigenvalue", "top Hessian eigenvalue"), ("trace", "Hessian trace"),
                 ("sharpness", "ε-sharpness"), ("relative_flatness", "relative flatness"))


def flatness_figure(rows: Sequence[dict]) -> bytes | None:
    """One bar chart per measure, variants side by side in table order (empty where not computed)."""
    measures = [(key, label) for key, label in FLATNESS_BARS
                if any(isinstance(r.get(key), (int, float)) for r in rows)]
    if len(measures) < 2:
        return None
    names = [str(r["variant"]) for r in rows]
    figure = _figure(3.0 * len(measures), 0.8 + 0.28 * len(rows) + 1.2)
    colours = _colours(len(rows))
    for ax, (key, label) in zip(figure.subplots(1, len(measures), sharey=True), measures):
        values = [r.get(key) if isinstance(r.get(key), (int, float)) else np.nan for r in rows]
        ax.barh(range(len(rows)), values, color=colours)
        ax.set_title(label, fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    figure.axes[0].set_yticks(range(len(rows)), names)
    figure.axes[0].invert_yaxis()
    return _png(figure)
