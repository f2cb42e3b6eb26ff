"""Model zoo: parameter counts against the seeds, shapes, sharing, skips, TAAF, user models."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from engine.config import ARCHS, ModelConfig
from engine.errors import ConfigError
from engine.models import MODEL_NAMES, build_model, parameter_count
from engine.models.resnet import BasicBlock
from engine.models.sharesnet import SharedConvBlock
from engine.models.taaf import TAAF

torch.set_num_threads(1)

CONV_ARCHS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "sharesnet20",
              "vgg9", "densenet", "mobilenetv2")
IMAGE_SHAPES = ((1, 8, 8), (1, 28, 28), (3, 32, 32))
SEED_RESNET20_TOTAL = 274_442  # the bias-landscape study, Table 1 (Keras: adds conv biases, counts BN statistics)
SEED_SHARESNET20_TOTAL = 175_130


def build(arch: str, shape: tuple[int, ...] = (3, 32, 32), outputs: int = 10, seed: int = 0,
          **fields: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(arch=arch, **fields), shape, outputs)


def logits(model: torch.nn.Module, shape: tuple[int, ...], batch: int = 2) -> torch.Tensor:
    inputs = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.eval()(inputs)


def test_every_config_arch_has_a_builder() -> None:
    assert MODEL_NAMES == ARCHS


def test_resnet20_parameter_count_matches_the_seed() -> None:
    model = build("resnet20")
    # 16/32/64-channel stages of 3 blocks, two projections, 64 -> 10 linear layer.
    assert parameter_count(model) == 272_474
    assert abs(parameter_count(model) - SEED_RESNET20_TOTAL) / SEED_RESNET20_TOTAL < 0.01


def test_sharesnet20_shares_convs_like_the_seed() -> None:
    resnet, shared = build("resnet20"), build("sharesnet20")
    saving = 1 - parameter_count(shared) / parameter_count(resnet)
    seed_saving = 1 - SEED_SHARESNET20_TOTAL / SEED_RESNET20_TOTAL
    assert 0.30 <= saving <= 0.37
    assert abs(saving - seed_saving) < 0.005
    blocks = [m for m in shared.modules() if isinstance(m, SharedConvBlock)]
    assert len(blocks) == 7  # all 3 blocks of stage 1, the last 2 of stages 2 and 3
    assert all(b.conv1.weight is b.conv2.weight for b in blocks)
    names = [n for n, _ in shared.named_parameters()]
    assert not any("conv2" in n for n in names if n.startswith("layer1."))
    state = shared.state_dict()
    pointers = [t.data_ptr() for t in state.values() if t.numel() > 1]
    assert len(pointers) == len(set(pointers))


def test_shared_conv_is_one_conv_applied_twice() -> None:
    """Its gradient is the sum of both uses: that of an unshared block with two equal convs."""
    shared = build("sharesnet20", (1, 8, 8)).layer1[0]
    plain = BasicBlock(16, 16)
    plain.load_state_dict({**shared.state_dict(), "conv2.weight": shared.conv1.weight.detach()})
    x = torch.randn(4, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(shared(x), plain(x))
    shared(x).square().sum().backward()
    plain(x).square().sum().backward()
    both_uses = plain.conv1.weight.grad + plain.conv2.weight.grad
    assert torch.allclose(shared.conv1.weight.grad, both_uses, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(shared.conv1.weight.grad, plain.conv1.weight.grad, rtol=1e-3)


@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("arch", [a for a in CONV_ARCHS if a != "resnet110"])
def test_conv_nets_give_logits_for_each_image_size(arch: str, shape: tuple[int, ...]) -> None:
    out = logits(build(arch, shape, outputs=7), shape)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_resnet110_runs_on_digits() -> None:
    model = build("resnet110", (1, 8, 8))
    assert logits(model, (1, 8, 8)).shape == (2, 10)
    assert parameter_count(model) > 1_700_000


@pytest.mark.parametrize("arch", ["resnet20", "sharesnet20", "vgg9", "densenet", "mobilenetv2", "mlp"])
def test_models_train_on_small_images(arch: str) -> None:
    model = build(arch, (1, 8, 8)).train()
    inputs = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    torch.nn.functional.cross_entropy(model(inputs), torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "gelu", "elu", "leaky_relu",
                                        "softplus", "identity"])
def test_mlp_on_feature_vectors(activation: str) -> None:
    model = build("mlp", (40,), hidden=[32, 16], activation=activation)
    assert logits(model, (40,)).shape == (2, 10)
    assert parameter_count(model) == (40 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)


def test_mlp_flattens_images() -> None:
    assert logits(build("mlp", (1, 28, 28), hidden=[8]), (1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("arch", ["resnet20", "sharesnet20"])
def test_skip_false_removes_every_shortcut(arch: str) -> None:
    with_skip, without = build(arch), build(arch, skip=False)
    blocks = [m for m in without.modules() if isinstance(m, (BasicBlock, SharedConvBlock))]
    assert blocks and all(b.shortcut is None for b in blocks)
    assert not any("shortcut" in name for name, _ in without.named_parameters())
    projections = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert parameter_count(with_skip) - parameter_count(without) == projections
    # Same weights where both nets have them: the outputs still differ, so the paths differ.
    without.load_state_dict(with_skip.state_dict(), strict=False)
    assert not torch.allclose(logits(with_skip, (3, 32, 32)), logits(without, (3, 32, 32)))


@pytest.mark.parametrize("arch", ["resnet20", "sharesnet20", "vgg9", "densenet", "mobilenetv2"])
def test_width_multiplier_adds_parameters(arch: str) -> None:
    shape = (1, 8, 8)
    narrow, wide = build(arch, shape), build(arch, shape, width=2)
    assert parameter_count(wide) > 2 * parameter_count(narrow)
    assert logits(wide, shape).shape == (2, 10)


def test_taaf_adds_four_parameters_per_hidden_neuron_and_starts_as_plain_mlp() -> None:
    for activation in ("relu", "tanh", "sigmoid", "elu"):
        plain = build("mlp", (40,), hidden=[32, 16], activation=activation)
        taaf = build("mlp", (40,), hidden=[32, 16], activation=activation, taaf=True)
        assert parameter_count(taaf) - parameter_count(plain) == 4 * (32 + 16)
        assert sum(isinstance(m, TAAF) for m in taaf.modules()) == 2
        assert torch.equal(logits(plain, (40,)), logits(taaf, (40,)))


def test_taaf_parameters_change_the_function() -> None:
    model = build("mlp", (40,), hidden=[8], taaf=True)
    before = logits(model, (40,))
    taaf = next(m for m in model.modules() if isinstance(m, TAAF))
    with torch.no_grad():
        taaf.beta.fill_(2.0)
        taaf.delta.fill_(0.5)
    assert not torch.allclose(before, logits(model, (40,)))


@pytest.mark.parametrize("arch", [a for a in MODEL_NAMES if a not in ("user", "resnet110")])
def test_same_seed_gives_identical_weights(arch: str) -> None:
    shape = (40,) if arch == "mlp" else (1, 8, 8)
    first, again, other = build(arch, shape, seed=5), build(arch, shape, seed=5), build(arch, shape, seed=6)
    a, b, c = first.state_dict(), again.state_dict(), other.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("arch", CONV_ARCHS)
def test_conv_nets_refuse_feature_vectors(arch: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(arch, (40,))
    assert info.value.key == "model.arch"
    assert "use arch = 'mlp'" in str(info.value)


def test_unknown_arch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model.arch"):
        build_model(ModelConfig(arch="transformer"), (40,), 10)


USER_FILE = '''
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, input_shape, num_outputs, hidden=4):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], hidden), nn.ReLU(),
                                      nn.Linear(hidden, num_outputs))

        def forward(self, x):
            return self.body(x)

    class Wrong(nn.Module):
        def forward(self, x):
            return x[:, :3]

    NOT_A_MODEL = 3

    class Plain:
        pass
'''


@pytest.fixture()
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_model.py"
    path.write_text(textwrap.dedent(USER_FILE))
    return path


def user_model(reference: str, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(arch="user", user=reference, user_kwargs=kwargs), (40,), 10)


def test_user_model_is_loaded_with_its_kwargs(user_file: Path) -> None:
    model = user_model(f"{user_file}:Net", hidden=6)
    assert parameter_count(model) == (40 * 6 + 6) + (6 * 10 + 10)
    assert logits(model, (40,)).shape == (2, 10)
    again = user_model(f"{user_file}:Net", hidden=6)
    first, second = model.state_dict(), again.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize(("reference", "kwargs", "expected"), [
    ("{dir}/missing.py:Net", {}, "no file at"),
    ("{file}:Absent", {}, "a class named 'Absent'.*Net, Wrong"),
    ("{file}:NOT_A_MODEL", {}, "torch.nn.Module subclass; NOT_A_MODEL is a int"),
    ("{file}:Plain", {}, "torch.nn.Module subclass; Plain is a type"),
    ("{file}:Net", {"depth": 3}, "user_kwargs = {'depth': 3}.*TypeError"),
    ("{file}:Wrong", {}, r"shape \(N, 10\); for N = 2 it returned \(2, 3\)"),
    ("{file}", {}, "path/to/file.py:ClassName"),
])
def test_user_model_errors_say_what_was_expected(user_file: Path, reference: str, kwargs: dict,
                                                 expected: str) -> None:
    reference = reference.format(dir=user_file.parent, file=user_file)
    with pytest.raises(ConfigError, match=expected) as info:
        user_model(reference, **kwargs)
    assert info.value.key == "model.user"


def test_user_file_that_fails_to_import(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import torch\nraise RuntimeError('no GPU here')\n")
    with pytest.raises(ConfigError, match="imports cleanly.*RuntimeError: no GPU here"):
        user_model(f"{path}:Net")


def test_user_code_can_be_refused(user_file: Path) -> None:
    cfg = ModelConfig(arch="user", user=f"{user_file}:Net")
    with pytest.raises(ConfigError, match="explicit permission to run that Python file"):
        build_model(cfg, (40,), 10, allow_user_code=False)
