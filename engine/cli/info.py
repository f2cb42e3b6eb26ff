"""``losslab info FILE``: a summary of a run, surface or curve file."""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

from engine.checks import RESNETS
from engine.errors import RunFileError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="summarise a run, surface or curve file")
    parser.add_argument("file", type=Path, help="run, surface or curve file (.h5)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise RunFileError(f"'{args.file}': file not found")
    try:
        # A job may still be writing the file (and hold its lock): reading its flushed rows is fine.
        with h5py.File(args.file, "r", locking=False) as f:
            kind = f.attrs.get("format")
    except OSError as exc:
        raise RunFileError(f"'{args.file}': not a readable HDF5 file ({exc})") from exc
    kind = kind.decode(errors="replace") if isinstance(kind, bytes) else kind
    summaries = {"losslab-run": run_summary, "losslab-curve": curve_summary}
    print(summaries.get(kind, surface_summary)(args.file))
    return 0


def curve_summary(path: Path) -> str:
    """What a `losslab connect` file holds: its two runs, training progress, and barrier heights."""
    from engine.cli.connect import summary
    from engine.connect.store import load_curve

    record = load_curve(path)
    lines = [f"run A      {record.run_a} (epoch {record.epoch_a})",
             f"run B      {record.run_b} (epoch {record.epoch_b})",
             f"trained    {record.epochs_done} of {record.options.epochs} epochs; status: {record.status}"]
    if record.evaluated:
        return "\n".join([summary(record), *lines])
    return "\n".join([f"curve file: {path}  ({record.options.curve}, {record.options.bends} bend(s)); "
                      "not evaluated yet: run the same `losslab connect` command to finish it", *lines])


def run_summary(path: Path) -> str:
    from engine.storage.run import load_run

    run = load_run(path)
    cfg, m, classes = run.config, run.metrics, run.classes
    lines = [
        f"run        {path}  ({run.status})",
        f"experiment {cfg.name}  seed {cfg.seed}",
        f"data       {cfg.data.source}  train {run.dataset_info['train_size']}  test {run.dataset_info['test_size']}"
        f"  input {tuple(run.dataset_info['input_shape'])}  classes {len(classes)}",
        f"model      {cfg.model.arch}" + (" (no skip connections)" if cfg.model.arch in RESNETS and not cfg.model.skip
                                          else "")
        + f"  optimiser {cfg.train.optimizer} lr {cfg.train.lr:g}  loss {cfg.train.loss}",
        f"device     {run.attrs.get('device', '?')}  torch {run.attrs.get('torch_version', '?')}"
        f"  losslab {run.attrs.get('losslab_version', '?')}",
        f"checkpoints {', '.join(map(str, run.epochs))}",
        *_bias_lines(run.bias, classes),
        *_metric_lines(m, classes),
    ]
    return "\n".join(lines)


def _bias_lines(bias: dict, classes: list[str]) -> list[str]:
    kind = bias.get("kind", "none")
    if kind == "none":
        return ["bias       none"]
    target = int(bias.get("target_class", -1))
    on = f" class {target} ({classes[target]})" if 0 <= target < len(classes) else ""
    changed = len(bias["indices"]) if "indices" in bias else "?"
    fraction = float(bias.get("fraction", float("nan")))
    lines = [f"bias       {kind}{on}  fraction {fraction:g}  changed samples {changed}"]
    if kind == "noise":
        lines.append(f"           noise variance {float(bias.get('variance', float('nan'))):g}"
                     f"  noise seed {bias.get('noise_seed', '?')}")
    for key, label in (("counts_before", "before"), ("counts_after", "after: ")):
        if key in bias:
            lines.append(f"           per-class counts {label} " + " ".join(map(str, np.ravel(bias[key]))))
    return lines


FINAL_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "gen_error", "param_norm", "seconds")


def _metric_lines(m: dict[str, np.ndarray], classes: list[str]) -> list[str]:
    missing = [k for k in FINAL_METRICS if k not in m or len(m[k]) != len(m.get("test_loss", []))]
    if missing:
        return [f"metrics    incomplete (no {', '.join(missing)})"] if m else ["metrics    none recorded yet"]
    last = len(m["test_loss"]) - 1
    lines = [
        f"final      epoch {last}  train loss {m['train_loss'][last]:.4f} acc {100 * m['train_acc'][last]:.2f}%"
        f"  test loss {m['test_loss'][last]:.4f} acc {100 * m['test_acc'][last]:.2f}%",
        f"           generalisation error {m['gen_error'][last]:.4f}  |theta| {m['param_norm'][last]:.3f}"
        f"  time {np.nansum(m['seconds']):.1f}s",
    ]
    if "ensemble_test_acc" in m:
        lines.append(f"           snapshot-ensemble test acc {100 * m['ensemble_test_acc'][last]:.2f}%")
    if all(f"test_{k}" in m and len(m[f"test_{k}"]) > last for k in ("precision", "recall", "f1")):
        lines.append("class      precision  recall  f1")
        for k, name in enumerate(classes):
            lines.append(f"  {name:<12} {m['test_precision'][last][k]:.2f}      {m['test_recall'][last][k]:.2f}"
                         f"    {m['test_f1'][last][k]:.2f}")
    return lines


def surface_summary(path: Path) -> str:
    from engine.storage.surface_file import load_surface

    surface = load_surface(path)
    shape = f"{len(surface.x)} x {len(surface.y)}" if surface.is_2d else f"{len(surface.x)} (1D)"
    lines = [f"surface    {path}", f"grid       {shape}  x [{surface.x.min():g}, {surface.x.max():g}]"
             + (f"  y [{surface.y.min():g}, {surface.y.max():g}]" if surface.is_2d else "")]
    for name in surface.metric_names:
        values = surface.values[name]
        done = np.isfinite(values).sum()
        if done:
            lines.append(f"{name:<10} computed {done}/{values.size}  "
                         f"min {np.nanmin(values):.4g}  max {np.nanmax(values):.4g}")
        else:
            lines.append(f"{name:<10} nothing computed yet")
    for key in ("run_file", "checkpoint", "directions", "compute_seconds"):
        if key in surface.attrs:
            lines.append(f"{key:<10} {surface.attrs[key]}")
    return "\n".join(lines)
