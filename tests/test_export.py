"""Surface exports: VTK files read back through ParaView's readers, PNG, CSV, bad input."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vtk
from PIL import Image
from vtk.util.numpy_support import vtk_to_numpy

from engine.errors import ConfigError, LossLabError
from engine.export import (
    LOG_FLOOR,
    ExportOptions,
    display_z,
    export_surface,
    parse_size,
    to_polydata,
    to_structured_grid,
)
from engine.storage.surface_file import Surface


def plane() -> Surface:
    """7 α × 4 β: loss grows only along α, accuracy only along β, two points not computed."""
    x, y = np.linspace(-1.0, 1.0, 7), np.linspace(-0.3, 0.6, 4)
    alpha, beta = np.meshgrid(x, y)
    loss = 1.0 + 2.0 * alpha + alpha**2
    loss[2, 5] = np.nan
    acc = 0.5 + 0.5 * beta
    acc[0, 0] = np.nan
    trajectory = np.array([[0.8, 0.4], [0.4, 0.2], [0.1, 0.05], [0.0, 0.0]])
    return Surface(Path("runs/plane.h5"), x, y, {"test_loss": loss, "test_acc": acc}, trajectory=trajectory)


def curve() -> Surface:
    x = np.linspace(-1.0, 1.0, 9)
    loss = 0.2 + x**2
    loss[3] = np.nan
    return Surface(Path("runs/curve.h5"), x, None, {"test_loss": loss, "train_loss": loss * 0.5},
                       std={"test_loss": 0.1 + 0.05 * np.abs(x)})


def read(reader: vtk.vtkAlgorithm, path: Path) -> vtk.vtkDataSet:
    reader.SetFileName(str(path))
    if isinstance(reader, vtk.vtkDataReader):
        reader.ReadAllScalarsOn()
        reader.ReadAllFieldsOn()
    reader.Update()
    return reader.GetOutput()


def point_array(data: vtk.vtkDataSet, name: str) -> np.ndarray:
    return vtk_to_numpy(data.GetPointData().GetArray(name)).astype(np.float64)


def assert_same(read_back: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(read_back), np.isnan(expected))
    np.testing.assert_array_equal(read_back[~np.isnan(expected)], expected[~np.isnan(expected)])


def test_display_z_clamps_then_logs_then_scales() -> None:
    values = np.array([np.nan, 0.0, 1e-3, 1.0, 100.0, np.inf])
    assert_same(display_z(values), values)
    assert_same(display_z(values, zmax=10.0), np.array([np.nan, 0, 1e-3, 1, 10, 10]))
    logged = display_z(values, log=True, zmax=10.0, zscale=2.0)
    assert_same(logged, 2.0 * np.array([np.nan, np.log10(LOG_FLOOR), -3.0, 0.0, 1.0, 1.0]))
    for bad in ({"zscale": 0.0}, {"zmax": np.nan}, {"zmax": -1.0, "log": True}, {"zmax": "7"}):
        with pytest.raises(ConfigError):
            display_z(values, **bad)


def test_structured_grid_orientation_on_a_non_square_grid() -> None:
    surface = plane()
    grid = to_structured_grid(surface, "test_loss", zscale=3.0)
    assert tuple(grid.dimensions) == (7, 4, 1)
    points = np.asarray(grid.points)
    for j, i in [(0, 6), (3, 0), (1, 2), (2, 5)]:
        point = j * 7 + i
        assert points[point, :2] == pytest.approx([surface.x[i], surface.y[j]])
        assert_same(grid.point_data["test_acc"][point : point + 1], surface.values["test_acc"][j, i : i + 1])
    computed = ~np.isnan(surface.values["test_loss"].ravel())
    np.testing.assert_allclose(points[computed, 2], 3.0 * surface.values["test_loss"].ravel()[computed])
    np.testing.assert_array_equal(grid.point_data["valid"], computed.astype(np.uint8))


def test_vts_round_trip_through_paraviews_reader(tmp_path: Path) -> None:
    surface = plane()
    out = export_surface(surface, tmp_path / "plane.vts", log_scale=True)
    assert 'format="binary"' in out.read_text(errors="ignore")[:4000]
    data = read(vtk.vtkXMLStructuredGridReader(), out)
    assert data.GetExtent() == (0, 6, 0, 3, 0, 0)
    for name, values in surface.values.items():
        assert_same(point_array(data, name), values.ravel())
    # (1 + α)² is 0 at α = -1: drawn at the log floor, not -inf.
    floored = np.log10(np.fmax(surface.values["test_loss"], LOG_FLOOR))
    expected = np.where(np.isnan(surface.values["test_loss"]), np.nan, floored)
    assert_same(point_array(data, "z"), expected.ravel())
    alpha, beta = np.meshgrid(surface.x, surface.y)
    points = vtk_to_numpy(data.GetPoints().GetData())
    np.testing.assert_allclose(points[:, 0], alpha.ravel())
    np.testing.assert_allclose(points[:, 1], beta.ravel())
    hidden = data.GetPointGhostArray()
    assert hidden is not None and vtk_to_numpy(hidden)[2 * 7 + 5] != 0
    assert vtk_to_numpy(hidden).astype(bool).sum() == 1


def test_legacy_vtk_round_trip(tmp_path: Path) -> None:
    surface = plane()
    out = export_surface(surface, tmp_path / "plane.vtk", metric="test_acc", clamp_max=0.6)
    assert b"BINARY" in out.read_bytes()[:300]
    data = read(vtk.vtkStructuredGridReader(), out)
    assert data.GetExtent() == (0, 6, 0, 3, 0, 0)
    for name, values in surface.values.items():
        assert_same(point_array(data, name), values.ravel())
    assert_same(point_array(data, "z"), np.minimum(surface.values["test_acc"], 0.6).ravel())


def test_vtp_quads_with_point_and_cell_values(tmp_path: Path) -> None:
    surface = plane()
    out = export_surface(surface, tmp_path / "plane.vtp")
    assert 'format="binary"' in out.read_text(errors="ignore")[:4000]
    data = read(vtk.vtkXMLPolyDataReader(), out)
    assert data.GetNumberOfPoints() == 28
    for name, values in surface.values.items():
        assert_same(point_array(data, name), values.ravel())
    # 6 × 3 quads, minus the 4 around the one loss point not computed.
    assert data.GetNumberOfPolys() == 18 - 4
    assert (np.diff(vtk_to_numpy(data.GetPolys().GetOffsetsArray())) == 4).all()
    corners = vtk_to_numpy(data.GetPolys().GetConnectivityArray()).reshape(-1, 4)
    points = vtk_to_numpy(data.GetPoints().GetData())
    loss = surface.values["test_loss"].ravel()
    np.testing.assert_allclose(points[corners[0], :2], [[-1, -0.3], [-2 / 3, -0.3], [-2 / 3, 0.0], [-1, 0.0]])
    cell_loss = vtk_to_numpy(data.GetCellData().GetArray("test_loss"))
    np.testing.assert_allclose(cell_loss, loss[corners].mean(axis=1))
    assert not np.isnan(cell_loss).any()


def test_one_dimensional_curve_exports(tmp_path: Path) -> None:
    surface = curve()
    grid = read(vtk.vtkXMLStructuredGridReader(), export_surface(surface, tmp_path / "c.vts"))
    assert grid.GetExtent() == (0, 8, 0, 0, 0, 0)
    assert_same(point_array(grid, "test_loss_std"), surface.std["test_loss"])
    line = to_polydata(surface)
    assert line.n_lines == 8 - 2 and line.n_faces == 0
    table = list(csv.reader(open(export_surface(surface, tmp_path / "c.csv"), encoding="utf-8")))
    assert table[0] == ["x", "test_loss", "train_loss", "test_loss_std"]
    columns = np.array(table[1:], dtype=np.float64).T
    for column, expected in zip(columns, [surface.x, *surface.values.values(), surface.std["test_loss"]]):
        assert_same(column, expected)


def test_csv_long_format_for_a_grid(tmp_path: Path) -> None:
    surface = plane()
    rows = list(csv.DictReader(open(export_surface(surface, tmp_path / "p.csv"), encoding="utf-8")))
    assert len(rows) == 28 and list(rows[0]) == ["x", "y", "test_loss", "test_acc"]
    row = rows[2 * 7 + 4]
    assert float(row["x"]) == surface.x[4] and float(row["y"]) == surface.y[2]
    assert float(row["test_loss"]) == surface.values["test_loss"][2, 4]
    assert rows[2 * 7 + 5]["test_loss"] == "nan"


def test_a_diverged_point_is_kept_but_not_drawn(tmp_path: Path) -> None:
    surface = plane()
    surface.values["test_loss"][3, 6] = np.inf
    data = read(vtk.vtkXMLStructuredGridReader(), export_surface(surface, tmp_path / "inf.vts"))
    assert point_array(data, "test_loss")[3 * 7 + 6] == np.inf
    assert point_array(data, "valid")[3 * 7 + 6] == 1
    assert vtk_to_numpy(data.GetPointGhostArray())[3 * 7 + 6] != 0
    assert np.isfinite(vtk_to_numpy(data.GetPoints().GetData())).all()
    clamped = to_structured_grid(surface, zmax=5.0)
    assert clamped.points[3 * 7 + 6, 2] == 5.0 and clamped.GetPointGhostArray() is not None
    assert distinct_colours(export_surface(surface, tmp_path / "inf.png", size=(200, 150))) > 100


def distinct_colours(path: Path) -> int:
    image = np.asarray(Image.open(path).convert("RGB"))
    return len(np.unique(image.reshape(-1, 3), axis=0))


def test_png_renders_and_log_changes_it(tmp_path: Path) -> None:
    surface = plane()
    plain = export_surface(surface, tmp_path / "plain.png", size=(320, 240), contours=8)
    logged = export_surface(surface, tmp_path / "log.png", size=(320, 240), contours=8, log_scale=True)
    assert Image.open(plain).size == (320, 240)
    assert distinct_colours(plain) > 300
    difference = np.abs(np.asarray(Image.open(plain), float) - np.asarray(Image.open(logged), float))
    assert (difference.max(axis=-1) > 30).mean() > 0.02


def test_png_of_a_curve(tmp_path: Path) -> None:
    plain = export_surface(curve(), tmp_path / "curve.png", size=(400, 300))
    logged = export_surface(curve(), tmp_path / "curve_log.png", size=(400, 300), log_scale=True)
    assert Image.open(plain).size == (400, 300) and distinct_colours(plain) > 50
    assert np.asarray(Image.open(plain)).tolist() != np.asarray(Image.open(logged)).tolist()


@pytest.mark.parametrize("kwargs, key", [
    ({"fmt": "obj"}, "format"),
    ({"z_scale": -1.0}, "z_scale"),
    ({"size": (10, 10)}, "size"),
    ({"colormap": "no-such-map"}, "colormap"),
    ({"contours": -3}, "contours"),
    ({"clamp_max": 0.0, "log_scale": True}, "clamp_max"),
])
def test_bad_options_name_the_option(tmp_path: Path, kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        export_surface(plane(), tmp_path / "out.vts", **kwargs)
    assert caught.value.key == key


def test_bad_outputs_and_metrics(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="one of: test_loss, test_acc"):
        export_surface(plane(), tmp_path / "a.vts", metric="train_loss")
    with pytest.raises(ConfigError, match=r"ending in one of \.vts"):
        export_surface(plane(), tmp_path / "a.obj")
    with pytest.raises(ConfigError, match=r"ending in \.png"):
        export_surface(plane(), tmp_path / "a.vts", fmt="png")
    with pytest.raises(ConfigError, match="does not exist"):
        export_surface(plane(), tmp_path / "missing" / "a.vts")
    with pytest.raises(ConfigError, match="not a folder"):
        export_surface(plane(), tmp_path, fmt="vts")
    (tmp_path / "folder.vts").mkdir()
    with pytest.raises(ConfigError, match="not a folder"):
        export_surface(plane(), tmp_path / "folder.vts")
    assert export_surface(plane(), tmp_path / "noext", fmt="vtp").name == "noext.vtp"
    empty = plane()
    empty.values["test_loss"][:] = np.nan
    with pytest.raises(LossLabError, match="no drawable cell"):
        export_surface(empty, tmp_path / "empty.png")
    # A surface with nothing computed yet still exports to VTK: all points hidden.
    unfinished = read(vtk.vtkXMLStructuredGridReader(), export_surface(empty, tmp_path / "e.vts"))
    assert vtk_to_numpy(unfinished.GetPointGhostArray()).astype(bool).all()


def test_options_and_size_text() -> None:
    assert parse_size("1600x1200") == (1600, 1200)
    for text in ("1600", "axb", "10x10", "1600x1200x3"):
        with pytest.raises(ConfigError, match="size"):
            parse_size(text)
    assert ExportOptions(size=[640, 480]).size == (640, 480)
    assert "log10" in ExportOptions.help("log_scale")


def test_cli_reports_bad_options_without_a_traceback(tmp_path: Path, capsys) -> None:
    from engine.cli import main

    assert main(["export", str(tmp_path / "s.h5"), "--out", str(tmp_path / "s.vts"), "--size", "big"]) == 2
    assert "size = 'big'" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "s.h5"), "--format", "stl", "--out", str(tmp_path / "s")]) == 2
    assert "vts, vtp, vtk, png, csv" in capsys.readouterr().err


def test_png_without_any_display(tmp_path: Path) -> None:
    """The CLI may run on a server with no X: VTK must fall back to EGL, even when pytest runs in Xvfb."""
    script = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from test_export import plane\n"
        "from engine.export import export_surface\n"
        "import os\n"
        "export_surface(plane(), sys.argv[1], size=(200, 150))\n"
        "print(os.environ['VTK_DEFAULT_OPENGL_WINDOW'])\n"
    )
    dropped = ("DISPLAY", "VTK_DEFAULT_OPENGL_WINDOW")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "headless.png")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "vtkEGLRenderWindow"
    assert distinct_colours(tmp_path / "headless.png") > 100


def test_cli_exports_a_loss_landscape_file_the_right_way_round(tmp_path: Path, capsys) -> None:
    """loss-landscape declares (len(x), len(y)) but fills in meshgrid(x, y) order; -1 = not computed."""
    import h5py

    from engine.cli import main

    surface = plane()
    loss = np.where(np.isnan(surface.values["test_loss"]), -1.0, surface.values["test_loss"])
    with h5py.File(tmp_path / "ll.h5", "w") as f:
        f["xcoordinates"], f["ycoordinates"] = surface.x, surface.y
        f["train_loss"] = loss.reshape(len(surface.x), len(surface.y))
    out = tmp_path / "ll.vts"
    assert main(["export", str(tmp_path / "ll.h5"), "--out", str(out), "--surface", "train_loss"]) == 0
    assert str(out) in capsys.readouterr().out
    data = read(vtk.vtkXMLStructuredGridReader(), out)
    assert data.GetExtent() == (0, 6, 0, 3, 0, 0)
    assert_same(point_array(data, "train_loss"), surface.values["test_loss"].ravel())
    assert main(["export", str(tmp_path / "ll.h5"), "--out", str(out)]) == 2
    assert "one of: train_loss" in capsys.readouterr().err


def test_cli_exports_an_averaged_losslab_curve_to_csv(tmp_path: Path) -> None:
    from engine.cli import main
    from engine.storage.surface_file import SurfaceWriter, create_surface_file

    x = np.linspace(-1.0, 1.0, 5)
    create_surface_file(tmp_path / "c.h5", x, None, ["test_loss", "test_acc"], {}, {}, average=3)
    writer = SurfaceWriter(tmp_path / "c.h5")
    for k in range(3):
        for i in [0, 1, 3, 4]:
            writer.record((k, i), {"test_loss": x[i] ** 2 + k, "test_acc": 0.9}, 0.01)
    writer.close()
    assert main(["export", str(tmp_path / "c.h5"), "--format", "csv", "--out", str(tmp_path / "c.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "c.csv", encoding="utf-8")))
    assert list(rows[0]) == ["x", "test_loss", "test_acc", "test_loss_std", "test_acc_std"]
    assert float(rows[4]["test_loss"]) == pytest.approx(2.0) and rows[2]["test_loss"] == "nan"
    assert float(rows[4]["test_loss_std"]) == pytest.approx(np.std([1.0, 2.0, 3.0]))
    png = tmp_path / "c.png"
    assert main(["export", str(tmp_path / "c.h5"), "--out", str(png), "--size", "300x200"]) == 0
    assert Image.open(tmp_path / "c.png").size == (300, 200)


def test_png_of_a_losslab_file_with_a_training_path(tmp_path: Path) -> None:
    from engine.storage.surface_file import SurfaceWriter, create_surface_file, load_surface

    surface = plane()
    path = np.array([[0.9, 0.5], [0.5, 0.3], [0.0, 0.0]])
    extras = {"pca/path_x": path[:, 0], "pca/path_y": path[:, 1], "pca/epochs": np.array([0, 5, 10]),
              "pca/explained_variance": np.array([0.7, 0.2])}
    create_surface_file(tmp_path / "p.h5", surface.x, surface.y, ["test_loss"], {}, {}, extras=extras)
    writer = SurfaceWriter(tmp_path / "p.h5")
    for (j, i), value in np.ndenumerate(surface.values["test_loss"]):
        if not np.isnan(value):
            writer.record((j, i), {"test_loss": value}, 0.01)
    writer.close()
    assert load_surface(tmp_path / "p.h5").trajectory is not None
    with_path = export_surface(tmp_path / "p.h5", tmp_path / "p.png", size=(320, 240))
    surface.trajectory = None
    without = export_surface(surface, tmp_path / "q.png", size=(320, 240))
    assert red_pixels(with_path) > 20 and red_pixels(without) == 0


def red_pixels(path: Path) -> int:
    """Pixels of the red training path: viridis has no strong red."""
    r, g, b = np.asarray(Image.open(path).convert("RGB"), dtype=int).transpose(2, 0, 1)
    return int(((r > 150) & (g < 80) & (b < 80)).sum())


def test_height_flags_share_the_apps_names_and_the_old_flags_still_work(tmp_path: Path, capsys) -> None:
    """--log-scale/--clamp-max/--z-scale are the DisplaySettings names; --log/--zmax/--zscale are hidden aliases."""
    import h5py

    from engine.cli import main

    surface = plane()
    with h5py.File(tmp_path / "ll.h5", "w") as f:
        f["xcoordinates"], f["ycoordinates"] = surface.x, surface.y
        f["train_loss"] = np.nan_to_num(surface.values["test_loss"], nan=-1.0).reshape(len(surface.x), -1)
    new, old = tmp_path / "new.vts", tmp_path / "old.vts"
    base = ["export", str(tmp_path / "ll.h5"), "--metric", "train_loss"]
    assert main([*base, "--out", str(new), "--log-scale", "--clamp-max", "3", "--z-scale", "2"]) == 0
    assert main([*base, "--out", str(old), "--log", "--zmax", "3", "--zscale", "2"]) == 0
    z_new = point_array(read(vtk.vtkXMLStructuredGridReader(), new), "z")
    assert_same(z_new, point_array(read(vtk.vtkXMLStructuredGridReader(), old), "z"))
    assert np.nanmax(z_new) == pytest.approx(2 * np.log10(3.0))  # clamped at 3, log10, times 2
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    shown = capsys.readouterr().out
    assert "--log-scale" in shown and "--clamp-max" in shown and "--z-scale" in shown
    assert "--zmax" not in shown and "--zscale" not in shown and "--log " not in shown
    assert main([*base, "--out", str(new), "--log", "--zmax", "0"]) == 2
    assert "--clamp-max = 0" in capsys.readouterr().err
