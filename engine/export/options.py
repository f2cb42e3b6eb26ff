"""Export options, validated once for the CLI and the app alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError
from engine.export.heights import check_height_options
from engine.schema import Settings, setting, setting_named

FORMATS = ("vts", "vtp", "vtk", "png", "csv", "html")
MIN_SIZE, MAX_SIZE = 64, 8192
SIZE_RULE = f"two whole numbers of pixels from {MIN_SIZE} to {MAX_SIZE}"
COLORMAP_RULE = ("a matplotlib colour map name, e.g. viridis, plasma, inferno, magma, cividis, coolwarm, "
                 "terrain (add _r to reverse)")


def _metric(name: str) -> str:
    if not name:
        raise ValueError("a metric name such as test_loss")
    return name


def _size(size: tuple[int, int]) -> tuple[int, int]:
    if not all(MIN_SIZE <= n <= MAX_SIZE for n in size):
        raise ValueError(SIZE_RULE)
    return size


def _low_below_high(bounds: tuple[float, float]) -> tuple[float, float]:
    if bounds[0] >= bounds[1]:
        raise ValueError("LOW < HIGH")
    return bounds


def _colormap(name: str) -> str:
    import matplotlib  # a pyvista requirement; pyvista takes its colour maps from it

    if name not in matplotlib.colormaps:
        raise ValueError(COLORMAP_RULE)
    return name


@dataclass(frozen=True)
class ExportOptions(Settings):
    """How a surface is exported; building one checks every field."""

    SOURCE = "export options"

    format: str | None = setting(None, "file type (default: the --out suffix)", choices=FORMATS, parse=str.lower)
    metric: str = setting("test_loss", "metric drawn as the height and the PNG's colours, e.g. test_loss, "
                          "train_acc (all metrics are exported)", check=_metric, metavar="METRIC",
                          label="Metric (height)")
    # The same names as the app's DisplaySettings; the flags' earlier names still work.
    log_scale: bool = setting(False, "draw log10 of the metric (values clamped to 1e-12 first)",
                              label="Log scale (log10)", old_flags=("--log",))
    clamp_max: float | None = setting(None, "clamp values above this, in the metric's units", metavar="Z",
                                      label="Clamp above", old_flags=("--zmax",))
    z_scale: float = setting(1.0, "multiply the displayed height", min=0.0, metavar="S", label="Z scale",
                             old_flags=("--zscale",))
    size: tuple[int, int] = setting((1024, 768), "PNG width x height", check=_size, parse=lambda t: parse_size(t),
                                    metavar="WxH", label="Size (pixels)")
    colormap: str = setting("viridis", "matplotlib colour map name (PNG)", check=_colormap, metavar="NAME",
                            label="Colour map")
    contours: int = setting(15, "number of contour lines on a PNG (0 = none)", min=0, max=200)
    color_range: tuple[float, float] | None = setting(
        None, "fixed colour range LOW,HIGH in the metric's units (default: the surface's own range)",
        check=_low_below_high, metavar="LOW,HIGH", label="Colour range",
    )

    def check_combinations(self) -> None:
        check_height_options(self.log_scale, self.clamp_max, self.z_scale)

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
        return setting_named(ExportOptions, name).help


def parse_size(text: str) -> tuple[int, int]:
    """``"1600x1200"`` -> ``(1600, 1200)``, with the same limits as ExportOptions."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        size = (int(parts[0]), int(parts[1])) if len(parts) == 2 else None
    except ValueError:
        size = None
    if size is None:
        raise ConfigError("size", text, "WIDTHxHEIGHT in pixels, e.g. 1600x1200")
    try:
        return _size(size)
    except ValueError:
        raise ConfigError("size", text, SIZE_RULE) from None
