"""The fast evaluator equals a plain evaluation: batch-norm folding, flat parameters, channels-last,
several points per forward (vmap), autocast, compile fallback; its record in the surface file; memory."""

from __future__ import annotations

import copy
import gc
import json

import numpy as np
import pytest
import torch
from landscape_fixtures import ConvBN, digit_images, digits, mlp, trained_mlp_source
from torch import nn

from benchmarks.workloads import with_trained_batch_norm  # the benchmark's trained-BN models
from engine.device import select_device
from engine.errors import ConfigError
from engine.landscape import (
    Directions,
    ModelSource,
    ParamVector,
    SurfaceOptions,
    compute_surface,
    load_surface,
)
from engine.landscape.directions.build import random_direction
from engine.landscape.evaluation.bn_fold import fold_batch_norm, is_plain_mlp
from engine.landscape.evaluation.evaluate import PointEvaluator
from engine.landscape.evaluation.speed import (
    GPU_MAX_BATCH,
    GPU_MAX_POINTS,
    choose_batch_size,
    choose_points_per_forward,
    compile_mode,
    evaluation_loss,
    free_device_memory,
)
from engine.models.mlp import MLP
from engine.models.resnet import CifarResNet
from engine.models.vgg import VGG9
from engine.training.losses import loss_function

CPU = torch.device("cpu")
POINTS = [(0.0, 0.0, 0), (0.4, -0.3, 0), (-0.7, 0.2, 0), (1.0, 1.0, 0)]


def _directions(
    model: nn.Module, dir_type: str = "weights", ignore: str = "biasbn", count: int = 1
) -> Directions:
    origin = ParamVector.from_module(model, dir_type)
    xs = [random_direction(origin, 0, k, "filter", ignore) for k in range(count)]
    return Directions("random", origin, xs, random_direction(origin, 0, count, "filter", ignore))


def _independent(
    model: nn.Module, d: Directions, alpha: float, beta: float, data, direction: int = 0
) -> dict:
    """Reference: a fresh copy loaded with theta + alpha x + beta y, PyTorch's own mean cross-entropy."""
    fresh = copy.deepcopy(model).eval()
    state = fresh.state_dict()
    for k in d.origin:
        state[k] = d.origin[k] + alpha * d.xs[direction][k] + beta * d.y[k]
    fresh.load_state_dict(state)
    out = {}
    with torch.no_grad():
        for split, (x, y) in data.items():
            logits = fresh(x).double()
            out[f"{split}_loss"] = nn.functional.cross_entropy(logits, y).item()
            out[f"{split}_acc"] = 100.0 * (logits.argmax(1) == y).double().mean().item()
    return out


def _close(a: dict, b: dict, rel: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=rel, abs=rel), k


def _images(n: int = 8, size: int = 8, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"test": (torch.randn(n, 3, size, size, generator=g), torch.randint(0, 10, (n,), generator=g))}


# ---- batch-norm folding ---------------------------------------------------------------------
def test_folding_finds_every_conv_bn_and_linear_bn_pair_and_skips_untraceable_models() -> None:
    torch.manual_seed(0)
    resnet = with_trained_batch_norm(CifarResNet(20, 10))
    assert fold_batch_norm(resnet).count == 21  # 19 convs + 2 projection shortcuts
    vgg = with_trained_batch_norm(VGG9((3, 8, 8), 10))
    folded = fold_batch_norm(vgg)
    assert folded.count == 8  # 7 convs + the hidden linear layer
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(folded(x), vgg(x), rtol=1e-5, atol=1e-6)

    class Branchy(nn.Module):  # data-dependent control flow: fx cannot trace it
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(self.conv(x)) if x.sum() > 0 else x

    assert fold_batch_norm(Branchy().eval()) is None
    assert fold_batch_norm(mlp()) is None


@pytest.mark.parametrize(("dir_type", "ignore"), [("weights", "biasbn"), ("states", "none")])
def test_folded_resnet20_equals_unfolded_and_an_independent_evaluation(dir_type: str, ignore: str) -> None:
    torch.manual_seed(1)
    model = with_trained_batch_norm(CifarResNet(20, 10), seed=1)
    d, data = _directions(model, dir_type, ignore), _images()
    fast = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU)
    plain = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU, fold_bn=False, channels_last=False)
    assert fast.record.bn_folded and fast.record.folded_layers == 21 and fast.record.channels_last
    assert not plain.record.bn_folded and not plain.record.channels_last
    scale = 0.1 if dir_type == "states" else 1.0  # keeps moved running variances positive
    for alpha, beta in ((scale * a, scale * b) for a, b, _ in POINTS):
        folded = fast.evaluate(alpha, beta)
        _close(folded, plain.evaluate(alpha, beta), 1e-5)
        _close(folded, _independent(model, d, alpha, beta, data), 1e-5)


def test_batch_statistics_mode_folds_nothing() -> None:
    model = with_trained_batch_norm(ConvBN())
    evaluator = PointEvaluator(model, _directions(model), digit_images(40, 20), "ce", CPU, bn_train_mode=True)
    assert (
        not evaluator.record.bn_folded and evaluator.batch_size == 256 and evaluator.points_per_forward == 1
    )


# ---- several points per forward (vmap) --------------------------------------------------------
def test_points_per_forward_equals_the_per_point_path_for_every_direction() -> None:
    model, data = mlp(), digits(120, 60)
    d = _directions(model, count=3)  # averaged 1D curves use several x directions
    points = [(a, b, k) for k in range(3) for a, b, _ in POINTS] + [(0.25, 0.0, 1)]
    batched = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU, points_per_forward=8)
    single = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU, points_per_forward=1)
    assert batched.points_per_forward == 8 and single.points_per_forward == 1
    many = batched.evaluate_many(points)
    assert len(many) == len(points)
    for point, got in zip(points, many):
        want = single.evaluate(*point)
        assert list(got) == list(want)  # same metrics, same order
        _close(got, want, 1e-6)
        _close(got, _independent(model, d, point[0], point[1], data, point[2]), 1e-5)


def test_points_per_forward_rule_is_per_split_and_only_for_small_plain_mlps() -> None:
    assert is_plain_mlp(mlp()) and not is_plain_mlp(ConvBN())
    assert choose_points_per_forward("cpu", 100, 3_000, True) > 1
    assert choose_points_per_forward("cpu", 2_000, 10_000, True) == 1
    assert choose_points_per_forward("cpu", 100, 3_000, False) == 1
    model, data = mlp(), digits(500, 60)  # 60 test samples batch, 500 train samples do not
    evaluator = PointEvaluator(model, _directions(model), data, "ce", CPU)
    assert evaluator.points_per_forward > 1 and evaluator._per_point_splits == ["train"]
    single = PointEvaluator(copy.deepcopy(mlp()), _directions(mlp()), data, "ce", CPU, points_per_forward=1)
    for got, want in zip(evaluator.evaluate_many(POINTS), [single.evaluate(*p) for p in POINTS]):
        assert list(got) == ["train_loss", "train_acc", "test_loss", "test_acc"]
        _close(got, want, 1e-6)
        assert got["train_loss"] == want["train_loss"]  # the per-point split takes the same path


# ---- the first layer from tables ------------------------------------------------------------
def test_input_layer_tables_equal_the_per_point_product_for_every_direction() -> None:
    torch.manual_seed(0)
    model = MLP((1, 8, 8), [48, 24], 10)  # Flatten, then the first linear layer
    data = digit_images(300, 120)
    d = _directions(model, count=2)
    fast = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU, points_per_forward=1)
    plain = PointEvaluator(
        copy.deepcopy(model), d, data, "ce", CPU, points_per_forward=1, precompute_input=False
    )
    assert fast.record.input_layer_precomputed and not plain.record.input_layer_precomputed
    for alpha, beta, _ in POINTS:
        for k in (0, 1):
            got = fast.evaluate(alpha, beta, k)
            _close(got, plain.evaluate(alpha, beta, k), 1e-5)
            _close(got, _independent(model, d, alpha, beta, data, k), 1e-5)
    fast.set_point(0.5, -0.5, 1)  # set_point + evaluate_current reads the tables at the same point
    _close(fast.evaluate_current(), plain.evaluate(0.5, -0.5, 1), 1e-5)


def test_input_layer_tables_only_where_the_first_layer_is_linear_and_moved() -> None:
    model = with_trained_batch_norm(ConvBN())
    conv = PointEvaluator(model, _directions(model), digit_images(30, 20), "ce", CPU)
    assert not conv.record.input_layer_precomputed
    model = mlp()
    origin = ParamVector({k: v for k, v in ParamVector.from_module(model).items() if not k.startswith("0.")})
    fixed_first = Directions("random", origin, [random_direction(origin, 0, 0, "filter", "biasbn")])
    evaluator = PointEvaluator(model, fixed_first, digits(50, 20), "ce", CPU)
    assert not evaluator.record.input_layer_precomputed  # its first layer does not move


# ---- compile, autocast, batch size (the CUDA path's CPU twin) ----------------------------------
def test_compile_failure_falls_back_to_eager_and_says_why(monkeypatch) -> None:
    model, data = mlp(), digits(60, 30)
    d = _directions(model)
    eager = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU, points_per_forward=1)

    def broken_compile(*_args, **_kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken_compile)
    fallback = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU, compile=True)
    assert not fallback.record.compiled and "no C++ compiler" in fallback.record.compile_error
    assert fallback.evaluate(0.3, 0.1) == eager.evaluate(0.3, 0.1)

    def compiles_but_fails_to_run(module, **_kwargs):
        def run(_x):
            raise RuntimeError("backend crashed")

        return run

    monkeypatch.setattr(torch, "compile", compiles_but_fails_to_run)
    late = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU, compile=True)
    assert "backend crashed" in late.record.compile_error and not late.record.compiled
    assert late.evaluate(0.3, 0.1) == eager.evaluate(0.3, 0.1)


def test_autocast_precision_is_recorded_and_close_to_fp32_on_a_trained_net() -> None:
    source = trained_mlp_source()
    d = _directions(source.model("final"))
    data = {"test": source.read_split("test")}
    exact = PointEvaluator(source.model("final"), d, data, "ce", CPU)
    half = PointEvaluator(source.model("final"), d, data, "ce", CPU, precision="bf16")
    assert exact.record.autocast == "off" and half.record.autocast == "bf16"
    for alpha, beta, _ in POINTS[:3]:
        a, b = exact.evaluate(alpha, beta), half.evaluate(alpha, beta)
        assert b["test_loss"] == pytest.approx(a["test_loss"], rel=2e-2)  # the stated bf16 tolerance
        assert abs(b["test_acc"] - a["test_acc"]) <= 2.0
    with pytest.raises(ConfigError, match="precision"):
        PointEvaluator(source.model("final"), d, data, "ce", CPU, precision="fp8")


def test_evaluation_cross_entropy_equals_pytorchs() -> None:
    g = torch.Generator().manual_seed(0)
    logits, labels = 4 * torch.randn(300, 10, generator=g), torch.randint(0, 10, (300,), generator=g)
    fast = evaluation_loss("ce")
    for reduction in ("sum", "mean", "none"):
        want = nn.functional.cross_entropy(logits, labels, reduction=reduction)
        assert torch.allclose(fast(logits, labels, reduction=reduction), want, rtol=1e-6, atol=1e-6)
    per_position = 2 * torch.randn(5, 10, 7, generator=g)  # (N, C, L) goes to PyTorch's own
    targets = torch.randint(0, 10, (5, 7), generator=g)
    assert fast(per_position, targets, reduction="sum") == nn.functional.cross_entropy(
        per_position, targets, reduction="sum"
    )
    assert evaluation_loss("mse") is loss_function("mse")


def test_batch_size_rules_for_cpu_and_cuda() -> None:
    # CPU: conv nets stop at 128 images, flat inputs at 2048 rows, never above the data
    assert choose_batch_size("cpu", 10_000, 200_000, images=True) == 128
    assert choose_batch_size("cpu", 10_000, 2_000, images=False) == 2048
    assert choose_batch_size("cpu", 300, 2_000, images=False) == 300
    # CUDA: half the free memory, a power of two, capped
    per_sample = 3 * 16 * 32 * 32 * 4
    assert choose_batch_size("cuda", 50_000, per_sample, True, free_bytes=1 << 30) == 2048
    assert choose_batch_size("cuda", 50_000, per_sample, True, free_bytes=1 << 40) == GPU_MAX_BATCH
    assert choose_batch_size("cuda", 50_000, per_sample, True, free_bytes=0) == 1
    model = with_trained_batch_norm(ConvBN())
    evaluator = PointEvaluator(model, _directions(model), digit_images(300, 50), "ce", CPU)
    assert evaluator.batch_size == 128


def test_device_selection_for_training_and_surfaces_without_and_with_gpus() -> None:
    assert select_device("auto", cuda_count=0) == CPU
    assert select_device("auto", cuda_count=2) == torch.device("cuda")
    assert select_device("cuda:1", cuda_count=2) == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="cuda:0' to 'cuda:1' \\(2 GPUs here"):
        select_device("cuda:2", cuda_count=2)
    with pytest.raises(ConfigError, match="no CUDA device"):
        select_device("cuda", cuda_count=0)
    with pytest.raises(ConfigError, match="'auto', 'cpu' or 'cuda"):
        select_device("gpu", cuda_count=1)
    assert compile_mode("cuda") == "reduce-overhead" and compile_mode("cpu") == "default"
    assert free_device_memory(CPU) is None
    # on a GPU a cheap point is launch-bound far longer than on a CPU
    assert choose_points_per_forward("cuda", 5_000, 10_000, True) > 1
    assert choose_points_per_forward("cpu", 5_000, 10_000, True) == 1


# ---- the surface file and memory ---------------------------------------------------------------
def test_surface_records_the_evaluator_and_matches_an_independent_evaluation(tmp_path) -> None:
    torch.manual_seed(0)
    model = with_trained_batch_norm(ConvBN())
    data = digit_images(60, 40)
    source = ModelSource.from_module(model, data, "ce", name="convbn")
    # small steps: moved running variances stay positive, so every value is finite
    options = SurfaceOptions(x="-0.1:0.1:3", y="-0.1:0.1:3", candidates=3, dir_type="states", ignore="none")
    surface = load_surface(compute_surface(source, options, tmp_path / "s.h5"))
    record = json.loads(surface.attrs["evaluator"])
    assert record["bn_folded"] and record["folded_layers"] == 2 and record["channels_last"]
    assert record["batch_size"] == 60 and record["autocast"] == "off" and not record["compiled"]
    assert {"threads", "points_per_forward", "device", "flat_parameters"} <= record.keys()
    assert surface.attrs["precision"] == "fp32" and surface.attrs["batch_size"] == 0
    from engine.landscape.surface import _resume_directions

    d = _resume_directions(tmp_path / "s.h5", surface.attrs, source, options, None)
    for j, beta in enumerate(surface.y):
        for i, alpha in enumerate(surface.x):
            want = _independent(model, d, float(alpha), float(beta), data)
            got = {m: float(surface.values[m][j, i]) for m in want}
            assert np.isfinite(list(got.values())).all()
            _close(got, want, 1e-5)


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


@pytest.mark.parametrize("model_kind", ["mlp", "convbn"])
def test_live_tensors_do_not_grow_with_the_grid(tmp_path, model_kind: str) -> None:
    model = mlp() if model_kind == "mlp" else with_trained_batch_norm(ConvBN())
    data = digits(80, 40) if model_kind == "mlp" else digit_images(40, 20)
    source = ModelSource.from_module(model, data, "ce", name=model_kind)
    counts = []
    for n in (3, 9):
        seen: list[int] = []

        def count_at_the_end(event, seen=seen) -> None:
            if event.total and event.done == event.total:
                seen.append(_live_tensors())

        options = SurfaceOptions(x=f"-1:1:{n}", y=f"-1:1:{n}", candidates=3)
        compute_surface(source, options, tmp_path / f"{model_kind}{n}.h5", on_event=count_at_the_end)
        counts.append(seen[-1])
    assert counts[0] == counts[1], counts  # 81 points keep no more tensors alive than 9
    values = load_surface(tmp_path / f"{model_kind}9.h5").values["test_loss"]
    assert np.isfinite(values).all()


# ---- many points per forward pass for conv nets (the CUDA path, run here on the CPU) ------
@pytest.mark.parametrize("dir_type", ["weights", "states"])
def test_vmapped_resnet_points_equal_per_point_evaluation(dir_type: str) -> None:
    """The GPU path evaluates P points of a conv net in one pass (vmap -> grouped convolutions,
    batch norm unfolded); its CPU twin must give the per-point numbers."""
    model = with_trained_batch_norm(CifarResNet(8, 10))
    data = _images(n=12, size=8)
    d = _directions(model, dir_type, "biasbn" if dir_type == "weights" else "none")
    batched = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU, points_per_forward=4)
    single = PointEvaluator(copy.deepcopy(model), d, data, "ce", CPU, points_per_forward=1)
    assert batched.points_per_forward == 4 and batched.record.channels_last
    points = [(0.03 * a, 0.03 * b, k) for a, b, k in POINTS]  # running variances stay positive
    for point, got in zip(points, batched.evaluate_many(points)):
        _close(got, single.evaluate(*point), 1e-5)
        _close(got, _independent(model, d, point[0], point[1], data), 1e-5)


def test_points_per_forward_on_cuda_follows_free_memory() -> None:
    per_point = 4 * 270_000 + 1024 * 3 * 16 * 32 * 32 * 4  # ResNet-20 parameters + 1,024 images' activations
    assert choose_points_per_forward("cuda", 10_000, 270_000, False, any_model=True,
                                     free_bytes=80 << 30, bytes_per_point=per_point) == GPU_MAX_POINTS
    assert choose_points_per_forward("cuda", 10_000, 270_000, False, any_model=True,
                                     free_bytes=1 << 30, bytes_per_point=per_point) == 2
    assert choose_points_per_forward("cuda", 10_000, 270_000, False, any_model=True,
                                     free_bytes=1 << 29, bytes_per_point=per_point) == 1
    assert choose_points_per_forward("cpu", 10_000, 270_000, False, any_model=True,
                                     free_bytes=None, bytes_per_point=0) == 1  # CPU: MLPs only


def test_tf32_is_refused_on_the_cpu() -> None:
    model = mlp()
    with pytest.raises(ConfigError, match="TF32"):
        PointEvaluator(model, _directions(model), digits(20, 10), "ce", CPU, precision="tf32")


def test_bf16_surface_reports_and_stores_its_measured_error(tmp_path) -> None:
    messages = []
    options = SurfaceOptions(x="-1:1:3", precision="bf16", workers=1)
    out = compute_surface(trained_mlp_source(), options, tmp_path / "bf16.h5",
                          on_event=lambda event: messages.append(event.message))
    errors = json.loads(load_surface(out).attrs["precision_error"])
    assert set(errors) == {"train_loss", "test_loss"}
    assert all(0.0 <= e < 0.02 for e in errors.values())
    assert any(m and "bf16 vs fp32 at the centre" in m for m in messages)
