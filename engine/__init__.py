"""LossLab engine: experiments, training, loss landscapes and exports, with no Qt imports.

The desktop app (``app``) and the ``losslab`` command are two thin clients of this API.
"""

from __future__ import annotations

from engine.config import ExperimentConfig, load_experiment  # noqa: E402
from engine.storage.run import Run, load_run  # noqa: E402
from engine.version import __version__  # noqa: E402


def train(*args, **kwargs):
    """See :func:`engine.training.loop.train` (imported lazily: it pulls in torch models)."""
    from engine.training.loop import train as _train

    return _train(*args, **kwargs)


def load_surface(path):
    """Open a LossLab or loss-landscape surface file (see engine.storage.surface_file)."""
    from engine.storage.surface_file import load_surface as _load_surface

    return _load_surface(path)


__all__ = ["ExperimentConfig", "Run", "__version__", "load_experiment", "load_run", "load_surface", "train"]
