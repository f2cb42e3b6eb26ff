"""Loss landscapes: directions, grid evaluation and resumable surface files.

Data path: checkpoint (:class:`ModelSource`) -> directions (:func:`build_directions`) ->
evaluation (:class:`PointEvaluator`) -> surface file (:func:`compute_surface`,
:func:`load_surface`).
"""

from engine.landscape.directions.build import (
    Directions,
    build_directions,
    gram_schmidt,
    init_directions,
    interpolation_directions,
    most_orthogonal_pair,
    random_direction,
    random_directions,
)
from engine.landscape.directions.params import ParamVector, difference, direction_keys
from engine.landscape.directions.pca import TrajectoryPCA, trajectory_pca
from engine.landscape.directions.source import ModelSource, as_source
from engine.landscape.evaluation.evaluate import PointEvaluator, resolve_device, select_subset
from engine.landscape.grid import averaged_order, parse_axis, progressive_order
from engine.landscape.options import SurfaceOptions, option_help, parse_run_reference
from engine.landscape.surface import compute_surface
from engine.storage.surface_file import Surface, load_direction_tensors, load_surface

__all__ = [
    "Directions",
    "ModelSource",
    "ParamVector",
    "PointEvaluator",
    "Surface",
    "SurfaceOptions",
    "TrajectoryPCA",
    "as_source",
    "averaged_order",
    "build_directions",
    "compute_surface",
    "difference",
    "direction_keys",
    "gram_schmidt",
    "init_directions",
    "interpolation_directions",
    "load_direction_tensors",
    "load_surface",
    "most_orthogonal_pair",
    "option_help",
    "parse_axis",
    "parse_run_reference",
    "progressive_order",
    "random_direction",
    "random_directions",
    "resolve_device",
    "select_subset",
    "trajectory_pca",
]
