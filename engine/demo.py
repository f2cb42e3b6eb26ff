"""The main job on built-in data: the bias-landscape study's question in two minutes on a laptop.

Trains an unbiased and a 30 %-mislabelled digits ResNet-20, computes each one's 2D test-loss
surface and 1D curve around the final weights (filter-normalised directions, same seed), and
exports ParaView files and pictures. Re-running reuses what is already computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.config import ExperimentConfig, load_experiment, with_overrides
from engine.events import CancelToken, EventSink, ignore_events
from engine.resources import find_experiment

DEMO_RUNS = ("digits-unbiased", "digits-mislabel-30")


@dataclass(frozen=True)
class DemoSize:
    """How much work the demo does: the full one answers the question, the quick one (``--quick``,
    under 30 s on two cores) checks that an installation works end to end."""

    grid: int = 21
    epochs: int = 12
    curve_points: int = 31
    curve_average: int = 3
    train_limit: int = 0  # 0: every training example
    test_limit: int = 0
    workers: int = 0  # 0: one process per usable core; 1 computes in-process (no start-up cost)


FULL = DemoSize()
QUICK = DemoSize(grid=7, epochs=4, curve_points=11, curve_average=1, train_limit=500, test_limit=200, workers=1)


@dataclass
class DemoResult:
    runs: dict[str, Path] = field(default_factory=dict)
    surfaces: dict[str, Path] = field(default_factory=dict)
    curves: dict[str, Path] = field(default_factory=dict)
    exports: list[Path] = field(default_factory=list)


def demo_config(name: str, size: DemoSize = FULL) -> ExperimentConfig:
    cfg = load_experiment(find_experiment(name))
    overrides = {"train.epochs": size.epochs, "train.milestones": [max(1, size.epochs // 2)]}
    if size.train_limit:
        overrides |= {"data.train_limit": size.train_limit, "data.test_limit": size.test_limit}
    return with_overrides(cfg, overrides)


def run_demo(out_dir: str | Path, size: DemoSize = FULL, *, on_event: EventSink = ignore_events,
             cancel: CancelToken | None = None) -> DemoResult:
    from engine.export import export_surface
    from engine.landscape import SurfaceOptions, compute_surface
    from engine.training import train

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = DemoResult()
    plane = SurfaceOptions(x=f"-1:1:{size.grid}", y=f"-1:1:{size.grid}", split="test", seed=0,
                           workers=size.workers)
    line = SurfaceOptions(x=f"-1:1:{size.curve_points}", split="both", average=size.curve_average, seed=0,
                          workers=size.workers)
    for name in DEMO_RUNS:
        run = train(demo_config(name, size), out_dir / f"{name}.h5", resume=True, on_event=on_event,
                    cancel=cancel)
        result.runs[name] = run
        surface = compute_surface(run, plane, out_dir / f"{name}-surface.h5", on_event=on_event, cancel=cancel)
        curve = compute_surface(run, line, out_dir / f"{name}-curve.h5", on_event=on_event, cancel=cancel)
        result.surfaces[name], result.curves[name] = surface, curve
        result.exports += [
            export_surface(surface, out_dir / f"{name}-test_loss.vts", metric="test_loss"),
            export_surface(surface, out_dir / f"{name}-test_loss.png", metric="test_loss", log_scale=True),
            export_surface(curve, out_dir / f"{name}-curve.csv", metric="test_loss"),
        ]
    return result
