"""Mode connectivity (Garipov et al. 2018): curve training, evaluation, storage, resume, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from progress_lines import epoch_at_least, start_with_stderr, wait_for_line
from torch import nn

from engine.config import from_dict
from engine.connect import ConnectOptions, connect, load_curve
from engine.connect.evaluate import update_bn
from engine.errors import ConfigError, RunFileError
from engine.landscape.directions.curve import control_weights, curve_plane, read_stored_curve
from engine.landscape.directions.params import ParamVector
from engine.storage.run import load_run
from engine.training import train
from engine.training.evaluation import evaluate_split

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"t": "0:1:11", "ensemble": 3, "epochs": 8}


def _config(seed: int, **model) -> object:
    return from_dict({
        "name": f"connect-{seed}", "seed": seed,
        "data": {"source": "digits", "train_limit": 400, "test_limit": 200, "split_seed": 0},
        "model": {"arch": "mlp", "hidden": [32], **model},
        "train": {"optimizer": "sgd", "lr": 0.1, "batch_size": 32, "epochs": 12, "threads": 1},
    })


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two MLPs on the built-in digits, trained from different seeds."""
    folder = tmp_path_factory.mktemp("connect-runs")
    return train(_config(1), folder / "a.h5"), train(_config(2), folder / "b.h5")


@pytest.fixture(scope="module")
def curve(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("connect-curve") / "c.h5"
    return connect(*runs, out, ConnectOptions(**QUICK))


def test_end_points_reproduce_each_runs_own_losses(runs, curve):
    a, b = (load_run(p) for p in runs)
    for path in ("curve", "line"):
        values = curve.values[path]
        for metric in ("train_loss", "test_loss", "test_acc"):
            assert values[metric][0] == pytest.approx(a.metrics[metric][a.final_epoch], abs=1e-5)
            assert values[metric][-1] == pytest.approx(b.metrics[metric][b.final_epoch], abs=1e-5)
    assert curve.summary["a_test_acc"] == pytest.approx(a.metrics["test_acc"][a.final_epoch])


def test_a_point_rebuilt_from_the_stored_bend_gives_the_stored_loss(runs, curve):
    stored = load_curve(curve.path)
    a, b = (load_run(p) for p in runs)
    index = 3
    t = float(stored.t[index])
    weights = control_weights("bezier", 1, t)
    bend = {k: torch.from_numpy(v) for k, v in stored.bends[0].items()}
    state_a, state_b = a.state_dict(), b.state_dict()
    model = a.model()
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(weights[0] * state_a[name] + weights[1] * bend[name] + weights[2] * state_b[name])
    x, y = a.tensors("train")
    rebuilt = evaluate_split(model, x, y, "ce").loss
    assert rebuilt == pytest.approx(stored.values["curve"]["train_loss"][index], abs=1e-6)
    assert stored.values["curve"]["train_loss"][index] < stored.values["line"]["train_loss"][index]


def test_the_trained_curve_barrier_is_at_most_half_the_lines(curve):
    s = curve.summary
    assert s["barrier_line_train_loss"] > 0.1  # the straight line between the two minima climbs
    assert s["barrier_curve_train_loss"] <= 0.5 * s["barrier_line_train_loss"]


def test_info_describes_a_curve_file_with_its_barriers(runs, curve, capsys):
    from engine.cli import main

    assert main(["info", str(curve.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    s = curve.summary
    assert lines[0].startswith(f"curve file: {curve.path}  (bezier, 1 bend(s), 8 epochs")
    assert f"  train loss   curve {s['barrier_curve_train_loss']:.4f}   straight line " \
           f"{s['barrier_line_train_loss']:.4f}" in lines
    assert f"run A      {runs[0]} (epoch 12)" in lines and "trained    8 of 8 epochs; status: complete" in lines


def test_the_file_holds_every_option_bends_and_ensemble(runs, curve):
    parameters = {n: tuple(p.shape) for n, p in load_run(runs[0]).model().named_parameters()}
    with h5py.File(curve.path, "r") as f:
        assert f.attrs["format"] == "losslab-curve" and f.attrs["status"] == "complete"
        assert f.attrs["curve"] == "bezier" and f.attrs["epochs"] == 8 and f.attrs["t"] == "0:1:11"
        assert bool(f.attrs["bn_update"]) is True and bool(f.attrs["bn_updated"]) is False
        assert {n: f[f"bends/0/{n}"].shape for n in f["bends/0"].keys()} == parameters
        np.testing.assert_allclose(f["t"][()], np.linspace(0, 1, 11))
        assert set(f["curve"].keys()) == {"train_loss", "train_acc", "test_loss", "test_acc"}
        np.testing.assert_allclose(f["ensemble/t"][()], [0.0, 0.5, 1.0])
        assert 0.5 < f.attrs["ensemble_test_acc"] <= 1.0


def test_the_plane_through_a_b_and_the_bend_holds_the_bezier_curve(runs, curve):
    a, b = (load_run(p) for p in runs)
    names = [n for n, _ in a.model().named_parameters()]
    va, vb = ParamVector.from_state(a.state_dict(), names), ParamVector.from_state(b.state_dict(), names)
    x, y, path = curve_plane(va, vb, read_stored_curve(curve.path), "A", "B", samples=5)
    t = path.t
    np.testing.assert_allclose(path.path, np.stack([t**2, 2 * t * (1 - t)], axis=1), atol=1e-5)
    assert path.distance.max() < 1e-3 * x.norm()
    with pytest.raises(RunFileError, match="other end points"):
        curve_plane(vb, va, read_stored_curve(curve.path), "B", "A")


def test_batch_norm_statistics_are_the_training_data_means():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3))
    inputs = torch.randn(103, 5)
    assert update_bn(net, inputs, batch_size=20)
    with torch.no_grad():
        expected = net[0](inputs).mean(dim=0)
    torch.testing.assert_close(net[1].running_mean, expected, atol=1e-5, rtol=0)
    assert not net.training and net[1].momentum == 0.1
    assert not update_bn(nn.Sequential(nn.Linear(5, 3)), inputs, 20)


def test_batch_norm_re_estimation_changes_a_resnets_mid_curve_loss(tmp_path):
    paths = []
    for seed in (1, 2):
        cfg = from_dict({"name": f"bn-{seed}", "seed": seed, "data": {"source": "digits", "train_limit": 160,
                         "test_limit": 80, "split_seed": 0}, "model": {"arch": "resnet20"},
                         "train": {"lr": 0.05, "batch_size": 32, "epochs": 1, "threads": 1}})
        paths.append(train(cfg, tmp_path / f"r{seed}.h5"))
    common = {"epochs": 0, "t": "0:1:3", "ensemble": 0, "batch_size": 32}
    updated = connect(*paths, tmp_path / "on.h5", ConnectOptions(bn_update=True, **common))
    plain = connect(*paths, tmp_path / "off.h5", ConnectOptions(bn_update=False, **common))
    assert updated.summary["bn_updated"] and not plain.summary["bn_updated"]
    middle_on, middle_off = updated.values["curve"]["train_loss"][1], plain.values["curve"]["train_loss"][1]
    assert abs(middle_on - middle_off) > 1e-3 * max(middle_on, middle_off)


def test_nets_without_batch_norm_skip_the_re_estimation(runs, curve, tmp_path):
    off = connect(*runs, tmp_path / "off.h5", ConnectOptions(bn_update=False, **QUICK))
    assert not curve.summary["bn_updated"]
    for path in ("curve", "line"):
        np.testing.assert_array_equal(off.values[path]["train_loss"], curve.values[path]["train_loss"])


@pytest.mark.slow  # two fresh Python processes importing torch
def test_kill_9_during_connect_resumes_to_the_same_result(runs, tmp_path):
    out = tmp_path / "killed.h5"
    flags = ["--epochs", "12", "--batch-size", "4", "--t", "0:1:5", "--ensemble", "0"]
    command = [sys.executable, "-m", "engine.cli", "connect", str(runs[0]), str(runs[1]), "--out", str(out), *flags]
    proc, lines = start_with_stderr(command, ROOT)
    try:
        wait_for_line(lines, epoch_at_least(2, prefix="curve epoch"))
        assert proc.poll() is None, "the curve training ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    stopped = load_curve(out)
    assert 2 <= stopped.epochs_done < 12 and stopped.status == "running"
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "barrier height" in result.stdout
    resumed = load_curve(out)
    reference = connect(*runs, tmp_path / "reference.h5",
                        ConnectOptions(epochs=12, batch_size=4, t="0:1:5", ensemble=0))
    for name, value in reference.bends[0].items():
        np.testing.assert_array_equal(resumed.bends[0][name], value, err_msg=name)
    assert resumed.train_loss == reference.train_loss
    np.testing.assert_array_equal(resumed.values["curve"]["train_loss"], reference.values["curve"]["train_loss"])


def test_resuming_with_other_options_is_refused(runs, curve):
    with pytest.raises(ConfigError, match="lr"):
        connect(*runs, curve.path, ConnectOptions(**{**QUICK, "lr": 0.01}))


def test_an_architecture_mismatch_is_refused_naming_both_files(runs, tmp_path):
    cfg = from_dict({**_config(3).to_dict(), "train": {"epochs": 1, "threads": 1}})
    cfg = from_dict({**cfg.to_dict(), "model": {"arch": "mlp", "hidden": [16]}})
    other = train(cfg, tmp_path / "narrow.h5")
    with pytest.raises(RunFileError) as error:
        connect(runs[0], other, tmp_path / "c.h5", ConnectOptions(**QUICK))
    assert str(runs[0]) in str(error.value) and str(other) in str(error.value)
    assert "model.hidden" in str(error.value)
    assert not (tmp_path / "c.h5").exists()


def test_runs_on_different_data_splits_are_refused(runs, tmp_path):
    cfg = from_dict({**_config(4).to_dict(), "data": {"source": "digits", "train_limit": 400, "test_limit": 200},
                     "train": {"epochs": 1, "threads": 1}})
    other = train(cfg, tmp_path / "other-split.h5")
    with pytest.raises(RunFileError, match="split_seed") as error:
        connect(runs[0], other, tmp_path / "c.h5", ConnectOptions(**QUICK))
    assert str(runs[0]) in str(error.value) and str(other) in str(error.value)


def test_a_cancelled_connect_keeps_a_file_that_resumes_to_the_same_result(runs, curve, tmp_path):
    from engine.events import Cancelled, CancelToken

    out, token = tmp_path / "cancelled.h5", CancelToken()

    def stop_after_two_epochs(event) -> None:
        if event.payload.get("epoch") == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        connect(*runs, out, ConnectOptions(**QUICK), on_event=stop_after_two_epochs, cancel=token)
    stopped = load_curve(out)
    assert stopped.epochs_done == 2 and stopped.status.startswith("stopped by the user") and not stopped.evaluated
    resumed = connect(*runs, out, ConnectOptions(**QUICK))
    for name, value in curve.bends[0].items():
        np.testing.assert_array_equal(resumed.bends[0][name], value, err_msg=name)
    np.testing.assert_array_equal(resumed.values["curve"]["test_loss"], curve.values["curve"]["test_loss"])


def test_bad_options_name_the_field():
    with pytest.raises(ConfigError, match="t = '0:2:5'"):
        ConnectOptions(t="0:2:5")
    with pytest.raises(ConfigError, match="curve"):
        ConnectOptions(curve="spline")
    with pytest.raises(ConfigError, match="ensemble = 1 is not valid; expected 0 .no ensemble. or at least 2"):
        ConnectOptions(ensemble=1)


def test_polychain_visits_its_bends():
    assert control_weights("polychain", 2, 1 / 3) == pytest.approx([0, 1, 0, 0])
    assert control_weights("polychain", 1, 0.75) == pytest.approx([0, 0.5, 0.5])
    assert control_weights("bezier", 1, 0.5) == pytest.approx([0.25, 0.5, 0.25])


def test_the_surface_through_the_curve_holds_the_curve_and_its_losses(runs, curve, tmp_path):
    from engine.landscape import SurfaceOptions, compute_surface
    from engine.storage.surface_file import load_surface

    options = SurfaceOptions(directions="interpolate", to=str(runs[1]), via_curve=str(curve.path), x="0:0.5:3",
                             y="0:1:3", split="train", workers=1)
    surface = load_surface(compute_surface(runs[0], options, tmp_path / "plane.h5"))
    t = np.linspace(0, 1, 41)
    np.testing.assert_allclose(surface.trajectory, np.stack([t**2, 2 * t * (1 - t)], axis=1), atol=1e-5)
    middle = float(surface.values["train_loss"][1, 1])  # alpha = 0.25, beta = 0.5: the curve at t = 0.5
    assert middle == pytest.approx(curve.values["curve"]["train_loss"][5], abs=1e-5)
    with pytest.raises(ConfigError, match="via"):
        SurfaceOptions(directions="interpolate", to=str(runs[1]), via_curve=str(curve.path), x="0:1:3")
