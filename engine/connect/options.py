"""Every option of ``losslab connect``, declared once (engine.schema): CLI flags, app form, HDF5 attributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.landscape.directions.curve import CURVES
from engine.landscape.grid import parse_axis
from engine.schema import Settings, epoch_or_final, setting

SOURCE = "connect options"
DEVICES = ("auto", "cpu", "cuda")
# Options that do not change the numbers (a resumed curve may differ here).
SPEED_ONLY = ("device", "threads", "eval_batch_size")


def _t_grid(spec: str) -> str:
    t = parse_axis(spec, "t")
    if len(t) < 2 or t.min() < 0.0 or t.max() > 1.0:
        raise ValueError("MIN:MAX:N with 0 <= MIN < MAX <= 1 and N >= 2, e.g. 0:1:21")
    return spec


def _ensemble_size(count: int) -> int:
    if count == 1:
        raise ValueError("0 (no ensemble) or at least 2 models")
    return count


@dataclass(frozen=True)
class ConnectOptions(Settings):
    """How the curve between two runs is trained and evaluated (Garipov et al. 2018)."""

    SOURCE = SOURCE
    curve: str = setting("bezier", "curve family: quadratic Bézier (one bend) or polygonal chain",
                         choices=CURVES)
    bends: int = setting(1, "number of trainable bends between the two end points", min=1, max=8)
    epochs: int = setting(20, "epochs of curve training on run A's training split", min=0)
    lr: float = setting(0.05, "SGD learning rate (constant for half of the epochs, then falling "
                        "linearly to 1 %, as Garipov et al.)", min=1e-12, label="Learning rate")
    momentum: float = setting(0.9, "SGD momentum", min=0.0, max=0.999)
    weight_decay: float = setting(0.0, "L2 weight decay on the bends", min=0.0)
    batch_size: int = setting(64, "training batch size; one t is drawn per batch", min=2)
    checkpoint_a: int | str = setting("final", "epoch of run A at t = 0, or 'final'", check=epoch_or_final,
                                      metavar="EPOCH|final", label="Epoch of A")
    checkpoint_b: int | str = setting("final", "epoch of run B at t = 1, or 'final'", check=epoch_or_final,
                                      metavar="EPOCH|final", label="Epoch of B")
    t: str = setting("0:1:21", "t values at which the curve and the straight line are evaluated",
                     check=_t_grid, metavar="MIN:MAX:N", label="t grid")
    bn_update: bool = setting(True, "re-estimate batch-norm statistics from the training data at "
                              "every t (nets without batch norm skip it)", label="Re-estimate BN")
    ensemble: int = setting(5, "models sampled at evenly spaced t (ends included) whose averaged "
                            "prediction is tested (0 = no ensemble)", min=0, check=_ensemble_size,
                           label="Ensemble size")
    seed: int = setting(0, "seed for batch order and the sampled t", min=0)
    device: str = setting("auto", "where to train and evaluate", choices=DEVICES)
    threads: int = setting(0, "CPU threads (0 = automatic)", min=0)
    eval_batch_size: int = setting(1024, "samples per forward pass when evaluating", min=1)

    @property
    def t_values(self) -> np.ndarray:
        return parse_axis(self.t, "t")

    @property
    def ensemble_t(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, self.ensemble) if self.ensemble >= 2 else np.zeros(0)

    def identity(self) -> dict[str, Any]:
        """Options that change the numbers: resuming needs them all unchanged."""
        return {k: v for k, v in self.to_attrs().items() if k not in SPEED_ONLY}

    def to_attrs(self) -> dict[str, Any]:
        out = super().to_attrs()
        out["checkpoint_a"], out["checkpoint_b"] = str(out["checkpoint_a"]), str(out["checkpoint_b"])
        return out
