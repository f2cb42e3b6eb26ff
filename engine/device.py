"""Which device and how many threads: rules shared by training, surfaces and analyses."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from engine.errors import ConfigError


def select_device(requested: str = "auto", cuda_count: int | None = None) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` / ``cuda:N`` must name a GPU that exists here.

    ``cuda_count`` stands in for ``torch.cuda.device_count()``, so the GPU path's choices can be
    tested on a machine without one.
    """
    count = torch.cuda.device_count() if cuda_count is None else cuda_count
    if requested == "auto":
        return torch.device("cuda" if count > 0 else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    index = requested.removeprefix("cuda:") if requested.startswith("cuda:") else None
    if requested != "cuda" and (index is None or not index.isdigit()):
        raise ConfigError("device", requested, "'auto', 'cpu' or 'cuda[:N]'")
    if count == 0:
        raise ConfigError("device", requested, "'cpu' or 'auto' (no CUDA device is available here)")
    if index is not None and int(index) >= count:
        gpus = f"{count} GPU" + ("s" if count > 1 else "")
        raise ConfigError("device", requested, f"'cuda' or 'cuda:0' to 'cuda:{count - 1}' ({gpus} here)")
    return torch.device(requested)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"


def check_thread_count(requested: int, key: str = "threads", source: str = "") -> int:
    """Refuse more threads or workers than usable cores (0 = automatic is always fine)."""
    cores = usable_cores()
    if requested > cores:
        raise ConfigError(key, requested, f"0 (automatic) or 1 to {cores}: this machine lets LossLab use "
                          f"{cores} core" + ("s" if cores > 1 else ""), source)
    return requested


def available_memory() -> int:
    """Bytes of memory available to new allocations (Linux MemAvailable, else total physical)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def choose_threads(requested: int, parameter_count: int) -> int:
    """Small nets on few cores run faster on one thread (synchronisation dominates)."""
    if requested > 0:
        return check_thread_count(requested)
    cores = torch.get_num_threads()
    return 1 if parameter_count < 2_000_000 else cores


def usable_cores(env: dict[str, str] | None = None, cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """Cores this process may really use: its CPU affinity, capped by a cgroup CPU quota
    (containers, SLURM) and by ``OMP_NUM_THREADS`` when that is set; at least 1."""
    env = dict(os.environ) if env is None else env
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        cores = min(cores, int(omp))
    return max(1, cores)


def _cgroup_quota(root: Path) -> float | None:
    """CPUs granted by cgroup v2 ``cpu.max`` ("QUOTA PERIOD" or "max") or v1 cfs files; None = no limit."""
    try:
        quota, _, period = (root / "cpu.max").read_text().strip().partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None
