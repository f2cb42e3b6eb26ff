"""Compute a 1D or 2D loss surface into a resumable HDF5 file.

Points are evaluated coarse to fine (:func:`engine.landscape.grid.progressive_order`) and
reach the file at least once per row's worth of points or per second. Re-running with the
same ``out`` and the same options computes only the missing points; the result equals an
uninterrupted run because every point is evaluated independently from the stored theta
and directions. Other options raise an error naming the option that differs.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import ConfigError, RunFileError
from engine.events import CancelToken, EventSink, ProgressEvent, Stopwatch, ignore_events
from engine.landscape.directions.build import Directions, build_directions
from engine.landscape.directions.params import ParamVector, to_numpy
from engine.landscape.directions.source import ModelSource, as_source
from engine.landscape.distribution.pool import ParallelRunner, WorkerStartError, defined_in_main, plan_workers
from engine.landscape.distribution.shards import merge_leftover_shards
from engine.landscape.evaluation.evaluate import extra_metric_names, metric_names, resolve_device, select_subset
from engine.landscape.evaluation.runner import (
    PRECISION_CHECK_SAMPLES,
    ChunkRunner,
    EvaluatorSpec,
    InProcessRunner,
    point_chunks,
    precision_error,
)
from engine.landscape.grid import STRIDES, averaged_order, axis_levels, progressive_order
from engine.landscape.hessian_metrics import option_metrics
from engine.landscape.options import SurfaceOptions
from engine.storage.surface_file import (
    SurfaceWriter,
    create_surface_file,
    load_direction_tensors,
    read_surface_attrs,
)
from engine.version import __version__

FLUSH_SECONDS = 1.0
WORKER_OVERHEAD_BYTES = 256 << 20  # a worker's torch, activations and allocator headroom
STAGE = "surface"


def compute_surface(
    subject: Any,
    options: SurfaceOptions,
    out: str | Path,
    *,
    directions: Directions | None = None,
    on_event: EventSink = ignore_events,
    cancel: CancelToken | None = None,
    open_run: Callable[[str], ModelSource] = as_source,
    select: Callable[[list], list] | None = None,
    extra_metrics: Sequence[Any] = (),
    workers: int | None = None,
) -> Path:
    """Evaluate every missing point of the surface ``options`` describes into ``out``.

    ``subject`` is a run file path, a Run or a :class:`ModelSource`. ``directions`` overrides
    the ones ``options`` would build (e.g. for plain models). Emits ProgressEvents of stage
    "surface" with payload ``{"indices": [...], "values": {metric: [...]}, "shape": ...}`` for
    each batch of points written. Cancelling keeps a valid partial file and raises Cancelled.
    ``select`` keeps a part of the missing points (one process's share of a torchrun job, see
    :mod:`engine.landscape.distribution.distributed`); shards such a job left next to ``out`` are merged first.
    ``extra_metrics`` adds per-point metrics (see :func:`engine.landscape.evaluation.evaluate.extra_metric_names`).
    On a CPU the points are evaluated by ``options.workers`` processes (0 = one per usable core);
    ``workers`` replaces that automatic number (a torchrun process's share of the machine's cores).
    """
    source, out = as_source(subject), Path(out)
    extra_metrics = (*extra_metrics, *option_metrics(options, source.loss))  # --hessian: max_eig, min_eig
    stored = _existing_attrs(out)
    if stored is None:
        custom = directions is not None
        directions = directions or build_directions(source, options, open_run)
        _create(out, source, options, directions, custom, extra_metrics)
    else:
        directions = _resume_directions(out, stored, source, options, directions)
    merge_leftover_shards(out)  # points of an interrupted torchrun job
    writer = SurfaceWriter(out)
    try:
        pending = writer.pending()
        todo = [p for p in _points(options) if pending[p[0]]]
        todo = todo if select is None else select(todo)
        done_before = pending.size - int(pending.sum())
        note = f" (resuming: {done_before} of {pending.size} already computed)" if done_before else ""
        on_event(
            ProgressEvent(STAGE, 0, len(todo), 0.0, f"surface: {len(todo)} points to compute{note} -> {out}")
        )
        if todo:
            spec = _spec(source, options, directions, _stored_batch_size(stored), extra_metrics)
            if options.precision in ("bf16", "fp16"):
                _report_precision_error(spec, writer, len(todo), on_event)
            runner = _runner(spec, options, len(todo), on_event, workers)
            try:
                writer.set_attr("evaluator", runner.record.to_json())  # how this session computed
                _evaluate(runner, writer, todo, len(options.x_coordinates), on_event, cancel,
                          _level_ends(todo, options))
            finally:
                writer.set_attr("evaluator", runner.record.to_json())  # workers may have joined
                runner.close()
    finally:
        writer.close()
    return out


def _stored_batch_size(stored: dict[str, Any] | None) -> int:
    """The automatic batch size an interrupted run chose: on CUDA it follows free memory, and a
    resumed run must sum its losses in the same batches to give the same bits."""
    try:
        return int(json.loads((stored or {}).get("evaluator", "{}")).get("batch_size", 0))
    except (TypeError, ValueError):
        return 0


def _spec(source: ModelSource, options: SurfaceOptions, directions: Directions, resumed_batch_size: int,
          extra_metrics: Sequence[Any]) -> EvaluatorSpec:
    data = select_subset({s: source.read_split(s) for s in options.splits}, options.subset, options.seed)
    return EvaluatorSpec(
        source.model(_origin_epoch(source, options, directions)),
        directions,
        data,
        source.loss,
        resolve_device(options.device),
        options.batch_size or resumed_batch_size,
        options.bn_train_mode,
        precision=options.precision,
        compile=options.compile,
        extra_metrics=tuple(extra_metrics),
    )


def _report_precision_error(spec: EvaluatorSpec, writer: SurfaceWriter, points: int, on_event: EventSink) -> None:
    """Say (and store) how far bf16/fp16 moves the losses from fp32 at the centre of the grid."""
    errors = precision_error(spec)
    writer.set_attr("precision_error", json.dumps(errors, sort_keys=True))
    worst = max(errors.items(), key=lambda item: item[1])
    on_event(ProgressEvent(STAGE, 0, points, 0.0, f"surface: {spec.precision} vs fp32 at the centre "
                           f"({PRECISION_CHECK_SAMPLES} samples per split): {worst[0]} differs by "
                           f"{worst[1]:.1e} relative"))


def _runner(
    spec: EvaluatorSpec, options: SurfaceOptions, points: int, on_event: EventSink, workers: int | None = None
) -> ChunkRunner:
    """Worker processes where there is more than one core to use (see engine.landscape.distribution.pool),
    else this process. Workers that cannot start (e.g. a model class only this process can import)
    leave the points to this process: slower, the same numbers."""
    parameters = sum(t.numel() for t in spec.directions.origin.values())
    plan = plan_workers(options.workers or workers or 0, options.threads, spec.device.type, points,
                        bytes_per_worker=parameters * 4 * 6 + WORKER_OVERHEAD_BYTES)

    def say(message: str, done: int = 0) -> None:
        on_event(ProgressEvent(STAGE, done, points, 0.0, f"surface: {message}"))

    if plan.workers > 1 and defined_in_main(spec):
        say("the model's class is defined in the main script, which worker processes cannot import; "
            "evaluating in this process (define it in a module to use every core)")
    elif plan.workers > 1:
        try:
            return ParallelRunner(spec, plan, eager_pool=options.workers > 1, on_message=say)
        except WorkerStartError as exc:
            say(f"{exc}; evaluating in this process instead")
    return InProcessRunner(spec, plan.threads)


def _origin_epoch(source: ModelSource, options: SurfaceOptions, directions: Directions) -> int:
    return 0 if directions.method == "init" else source.resolve(options.checkpoint)


def _existing_attrs(out: Path) -> dict[str, Any] | None:
    if not out.exists():
        return None
    attrs = read_surface_attrs(out)
    if attrs is None:
        raise RunFileError(
            f"{out} exists and is not a LossLab surface file; choose another --out (it is never overwritten)"
        )
    return attrs


def _create(out: Path, source: ModelSource, options: SurfaceOptions, d: Directions, custom: bool,
            extra_metrics: Sequence[Any] = ()) -> None:
    classification = all(not source.read_split(s)[1].dtype.is_floating_point for s in options.splits)
    groups = {"x": _stacked(d.xs)} | ({"y": to_numpy(d.y)} if d.y is not None else {})
    attrs = {
        "losslab_version": __version__,
        "run_file": source.name,
        "loss": source.loss,
        "checkpoint_epoch": source.resolve(options.checkpoint),
        "origin_epoch": _origin_epoch(source, options, d),
        "method": d.method,
        "custom_directions": custom,
        "cosine": float(d.cosine),
        "picked_candidates": list(d.picked or (-1, -1)),
        "origin_sha256": d.origin.fingerprint(),
        "directions_sha256": d.fingerprint(),
        "accuracy_unit": "percent",
        "compute_seconds": 0.0,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        **options.to_attrs(),
    }
    extras = {}
    if d.pca is not None:
        extras = {
            "pca/explained_variance": d.pca.explained_variance_ratio,
            "pca/epochs": d.pca.epochs,
            "pca/path_x": d.pca.path[:, 0],
            "pca/path_y": d.pca.path[:, 1],
        }
        attrs["pca_scale"] = d.pca.scale
    if d.curve is not None:  # drawn on the plane like the PCA path
        extras = {"curve/t": d.curve.t, "curve/path_x": d.curve.path[:, 0], "curve/path_y": d.curve.path[:, 1],
                  "curve/distance": d.curve.distance}
    create_surface_file(
        out,
        options.x_coordinates,
        options.y_coordinates,
        metric_names(options.splits, classification) + extra_metric_names(extra_metrics),
        groups,
        attrs,
        extras,
        options.average_count,
    )


def _stacked(vectors: list[ParamVector]) -> dict[str, np.ndarray]:
    if len(vectors) == 1:
        return to_numpy(vectors[0])
    return {k: np.stack([v[k].numpy() for v in vectors]) for k in vectors[0]}


def _resume_directions(
    out: Path, stored: dict[str, Any], source: ModelSource, options: SurfaceOptions, given: Directions | None
) -> Directions:
    """The stored directions, after checking the file was made by the same command and model."""
    for key, value in options.identity().items():
        if key in stored and stored[key] != value:
            raise ConfigError(
                key,
                value,
                f"{stored[key]!r} as stored in {out}; resuming needs identical "
                "options (use another --out to compute a different surface)",
                str(out),
            )
    method = str(stored["method"])
    if given is not None:
        origin = given.origin
    else:
        origin = source.vector(0 if method == "init" else options.checkpoint, options.dir_type)
    if origin.fingerprint() != stored["origin_sha256"]:
        raise RunFileError(
            f"{out} was computed around another model state than {source.name} epoch "
            f"{stored['origin_epoch']} holds now; use another --out"
        )
    if given is not None and given.fingerprint() != stored["directions_sha256"]:
        raise RunFileError(
            f"{out} was computed along other directions than the ones given; use another --out"
        )
    tensors = load_direction_tensors(out)
    count = options.average_count
    keys = list(origin)
    xs = [_vector(tensors["x"], keys, k if count > 1 else None) for k in range(count)]
    y = _vector(tensors["y"], keys, None) if "y" in tensors else None
    return Directions(method, origin, xs, y, float(stored.get("cosine", np.nan)))


def _vector(arrays: dict[str, np.ndarray], keys: list[str], index: int | None) -> ParamVector:
    """A stored direction in the model's key order (HDF5 lists group members alphabetically)."""
    if sorted(arrays) != sorted(keys):
        raise RunFileError(f"stored directions cover {len(arrays)} tensors, the model has {len(keys)}")
    return ParamVector(
        {
            k: torch.from_numpy(np.array(arrays[k] if index is None else arrays[k][index], dtype=np.float32))
            for k in keys
        }
    )


def _points(options: SurfaceOptions) -> list[tuple[tuple[int, ...], float, float, int]]:
    """(index, alpha, beta, direction) for every point, coarse to fine."""
    x, y = options.x_coordinates, options.y_coordinates
    if options.average_count > 1:
        return [((k, i), float(x[i]), 0.0, k) for k, i in averaged_order(options.average_count, len(x))]
    if y is None:
        return [((i,), float(x[i]), 0.0, 0) for (i,) in progressive_order((len(x),))]
    return [((j, i), float(x[i]), float(y[j]), 0) for j, i in progressive_order((len(y), len(x)))]


def _level_ends(todo: list, options: SurfaceOptions) -> set[int]:
    """Positions in ``todo`` after which a coarse-to-fine level is complete: written at once, so
    the views get each complete sub-grid as soon as it exists."""
    x_level = _first_levels(len(options.x_coordinates))
    y_level = _first_levels(len(options.y_coordinates)) if options.is_2d else None
    levels = [max(x_level[index[-1]], y_level[index[0]] if y_level else 0) for index, *_ in todo]
    return {k + 1 for k in range(len(levels) - 1) if levels[k] != levels[k + 1]}


def _first_levels(n: int) -> list[int]:
    """For each index of an axis of ``n`` points, the first (coarsest) level that holds it."""
    first = [len(STRIDES)] * n
    for level, indices in enumerate(axis_levels(n)):
        for i in indices:
            first[i] = min(first[i], level)
    return first


def _evaluate(
    runner: ChunkRunner,
    writer: SurfaceWriter,
    todo: list,
    row: int,
    on_event: EventSink,
    cancel: CancelToken | None,
    level_ends: set[int] = frozenset(),
) -> None:
    """Evaluate ``todo`` in order, writing at least every ``row`` points or FLUSH_SECONDS, and
    whenever a level of the grid is complete."""
    clock, batch, last_flush, done = Stopwatch(), [], time.perf_counter(), 0
    chunks = point_chunks([(alpha, beta, k) for _, alpha, beta, k in todo], runner.record.points_per_forward, row)
    try:
        for results, seconds in runner.run(chunks, cancel):
            first = done
            for (index, *_), values in zip(todo[first : first + len(results)], results):
                writer.record(index, values, seconds)
                batch.append((index, values))
            done += len(results)
            level_done = any(first < end <= done for end in level_ends)
            if len(batch) >= row or level_done or time.perf_counter() - last_flush >= FLUSH_SECONDS:
                _flush(writer, batch, done, len(todo), clock(), on_event)
                batch, last_flush = [], time.perf_counter()
    finally:
        if batch:  # the last points, or those computed before a cancel or an error
            _flush(writer, batch, done, len(todo), clock(), on_event)


def _flush(
    writer: SurfaceWriter, batch: list, done: int, total: int, elapsed: float, on_event: EventSink
) -> None:
    writer.flush()
    payload = {
        "indices": [index for index, _ in batch],
        "shape": writer.shape,
        "values": {m: [values[m] for _, values in batch] for m in writer.metrics},
    }
    on_event(ProgressEvent(STAGE, done, total, elapsed, payload=payload))


# ---- for engine.landscape.distribution.distributed: processes other than 0 read what process 0 created ----
def stored_directions(out: str | Path, subject: Any, options: SurfaceOptions) -> Directions:
    """The exact directions of the existing surface ``out``, checked against ``subject`` and ``options``."""
    out = Path(out)
    stored = _existing_attrs(out)
    if stored is None:
        raise RunFileError(f"{out}: no such surface file")
    return _resume_directions(out, stored, as_source(subject), options, None)
