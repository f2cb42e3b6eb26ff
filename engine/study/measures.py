"""The one adapter between studies and the flatness analysis (``engine.analysis``).

Everything a study asks of the analysis goes through :func:`measure_flatness`, so when the
analysis API grows (issue 9: sharpness, density, per-layer measures) only this module changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.events import CancelToken, EventSink, ignore_events

SOURCE = "flatness options"
SPLITS = ("test", "train")


def _opt(default: Any, help: str, **rules: Any) -> Any:
    return field(default=default, metadata={"help": help, **rules})


@dataclass(frozen=True)
class FlatnessOptions:
    """What a study measures at each final model (the options of ``losslab flatness``)."""

    split: str = _opt("test", "data the loss is averaged over", choices=SPLITS)
    subset: int = _opt(1000, "seeded random N samples of the split (0 = all)", min=0)
    top_k: int = _opt(1, "Hessian eigenvalues to find (largest first)", min=1)
    iterations: int = _opt(50, "most power iterations per eigenvalue", min=1)
    trace_samples: int = _opt(20, "Rademacher vectors for the Hutchinson trace (0 = no trace)", min=0)
    ignore_biasbn: bool = _opt(False, "Hessian over weights only (no biases or batch-norm parameters)")
    seed: int = _opt(0, "seed for the subset and the random vectors", min=0)
    radius: float = _opt(0.5, "surface window |alpha|, |beta| <= radius for the loss rise", min=1e-12)
    metric: str = _opt("test_loss", "surface metric whose rise is measured")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlatnessOptions:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(unknown[0], data[unknown[0]], "one of the keys " + ", ".join(names), SOURCE)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check(f: dataclasses.Field, value: Any) -> None:
    kind, meta = str(f.type), f.metadata
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool" and not isinstance(value, bool):
        raise ConfigError(f.name, value, "true or false", SOURCE)
    if kind == "int" and (not numeric or not isinstance(value, int)):
        raise ConfigError(f.name, value, "a whole number", SOURCE)
    if kind == "float" and not numeric:
        raise ConfigError(f.name, value, "a number", SOURCE)
    if kind == "str" and not isinstance(value, str):
        raise ConfigError(f.name, value, "a string", SOURCE)
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f.name, value, "one of " + ", ".join(map(repr, meta["choices"])), SOURCE)
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f.name, value, f"a number >= {meta['min']:g}", SOURCE)


def measure_flatness(run_path: str | Path, options: FlatnessOptions, *, on_event: EventSink = ignore_events,
                     cancel: CancelToken | None = None) -> dict[str, Any]:
    """Curvature of the run's final model: ``top_eigenvalues`` (largest magnitude first), ``trace``
    (``{"mean", "stderr"}`` or None) and ``sharpness`` (None until the analysis offers it),
    each with the split, subset size and seed used -- the keys of ``losslab flatness --json``."""
    from engine.analysis.flatness import hessian_top_eigenvalues, hessian_trace
    from engine.landscape.evaluation.evaluate import select_subset
    from engine.storage.run import load_run

    run = load_run(run_path)
    model = run.model("final")
    split = options.split
    inputs, targets = select_subset({split: run.tensors(split)}, options.subset, options.seed)[split]
    loss = run.config.train.loss
    common = dict(seed=options.seed, ignore_biasbn=options.ignore_biasbn, on_event=on_event, cancel=cancel)
    values = hessian_top_eigenvalues(model, inputs, targets, loss, k=options.top_k,
                                     iterations=options.iterations, **common)
    trace = None
    if options.trace_samples:
        mean, stderr = hessian_trace(model, inputs, targets, loss, samples=options.trace_samples, **common)
        trace = {"mean": mean, "stderr": stderr}
    return {"top_eigenvalues": values, "trace": trace, "sharpness": None,
            "split": split, "subset": len(inputs), "seed": options.seed}


def surface_rise(surface_path: str | Path, options: FlatnessOptions) -> dict[str, float]:
    """Centre value and mean/max rise of ``options.metric`` within ``options.radius`` of a surface."""
    from engine.analysis.flatness import surface_flatness
    from engine.storage.surface_file import load_surface

    return surface_flatness(load_surface(surface_path), options.metric, options.radius)
