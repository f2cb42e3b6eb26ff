"""A study spread over the processes of a ``torchrun`` job, one machine or many.

``torchrun --nproc_per_node=N -m engine.cli study STUDY --out DIR`` (any number of machines, one
shared ``DIR``) starts the same command in every process. Each takes every WORLD_SIZE-th variant
(by RANK), evaluates its surfaces on its part of the machine's CPU cores (or on its own GPU) and
records its steps in ``DIR/study.json`` under the file lock. The process that finds the whole
study finished writes ``summary.csv`` and ``report.html``. No process waits for another, so a
failed or killed process costs only its own variants: run the same command again to finish them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from engine.landscape.distribution.distributed import World, cores_per_process, plan_devices
from engine.landscape.options import SurfaceOptions
from engine.study.record import read_record
from engine.study.runner import planned_steps
from engine.study.spec import StudyConfig


def share_of_process(study: StudyConfig, names: list[str] | None, world: World) -> list[str]:
    """The variants this process runs: every ``world.size``-th of those asked for, from its rank."""
    chosen = names or [v.name for v in study.variants]
    return chosen[world.rank::world.size]


def fitted_to_process(study: StudyConfig, world: World) -> StudyConfig:
    """The study with its surfaces' CPU workers set to this process's part of the machine's cores."""
    def fitted(options: SurfaceOptions | None) -> SurfaceOptions | None:
        return None if options is None else replace(options, workers=cores_per_process(options, world))

    return replace(study, surface=fitted(study.surface), curves=fitted(study.curves))


def device_of_process(device: str, world: World) -> str:
    """``auto`` on a machine with GPUs becomes this process's own GPU (round-robin by local rank)."""
    if device != "auto" or not torch.cuda.is_available():
        return device
    _, gpu = plan_devices("cuda", world, torch.cuda.device_count())
    return f"cuda:{gpu}"


def study_finished(study: StudyConfig, folder: Path, names: list[str] | None = None) -> bool:
    """Whether every step of every variant (of ``names``) is recorded as done or failed."""
    record = read_record(folder) or {}
    entries = record.get("variants", {})
    wanted = names or [v.name for v in study.variants]
    for name in wanted:
        steps = entries.get(name, {}).get("steps", {})
        failed = any(step.get("done") is False for step in steps.values())
        if not failed and not all(steps.get(step, {}).get("done") for step in planned_steps(study)):
            return False
    return True
