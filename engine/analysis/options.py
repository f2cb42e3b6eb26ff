"""Options of ``losslab flatness`` (and of the app's and studies' flatness step), declared once.

See engine.schema: the CLI flags, validation, TOML/JSON and HDF5 attributes all come from
these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.schema import Settings, epoch_or_final, given, setting

SPLITS = ("test", "train")


@dataclass(frozen=True)
class FlatnessOptions(Settings):
    """How the curvature at a checkpoint is measured (Hessian-vector products, never the full Hessian)."""

    SOURCE = "flatness options"

    checkpoint: int | str = setting("final", "epoch number or 'final'", check=epoch_or_final,
                                    metavar="EPOCH|final")
    split: str = setting("test", "data the loss is averaged over; train is the biased set", choices=SPLITS)
    subset: int = setting(1000, "seeded random N samples of the split, 0 = all", min=0,
                          label="Subset (0 = all)")
    top_k: int = setting(1, "eigenvalues to find", min=1, metavar="K", label="Top eigenvalues")
    iterations: int = setting(50, "most power iterations per eigenvalue", min=1)
    trace_samples: int = setting(20, "Rademacher vectors for the trace estimate", min=1, metavar="S")
    ignore_biasbn: bool = setting(False, "take the Hessian over weights only (no biases or batch-norm "
                                  "parameters)", label="Weights only")
    seed: int = setting(0, "seed for the subset and random vectors", min=0)
    surface: str | None = setting(None, "also report this surface file's rise around its centre",
                                  metavar="SURFACE.h5", label="Surface file")
    metric: str = setting("test_loss", "surface metric to use", applies=given("surface"))
    radius: float = setting(0.5, "surface window |alpha|, |beta| <= radius", min=0.0, applies=given("surface"))
