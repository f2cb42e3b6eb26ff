"""The interactive HTML export opens in a real browser (headless Chromium), offline, and shows the
surface in its colour map."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.export import export_surface

CHROMIUM = ("--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
            "--disable-background-networking", "--no-first-run", "--virtual-time-budget=15000",
            "--window-size=900,700")


@pytest.fixture(scope="module")
def small_plane(trained_run, tmp_path_factory):
    from engine.landscape import SurfaceOptions, compute_surface

    out = tmp_path_factory.mktemp("html") / "plane.h5"
    return compute_surface(trained_run, SurfaceOptions(x="-1:1:9", y="-1:1:9", split="test", workers=1, seed=0), out)


def screenshot(page, tmp_path) -> np.ndarray:
    from PIL import Image

    browser = shutil.which("chromium")
    assert browser, "chromium is missing: apt-get install chromium (packaging/setup.sh installs it)"
    png = tmp_path / "page.png"
    subprocess.run([browser, *CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
                    page.as_uri()], capture_output=True, timeout=180, check=True)
    with Image.open(png) as image:
        return np.asarray(image.convert("RGB"))


def viridis_share(pixels: np.ndarray) -> tuple[float, int]:
    """Share of pixels within a small distance of a viridis colour, and how many viridis shades appear."""
    import matplotlib

    table = (matplotlib.colormaps["viridis"](np.linspace(0, 1, 64))[:, :3] * 255).astype(float)
    flat = pixels.reshape(-1, 3).astype(float)[::7]
    distance = np.linalg.norm(flat[:, None, :] - table[None, :, :], axis=2)
    near = distance.min(axis=1) < 18
    return float(near.mean()), len(np.unique(distance.argmin(axis=1)[near]))


@pytest.mark.slow
def test_html_scene_renders_the_surface_in_chromium(small_plane, tmp_path):
    page = export_surface(small_plane, tmp_path / "scene.html", metric="test_loss", colormap="viridis")
    text = page.read_text(encoding="utf-8", errors="replace")
    assert not re.search(r"<script[^>]+src=[\"']https?://", text), "the page must not load scripts from the web"
    assert "vtk" in text.lower()
    pixels = screenshot(page, tmp_path)
    share, shades = viridis_share(pixels)
    assert share > 0.08, f"only {share:.1%} of the page shows the colour map"
    assert shades >= 12, f"the surface shows only {shades} viridis shades (a flat colour is no surface)"


def test_html_refuses_a_1d_curve(trained_run, tmp_path):
    from engine.landscape import SurfaceOptions, compute_surface

    curve = compute_surface(trained_run, SurfaceOptions(x="-1:1:5", workers=1, seed=0), tmp_path / "c.h5")
    with pytest.raises(ConfigError, match="a 2D surface"):
        export_surface(curve, tmp_path / "c.html", metric="test_loss")
    assert not (tmp_path / "c.html").exists()
