from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from landscape_fixtures import (
    KILL_TEST_OPTIONS,
    ConvBN,
    digit_images,
    mlp,
    trained_mlp_source,
    wide_mlp_source,
)

from engine.errors import ConfigError, RunFileError
from engine.events import Cancelled, CancelToken
from engine.landscape import (
    Directions,
    ModelSource,
    ParamVector,
    SurfaceOptions,
    build_directions,
    compute_surface,
    load_surface,
    parse_axis,
    progressive_order,
)
from engine.landscape.grid import averaged_order

TESTS = Path(__file__).parent


def _plain_metrics(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Independent reference: one forward pass, PyTorch's own mean cross-entropy."""
    with torch.no_grad():
        out = model.eval()(x)
    return torch.nn.functional.cross_entropy(out.double(), y).item(), 100.0 * (
        out.argmax(1) == y
    ).double().mean().item()


def _perturbed(source: ModelSource, d: Directions, alpha: float, beta: float) -> torch.nn.Module:
    model = source.model("final")
    state = model.state_dict()
    for k in d.origin:
        state[k] = d.origin[k] + alpha * d.x[k] + beta * (d.y[k] if d.y is not None else 0)
    model.load_state_dict(state)
    return model


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


# ---- grid specs and point order -------------------------------------------------------------
def test_axis_parser_and_clear_errors():
    np.testing.assert_allclose(parse_axis("-1:1:5"), [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(parse_axis(" 0.5:0.5:1 "), [0.5])
    for spec, words in [
        ("-1:1", "MIN:MAX:N"),
        ("a:1:3", "MIN:MAX:N"),
        ("-1:1:0", "at least one point"),
        ("-1:1:-4", "at least one point"),
        ("1:-1:5", "MIN <= MAX"),
        ("-1:1:2.5", "whole number"),
        ("0:0:5", "MIN < MAX"),
        ("0:1:1", "MIN = MAX"),
        ("nan:1:3", "finite"),
    ]:
        with pytest.raises(ConfigError, match=words):
            parse_axis(spec, "x")


def test_progressive_order_visits_each_point_once_coarse_grid_first():
    order = progressive_order((11, 19))
    assert len(order) == len(set(order)) == 11 * 19
    coarse = {(j, i) for j in (0, 8, 10) for i in (0, 8, 16, 18)}
    assert set(order[: len(coarse)]) == coarse  # a complete low-resolution surface, edges included
    assert progressive_order((3,)) == [(0,), (2,), (1,)]
    assert sorted(averaged_order(2, 3)) == [(k, i) for k in range(2) for i in range(3)]


def test_options_reject_bad_combinations():
    for kwargs, key in [
        ({"split": "valid"}, "split"),
        ({"directions": "pca"}, "y"),
        ({"directions": "interpolate"}, "to"),
        ({"to": "b.h5"}, "to"),
        ({"directions": "init", "y": "-1:1:3"}, "y"),
        ({"average": 5, "y": "-1:1:3"}, "average"),
        ({"candidates": 1}, "candidates"),
        ({"checkpoint": "best"}, "checkpoint"),
        ({"directions": "interpolate", "to": "b.h5", "y": "0:1:3"}, "via"),
        ({"x": "1:1:0"}, "x"),
    ]:
        with pytest.raises(ConfigError, match=f"{key} = "):
            SurfaceOptions(**kwargs)
    assert SurfaceOptions(checkpoint="7").checkpoint == 7


# ---- evaluation is exact ----------------------------------------------------------------------
def test_centre_and_grid_points_equal_plain_evaluation(tmp_path):
    source = trained_mlp_source()
    options = SurfaceOptions(x="-1:1:5", y="-0.5:1:4", split="both", candidates=5)
    d = build_directions(source, options)
    surface = load_surface(compute_surface(source, options, tmp_path / "s.h5", directions=d))
    assert surface.values["test_loss"].shape == (4, 5)
    x_test, y_test = source.read_split("test")
    x_train, y_train = source.read_split("train")
    centre = _plain_metrics(source.model("final"), x_test, y_test)
    assert surface.values["test_loss"][1, 2] == pytest.approx(centre[0], rel=1e-6)  # y[1] = 0, x[2] = 0
    assert surface.values["test_acc"][1, 2] == pytest.approx(centre[1])
    for j, i in [(0, 0), (3, 4), (2, 1)]:
        alpha, beta = surface.x[i], surface.y[j]
        expected = _plain_metrics(_perturbed(source, d, alpha, beta), x_train, y_train)
        assert surface.values["train_loss"][j, i] == pytest.approx(expected[0], rel=1e-5)
        assert surface.values["train_acc"][j, i] == pytest.approx(expected[1])
    assert surface.is_complete and np.all(surface.point_seconds > 0)
    assert surface.attrs["compute_seconds"] == pytest.approx(surface.point_seconds.sum())


def test_batch_norm_states_surface_matches_plain_evaluation(tmp_path):
    data = digit_images()
    source = ModelSource.from_module(ConvBN(), data, "ce")
    options = SurfaceOptions(x="-0.5:0.5:3", dir_type="states", ignore="none", split="test", batch_size=64)
    d = build_directions(source, options)
    assert "bn2.running_var" in d.x
    surface = load_surface(compute_surface(source, options, tmp_path / "bn.h5", directions=d))
    model = _perturbed(source, d, 0.5, 0.0)
    assert surface.values["test_loss"][2] == pytest.approx(_plain_metrics(model, *data["test"])[0], rel=1e-5)
    train_mode = compute_surface(
        source, SurfaceOptions(x="-0.5:0.5:3", split="test", bn_train_mode=True), tmp_path / "bn_train.h5"
    )
    values = load_surface(train_mode).values["test_loss"]
    assert np.all(np.isfinite(values)) and values[1] != pytest.approx(surface.values["test_loss"][1])
    assert torch.equal(source.model("final").bn1.running_mean, ConvBN().bn1.running_mean)


def test_one_pass_of_both_splits_equals_separate_splits_and_subset_is_seeded(tmp_path):
    source = trained_mlp_source()
    both = load_surface(compute_surface(source, SurfaceOptions(x="-1:1:5"), tmp_path / "both.h5"))
    test = load_surface(compute_surface(source, SurfaceOptions(x="-1:1:5", split="test"), tmp_path / "t.h5"))
    assert both.metric_names == ["train_loss", "train_acc", "test_loss", "test_acc"]
    assert test.metric_names == ["test_loss", "test_acc"]
    assert _same(both.values["test_loss"], test.values["test_loss"])
    sub = [
        load_surface(
            compute_surface(source, SurfaceOptions(x="-1:1:5", subset=40, seed=s), tmp_path / f"{n}.h5")
        )
        for n, s in (("a", 1), ("b", 1), ("c", 2))
    ]
    assert _same(sub[0].values["test_loss"], sub[1].values["test_loss"])
    assert not _same(sub[0].values["test_loss"], sub[2].values["test_loss"])
    assert np.all(np.round(sub[0].values["test_acc"] * 40 / 100, 6) % 1 == 0)  # 40 samples per split


def test_averaged_curve_is_mean_and_std_of_its_directions(tmp_path):
    source = trained_mlp_source()
    averaged = load_surface(
        compute_surface(source, SurfaceOptions(x="-1:1:7", average=3), tmp_path / "avg.h5")
    )
    assert averaged.samples["test_loss"].shape == (3, 7) and not averaged.is_2d
    np.testing.assert_array_equal(averaged.values["test_loss"], averaged.samples["test_loss"].mean(axis=0))
    np.testing.assert_array_equal(averaged.std["test_loss"], averaged.samples["test_loss"].std(axis=0))
    assert averaged.std["test_loss"][3] == 0 and averaged.std["test_loss"][0] > 0  # alpha = 0 is theta
    single = load_surface(compute_surface(source, SurfaceOptions(x="-1:1:7"), tmp_path / "one.h5"))
    np.testing.assert_array_equal(single.values["test_loss"], averaged.samples["test_loss"][0])


def test_nan_and_inf_losses_are_stored_not_fatal(tmp_path):
    source = trained_mlp_source()
    options = SurfaceOptions(x="-1e38:1e38:3", norm="none", ignore="none", split="test")
    surface = load_surface(compute_surface(source, options, tmp_path / "nan.h5"))
    loss = surface.values["test_loss"]
    assert np.isfinite(loss[1]) and not np.isfinite(loss[0]) and not np.isfinite(loss[2])
    assert surface.is_complete  # computed points whose loss is NaN/inf are not "missing"
    assert compute_surface(source, options, tmp_path / "nan.h5")  # resuming finds nothing to do
    assert _same(load_surface(tmp_path / "nan.h5").values["test_loss"], loss)


# ---- file safety: resume, cancel, kill -------------------------------------------------------
def test_cancel_keeps_a_valid_partial_file_and_resume_completes_it_identically(tmp_path):
    source = trained_mlp_source()
    options = SurfaceOptions(x="-1:1:9", y="-1:1:7", candidates=6)
    reference = load_surface(compute_surface(source, options, tmp_path / "ref.h5"))
    cancel, events = CancelToken(), []

    def cancel_after_first_batch(event):
        events.append(event)
        if event.payload:
            cancel.cancel()

    with pytest.raises(Cancelled):
        compute_surface(
            source, options, tmp_path / "cut.h5", on_event=cancel_after_first_batch, cancel=cancel
        )
    partial = load_surface(tmp_path / "cut.h5")
    computed = partial.computed
    assert 0 < computed.sum() < computed.size and not partial.is_complete
    batch = events[1].payload
    assert batch["shape"] == (7, 9) and len(batch["indices"]) == len(batch["values"]["test_loss"]) == 9
    for (j, i), value in zip(batch["indices"], batch["values"]["test_loss"], strict=True):
        assert partial.values["test_loss"][j, i] == value == reference.values["test_loss"][j, i]
    assert np.all(np.isnan(partial.values["test_loss"][~computed]))
    resumed_events = []
    compute_surface(source, options, tmp_path / "cut.h5", on_event=resumed_events.append)
    assert resumed_events[-1].total == computed.size - computed.sum()
    resumed = load_surface(tmp_path / "cut.h5")
    for name in reference.metric_names:
        assert _same(resumed.values[name], reference.values[name]), name


def test_resume_refuses_other_options_or_another_model_or_a_foreign_file(tmp_path):
    source = trained_mlp_source()
    out = tmp_path / "s.h5"
    compute_surface(source, SurfaceOptions(x="-1:1:3", y="-1:1:3", candidates=3), out)
    for change, key in [
        ({"norm": "layer"}, "norm"),
        ({"x": "-2:2:3"}, "x"),
        ({"seed": 1}, "seed"),
        ({"split": "test"}, "split"),
    ]:
        with pytest.raises(ConfigError, match=f"{key} = .*as stored in"):
            compute_surface(
                source, SurfaceOptions(**{"x": "-1:1:3", "y": "-1:1:3", "candidates": 3, **change}), out
            )
    compute_surface(
        source, SurfaceOptions(x="-1:1:3", y="-1:1:3", candidates=3, batch_size=7), out
    )  # speed only
    with pytest.raises(RunFileError, match="another model state"):
        compute_surface(trained_mlp_source(seed=5), SurfaceOptions(x="-1:1:3", y="-1:1:3", candidates=3), out)
    foreign = tmp_path / "notes.h5"
    foreign.write_bytes(b"not hdf5")
    with pytest.raises(RunFileError, match="notes.h5"):
        compute_surface(source, SurfaceOptions(x="-1:1:3"), foreign)
    assert foreign.read_bytes() == b"not hdf5"


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "landscape_fixtures.py"), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("written"), first + proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    partial = load_surface(out)
    assert 0 < partial.computed.sum() < partial.computed.size
    resumed = subprocess.run(
        [sys.executable, str(TESTS / "landscape_fixtures.py"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0 and "finished" in resumed.stdout, resumed.stderr
    reference = load_surface(compute_surface(wide_mlp_source(), KILL_TEST_OPTIONS, tmp_path / "reference.h5"))
    final = load_surface(out)
    assert final.is_complete and final.metric_names == reference.metric_names
    for name in reference.metric_names:
        assert _same(final.values[name], reference.values[name]), name
    for name in partial.metric_names:  # nothing computed before the kill was changed
        done = partial.computed
        assert _same(partial.values[name][done], final.values[name][done]), name


def test_inputs_are_not_modified(tmp_path):
    model = mlp()
    before = copy.deepcopy(model.state_dict())
    source = ModelSource.from_module(model, {"test": (torch.rand(20, 64), torch.randint(0, 10, (20,)))})
    compute_surface(source, SurfaceOptions(x="-1:1:3", split="test"), tmp_path / "s.h5")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    origin = ParamVector.from_module(model)
    assert origin.fingerprint() == ParamVector(before).fingerprint() or set(origin) != set(before)


# ---- the command line on real runs ------------------------------------------------------------
def test_cli_init_curve_ends_at_the_runs_own_metrics(trained_run, tmp_path, capsys):
    from engine import load_run
    from engine.cli import main

    out = tmp_path / "init.h5"
    assert main(["surface", str(trained_run), "--directions", "init", "--x=0:1:3", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    run, curve = load_run(trained_run), load_surface(out)
    for split in ("train", "test"):
        assert curve.values[f"{split}_loss"][0] == pytest.approx(run.metrics[f"{split}_loss"][0], rel=1e-6)
        assert curve.values[f"{split}_loss"][2] == pytest.approx(run.metrics[f"{split}_loss"][-1], rel=1e-4)
        assert curve.values[f"{split}_acc"][2] == pytest.approx(
            100 * run.metrics[f"{split}_acc"][-1], abs=0.5
        )


def test_cli_reports_bad_inputs(trained_run, tmp_path, quick_config, capsys):
    from engine.cli import main
    from engine.training import train

    other = train(quick_config(model={"hidden": [16]}), tmp_path / "other.h5")
    out = str(tmp_path / "s.h5")
    cases = [
        (["--directions", "interpolate", "--to", str(other)], "different architectures"),
        (["--x=-1:1:0"], "at least one point"),
        (["--x=1:-1:5"], "MIN <= MAX"),
        (["--directions", "pca", "--y=-1:1:3", "--checkpoint", "1"], "at least 3 stored checkpoints"),
        (["--checkpoint", "99"], "no checkpoint for epoch 99"),
    ]
    for extra, words in cases:
        assert main(["surface", str(trained_run), *extra, "--out", out]) == 2, extra
        assert words in capsys.readouterr().err, extra
    assert main(["surface", str(trained_run), "--split", "valid", "--out", out]) == 2
    assert "--split = 'valid' is not valid; expected one of train, test, both" in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists()


def test_resume_reuses_the_automatic_batch_size_of_the_interrupted_run(tmp_path):
    import h5py

    source = trained_mlp_source()
    options = SurfaceOptions(x="-1:1:5", y="-1:1:3", candidates=4)
    cancel = CancelToken()

    def cancel_after_first_batch(event):
        if event.payload:
            cancel.cancel()

    out = tmp_path / "cut.h5"
    with pytest.raises(Cancelled):
        compute_surface(source, options, out, on_event=cancel_after_first_batch, cancel=cancel)
    with h5py.File(out, "r+") as f:  # as if free GPU memory had chosen 37 samples per forward
        record = json.loads(f.attrs["evaluator"])
        f.attrs["evaluator"] = json.dumps({**record, "batch_size": 37})
    compute_surface(source, options, out)
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["evaluator"])["batch_size"] == 37
