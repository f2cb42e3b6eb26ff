from __future__ import annotations

import numpy as np
import pytest
import torch
from landscape_fixtures import ConvBN, digits, mlp, train_states, trained_mlp_source

from engine.errors import ConfigError, RunFileError
from engine.landscape import (
    ModelSource,
    ParamVector,
    SurfaceOptions,
    build_directions,
    direction_keys,
    gram_schmidt,
    init_directions,
    interpolation_directions,
    most_orthogonal_pair,
    random_direction,
    trajectory_pca,
)
from engine.landscape.directions.build import candidate_cosines


def _conv_origin(dir_type: str = "weights") -> ParamVector:
    model = ConvBN()
    with torch.no_grad():  # non-trivial BN tensors, so 1-D norms are not all equal
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.uniform_(0.5, 1.5) if "running_var" in name else t.normal_(0, 0.7)
    return ParamVector.from_module(model, dir_type)


def test_filter_normalisation_is_exact_and_ignored_tensors_are_zero():
    origin = _conv_origin()
    d = random_direction(origin, seed=3, index=0, norm="filter", ignore="biasbn")
    assert list(d) == list(origin)
    for name, w in origin.items():
        if w.dim() <= 1:
            assert torch.count_nonzero(d[name]) == 0, name
            continue
        for f in range(w.shape[0]):  # conv filters (out, in, k, k) and FC rows alike
            assert d[name][f].norm().item() == pytest.approx(w[f].norm().item(), rel=1e-5), (name, f)
        assert not torch.allclose(d[name] / d[name].norm(), w / w.norm())  # random, not a copy of w


def test_kept_one_dimensional_tensors_get_the_reference_norm_and_layer_norm_per_tensor():
    origin = _conv_origin("states")
    assert "bn1.running_mean" in origin and "bn1.num_batches_tracked" not in origin
    kept = random_direction(origin, seed=1, index=0, norm="filter", ignore="none")
    layer = random_direction(origin, seed=1, index=0, norm="layer", ignore="none")
    raw = random_direction(origin, seed=1, index=0, norm="none", ignore="none")
    for name, w in origin.items():
        assert kept[name].norm().item() == pytest.approx(w.norm().item(), rel=1e-5), name
        assert layer[name].norm().item() == pytest.approx(w.norm().item(), rel=1e-5), name
    assert raw.flatten().std().item() == pytest.approx(1.0, abs=0.15)


def test_random_directions_are_seeded():
    origin = _conv_origin()
    a = random_direction(origin, seed=5, index=2, norm="filter", ignore="biasbn")
    b = random_direction(origin, seed=5, index=2, norm="filter", ignore="biasbn")
    c = random_direction(origin, seed=6, index=2, norm="filter", ignore="biasbn")
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_picked_pair_is_the_most_orthogonal_of_the_candidates():
    origin = ParamVector.from_module(mlp())
    options = SurfaceOptions(y="-1:1:3", candidates=12, seed=4)
    source = ModelSource.from_module(mlp(), digits(20, 10))
    d = build_directions(source, options)
    flats = [random_direction(origin, 4, k, "filter", "biasbn").flatten().double() for k in range(12)]
    brute = {
        (i, j): abs(float(flats[i] @ flats[j] / (flats[i].norm() * flats[j].norm())))
        for i in range(12)
        for j in range(i + 1, 12)
    }
    assert d.picked == min(brute, key=brute.get)
    assert abs(d.cosine) == pytest.approx(min(brute.values()), abs=1e-9)
    assert d.x.cosine(d.y) == pytest.approx(d.cosine, abs=1e-9)
    assert abs(d.cosine) < sorted(brute.values())[len(brute) // 2]


def test_candidate_cosines_in_blocks_equal_one_block(monkeypatch):
    rng = torch.Generator().manual_seed(0)
    vectors = [torch.randn(40, generator=rng) for _ in range(7)]
    whole = candidate_cosines(lambda k: vectors[k], 7, 40)
    monkeypatch.setattr("engine.landscape.directions.build._GRAM_BUDGET_BYTES", 16 * 40 * 2)  # blocks of 2
    blocked = candidate_cosines(lambda k: vectors[k], 7, 40)
    np.testing.assert_allclose(blocked, whole, atol=1e-12)
    assert most_orthogonal_pair(whole) == most_orthogonal_pair(blocked)


def test_gram_schmidt_pair_is_orthogonal_and_keeps_the_size():
    origin = _conv_origin()
    x = random_direction(origin, 0, 0, "filter", "biasbn")
    y = random_direction(origin, 0, 1, "filter", "biasbn")
    y_orth = gram_schmidt(x, y)
    assert abs(x.cosine(y_orth)) < 1e-6
    assert y_orth.norm() == pytest.approx(y.norm(), rel=1e-6)
    source = ModelSource.from_module(ConvBN(), digits(10, 10))
    d = build_directions(source, SurfaceOptions(y="-1:1:3", orthogonalize="gram-schmidt"))
    assert abs(d.cosine) < 1e-6 and d.picked == (0, 1)


def test_pca_recovers_known_directions_of_a_synthetic_trajectory():
    model = mlp(hidden=8)
    final = {k: v.clone() for k, v in model.state_dict().items()}
    keys = direction_keys(model, "weights")
    rng = torch.Generator().manual_seed(1)
    u, v = ({k: torch.randn(final[k].shape, generator=rng) for k in keys} for _ in range(2))
    v_vec = ParamVector(v).add_(u, alpha=-ParamVector(v).dot(u) / ParamVector(u).dot(u))  # v orthogonal to u
    a = np.array([4.0, 3.0, 2.0, 1.0, 0.5])
    b = np.array([1.0, -1.0, 1.0, -1.0, 0.0])
    b -= a * (a @ b) / (a @ a)  # uncorrelated coefficients: u and v are the exact singular vectors
    states = {
        e: {k: final[k] + a[e] * u[k] + b[e] * v_vec[k] if k in keys else final[k] for k in final}
        for e in range(5)
    }
    states[5] = final
    source = ModelSource.from_module(model, digits(10, 10), states=states)
    pca = trajectory_pca(source, "final", "weights", "none")
    assert abs(pca.x.cosine(ParamVector(u))) == pytest.approx(1.0, abs=1e-5)
    assert abs(pca.y.cosine(v_vec)) == pytest.approx(1.0, abs=1e-5)
    expected = np.stack([a * ParamVector(u).norm(), b * v_vec.norm()], axis=1)
    expected = np.vstack([expected, [0, 0]]) * np.sign(expected[0])
    np.testing.assert_allclose(pca.path * pca.scale, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(pca.path).max() == pytest.approx(1.0)
    assert pca.x.norm() == pytest.approx(pca.scale, rel=1e-5)
    energy = np.array([np.sum(expected[:, 0] ** 2), np.sum(expected[:, 1] ** 2)])
    np.testing.assert_allclose(pca.explained_variance_ratio, energy / energy.sum(), rtol=1e-4)
    assert list(pca.epochs) == [0, 1, 2, 3, 4, 5]


def test_pca_needs_three_checkpoints():
    data = digits(50, 20)
    model = mlp()
    source = ModelSource.from_module(model, data, states=train_states(model, data, epochs=1))
    with pytest.raises(ConfigError, match="at least 3 stored checkpoints.*has 2"):
        build_directions(source, SurfaceOptions(directions="pca", y="-1:1:3"))


def test_interpolation_ends_at_the_other_model_and_plane_through_three():
    a, b, c = (
        trained_mlp_source(seed, epochs=1, name=f"{n}.h5") for seed, n in ((0, "a"), (1, "b"), (2, "c"))
    )
    line = interpolation_directions(a, "final", b, "final", "weights")
    end = line.origin.clone().add_(line.x)
    for k, t in b.vector("final", "weights").items():
        torch.testing.assert_close(end[k], t, rtol=0, atol=1e-6)
    plane = interpolation_directions(a, "final", b, "final", "states", c, 1)
    corner = plane.origin.clone().add_(plane.y)
    for k, t in c.vector(1, "states").items():
        torch.testing.assert_close(corner[k], t, rtol=0, atol=1e-6)
    assert -1 < plane.cosine < 1


def test_interpolation_between_different_architectures_names_both_files():
    small = ModelSource.from_module(mlp(hidden=16), digits(10, 10), name="small.h5")
    large = ModelSource.from_module(mlp(hidden=32), digits(10, 10), name="large.h5")
    with pytest.raises(RunFileError, match=r"small\.h5.*large\.h5.*different architectures"):
        interpolation_directions(small, "final", large, "final", "weights")
    conv = ModelSource.from_module(ConvBN(), digits(10, 10), name="conv.h5")
    with pytest.raises(RunFileError, match=r"small\.h5.*conv\.h5"):
        build_directions(
            small, SurfaceOptions(directions="interpolate", to="conv.h5"), open_run=lambda path: conv
        )


def test_init_direction_goes_from_initialisation_to_checkpoint():
    source = trained_mlp_source(epochs=2)
    d = init_directions(source, "final", "weights")
    assert d.origin.fingerprint() == source.vector(0, "weights").fingerprint()
    end = d.origin.clone().add_(d.x)
    assert torch.allclose(end.flatten(), source.vector(2, "weights").flatten(), atol=1e-6)
    no_init = ModelSource.from_module(
        mlp(), digits(10, 10), states={3: mlp().state_dict(), 4: mlp(1).state_dict()}
    )
    with pytest.raises(ConfigError, match="epoch 0"):
        init_directions(no_init, "final", "weights")


def test_directions_of_a_real_run(trained_run):
    from engine import load_run

    run = load_run(trained_run)
    source = ModelSource.from_run(run)
    d = build_directions(source, SurfaceOptions(directions="pca", y="-1:1:3"))
    assert list(d.pca.epochs) == run.epochs and d.pca.path.shape == (len(run.epochs), 2)
    assert abs(d.cosine) < 1e-5 and d.pca.explained_variance_ratio.sum() <= 1 + 1e-9
    assert set(d.x) == {name for name, _ in run.model().named_parameters()}
