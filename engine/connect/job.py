"""``connect(A, B, out, options)``: train a curve between two runs, evaluate it, store it, resumably.

Re-running with the same ``out`` continues where a killed or cancelled job stopped (training
from its last finished epoch, then the evaluation); other options are refused naming the
option, other end points naming the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.connect.evaluate import PathEvaluator, evaluate_paths
from engine.connect.options import ConnectOptions
from engine.connect.setup import EndPoints, load_end_points
from engine.connect.store import CurveRecord, load_curve, write_curve
from engine.connect.training import CurveTrainer, train_bends
from engine.device import choose_threads, select_device
from engine.errors import ConfigError, RunFileError
from engine.events import Cancelled, CancelToken, EventSink, ignore_events
from engine.storage.run import Run, load_run


def connect(run_a: str | Path | Run, run_b: str | Path | Run, out: str | Path, options: ConnectOptions,
            *, on_event: EventSink = ignore_events, cancel: CancelToken | None = None,
            allow_user_code: bool = False) -> CurveRecord:
    """Train (or resume) the curve from ``run_a`` to ``run_b`` into ``out`` and evaluate it."""
    out, cancel = Path(out), cancel or CancelToken()
    a, b = (r if isinstance(r, Run) else load_run(r, allow_user_code=allow_user_code) for r in (run_a, run_b))
    ends = load_end_points(a, b, options.checkpoint_a, options.checkpoint_b, select_device(options.device))
    torch.set_num_threads(choose_threads(options.threads, sum(v.numel() for v in ends.a.values())))
    trainer = CurveTrainer(ends, options, bool(a.config.data.augment))
    record = _resume_or_start(out, ends, options, trainer)
    save = _saver(out, options)
    try:
        if not record.trained:
            train_bends(trainer, record, save, on_event, cancel)
        if not record.evaluated:
            evaluator = PathEvaluator(ends, options)
            record.t, record.values, summary = evaluate_paths(evaluator, trainer.curve.at, cancel, on_event)
            record.summary.update(summary)
    except (Cancelled, KeyboardInterrupt):  # the file holds the last finished epoch: say so in it
        record.status = "stopped by the user; run the same command again to resume"
        _save_status(out, record)
        raise
    record.status = "complete"
    save(record)
    return record


def _saver(out: Path, options: ConnectOptions) -> Callable[[CurveRecord], None]:
    def save(record: CurveRecord) -> None:
        # a resumed job keeps the options it started with; speed-only ones may differ
        record.options = options
        write_curve(record, out)

    return save


def _save_status(out: Path, record: CurveRecord) -> None:
    if out.exists():
        stored = load_curve(out)
        stored.status = record.status
        write_curve(stored, out)


def _new_record(ends: EndPoints, options: ConnectOptions, trainer: CurveTrainer) -> CurveRecord:
    fingerprint_a, fingerprint_b = ends.fingerprints()
    return CurveRecord(options, os.path.abspath(ends.run_a.path), os.path.abspath(ends.run_b.path),
                       ends.epoch_a, ends.epoch_b, fingerprint_a, fingerprint_b, ends.names,
                       trainer.curve.bend_arrays())


def _resume_or_start(out: Path, ends: EndPoints, options: ConnectOptions, trainer: CurveTrainer) -> CurveRecord:
    if not out.exists():
        if not out.parent.exists():
            out.parent.mkdir(parents=True)
        record = _new_record(ends, options, trainer)
        write_curve(record, out)
        return record
    record = load_curve(out)
    _check_same_job(out, record, ends, options)
    if record.epochs_done:
        trainer.restore(record)
    if record.trained and not record.evaluated:
        record.values, record.t = {}, None
    return record


def _check_same_job(out: Path, record: CurveRecord, ends: EndPoints, options: ConnectOptions) -> None:
    stored: dict[str, Any] = record.options.identity()
    for key, value in options.identity().items():
        if stored.get(key) != value:
            raise ConfigError(key, value, f"{stored.get(key)!r} as stored in {out}; resuming needs the same "
                              "options (choose another --out for a different curve)", str(out))
    if (record.fingerprint_a, record.fingerprint_b) != ends.fingerprints():
        raise RunFileError(f"'{out}' holds a curve between other models than '{ends.run_a.path}' (epoch "
                           f"{ends.epoch_a}) and '{ends.run_b.path}' (epoch {ends.epoch_b}); choose another --out")
    if record.epochs_done and record.resume is None:
        raise RunFileError(f"'{out}': holds no resumable training state")
