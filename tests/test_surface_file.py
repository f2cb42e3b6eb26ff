from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from landscape_fixtures import trained_mlp_source

from engine.errors import RunFileError
from engine.landscape import (
    Directions,
    ParamVector,
    SurfaceOptions,
    build_directions,
    compute_surface,
    load_direction_tensors,
    load_surface,
)


def _write_loss_landscape_file(path, x, y, loss_at, skip=()):
    """Exactly what loss-landscape's plot_surface.py does: -1 for missing points, shape
    declared (len(x), len(y)), flat indices filled in np.meshgrid(x, y) order."""
    with h5py.File(path, "w") as f:
        f["dir_file"] = "directions.h5"
        f["xcoordinates"] = x
        if y is None:
            losses = -np.ones(len(x))
            for i in range(len(x)):
                if i not in skip:
                    losses[i] = loss_at(x[i], 0.0)
        else:
            losses = -np.ones((len(x), len(y)))
            f["ycoordinates"] = y
            xm, ym = np.meshgrid(x, y)
            for ind in range(losses.size):
                if ind not in skip:
                    losses.ravel()[ind] = loss_at(xm.ravel()[ind], ym.ravel()[ind])
        f["train_loss"] = losses
        f["train_acc"] = np.where(losses == -1, -1, 50.0)


def test_reads_loss_landscape_layout_of_an_asymmetric_non_square_surface(tmp_path):
    x, y = np.linspace(-1, 1, 5), np.linspace(-2, 2, 3)
    path = tmp_path / "ll.h5"
    _write_loss_landscape_file(path, x, y, lambda a, b: 1.0 + a * a + 10 * (a > 0), skip={7})
    with h5py.File(path) as f:
        assert f["train_loss"].shape == (5, 3)  # what loss-landscape declares
    surface = load_surface(path)
    assert surface.is_2d and surface.values["train_loss"].shape == (3, 5)
    expected = np.tile(1.0 + x * x + 10 * (x > 0), (3, 1))  # grows only along x: every row equal
    expected[1, 2] = np.nan  # flat index 7 = (j=1, i=2), loss-landscape's -1
    np.testing.assert_array_equal(surface.values["train_loss"], expected)
    assert np.isnan(surface.values["train_acc"][1, 2]) and surface.values["train_acc"][0, 0] == 50
    assert surface.computed.sum() == 14 and not surface.is_complete
    assert surface.attrs["dir_file"] == "directions.h5" and surface.point_seconds is None


def test_reads_a_loss_landscape_1d_curve(tmp_path):
    x = np.linspace(-0.5, 1.5, 9)
    _write_loss_landscape_file(tmp_path / "line.h5", x, None, lambda a, b: (a - 1) ** 2, skip={8})
    surface = load_surface(tmp_path / "line.h5")
    assert not surface.is_2d and surface.y is None
    np.testing.assert_array_equal(surface.values["train_loss"][:8], (x[:8] - 1) ** 2)
    assert np.isnan(surface.values["train_loss"][8])


def test_our_layout_is_value_at_row_y_column_x(tmp_path):
    source = trained_mlp_source()
    options = SurfaceOptions(x="-1:1:7", y="-1:1:4", split="test", candidates=3)
    d = build_directions(source, options)
    flat = Directions("random", d.origin, d.xs, d.origin.zeros_like())  # loss changes only along x
    path = compute_surface(source, options, tmp_path / "ours.h5", directions=flat)
    with h5py.File(path) as f:
        assert (
            f["test_loss"].shape == (4, 7)
            and f["xcoordinates"].shape == (7,)
            and f["ycoordinates"].shape == (4,)
        )
        assert (
            f.attrs["losslab_version"] and f.attrs["checkpoint_epoch"] == 4 and f.attrs["custom_directions"]
        )
        stored = f["test_loss"][()]
    assert np.all(stored == stored[0]) and len(np.unique(stored[0])) == 7
    surface = load_surface(path)
    np.testing.assert_array_equal(surface.values["test_loss"], stored)
    assert compute_surface(source, options, path, directions=flat) == path  # same directions: resumes
    with pytest.raises(RunFileError, match="other directions"):
        compute_surface(source, options, path, directions=d)
    loaded = load_direction_tensors(path)
    assert set(loaded) == {"x", "y"} and all(np.all(a == 0) for a in loaded["y"].values())
    for name, tensor in d.x.items():
        np.testing.assert_array_equal(loaded["x"][name], tensor.numpy())


def test_surface_attributes_record_every_option_and_pca_extras(tmp_path):
    source = trained_mlp_source()
    options = SurfaceOptions(directions="pca", x="-1:1:3", y="-1:1:3", split="test", seed=9, subset=30)
    surface = load_surface(compute_surface(source, options, tmp_path / "pca.h5"))
    attrs = surface.attrs
    for key, value in options.to_attrs().items():
        assert attrs[key] == value, key
    assert attrs["run_file"] == "mlp.h5" and attrs["method"] == "pca" and abs(attrs["cosine"]) < 1e-5
    assert attrs["compute_seconds"] > 0 and attrs["accuracy_unit"] == "percent"
    assert surface.trajectory.shape == (5, 2) and list(surface.trajectory_epochs) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(surface.trajectory[-1], [0, 0])
    assert (
        surface.explained_variance.shape == (2,)
        and surface.explained_variance[0] >= surface.explained_variance[1]
    )
    assert surface.directions["method"] == "pca" and set(surface.directions) >= {"x", "y"}
    assert SurfaceOptions.from_attrs(attrs) == options


def test_partial_file_is_not_left_behind_and_bad_files_are_reported(tmp_path):
    source = trained_mlp_source()
    path = compute_surface(source, SurfaceOptions(x="-1:1:3", split="test"), tmp_path / "s.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]
    with pytest.raises(RunFileError, match="no such surface file"):
        load_surface(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_text("junk")
    with pytest.raises(RunFileError, match="junk.h5"):
        load_surface(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(RunFileError, match="not a surface file"):
        load_surface(tmp_path / "other.h5")
    assert ParamVector({"w": torch.ones(2)}).fingerprint() != ParamVector({"w": torch.zeros(2)}).fingerprint()
    assert load_surface(path).is_complete
