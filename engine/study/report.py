"""``DIR/report.html``: one self-contained page (inline CSS, figures as base64 PNG, no network).

Sections: the summary table, the surfaces (3D pictures and top views with one shared colour
scale), the overlaid 1D curves, training curves, per-class reports and the final models' weights.
Each figure's caption states the settings it was made with.
"""

from __future__ import annotations

import base64
import datetime
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import LossLabError
from engine.landscape.options import SurfaceOptions
from engine.storage.run import Run, load_run
from engine.storage.surface_file import Surface, load_surface
from engine.study import figures
from engine.study.record import write_atomic
from engine.study.runner import step_file
from engine.study.spec import StudyConfig
from engine.study.summary import summary_columns, summary_rows
from engine.version import __version__

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1200px;padding:0 12px;
color:#1d2430;background:#fff;line-height:1.45}
h1{font-size:1.6em;margin-bottom:0.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #d6dbe3}
.meta{color:#5a6270;font-size:0.9em}
table{border-collapse:collapse;font-size:0.85em;margin:1em 0}
th,td{border:1px solid #d6dbe3;padding:4px 8px;text-align:right}th{background:#eef2f7}
td:first-child,th:first-child{text-align:left;font-weight:600}
tr:nth-child(even) td{background:#f8fafc}
figure{margin:1.2em 0;max-width:100%}img{max-width:100%;height:auto;box-sizing:border-box;border:1px solid #e3e7ee}
figcaption{font-size:0.85em;color:#3b4350;margin-top:0.4em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:10px}
.grid figure{margin:0}.grid figcaption{font-weight:600}
.scroll{overflow-x:auto}
code{background:#f1f3f6;padding:0 3px}
"""
PERCENT_COLUMNS = ("train_acc", "test_acc", "gen_error")


def write_report(study: StudyConfig, folder: Path) -> Path:
    """Write ``folder/report.html`` from the files the study has computed so far."""
    folder = Path(folder)
    runs = _loaded(study, folder, "train", load_run)
    surfaces = _loaded(study, folder, "surface", load_surface) if study.surface else []
    curves = _loaded(study, folder, "curves", load_surface) if study.curves else []
    parts = [_header(study), _table(study, folder)]
    parts += _surface_section(study, surfaces)
    parts += _curve_section(study, curves)
    parts += _run_sections(study, runs)
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(study.name)} — LossLab study</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    out = folder / "report.html"
    write_atomic(out, page)
    return out


def _loaded(study: StudyConfig, folder: Path, step: str, load: Any) -> list[tuple[str, Any]]:
    items = []
    for variant in study.variants:
        path = step_file(folder, variant.name, step)
        if path.is_file():
            try:
                items.append((variant.name, load(path)))
            except LossLabError:
                continue
    return items


def _e(text: Any) -> str:
    return html.escape(str(text))


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _figure(png: bytes | None, caption: str) -> list[str]:
    if png is None:
        return []
    return [f"<figure>{_img(png, caption)}<figcaption>{caption}</figcaption></figure>"]


def _header(study: StudyConfig) -> str:
    common = ", ".join(f"<code>{_e(k)} = {_e(v)}</code>" for k, v in study.common.items()) or "none"
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f"<h1>Study {_e(study.name)}</h1><p>{_e(study.description)}</p>"
            f"<p class='meta'>Base experiment <code>{_e(study.base)}</code>; set for every variant: {common}; "
            f"{len(study.variants)} variants. Written {when} by LossLab {_e(__version__)}.</p>")


def _format(column: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    if column in PERCENT_COLUMNS and isinstance(value, float):
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _e(value)


def _table(study: StudyConfig, folder: Path) -> str:
    columns = [c for c in summary_columns(study) if c != "status"]
    rows = summary_rows(study, folder)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_format(c, row.get(c))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    notes = [f"<li>{_e(r['variant'])}: {_e(r['status'])}</li>" for r in rows
             if r.get("status") not in (None, "complete")]
    note = f"<ul class='meta'>{''.join(notes)}</ul>" if notes else ""
    bars = _figure(figures.flatness_figure(rows),
                   "Accuracy and flatness side by side, one bar per variant in table order (no bar: not computed). "
                   "Larger rise, eigenvalue, trace and sharpness mean a sharper minimum.")
    return (f"<h2>Summary</h2><div class='scroll'><table id='summary'><tr>{head}</tr>{body}</table></div>{note}"
            "<p class='meta'>Accuracies of the final epoch (train accuracy on the possibly biased training "
            "set); gen_error = train − test accuracy; loss rise = mean rise of the surface metric within "
            "|α|, |β| ≤ rise_radius around the trained model (rise_metric names it); top_eigenvalue, "
            "min_eigenvalue, trace (Hutchinson), "
            "sharpness (ε-sharpness) and relative flatness come from the analysis report of `losslab flatness` "
            "(flatness.json per variant); wall_seconds = time of all completed steps. The same numbers are in "
            "summary.csv.</p>" + "".join(bars))


def _surface_caption(options: SurfaceOptions) -> str:
    grid = f"α {options.x}" + (f", β {options.y}" if options.y else "")
    subset = f"{options.subset} samples" if options.subset else "all samples"
    return (f"{options.directions} directions ({options.norm}-normalised, ignore {options.ignore}, "
            f"seed {options.seed}), grid {grid}, split {options.split}, {subset}, checkpoint {options.checkpoint}")


def _surface_section(study: StudyConfig, items: Sequence[tuple[str, Surface]]) -> list[str]:
    items = [(n, s) for n, s in items if s.is_2d]
    if not items:
        return []
    metric = "test_loss" if all("test_loss" in s.values for _, s in items) else items[0][1].metric_names[0]
    log = figures.use_log([s for _, s in items], metric)
    limits = figures.shared_range([s for _, s in items], metric)
    scale = f"{metric} from {limits[0]:.4g} to {limits[1]:.4g}{' on a log scale' if log else ''} in every picture"
    settings = _surface_caption(study.surface)
    parts = ["<h2>Loss surfaces</h2>"]
    try:
        pictures = figures.surface_pictures(items, metric, log, limits)
    except Exception as exc:  # noqa: BLE001 - no OpenGL here: the top views below still show every surface
        parts.append(f"<p class='meta'>3D pictures unavailable ({_e(exc)}).</p>")
    else:
        cells = "".join(f"<figure>{_img(png, name)}<figcaption>{_e(name)}</figcaption></figure>"
                        for (name, _), png in zip(items, pictures))
        parts.append(f"<div class='grid'>{cells}</div><p class='meta'>3D views: one colour scale, {scale}; "
                     f"{settings}.</p>")
    heatmaps = figures.surface_heatmaps(items, metric, log, limits)
    parts += _figure(heatmaps, f"Top views, one colour scale and the same contour levels ({scale}); "
                               f"red + marks the trained model. {_e(settings)}.")
    return parts


def _curve_section(study: StudyConfig, items: Sequence[tuple[str, Surface]]) -> list[str]:
    items = [(n, s) for n, s in items if not s.is_2d]
    if not items:
        return []
    options = study.curves
    averaged = f", mean ± 1 std over {options.average} random directions" if options.average >= 2 else ""
    caption = (f"1D curves through each trained model{averaged}: solid test, dashed train. "
               f"{_e(_surface_caption(options))}.")
    return ["<h2>1D curves</h2>", *_figure(figures.curves_figure(items), caption)]


def _run_sections(study: StudyConfig, runs: Sequence[tuple[str, Run]]) -> list[str]:
    if not runs:
        return []
    parts = ["<h2>Training</h2>"]
    parts += _figure(figures.training_figure(runs),
                     "Loss and accuracy per epoch; solid test split (clean), dashed training split "
                     "(with the variant's bias).")
    parts += ["<h2>Per-class report</h2>"]
    parts += _figure(figures.per_class_figure(runs),
                     "Test recall and precision per class at the final epoch (a class-specific bias shows "
                     "as one low cell).")
    parts += ["<h2>Weights of the final models</h2>"]
    parts += _figure(figures.weights_figure(runs),
                     "Histogram of all weights (tensors of dim > 1) and the Frobenius norm of each weight "
                     "tensor in layer order, as in Li et al. 2018's small- vs large-batch comparison "
                     "(weight decay and batch size change the weights' scale, which a filter-normalised "
                     "surface factors out).")
    return parts
