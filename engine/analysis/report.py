"""One analysis report per run: every curvature, sharpness and surface measure, as one dict.

:func:`flatness_report` fills ``report`` step by step, so a caller that catches ``Cancelled`` still
holds (and can write) everything computed before the cancel. Every entry records the split,
the subset size, the seed and the parameters it was computed with; the JSON keys are the
contract of ``losslab flatness --json`` (top_eigenvalues, min_eigenvalue, trace, density,
sharpness, average_sharpness, relative_flatness, and sublevel with a surface).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.analysis.curvature import (
    CurvatureProblem,
    Progress,
    density,
    invariant_flatness,
    per_layer,
    smallest_eigenvalue,
    top_eigenpairs,
    trace,
)
from engine.analysis.flatness import surface_flatness, surface_metric
from engine.analysis.options import FlatnessOptions
from engine.analysis.sharpness import eps_sharpness, random_perturbations
from engine.analysis.sublevel import sublevel_summary
from engine.events import CancelToken, EventSink, ProgressEvent, Stopwatch, ignore_events
from engine.landscape.directions.source import ModelSource, as_source
from engine.landscape.evaluation.evaluate import select_subset
from engine.storage.surface_file import load_surface
from engine.version import __version__

STAGE = "flatness"
Report = dict[str, Any]


def checkpoint_problem(subject: Any, o: FlatnessOptions) -> tuple[CurvatureProblem, ModelSource]:
    """The loss of the run's checkpoint over the seeded subset of the chosen split."""
    source = as_source(subject)
    model = source.model(o.checkpoint)
    inputs, targets = select_subset({o.split: source.read_split(o.split)}, o.subset, o.seed)[o.split]
    return CurvatureProblem(model, inputs, targets, source.loss, o.curvature, o.ignore_biasbn), source


def _steps(o: FlatnessOptions) -> list[str]:
    steps = ["eigenvalues", "min_eigenvalue", "trace"]
    steps += ["density"] if o.density == "on" else []
    steps += ["per_layer"] if o.per_layer else []
    steps += ["relative_flatness", "sharpness", "average_sharpness"]
    return steps + (["sublevel"] if o.surface else [])


def flatness_report(subject: Any, o: FlatnessOptions, report: dict[str, Any] | None = None, *,
                    on_event: EventSink = ignore_events, cancel: CancelToken | None = None,
                    only: Sequence[str] | None = None) -> dict[str, Any]:
    """Compute every measure ``o`` asks for (or the steps named in ``only``, in their usual order)
    into ``report`` (a new dict by default) and return it."""
    report = {} if report is None else report
    if o.surface and (only is None or "sublevel" in only):  # refuse a wrong surface before any work
        o = o.replace(metric=surface_metric(load_surface(o.surface), o.metric, o.split))
    problem, source = checkpoint_problem(subject, o)
    record = {"split": o.split, "subset": len(problem.inputs), "seed": o.seed, "curvature": o.curvature,
              "ignore_biasbn": o.ignore_biasbn}
    report.update({"losslab_version": __version__, "run_file": source.name,
                   "checkpoint_epoch": source.resolve(o.checkpoint), "loss": source.loss,
                   "parameters": sum(t.numel() for t in problem.parameters().values()),
                   "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                   "options": o.to_dict(), **record})
    progress, clock, steps = Progress(on_event, cancel), Stopwatch(), _steps(o)
    steps = steps if only is None else [s for s in steps if s in only]
    for number, step in enumerate(steps):
        on_event(ProgressEvent(STAGE, number, len(steps), clock(), f"{step} ({number + 1} of {len(steps)})"))
        _STEPS[step](problem, o, report, record, progress)
    on_event(ProgressEvent(STAGE, len(steps), len(steps), clock(), "flatness report complete"))
    return report


def _eigenvalues(problem: CurvatureProblem, o: FlatnessOptions, report: Report, record: Report,
                 progress: Progress) -> None:
    values, vectors = top_eigenpairs(problem, o.top_k, o.seed, progress=progress)
    report["top_eigenvalues"] = values
    report["eigenvalues"] = {"top": values, "k": o.top_k, "method": "Lanczos (scipy eigsh)", **record}
    report["_eigenvectors"] = vectors  # kept out of the JSON (one float per parameter each)


def _min_eigenvalue(problem: CurvatureProblem, o: FlatnessOptions, report: Report, record: Report,
                    progress: Progress) -> None:
    value = smallest_eigenvalue(problem, report["top_eigenvalues"][0], o.seed, progress=progress)
    report["min_eigenvalue"] = value
    report["eigenvalues"]["min"] = value
    top = report["top_eigenvalues"][0]
    report["eigenvalues"]["ratio_min_max"] = abs(value / top) if top else math.nan


def _trace(problem: CurvatureProblem, o: FlatnessOptions, report: Report, record: Report,
           progress: Progress) -> None:
    report["trace"] = {**trace(problem, o.trace_samples, o.seed, progress), **record}


def _density(problem: CurvatureProblem, o: FlatnessOptions, report: Report, record: Report,
             progress: Progress) -> None:
    report["density"] = {**density(problem, o.density_steps, o.density_runs, o.seed, progress), **record}


def _per_layer(problem: CurvatureProblem, o: FlatnessOptions, report: Report, record: Report,
               progress: Progress) -> None:
    report["per_layer"] = {"layers": per_layer(problem, o.trace_samples, o.seed, progress),
                           "trace_samples": o.trace_samples, **record}


def _relative_flatness(problem: CurvatureProblem, o: FlatnessOptions, report: Report, record: Report,
                       progress: Progress) -> None:
    measures = invariant_flatness(problem, o.trace_samples, o.seed, progress)
    layers = measures["layers"]
    common = {"trace_samples": o.trace_samples, **record, "layers": layers}
    report["relative_flatness"] = {"value": measures["relative_flatness"], **common}
    report["scale_invariant"] = {"value": measures["scale_invariant"], **common}


def _sharpness(problem: CurvatureProblem, o: FlatnessOptions, report: Report, record: Report,
               progress: Progress) -> None:
    plain = eps_sharpness(problem, o.epsilon, o.sharpness_steps, o.seed, False, progress)
    adaptive = eps_sharpness(problem, o.epsilon, o.sharpness_steps, o.seed, True, progress)
    report["sharpness"] = {"epsilon": o.epsilon, "value": plain["value"], "adaptive": adaptive["value"],
                           "loss": plain["loss"], "max_loss": plain["max_loss"],
                           "adaptive_max_loss": adaptive["max_loss"], "steps": o.sharpness_steps, **record}


def _average_sharpness(problem: CurvatureProblem, o: FlatnessOptions, report: Report, record: Report,
                       progress: Progress) -> None:
    both = random_perturbations(problem, o.perturbation_radius, o.perturbations, o.flat_threshold, o.seed,
                                progress=progress)
    report["average_sharpness"] = {**both["average_sharpness"], **record}
    report["flat_fraction"] = {**both["flat_fraction"], **record}


def _sublevel(problem: CurvatureProblem, o: FlatnessOptions, report: Report, record: Report,
              progress: Progress) -> None:
    surface = load_surface(o.surface)
    relative = o.relative_level or o.level is None
    level = 0.1 if o.level is None else o.level
    summary = sublevel_summary(surface, level, o.metric, relative)
    report["sublevel"] = {**summary, "surface": str(o.surface)}
    report["surface_rise"] = surface_flatness(surface, o.metric, o.radius)


_STEPS = {"eigenvalues": _eigenvalues, "min_eigenvalue": _min_eigenvalue, "trace": _trace, "density": _density,
          "per_layer": _per_layer, "relative_flatness": _relative_flatness, "sharpness": _sharpness,
          "average_sharpness": _average_sharpness, "sublevel": _sublevel}


def report_json(report: dict[str, Any]) -> str:
    """The report as JSON (private entries such as eigenvectors left out; inf written as null)."""
    return json.dumps(_plain({k: v for k, v in report.items() if not k.startswith("_")}), indent=1)


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(report_json(report))
    partial.replace(path)
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in list(value)]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


HEADLINE = FlatnessOptions(subset=500, top_k=1, trace_samples=10, density="off", sharpness_steps=5)


def headline_measures(subject: Any, o: FlatnessOptions = HEADLINE, *, on_event: EventSink = ignore_events,
                      cancel: CancelToken | None = None) -> dict[str, float]:
    """lambda_max, the trace and eps-sharpness: the three numbers put next to every picture."""
    report = flatness_report(subject, o, on_event=on_event, cancel=cancel,
                             only=("eigenvalues", "trace", "sharpness"))
    return {"lambda_max": report["top_eigenvalues"][0], "trace": report["trace"]["mean"],
            "trace_stderr": report["trace"]["stderr"], "sharpness": report["sharpness"]["value"],
            "epsilon": report["sharpness"]["epsilon"], "samples": report["subset"], "split": report["split"]}


def headline_lines(runs: dict[str, Any], o: FlatnessOptions = HEADLINE,
                   on_event: EventSink = ignore_events) -> list[str]:
    """The headline measures of several runs side by side, for the terminal."""
    lines = [f"  {'run':<20} {'lambda_max':>11} {'trace':>18} {'eps-sharpness':>14}"]
    for name, run in runs.items():
        m = headline_measures(run, o, on_event=on_event)
        trace_text = f"{m['trace']:.4g} ± {m['trace_stderr']:.2g}"
        lines.append(f"  {name:<20} {m['lambda_max']:>11.4g} {trace_text:>18} {m['sharpness']:>13.4g}%")
    lines.append(f"  (Hessian of the {o.split} loss over {o.subset} seeded samples; eps-sharpness of Keskar "
                 f"et al., eps = {o.epsilon:g}; `losslab flatness RUN.h5 --json` gives every measure)")
    return lines


def report_path(run_path: str | Path, epoch: int) -> Path:
    """Where the app keeps a run's analysis report of one checkpoint: next to the run file."""
    run_path = Path(run_path)
    return run_path.with_name(f"{run_path.stem}.flatness-e{int(epoch)}.json")


def cached_headline(run_path: str | Path, epoch: int) -> dict[str, float] | None:
    """lambda_max, trace and eps-sharpness from a stored report of that checkpoint, if one exists."""
    path = report_path(run_path, epoch)
    try:
        report = json.loads(path.read_text())
        return {"lambda_max": float(report["top_eigenvalues"][0]), "trace": float(report["trace"]["mean"]),
                "sharpness": float(report["sharpness"]["value"])}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
