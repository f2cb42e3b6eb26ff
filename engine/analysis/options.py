"""Options of ``losslab flatness`` (and of the app's Analysis panel), declared once.

See engine.schema: the CLI flags, validation, TOML/JSON and HDF5 attributes all come from
these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.schema import Settings, epoch_or_final, equals, given, setting

SPLITS = ("test", "train")
KINDS = ("hessian", "ggn")
ON_OFF = ("on", "off")


@dataclass(frozen=True)
class FlatnessOptions(Settings):
    """How the curvature and sharpness at a checkpoint are measured (Hessian-vector products,
    never the full Hessian), and the sub-level sets of a surface when one is given."""

    SOURCE = "flatness options"

    checkpoint: int | str = setting("final", "epoch number or 'final'", check=epoch_or_final,
                                    metavar="EPOCH|final")
    split: str = setting("test", "data the loss is averaged over; train is the biased set", choices=SPLITS)
    subset: int = setting(1000, "seeded random N samples of the split, 0 = all", min=0,
                          label="Subset (0 = all)")
    seed: int = setting(0, "seed for the subset and every random vector", min=0)
    curvature: str = setting("hessian", "hessian, or the generalised Gauss-Newton matrix (ggn, positive "
                             "semi-definite)", choices=KINDS)
    ignore_biasbn: bool = setting(False, "take the curvature over weights only (no biases or batch-norm "
                                  "parameters)", label="Weights only")
    top_k: int = setting(3, "largest eigenvalues (and eigenvectors) to find by Lanczos", min=1, metavar="K",
                         label="Top eigenvalues")
    trace_samples: int = setting(20, "Rademacher vectors for the Hutchinson trace", min=2, metavar="S")
    density: str = setting("on", "eigenvalue density by stochastic Lanczos quadrature", choices=ON_OFF)
    density_steps: int = setting(40, "Lanczos steps per density run", min=2, applies=equals("density", "on"))
    density_runs: int = setting(4, "random starts averaged in the density", min=1,
                                applies=equals("density", "on"))
    per_layer: bool = setting(False, "also top eigenvalue and trace of each layer's Hessian block")
    epsilon: float = setting(1e-3, "eps-sharpness box half-width (relative to |theta| + 1, or |theta| "
                             "for the adaptive form)", min=1e-12)
    sharpness_steps: int = setting(10, "projected gradient-ascent steps for eps-sharpness", min=1)
    perturbation_radius: float = setting(0.1, "radius of the random filter-normalised perturbations "
                                         "(average sharpness, flat-region fraction)", min=1e-12)
    perturbations: int = setting(20, "random perturbations for average sharpness", min=1)
    flat_threshold: float = setting(0.1, "flat-region fraction: a perturbation is flat if the loss rises by "
                                    "at most this", min=0.0)
    surface: str | None = setting(None, "also report this surface file's sub-level sets and rise",
                                  metavar="SURFACE.h5", label="Surface file")
    metric: str | None = setting(None, "surface metric to use; default: the loss of --split when the surface "
                                 "has it, else its first loss metric", applies=given("surface"))
    level: float | None = setting(None, "sub-level set {value <= L}; default: centre value + 0.1",
                                  metavar="L", applies=given("surface"))
    relative_level: bool = setting(False, "the level is relative to the surface's centre value",
                                   applies=given("surface"))
    radius: float = setting(0.5, "surface window |alpha|, |beta| <= radius", min=0.0, applies=given("surface"))
