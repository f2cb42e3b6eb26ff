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

PRESETS = Path(__file__).resolve().parents[1] / "resources" / "presets"
DEMO_RUNS = ("digits-unbiased", "digits-mislabel-30")


@dataclass
class DemoResult:
    runs: dict[str, Path] = field(default_factory=dict)
    surfaces: dict[str, Path] = field(default_factory=dict)
    curves: dict[str, Path] = field(default_factory=dict)
    exports: list[Path] = field(default_factory=list)


def demo_config(name: str, epochs: int) -> ExperimentConfig:
    cfg = load_experiment(PRESETS / f"{name}.toml")
    return with_overrides(cfg, {"train.epochs": epochs, "train.milestones": [max(1, epochs // 2)]})


def run_demo(out_dir: str | Path, *, grid: int = 21, epochs: int = 12, on_event: EventSink = ignore_events,
             cancel: CancelToken | None = None) -> DemoResult:
    from engine.export import export_surface
    from engine.landscape import SurfaceOptions, compute_surface
    from engine.training import train

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = DemoResult()
    plane = SurfaceOptions(x=f"-1:1:{grid}", y=f"-1:1:{grid}", split="test", seed=0)
    line = SurfaceOptions(x="-1:1:31", split="both", average=3, seed=0)
    for name in DEMO_RUNS:
        run = train(demo_config(name, epochs), out_dir / f"{name}.h5", resume=True, on_event=on_event,
                    cancel=cancel)
        result.runs[name] = run
        surface = compute_surface(run, plane, out_dir / f"{name}-surface.h5", on_event=on_event, cancel=cancel)
        curve = compute_surface(run, line, out_dir / f"{name}-curve.h5", on_event=on_event, cancel=cancel)
        result.surfaces[name], result.curves[name] = surface, curve
        result.exports += [
            export_surface(surface, out_dir / f"{name}-test_loss.vts", metric="test_loss"),
            export_surface(surface, out_dir / f"{name}-test_loss.png", metric="test_loss", log=True),
            export_surface(curve, out_dir / f"{name}-curve.csv", metric="test_loss"),
        ]
    return result
