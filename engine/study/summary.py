"""One row per variant: its overridden keys and the numbers a comparison needs -> ``summary.csv``.

Every number is read back from the variant's files (run, surface, flatness.json), so it equals
what ``losslab info`` and ``losslab flatness`` print for the same files. Accuracies are fractions;
a cell is empty when that step was not part of the study or has not finished.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from engine.errors import LossLabError
from engine.study.measures import FlatnessOptions, surface_rise
from engine.study.record import StudyRecord, read_record
from engine.study.runner import step_file
from engine.study.spec import StudyConfig, Variant

RESULT_COLUMNS = (
    "train_acc", "test_acc", "gen_error", "train_loss", "test_loss", "centre_test_loss", "loss_rise",
    "max_rise", "rise_radius", "rise_metric", "top_eigenvalue", "min_eigenvalue", "trace", "trace_stderr", "sharpness",
    "average_sharpness", "relative_flatness", "epochs",
    "wall_seconds", "status",
)


def summary_columns(study: StudyConfig) -> list[str]:
    return ["variant", *study.varied_keys, *RESULT_COLUMNS]


def summary_rows(study: StudyConfig, folder: Path) -> list[dict[str, Any]]:
    folder = Path(folder)
    record = StudyRecord(folder, read_record(folder) or {"variants": {}})
    return [_row(study, folder, v.name, _values(v, study.varied_keys), record) for v in study.variants]


def _values(variant: Variant, keys: list[str]) -> dict[str, Any]:
    """The variant's value of every varied key (also where it keeps the base value)."""
    data = variant.config.to_dict()
    out = {}
    for key in keys:
        node: Any = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        out[key] = node
    return out


def _row(study: StudyConfig, folder: Path, name: str, overrides: dict[str, Any],
         record: StudyRecord) -> dict[str, Any]:
    row: dict[str, Any] = {"variant": name, **overrides}
    row.update(_run_numbers(step_file(folder, name, "train")))
    row.update(_surface_numbers(study, step_file(folder, name, "surface")))
    row.update(_flatness_numbers(step_file(folder, name, "flatness")))
    entry = record.data["variants"].get(name, {"steps": {}})
    row["wall_seconds"] = record.seconds(name) if entry["steps"] else None
    errors = [f"{step}: {s['error']}" for step, s in entry["steps"].items() if s.get("error")]
    row["status"] = "; ".join(errors) or row.get("status")
    return row


def _run_numbers(path: Path) -> dict[str, Any]:
    from engine.storage.run import load_run

    if not path.is_file():
        return {"status": "not trained"}
    try:
        run = load_run(path)
    except LossLabError as exc:
        return {"status": str(exc)}
    m = run.metrics
    last = len(m["test_loss"]) - 1
    return {"train_acc": float(m["train_acc"][last]), "test_acc": float(m["test_acc"][last]),
            "gen_error": float(m["gen_error"][last]), "train_loss": float(m["train_loss"][last]),
            "test_loss": float(m["test_loss"][last]), "epochs": run.final_epoch, "status": run.status}


def _surface_numbers(study: StudyConfig, path: Path) -> dict[str, Any]:
    if study.surface is None or not path.is_file():
        return {}
    options = study.flatness or FlatnessOptions()
    out: dict[str, Any] = {}
    try:
        if "test" in study.surface.splits:
            out["centre_test_loss"] = surface_rise(path, FlatnessOptions(metric="test_loss"))["centre"]
        rise = surface_rise(path, options)
    except LossLabError:  # not computed (yet) at the centre, or the metric is not in the surface
        return out
    return {**out, "loss_rise": rise["mean_rise"], "max_rise": rise["max_rise"], "rise_radius": rise["radius"],
            "rise_metric": rise["metric"]}


def _flatness_numbers(path: Path) -> dict[str, Any]:
    """Numbers of ``flatness.json`` (the analysis' ``--json`` report); missing entries stay empty."""
    if not path.is_file():
        return {}
    result = json.loads(path.read_text())
    eigen = result.get("top_eigenvalues") or [None]
    trace = result.get("trace") or {}
    return {"top_eigenvalue": eigen[0], "min_eigenvalue": result.get("min_eigenvalue"),
            "trace": trace.get("mean"), "trace_stderr": trace.get("stderr"),
            "sharpness": _value(result.get("sharpness")),
            "average_sharpness": _value(result.get("average_sharpness")),
            "relative_flatness": _value(result.get("relative_flatness"))}


def _value(entry: Any) -> Any:
    return entry.get("value") if isinstance(entry, dict) else entry


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, list):
        return " ".join(map(str, value))
    return repr(value) if isinstance(value, float) else str(value)


def write_summary(study: StudyConfig, folder: Path) -> Path:
    """``DIR/summary.csv``: floats written in full precision (Python's repr)."""
    folder = Path(folder)
    path = folder / "summary.csv"
    columns = summary_columns(study)
    rows = summary_rows(study, folder)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    return path
