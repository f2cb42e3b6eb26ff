"""Curvature, sharpness and sub-level measures checked against an explicit Hessian (a digits MLP
small enough to form it) and against scipy.ndimage.label."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.datasets import load_digits
from torch import nn

from engine.analysis.curvature import (
    CurvatureProblem,
    density,
    invariant_flatness,
    per_layer,
    smallest_eigenvalue,
    top_eigenpairs,
    trace,
)
from engine.analysis.sharpness import eps_sharpness, mean_loss, random_perturbations
from engine.analysis.sublevel import minima_persistence, sublevel_labels

torch.set_num_threads(1)


def digits_problem(samples: int = 150, hidden: int = 6, activation: type[nn.Module] = nn.Tanh,
                   steps: int = 60) -> CurvatureProblem:
    """A float64 MLP 64 -> hidden -> 10 on digits, trained a little (a few hundred parameters)."""
    x, y = load_digits(return_X_y=True)
    inputs = torch.tensor(x[:samples] / 16.0, dtype=torch.float64)
    targets = torch.tensor(y[:samples])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, hidden), activation(), nn.Linear(hidden, 10)).double()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimiser.step()
    return CurvatureProblem(model, inputs, targets, "ce", batch_size=64)


def explicit_hessian(problem: CurvatureProblem, names: list[str] | None = None) -> torch.Tensor:
    params = dict(problem.model.named_parameters())
    names = names or list(params)
    shapes = [params[n].shape for n in names]
    flat = torch.cat([params[n].detach().reshape(-1) for n in names])

    def loss(theta: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(theta, [s.numel() for s in shapes])
        moved = {n: p.view(s) for n, p, s in zip(names, pieces, shapes)}
        out = torch.func.functional_call(problem.model, moved, (problem.inputs,))
        return nn.functional.cross_entropy(out, problem.targets)

    return torch.autograd.functional.hessian(loss, flat)


@pytest.fixture(scope="module")
def problem() -> CurvatureProblem:
    return digits_problem()


@pytest.fixture(scope="module")
def spectrum(problem: CurvatureProblem) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.linalg.eigh(explicit_hessian(problem))


def test_top_eigenpairs_and_smallest_match_the_explicit_hessian(problem, spectrum):
    values, vectors = spectrum
    top, found = top_eigenpairs(problem, 3, seed=1)
    assert top == pytest.approx(values.flip(0)[:3].tolist(), rel=1e-3)
    for k in range(3):
        cosine = float(torch.from_numpy(found[:, k]) @ vectors[:, -1 - k])
        assert abs(cosine) > 0.99
    assert values[0] < 0  # a real saddle direction, so the sign matters
    assert smallest_eigenvalue(problem, top[0], seed=1) == pytest.approx(float(values[0]), rel=1e-3)


def test_trace_is_within_three_standard_errors(problem, spectrum):
    result = trace(problem, samples=60, seed=3)
    exact = float(spectrum[0].sum())
    assert result["stderr"] > 0
    assert abs(result["mean"] - exact) <= 3 * result["stderr"]


def test_density_integrates_to_one_and_its_mean_is_trace_over_n(problem, spectrum):
    # the first moment is a Hutchinson estimate (e1' T e1 = v'Hv / n for every start v): many
    # short runs pin it down; its spread per start is ~40 % here
    result = density(problem, steps=2, runs=250, seed=0)
    weights, nodes = np.asarray(result["weights"]), np.asarray(result["eigenvalues"])
    assert weights.sum() == pytest.approx(1.0, abs=1e-9)
    exact_mean = float(spectrum[0].sum()) / len(spectrum[0])
    assert float(weights @ nodes) == pytest.approx(exact_mean, rel=0.05)
    long = density(problem, steps=40, runs=2, seed=0)
    assert max(long["eigenvalues"]) == pytest.approx(float(spectrum[0][-1]), rel=1e-3)  # Lanczos finds the edge
    assert np.trapezoid(long["values"], long["grid"]) == pytest.approx(1.0, rel=1e-6)


def test_gauss_newton_option_matches_jt_h_j():
    problem = digits_problem(samples=40, hidden=4)
    problem.kind = "ggn"
    params = dict(problem.model.named_parameters())
    names = list(params)
    flat = torch.cat([p.detach().reshape(-1) for p in params.values()])

    def outputs(theta: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(theta, [params[n].numel() for n in names])
        moved = {n: p.view_as(params[n]) for n, p in zip(names, pieces)}
        return torch.func.functional_call(problem.model, moved, (problem.inputs,)).reshape(-1)

    jacobian = torch.autograd.functional.jacobian(outputs, flat)
    out = outputs(flat).detach()
    h_out = torch.autograd.functional.hessian(
        lambda o: nn.functional.cross_entropy(o.view(len(problem.inputs), 10), problem.targets), out)
    ggn = jacobian.T @ h_out @ jacobian
    v = torch.randn(len(flat), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(problem.operator()(v), ggn @ v, rtol=1e-8, atol=1e-10)
    top, _ = top_eigenpairs(problem, 1)
    assert top[0] == pytest.approx(float(torch.linalg.eigvalsh(ggn)[-1]), rel=1e-3)


def test_per_layer_blocks_are_the_hessian_diagonal_blocks(problem):
    layers = per_layer(problem, samples=200, seed=0)
    assert list(layers) == ["0", "2"]
    block = explicit_hessian(problem, ["2.weight", "2.bias"])
    assert layers["2"]["parameters"] == 70
    assert layers["2"]["top_eigenvalue"] == pytest.approx(float(torch.linalg.eigvalsh(block)[-1]), rel=1e-3)
    got = layers["2"]["trace"]
    assert abs(got["mean"] - float(torch.trace(block))) <= 3 * got["stderr"]


def _rescaled(problem: CurvatureProblem, factor: float) -> CurvatureProblem:
    """The same ReLU function with layer 0 scaled by ``factor`` and layer 2's weight by 1/factor."""
    model = digits_problem(hidden=5, activation=nn.ReLU).model
    model.load_state_dict(problem.model.state_dict())
    with torch.no_grad():
        model[0].weight.mul_(factor)
        model[0].bias.mul_(factor)
        model[2].weight.div_(factor)
    return CurvatureProblem(model, problem.inputs, problem.targets, "ce", batch_size=64)


def test_relative_flatness_and_adaptive_sharpness_ignore_a_layer_rescaling():
    plain = digits_problem(hidden=5, activation=nn.ReLU)
    scaled = _rescaled(plain, 4.0)
    assert mean_loss(scaled, scaled.parameters())[0] == pytest.approx(mean_loss(plain, plain.parameters())[0])
    assert top_eigenpairs(scaled, 1)[0][0] != pytest.approx(top_eigenpairs(plain, 1)[0][0], rel=0.1)
    a = invariant_flatness(plain, samples=40, seed=2)
    b = invariant_flatness(scaled, samples=40, seed=2)
    # Rademacher probes per block are the same, the block traces scale exactly: equal to rounding
    assert b["relative_flatness"] == pytest.approx(a["relative_flatness"], rel=1e-6)
    assert b["scale_invariant"] == pytest.approx(a["scale_invariant"], rel=1e-3)
    exact = sum(float(plain.model[k].weight.detach().pow(2).sum())
                * float(torch.trace(explicit_hessian(plain, [f"{k}.weight"]))) for k in (0, 2))
    assert a["relative_flatness"] == pytest.approx(exact, rel=0.15)
    sharp_a = eps_sharpness(plain, epsilon=0.05, steps=5, adaptive=True)
    sharp_b = eps_sharpness(scaled, epsilon=0.05, steps=5, adaptive=True)
    assert sharp_b["value"] == pytest.approx(sharp_a["value"], rel=1e-6)
    assert sharp_a["value"] > 0


def test_eps_sharpness_bounds_any_point_of_its_box(problem):
    result = eps_sharpness(problem, epsilon=1e-2, steps=8, seed=0)
    theta = {n: t.detach() for n, t in problem.parameters().items()}
    gen = torch.Generator().manual_seed(9)
    base = result["loss"]
    for _ in range(5):  # random corners of the box are no higher than what the ascent found
        corner = {n: t + 1e-2 * (t.abs() + 1) * (torch.randint(0, 2, t.shape, generator=gen) * 2 - 1)
                  for n, t in theta.items()}
        rise = 100 * (mean_loss(problem, corner)[0] - base) / (1 + base)
        assert rise <= result["value"] + 1e-9
    assert result["value"] > 0


def test_average_sharpness_and_flat_fraction(problem):
    near = random_perturbations(problem, radius=0.01, count=6, threshold=0.05, seed=1)
    far = random_perturbations(problem, radius=1.0, count=6, threshold=0.05, seed=1)
    assert near["flat_fraction"]["value"] == 1.0
    assert far["average_sharpness"]["value"] > near["average_sharpness"]["value"] > -1e-3
    assert far["flat_fraction"]["value"] < 1.0


def test_sublevel_components_equal_scipy_label():
    rng = np.random.default_rng(4)
    values = ndimage.gaussian_filter(rng.normal(size=(23, 31)), 2.0)
    values[3, 4] = np.nan
    for level in np.quantile(values[np.isfinite(values)], [0.1, 0.3, 0.5, 0.8]):
        labels, count = sublevel_labels(values, level)
        expected, expected_count = ndimage.label(np.isfinite(values) & (values <= level))
        assert count == expected_count
        assert np.array_equal(labels, expected)


def test_minima_persistence_on_a_known_profile():
    profile = np.array([3.0, 1.0, 2.5, 0.0, 4.0, 2.0, 5.0])
    pairs = minima_persistence(profile)
    assert [(p["birth"], p["death"]) for p in pairs] == [(0.0, np.inf), (2.0, 4.0), (1.0, 2.5)]
    assert pairs[2]["index"] == [1]


def _float32_source(problem: CurvatureProblem):
    from engine.landscape.directions.source import ModelSource

    model = copy.deepcopy(problem.model).float()
    data = (problem.inputs.float(), problem.targets)
    return ModelSource.from_module(model, {"train": data, "test": data}, "ce", name="digits-mlp")


def _hessian_at(problem: CurvatureProblem, point: dict[str, torch.Tensor]) -> torch.Tensor:
    model = digits_problem(steps=0).model
    model.load_state_dict({k: v.double() for k, v in point.items()})
    return explicit_hessian(CurvatureProblem(model, problem.inputs, problem.targets, "ce"))


def test_surface_hessian_stores_max_and_min_eig_of_each_point(tmp_path):
    from engine.landscape import SurfaceOptions, compute_surface
    from engine.storage.surface_file import load_direction_tensors, load_surface

    problem = digits_problem()
    options = SurfaceOptions(x="-0.5:0.5:3", y="-0.5:0.5:3", split="train", hessian=True, workers=1, subset=0)
    path = compute_surface(_float32_source(problem), options, tmp_path / "h.h5")
    surface = load_surface(path)
    assert surface.values["max_eig"].shape == (3, 3) and np.isfinite(surface.values["min_eig"]).all()
    tensors = load_direction_tensors(path)
    theta = {k: v.detach().double() for k, v in problem.model.state_dict().items()}
    for j, i in ((1, 1), (0, 2)):
        alpha, beta = surface.x[i], surface.y[j]
        point = {k: theta[k] + alpha * torch.from_numpy(tensors["x"][k]).double()
                 + beta * torch.from_numpy(tensors["y"][k]).double() for k in theta}
        eig = torch.linalg.eigvalsh(_hessian_at(problem, point))
        assert surface.values["max_eig"][j, i] == pytest.approx(float(eig[-1]), rel=1e-3)
        assert surface.values["min_eig"][j, i] == pytest.approx(float(eig[0]), rel=1e-3)
    # resumable like the losses: a point marked pending (as an interrupted job leaves it) is recomputed
    with h5py.File(path, "r+") as f:
        for name in ("point_seconds", "max_eig", "min_eig", "train_loss"):
            f[name][0, 2] = np.nan
    compute_surface(_float32_source(problem), options, path)
    again = load_surface(path)
    for name in ("max_eig", "min_eig"):
        assert again.values[name][0, 2] == pytest.approx(surface.values[name][0, 2], rel=1e-6)


def test_hessian_directions_are_the_top_eigenvectors(tmp_path):
    from engine.landscape import SurfaceOptions, compute_surface, load_surface
    from engine.storage.surface_file import load_direction_tensors

    problem = digits_problem()
    options = SurfaceOptions(x="-0.2:0.2:3", y="-0.2:0.2:3", directions="hessian", ignore="none", split="train",
                             workers=1)
    path = compute_surface(_float32_source(problem), options, tmp_path / "d.h5")
    assert load_surface(path).attrs["method"] == "hessian"
    tensors = load_direction_tensors(path)
    names = [n for n, _ in problem.model.named_parameters()]
    _, vectors = torch.linalg.eigh(explicit_hessian(problem))
    for axis, column in (("x", -1), ("y", -2)):
        flat = torch.cat([torch.from_numpy(tensors[axis][n]).double().reshape(-1) for n in names])
        assert abs(float(flat @ vectors[:, column]) / float(flat.norm())) > 0.99
