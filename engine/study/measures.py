"""The one adapter between studies and the flatness analysis (``engine.analysis``).

Everything a study asks of the analysis goes through :func:`measure_flatness`, so when the
analysis API grows (issue 9: sharpness, density, per-layer measures) only this module changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.analysis.options import FlatnessOptions
from engine.errors import ConfigError
from engine.events import CancelToken, EventSink, ignore_events

STUDY_REFUSES = ("surface",)  # a study measures its own surface file


def flatness_options(table: dict[str, Any], source: str) -> FlatnessOptions:
    """The study's ``[flatness]`` table as the analysis' own options (errors name ``flatness.KEY``)."""
    for key in STUDY_REFUSES:
        if key in table:
            raise ConfigError(f"flatness.{key}", table[key], "no value: the study uses each variant's surface.h5",
                              source)
    try:
        return FlatnessOptions.from_dict(table, source=source)
    except ConfigError as exc:
        raise ConfigError(f"flatness.{exc.key}", exc.value, exc.allowed, source) from exc


def measure_flatness(run_path: str | Path, options: FlatnessOptions, surface: str | Path | None = None, *,
                     on_event: EventSink = ignore_events, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Everything ``losslab flatness RUN [--surface S] --json`` writes, as a plain dict: ``top_eigenvalues``,
    ``min_eigenvalue``, ``trace`` ``{"mean", "stderr"}``, ``sharpness`` ``{"value", ...}``, ... (the keys
    of the analysis' JSON contract), each with the split, subset size and seed used."""
    from engine.analysis.report import flatness_report, report_json

    if surface is not None:
        options = options.replace(surface=str(surface))
    report = flatness_report(run_path, options, on_event=on_event, cancel=cancel)
    return json.loads(report_json(report))


def surface_rise(surface_path: str | Path, options: FlatnessOptions) -> dict[str, Any]:
    """Centre value and mean/max rise of the surface metric (``options.metric`` or the one
    :func:`surface_metric` picks, under ``metric``) within ``options.radius`` of a surface."""
    from engine.analysis.flatness import surface_flatness, surface_metric
    from engine.storage.surface_file import load_surface

    surface = load_surface(surface_path)
    metric = surface_metric(surface, options.metric, options.split)
    return {**surface_flatness(surface, metric, options.radius), "metric": metric}

