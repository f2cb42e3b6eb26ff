"""The distance regulariser of the distance-training thesis (von Bachmann 2020) and snapshot-ensemble evaluation.

penalty(θ) = s · Σ_c exp(−‖θ − θ_c‖² / 2σ²) over snapshots θ_c: a Gaussian hill placed on each
snapshot, so training rolls away from where it has been. Snapshots are taken at
``start_epoch`` and, with ``every = k``, again every k epochs after it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from engine.config import DistanceConfig


class DistanceRegularizer:
    def __init__(self, cfg: DistanceConfig) -> None:
        self.cfg = cfg
        self.snapshots: list[dict[str, Tensor]] = []
        self.snapshot_epochs: list[int] = []

    @property
    def enabled(self) -> bool:
        return self.cfg.strength > 0

    def wants_snapshot(self, epoch: int) -> bool:
        """Whether the state at the end of ``epoch`` becomes a new hill."""
        if not self.enabled or epoch < self.cfg.start_epoch:
            return False
        if epoch == self.cfg.start_epoch:
            return True
        return self.cfg.every > 0 and (epoch - self.cfg.start_epoch) % self.cfg.every == 0

    def take_snapshot(self, model: nn.Module, epoch: int) -> None:
        self.snapshots.append({n: p.detach().clone() for n, p in model.named_parameters()})
        self.snapshot_epochs.append(epoch)

    def penalty(self, model: nn.Module) -> Tensor | None:
        if not self.snapshots:
            return None
        params = dict(model.named_parameters())
        total = None
        for snapshot in self.snapshots:
            squared = sum(((params[n] - ref) ** 2).sum() for n, ref in snapshot.items())
            hill = torch.exp(-squared / (2 * self.cfg.sigma**2))
            total = hill if total is None else total + hill
        return self.cfg.strength * total

    def distances(self, model: nn.Module) -> list[float]:
        """‖θ − θ_c‖ to every snapshot, for the per-epoch record."""
        params = dict(model.named_parameters())
        with torch.no_grad():
            return [float(sum(((params[n] - r) ** 2).sum() for n, r in s.items()) ** 0.5) for s in self.snapshots]
