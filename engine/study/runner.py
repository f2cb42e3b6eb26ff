"""Run every missing step of a study: train, surface, 1D curves, flatness, per variant.

Each variant lives in ``DIR/<variant>/`` (``experiment.toml``, ``run.h5``, ``surface.h5``,
``curve.h5``, ``flatness.json``). Steps already recorded in ``DIR/study.json`` with their file
present are skipped; a step that was interrupted resumes inside its own file (training from its
last checkpoint, a surface from its missing points), so re-running after ``kill -9`` redoes only
what was not yet written. Emits ``study`` ProgressEvents (one per step) and forwards each
step's own events (``train``, ``surface``, ``hessian``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from engine.errors import LossLabError, RunFileError
from engine.events import Cancelled, CancelToken, EventSink, ProgressEvent, Stopwatch, ignore_events
from engine.study.measures import measure_flatness
from engine.study.record import StudyRecord, write_atomic
from engine.study.spec import StudyConfig, Variant

STEPS = ("train", "surface", "curves", "flatness")
FILES = {"train": "run.h5", "surface": "surface.h5", "curves": "curve.h5", "flatness": "flatness.json"}
STAGE = "study"


@dataclass
class StudyOutcome:
    folder: Path
    ran: list[tuple[str, str]] = field(default_factory=list)  # (variant, step) computed this session
    skipped: list[tuple[str, str]] = field(default_factory=list)  # already complete
    failed: dict[str, str] = field(default_factory=dict)  # variant -> message


def planned_steps(study: StudyConfig) -> list[str]:
    wanted = {"train": True, "surface": study.surface is not None, "curves": study.curves is not None,
              "flatness": study.flatness is not None}
    return [s for s in STEPS if wanted[s]]


def step_file(folder: Path, variant: str, step: str) -> Path:
    return folder / variant / FILES[step]


def run_study(study: StudyConfig, out: str | Path, *, device: str = "auto", on_event: EventSink = ignore_events,
              cancel: CancelToken | None = None, variants: list[str] | None = None) -> StudyOutcome:
    """Compute every missing step of ``study`` (or of the named ``variants``) into folder ``out``.

    A step failing with a LossLabError (e.g. a diverged training) is recorded, that variant's later
    steps are skipped and the other variants go on; Cancelled stops everything (work so far is kept).
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    cancel = cancel or CancelToken()
    record = StudyRecord.open(folder, study.name, str(Path(study.source).resolve()))
    chosen = [v for v in study.variants if variants is None or v.name in variants]
    steps = planned_steps(study)
    progress = _Progress(study.name, len(chosen) * len(steps), on_event)
    outcome = StudyOutcome(folder)
    for variant in chosen:
        _prepare(folder, variant, record)
        for step in steps:
            cancel.raise_if_cancelled()
            if variant.name not in outcome.failed:
                _run_step(study, folder, variant, step, record, outcome, progress, device, cancel)
            progress.advance()
    return outcome


class _Progress:
    """Overall ``study`` events: one unit per (variant, step)."""

    def __init__(self, name: str, total: int, on_event: EventSink) -> None:
        self.name, self.total, self.on_event = name, total, on_event
        self.done, self.clock = 0, Stopwatch()

    def announce(self, message: str) -> None:
        self.on_event(ProgressEvent(STAGE, self.done, self.total, self.clock(),
                                    f"study {self.name} [{self.done + 1}/{self.total}] {message}"))

    def advance(self) -> None:
        self.done += 1
        self.on_event(ProgressEvent(STAGE, self.done, self.total, self.clock()))


def _run_step(study: StudyConfig, folder: Path, variant: Variant, step: str, record: StudyRecord,
              outcome: StudyOutcome, progress: _Progress, device: str, cancel: CancelToken) -> None:
    if _is_done(record, folder, variant.name, step):
        outcome.skipped.append((variant.name, step))
        return
    progress.announce(f"{variant.name}: {step}")
    began = time.perf_counter()
    try:
        RUNNERS[step](study, folder, variant, device, progress.on_event, cancel)
    except Cancelled:
        raise
    except LossLabError as exc:
        record.mark_failed(variant.name, step, str(exc))
        outcome.failed[variant.name] = f"{step}: {exc}"
        progress.announce(f"{variant.name}: {step} failed: {exc}")
        return
    record.mark(variant.name, step, time.perf_counter() - began)
    outcome.ran.append((variant.name, step))


def _prepare(folder: Path, variant: Variant, record: StudyRecord) -> None:
    (folder / variant.name).mkdir(exist_ok=True)
    toml = variant.config.to_toml()
    record.check_config(variant.name, toml)
    experiment = folder / variant.name / "experiment.toml"
    if not experiment.is_file() or experiment.read_text() != toml:
        write_atomic(experiment, toml)


def _is_done(record: StudyRecord, folder: Path, variant: str, step: str) -> bool:
    entry = record.step(variant, step)
    return bool(entry and entry.get("done")) and step_file(folder, variant, step).is_file()


def _set_aside(path: Path) -> None:
    """Keep an unreadable file (a kill while it was being created) under another name, start afresh."""
    damaged = path.with_name(path.name + ".damaged")
    path.replace(damaged)


def _readable_run(path: Path) -> bool:
    try:
        with h5py.File(path, "r", locking=False) as f:
            return "resume" in f
    except OSError:
        return False


def _train(study: StudyConfig, folder: Path, variant: Variant, device: str, on_event: EventSink,
           cancel: CancelToken) -> None:
    from engine.training import train

    out = step_file(folder, variant.name, "train")
    if out.exists() and not _readable_run(out):
        _set_aside(out)
    train(variant.config, out, device=device, resume=out.exists(), on_event=on_event, cancel=cancel)


def _surface_step(step: str) -> Callable[..., None]:
    def run(study: StudyConfig, folder: Path, variant: Variant, device: str, on_event: EventSink,
            cancel: CancelToken) -> None:
        from dataclasses import replace

        from engine.landscape import compute_surface
        from engine.storage.surface_file import read_surface_attrs

        options = study.surface if step == "surface" else study.curves
        if device != "auto" and options.device == "auto":  # surfaces name a device kind, not an index
            options = replace(options, device="cuda" if device.startswith("cuda") else device)
        out = step_file(folder, variant.name, step)
        if out.exists():
            try:
                read_surface_attrs(out)
            except (OSError, RunFileError):
                _set_aside(out)
        compute_surface(step_file(folder, variant.name, "train"), options, out, on_event=on_event, cancel=cancel)

    return run


def _flatness(study: StudyConfig, folder: Path, variant: Variant, device: str, on_event: EventSink,
              cancel: CancelToken) -> None:
    surface = step_file(folder, variant.name, "surface")
    result = measure_flatness(step_file(folder, variant.name, "train"), study.flatness,
                              surface if surface.is_file() else None, on_event=on_event, cancel=cancel)
    write_atomic(step_file(folder, variant.name, "flatness"), json.dumps(result, indent=1))


RUNNERS = {"train": _train, "surface": _surface_step("surface"), "curves": _surface_step("curves"),
           "flatness": _flatness}
