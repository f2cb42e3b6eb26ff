"""Training an experiment into a run file, with per-epoch records, checkpoints and resume.

Epoch 0 is the initialisation: it is evaluated and checkpointed before any step. A run killed
at any point resumes (``resume=True``) from its last checkpoint with the optimiser, schedule
and batch-order state of that moment, so the result equals an uninterrupted run.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor, nn

from engine.bias import BiasRecord, prepare_data
from engine.checks import check_data
from engine.config import ExperimentConfig, from_toml_text
from engine.data import Dataset, augment_batch
from engine.device import choose_threads, device_name, select_device
from engine.errors import ConfigError, OutputError, RunFileError, TrainingError
from engine.events import Cancelled, CancelToken, EventSink, ProgressEvent, Stopwatch, ignore_events
from engine.models import build_model
from engine.storage import h5safe
from engine.storage.run import load_checkpoint
from engine.storage.runfile import RUN_FORMAT, RunWriter, provenance, read_tensors, state_from_bytes
from engine.training.distance import DistanceRegularizer
from engine.training.evaluation import ensemble_accuracy, evaluate_split, parameter_norm, per_class_report
from engine.training.losses import loss_function
from engine.training.optim import build_optimizer, build_scheduler


@dataclass
class Trainer:
    """Everything that changes while training; built once, then stepped epoch by epoch."""

    cfg: ExperimentConfig
    data: Dataset
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    regularizer: DistanceRegularizer
    writer: RunWriter
    bias_record: BiasRecord | None = None
    snapshot_probs: list[Tensor] = field(default_factory=list)
    epoch_lr: float = float("nan")  # the LR used during the epoch (the scheduler steps at its end)

    def batches(self) -> int:
        return math.ceil(len(self.data.x_train) / self.cfg.train.batch_size)

    def resume_state(self, epoch: int) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "generator": self.generator.get_state(), "epoch": epoch}


def _build(cfg: ExperimentConfig, out: Path, device: torch.device) -> Trainer:
    data, record = prepare_data(cfg)
    check_data(cfg, data.task, data.input_shape)
    data = data.to(device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data.input_shape, data.num_outputs).to(device)
    optimizer = build_optimizer(model.parameters(), cfg.train)
    trainer = Trainer(cfg, data, model, optimizer, build_scheduler(optimizer, cfg.train),
                      torch.Generator().manual_seed(cfg.seed), DistanceRegularizer(cfg.train.distance),
                      RunWriter(out), bias_record=record)
    trainer.epoch_lr = cfg.train.lr
    return trainer


def _start_new(trainer: Trainer, device: torch.device) -> None:
    cfg, data = trainer.cfg, trainer.data
    info = {"classes": data.classes, "input_shape": data.input_shape, "task": data.task,
            "num_outputs": data.num_outputs, "train_fingerprint": data.fingerprint,
            "train_size": len(data.x_train), "test_size": len(data.x_test)}
    meta = {"name": cfg.name, **provenance(device_name(device), cfg.seed)}
    trainer.writer.create(cfg.to_toml(), meta, info)
    trainer.writer.write_bias(trainer.bias_record)
    _finish_epoch(trainer, 0, seconds=0.0, running_loss=float("nan"))


START_OVER = "start it again with --overwrite (this replaces the file)"


def _resumable(out: Path) -> bool:
    """Whether ``out`` holds a checkpoint to resume from; False for a run killed before its first
    checkpoint (nothing in it is worth keeping, so training starts over)."""
    try:
        with h5py.File(out, "r") as f:
            if f.attrs.get("format") != RUN_FORMAT:
                raise RunFileError(f"'{out}': not a LossLab run file, so it cannot be resumed; choose another "
                                   f"--out or {START_OVER}")
            if "resume" in f:
                return True
            if len(f.get("checkpoints", {})):
                raise RunFileError(f"'{out}': holds checkpoints but no training state to resume from (the "
                                   f"'resume' record is missing); keep the file, or {START_OVER}")
            return False
    except OSError as exc:
        raise RunFileError(f"'{out}': cannot resume: the file is not readable HDF5 (the training was probably "
                           f"killed while creating it); {START_OVER}") from exc


def _restore(trainer: Trainer, out: Path) -> int:
    """Load the last checkpoint and its training state; return its epoch."""
    try:
        with h5py.File(out, "r") as f:
            stored_toml = str(f.attrs.get("config_toml", ""))
            fingerprint = h5safe.group(f, "data", out).attrs.get("train_fingerprint")
            epoch = int(h5safe.attr(h5safe.member(f, "resume", out), "epoch", out))
            state_blob = h5safe.read(f, "resume", out, kinds="u", ndim=1)
            weights = read_tensors(h5safe.group(f, f"checkpoints/{epoch}", out), out)
            distance = h5safe.group(f, "distance", out)
            snapshots = [read_tensors(distance[i], out) for i in sorted(distance.keys(), key=int)]
            snapshot_epochs = [int(e) for e in distance.attrs.get("epochs", [])]
    except (OSError, KeyError, ValueError) as exc:
        raise RunFileError(f"'{out}': cannot resume, the run file is damaged ({exc}); {START_OVER}") from exc
    except RunFileError as exc:
        raise RunFileError(f"cannot resume: {exc}; {START_OVER}") from exc
    changed = _changed_settings(stored_toml, trainer.cfg, out)
    if changed:
        raise RunFileError(f"'{out}': was trained with a different experiment ({'; '.join(changed)}); resume "
                           "needs the same experiment file (or choose another --out)")
    if fingerprint != trainer.data.fingerprint:
        raise RunFileError(f"'{out}': the training data differs from the data this run started with")
    device = next(trainer.model.parameters()).device
    load_checkpoint(trainer.model, {k: v.to(device) for k, v in weights.items()}, f"{out} epoch {epoch}")
    state = state_from_bytes(state_blob, str(out))
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.generator.set_state(state["generator"])
    trainer.regularizer.snapshots = [{k: v.to(device) for k, v in s.items()} for s in snapshots]
    trainer.regularizer.snapshot_epochs = snapshot_epochs
    trainer.snapshot_probs = [_snapshot_probabilities(trainer, s) for s in trainer.regularizer.snapshots]
    trainer.writer.truncate_to(epoch)
    trainer.writer.set_status("running")
    return epoch


def _changed_settings(stored_toml: str, cfg: ExperimentConfig, out: Path) -> list[str]:
    """Settings that differ between the run's stored experiment and ``cfg``, as "key: stored -> now".

    Parsed, not compared as text, so a run written before a setting existed resumes when the
    new setting keeps its default (the stored file reads back with that default)."""
    try:
        stored = _flat(from_toml_text(stored_toml, f"{out} (stored experiment)").to_dict(keep_none=True))
    except ConfigError as exc:
        raise RunFileError(f"'{out}': its stored experiment is not valid here ({exc})") from exc
    now = _flat(cfg.to_dict(keep_none=True))
    return [f"{key}: {stored.get(key)!r} -> {now.get(key)!r}" for key in sorted(set(stored) | set(now))
            if stored.get(key) != now.get(key)]


def _flat(table: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in table.items():
        flat |= _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value}
    return flat


def _snapshot_probabilities(trainer: Trainer, snapshot: dict[str, Tensor]) -> Tensor:
    member = copy.deepcopy(trainer.model)
    with torch.no_grad():
        for name, param in member.named_parameters():
            param.copy_(snapshot[name])
    member.eval()
    result = evaluate_split(member, trainer.data.x_test, trainer.data.y_test, trainer.cfg.train.loss)
    return result.probabilities


def _train_epoch(trainer: Trainer, epoch: int, on_event: EventSink, cancel: CancelToken, clock: Stopwatch,
                 done_before: int, total: int) -> float:
    cfg, data, model = trainer.cfg.train, trainer.data, trainer.model
    fn = loss_function(cfg.loss)
    model.train()
    trainer.epoch_lr = trainer.optimizer.param_groups[0]["lr"]
    order = torch.randperm(len(data.x_train), generator=trainer.generator).to(data.x_train.device)
    running, seen = 0.0, 0
    for b, start in enumerate(range(0, len(order), cfg.batch_size)):
        cancel.raise_if_cancelled()
        index = order[start:start + cfg.batch_size]
        if len(index) < 2 < len(order):
            continue  # batch-norm cannot train on a single sample
        inputs = data.x_train[index]
        if trainer.cfg.data.augment:
            inputs = augment_batch(inputs, trainer.generator)
        loss = fn(model(inputs), data.y_train[index])
        value = float(loss.detach())  # one device sync per batch, used for the check and the mean
        if not math.isfinite(value):
            raise TrainingError(f"the training loss became {value} at epoch {epoch}, batch {b + 1}; "
                                "lower train.lr or change the loss. The last good checkpoint is kept.")
        penalty = trainer.regularizer.penalty(model)
        total_loss = loss if penalty is None else loss + penalty
        trainer.optimizer.zero_grad(set_to_none=True)
        total_loss.backward()
        trainer.optimizer.step()
        running += value * len(index)
        seen += len(index)
        on_event(ProgressEvent("train", done_before + b + 1, total, clock()))
    trainer.scheduler.step()
    return running / max(seen, 1)


def _epoch_metrics(trainer: Trainer, seconds: float, running_loss: float) -> dict[str, object]:
    cfg, data, model = trainer.cfg, trainer.data, trainer.model
    model.eval()
    train = evaluate_split(model, data.x_train, data.y_train, cfg.train.loss)
    test = evaluate_split(model, data.x_test, data.y_test, cfg.train.loss)
    metrics: dict[str, object] = {
        "train_loss": train.loss, "train_acc": train.accuracy, "test_loss": test.loss, "test_acc": test.accuracy,
        "gen_error": train.accuracy - test.accuracy, "gen_gap_loss": test.loss - train.loss,
        "train_loss_running": running_loss, "param_norm": parameter_norm(model),
        "lr": trainer.epoch_lr, "seconds": seconds,
    }
    if data.task == "classification":
        predictions = test.probabilities.argmax(dim=1).cpu().numpy()
        report = per_class_report(predictions, data.y_test.cpu().numpy(), len(data.classes))
        metrics.update({f"test_{k}": v for k, v in report.items()})
        if trainer.snapshot_probs:
            members = [*trainer.snapshot_probs, test.probabilities]
            metrics["ensemble_test_acc"] = ensemble_accuracy(members, data.y_test)
    if trainer.regularizer.snapshots:
        metrics["snapshot_distance_min"] = min(trainer.regularizer.distances(model))
    return metrics


def _finish_epoch(trainer: Trainer, epoch: int, seconds: float, running_loss: float) -> dict[str, object]:
    cfg = trainer.cfg.train
    metrics = _epoch_metrics(trainer, seconds, running_loss)
    if trainer.regularizer.wants_snapshot(epoch):
        trainer.regularizer.take_snapshot(trainer.model, epoch)
        trainer.snapshot_probs.append(_snapshot_probabilities(trainer, trainer.regularizer.snapshots[-1]))
        trainer.writer.write_snapshots(trainer.regularizer.snapshots, trainer.regularizer.snapshot_epochs)
    checkpoint = epoch == 0 or epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs
    state = trainer.model.state_dict() if checkpoint else None
    resume = trainer.resume_state(epoch) if checkpoint else None
    trainer.writer.write_epoch(epoch, metrics, state, resume)
    return metrics


def _epoch_line(epoch: int, epochs: int, m: dict[str, object]) -> str:
    return (f"epoch {epoch:>3}/{epochs}  train loss {m['train_loss']:.4f} acc {100 * m['train_acc']:.1f}%  "
            f"test loss {m['test_loss']:.4f} acc {100 * m['test_acc']:.1f}%  gen.err {m['gen_error']:.3f}  "
            f"lr {m['lr']:.3g}  {m['seconds']:.1f}s")


def train(cfg: ExperimentConfig, out: str | Path, *, device: str = "auto", resume: bool = False,
          overwrite: bool = False, on_event: EventSink = ignore_events,
          cancel: CancelToken | None = None) -> Path:
    """Train ``cfg`` into the run file ``out``; returns its path."""
    out = Path(out)
    cfg.validate()
    cancel = cancel or CancelToken()
    check_output(out, resume=resume, overwrite=overwrite)
    torch_device = select_device(device)
    trainer = _build(cfg, out, torch_device)
    torch.set_num_threads(choose_threads(cfg.train.threads, sum(p.numel() for p in trainer.model.parameters())))
    start = _restore(trainer, out) if resume and out.exists() and _resumable(out) else None
    if start is None:
        _start_new(trainer, torch_device)
        start = 0
    _run_epochs(trainer, start, on_event, cancel)
    return out


def check_output(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse an output path that cannot work, before any work starts."""
    if out.is_dir():
        raise OutputError(f"'{out}': is a folder; --out needs a run file name, e.g. '{out / 'run.h5'}'")
    if out.exists() and not (resume or overwrite):
        raise RunFileError(f"'{out}' already exists; pass resume=True (--resume) to continue it "
                           "or overwrite=True (--overwrite) to replace it")
    h5safe.check_writable_folder(out)


def _run_epochs(trainer: Trainer, start: int, on_event: EventSink, cancel: CancelToken) -> None:
    epochs, per_epoch = trainer.cfg.train.epochs, trainer.batches()
    clock, total = Stopwatch(), max((epochs - start) * per_epoch, 1)
    try:
        for epoch in range(start + 1, epochs + 1):
            began = time.perf_counter()
            running = _train_epoch(trainer, epoch, on_event, cancel, clock, (epoch - start - 1) * per_epoch, total)
            metrics = _finish_epoch(trainer, epoch, time.perf_counter() - began, running)
            on_event(ProgressEvent("train", (epoch - start) * per_epoch, total, clock(),
                                   _epoch_line(epoch, epochs, metrics),
                                   {"epoch": epoch, "metrics": _scalars(metrics),
                                    "per_class": _per_class(metrics), "classes": trainer.data.classes}))
    except (Cancelled, KeyboardInterrupt):
        trainer.writer.set_status("stopped by the user; resume continues from the last checkpoint")
        raise
    except (TrainingError, OutputError) as exc:
        trainer.writer.set_status(f"failed: {exc}")
        raise
    trainer.writer.set_status("complete")


def _per_class(metrics: dict[str, object]) -> dict[str, list[float]]:
    """Per-class arrays (precision, recall, F1 on the test split) as plain lists."""
    return {k: np.asarray(v, dtype=float).tolist() for k, v in metrics.items() if np.ndim(v) == 1}


def _scalars(metrics: dict[str, object]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if np.ndim(v) == 0}
