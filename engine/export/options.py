"""Export options, validated once for the CLI and the app alike."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.export.heights import check_height_options

FORMATS = ("vts", "vtp", "vtk", "png", "csv")
MIN_SIZE, MAX_SIZE = 64, 8192


def _rule(default: Any, **rules: Any) -> Any:
    return field(default=default, metadata=rules)


@dataclass(frozen=True)
class ExportOptions:
    """How a surface is exported; building one checks every field."""

    format: str | None = _rule(None, choices=FORMATS, help="file type; None = from the output suffix")
    metric: str = _rule("test_loss", help="metric drawn as the height (all metrics are exported)")
    log: bool = _rule(False, help="draw log10 of the metric (values clamped to 1e-12 first)")
    zmax: float | None = _rule(None, help="clamp values above this, in the metric's units")
    zscale: float = _rule(1.0, min=0.0, help="multiply the displayed height")
    size: tuple[int, int] = _rule((1024, 768), min=MIN_SIZE, max=MAX_SIZE, help="PNG width x height")
    colormap: str = _rule("viridis", help="matplotlib colour map name (PNG)")
    contours: int = _rule(15, min=0, max=200, help="number of contour lines on a PNG (0 = none)")

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError("format", self.format, f"one of {', '.join(FORMATS)}")
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigError("surface metric", self.metric, "a metric name such as test_loss")
        check_height_options(self.log, self.zmax, self.zscale)
        _check_size(self.size)
        object.__setattr__(self, "size", tuple(self.size))
        whole = isinstance(self.contours, int) and not isinstance(self.contours, bool)
        if not whole or not 0 <= self.contours <= 200:
            raise ConfigError("contours", self.contours, "an integer from 0 to 200")
        _check_colormap(self.colormap)

    def output_format(self, out: Path) -> str:
        """The format to write: the one asked for, else the file's suffix; they must agree."""
        suffix = out.suffix.lower().lstrip(".")
        if self.format is None:
            if suffix not in FORMATS:
                raise ConfigError("out", str(out), f"a file name ending in one of .{', .'.join(FORMATS)}, "
                                  "or a --format")
            return suffix
        if suffix and suffix != self.format:
            expected = f"a file name ending in .{self.format} for format {self.format}"
            raise ConfigError("out", str(out), expected)
        return self.format

    @staticmethod
    def help(name: str) -> str:
        """The help text of one option, for CLI and app labels."""
        return next(f.metadata.get("help", "") for f in fields(ExportOptions) if f.name == name)


def parse_size(text: str) -> tuple[int, int]:
    """``"1600x1200"`` -> ``(1600, 1200)``, with the same limits as ExportOptions."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        size = (int(parts[0]), int(parts[1])) if len(parts) == 2 else None
    except ValueError:
        size = None
    if size is None:
        raise ConfigError("size", text, "WIDTHxHEIGHT in pixels, e.g. 1600x1200")
    _check_size(size)
    return size


def _check_size(size: Any) -> None:
    ok = (
        isinstance(size, tuple | list) and len(size) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and MIN_SIZE <= n <= MAX_SIZE for n in size)
    )
    if not ok:
        raise ConfigError("size", size, f"two whole numbers of pixels from {MIN_SIZE} to {MAX_SIZE}")


def _check_colormap(name: str) -> None:
    import matplotlib  # a pyvista requirement; pyvista takes its colour maps from it

    if not isinstance(name, str) or name not in matplotlib.colormaps:
        raise ConfigError("colormap", name, "a matplotlib colour map name, e.g. viridis, plasma, inferno, "
                          "magma, cividis, coolwarm, terrain (add _r to reverse)")
