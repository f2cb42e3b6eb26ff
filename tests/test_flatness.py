"""Flatness measures: power iteration and Hutchinson against known matrices, the model wrapper
against an explicit Hessian, the surface rise and the ``losslab flatness`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine.analysis.flatness import (
    hessian_top_eigenvalues,
    hessian_trace,
    hutchinson_trace,
    surface_flatness,
    top_eigenvalues,
)
from engine.errors import ConfigError, RunFileError
from engine.storage.surface_file import Surface, load_surface

torch.set_num_threads(1)


def _symmetric(spectrum: list[float], seed: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(spectrum), len(spectrum), generator=gen, dtype=torch.float64))
    return q @ torch.diag(torch.tensor(spectrum, dtype=torch.float64)) @ q.T


def test_power_iteration_finds_the_largest_eigenvalues():
    spectrum = [10.0, -6.0, 3.0] + list(np.linspace(0.1, 1.0, 17))
    matrix = _symmetric(spectrum)
    values = top_eigenvalues(lambda v: matrix @ v, 20, k=3, iterations=500, tol=1e-10, dtype=torch.float64)
    assert values == pytest.approx([10.0, -6.0, 3.0], rel=1e-6)
    again = top_eigenvalues(lambda v: matrix @ v, 20, k=3, iterations=500, tol=1e-10, dtype=torch.float64)
    assert values == again


def test_hutchinson_estimates_the_trace():
    matrix = _symmetric(list(np.linspace(1.0, 5.0, 30)))
    mean, error = hutchinson_trace(lambda v: matrix @ v, 30, samples=400, seed=1, dtype=torch.float64)
    exact = float(torch.trace(matrix))
    assert mean == pytest.approx(exact, rel=0.03)
    assert 0 < error < 0.05 * exact
    assert (mean, error) == hutchinson_trace(lambda v: matrix @ v, 30, samples=400, seed=1, dtype=torch.float64)


def test_bad_counts_are_rejected():
    with pytest.raises(ConfigError, match="top_k"):
        top_eigenvalues(lambda v: v, 3, k=4)
    with pytest.raises(ConfigError, match="trace_samples"):
        hutchinson_trace(lambda v: v, 3, samples=0)


def _tiny_problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    gen = torch.Generator().manual_seed(5)
    inputs = torch.randn(37, 4, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, 2, (37,), generator=gen)
    return model, inputs, targets


def _explicit_hessian(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(theta: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(theta, [s.numel() for s in shapes])
        params = {n: piece.view(s) for n, piece, s in zip(names, pieces, shapes)}
        outputs = torch.func.functional_call(model, params, (inputs,))
        return nn.functional.cross_entropy(outputs, targets)

    return torch.autograd.functional.hessian(loss, flat)


def test_model_eigenvalues_and_trace_match_the_explicit_hessian():
    model, inputs, targets = _tiny_problem()
    hessian = _explicit_hessian(model, inputs, targets)
    eig = torch.linalg.eigvalsh(hessian)
    by_magnitude = eig[eig.abs().argsort(descending=True)]
    # batch_size 10 splits the 37 samples unevenly: the sum over batches must still be the full Hessian
    values = hessian_top_eigenvalues(model, inputs, targets, "ce", k=2, iterations=1000, tol=1e-12,
                                     batch_size=10)
    assert values == pytest.approx(by_magnitude[:2].tolist(), rel=1e-3)
    mean, error = hessian_trace(model, inputs, targets, "ce", samples=200, seed=2, batch_size=10)
    assert abs(mean - float(torch.trace(hessian))) <= 3 * error


def test_ignore_biasbn_takes_the_weight_block_only():
    model, inputs, targets = _tiny_problem()
    hessian = _explicit_hessian(model, inputs, targets)
    weights = torch.cat([torch.full((p.numel(),), p.dim() > 1) for p in model.parameters()])
    block = hessian[weights][:, weights]
    top = torch.linalg.eigvalsh(block).abs().max()
    value = hessian_top_eigenvalues(model, inputs, targets, "ce", iterations=1000, tol=1e-12, ignore_biasbn=True)
    assert abs(value[0]) == pytest.approx(float(top), rel=1e-3)


def test_progress_events_and_unknown_loss():
    model, inputs, targets = _tiny_problem()
    events = []
    hessian_trace(model, inputs, targets, "ce", samples=4, on_event=events.append)
    assert [(e.stage, e.done, e.total) for e in events] == [("hessian", i, 4) for i in range(1, 5)]
    with pytest.raises(ConfigError, match="loss = 'hinge'"):
        hessian_trace(model, inputs, targets, "hinge", samples=1)


def _bowl(y: np.ndarray | None) -> Surface:
    x = np.linspace(-1, 1, 9)
    if y is None:
        values = x ** 2 + 1.0
    else:
        values = (x[None, :] ** 2 + 2 * y[:, None] ** 2) + 1.0
    values = np.array(values, dtype=float)
    values.flat[-1] = np.nan  # an uncomputed corner far outside the window
    return Surface(Path("bowl.h5"), x, y, {"test_loss": values})


def test_surface_flatness_in_1d_and_2d():
    one = surface_flatness(_bowl(None), radius=0.5)
    assert one["centre"] == 1.0 and one["points"] == 5
    assert one["max_rise"] == pytest.approx(0.25)
    assert one["mean_rise"] == pytest.approx(np.mean([0.25, 0.0625, 0, 0.0625, 0.25]))
    two = surface_flatness(_bowl(np.linspace(-1, 1, 9)), radius=0.5)
    assert two["points"] == 25 and two["max_rise"] == pytest.approx(0.25 + 2 * 0.25)
    wide = surface_flatness(_bowl(np.linspace(-1, 1, 9)), radius=1.0)
    assert wide["points"] == 80  # the NaN corner is skipped


def test_surface_flatness_errors():
    with pytest.raises(ConfigError, match="train_acc"):
        surface_flatness(_bowl(None), metric="train_acc")
    broken = _bowl(None)
    broken.values["test_loss"][4] = np.nan
    with pytest.raises(RunFileError, match="centre"):
        surface_flatness(broken)


QUICK = ["--subset", "100", "--top-k", "2", "--trace-samples", "3", "--density-steps", "5", "--density-runs", "1",
         "--perturbations", "2", "--sharpness-steps", "2"]


def test_cli_prints_eigenvalue_and_trace(trained_run, capsys):
    from engine.cli import main

    code = main(["flatness", str(trained_run), *QUICK, "--density", "off"])
    out = capsys.readouterr().out
    assert code == 0
    eigen_line = next(line for line in out.splitlines() if line.startswith("top eigenvalues"))
    assert float(eigen_line.split()[-1]) > 0  # a trained net sits near a minimum: positive curvature
    assert "trace" in out and "±" in out and "density" not in out


def test_cli_json_report_holds_the_contract_keys(trained_run, tmp_path, capsys):
    import json

    from engine.cli import main
    from engine.landscape import SurfaceOptions, compute_surface

    surface = compute_surface(trained_run, SurfaceOptions(x="-1:1:5", y="-1:1:5", split="test", subset=50),
                              tmp_path / "s.h5")
    out = tmp_path / "report.json"
    code = main(["flatness", str(trained_run), *QUICK, "--split", "train", "--per-layer", "--ignore-biasbn",
                 "--surface", str(surface), "--level", "0.5", "--relative-level", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    for key in ("top_eigenvalues", "min_eigenvalue", "trace", "density", "sharpness", "average_sharpness",
                "relative_flatness", "sublevel"):
        assert key in report, key
    assert len(report["top_eigenvalues"]) == 2
    assert report["top_eigenvalues"][0] >= report["top_eigenvalues"][1] >= report["min_eigenvalue"]
    assert set(report["trace"]) >= {"mean", "stderr"}
    assert sum(report["density"]["weights"]) == pytest.approx(1.0)
    assert set(report["sharpness"]) >= {"epsilon", "value", "adaptive"}
    assert set(report["sublevel"]) >= {"level", "components", "area_fraction", "centre_component_area"}
    for key in ("trace", "density", "sharpness", "average_sharpness", "relative_flatness", "per_layer"):
        assert (report[key]["split"], report[key]["subset"], report[key]["seed"]) == ("train", 100, 0), key
    assert list(report["per_layer"]["layers"]) == ["layers.1", "layers.3", "layers.5"]
    assert report["options"]["ignore_biasbn"] is True and report["options"]["top_k"] == 2
    centre = float(load_surface(surface).values["test_loss"][2, 2])
    assert report["sublevel"]["level"] == pytest.approx(centre + 0.5)


def test_cli_rejects_a_bad_subset(trained_run, capsys):
    from engine.cli import main

    assert main(["flatness", str(trained_run), "--subset", "-3"]) == 2
    assert "subset = -3" in capsys.readouterr().err


def test_surface_metric_follows_the_surface_and_a_wrong_one_is_refused_before_any_work(trained_run, tmp_path,
                                                                                         capsys):
    import json

    from engine.cli import main
    from engine.landscape import SurfaceOptions, compute_surface

    surface = compute_surface(trained_run, SurfaceOptions(x="-1:1:5", y="-1:1:5", split="train", subset=50),
                              tmp_path / "train-only.h5")
    out = tmp_path / "report.json"
    refused = main(["flatness", str(trained_run), *QUICK, "--surface", str(surface), "--metric", "test_loss",
                    "--json", str(out)])
    captured = capsys.readouterr()
    assert refused == 2 and not out.exists()
    assert "train-only.h5" in captured.err and "test_loss" in captured.err and "train_loss" in captured.err
    assert "eigenvalue" not in captured.err + captured.out  # nothing was computed before the refusal

    assert main(["flatness", str(trained_run), *QUICK, "--density", "off", "--surface", str(surface),
                 "--json", str(out)]) == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["sublevel"]["metric"] == "train_loss" and report["options"]["metric"] == "train_loss"
