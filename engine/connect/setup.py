"""The two end points of a curve, checked to be the same architecture on the same data, and the
curve's parameters as a function of t (Bézier or polygonal chain, any model family)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.errors import RunFileError
from engine.landscape.directions.curve import control_weights
from engine.landscape.directions.params import ParamVector
from engine.storage.run import Run

State = dict[str, Tensor]


@dataclass
class EndPoints:
    """Run A and run B at their chosen epochs, with A's data and loss."""

    run_a: Run
    run_b: Run
    epoch_a: int
    epoch_b: int
    model: nn.Module  # run A's architecture; its tensors are replaced per t
    a: State  # parameters of A (named_parameters order)
    b: State
    buffers_a: State  # floating-point buffers (batch-norm statistics) of A
    buffers_b: State
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    loss: str

    @property
    def names(self) -> list[str]:
        return list(self.a)

    def fingerprints(self) -> tuple[str, str]:
        return ParamVector(self.a).fingerprint(), ParamVector(self.b).fingerprint()

    @property
    def has_batch_norm(self) -> bool:
        return any(is_tracking_batch_norm(m) for m in self.model.modules())

    def buffers_at(self, t: float) -> State:
        """Batch-norm statistics interpolated between A's and B's (before any re-estimation)."""
        return {k: torch.lerp(v, self.buffers_b[k], t) for k, v in self.buffers_a.items()}

    def line_at(self, t: float) -> State:
        return {k: (1.0 - t) * v + t * self.b[k] for k, v in self.a.items()}

    def model_at(self, params: State, buffers: State) -> nn.Module:
        """A copy of the architecture holding ``params`` and ``buffers`` (other buffers from A)."""
        net = copy.deepcopy(self.model)
        with torch.no_grad():
            own = dict(net.named_parameters()) | dict(net.named_buffers())
            for name, value in (params | buffers).items():
                own[name].copy_(value)
        return net.eval()


def is_tracking_batch_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats


def check_compatible(run_a: Run, run_b: Run) -> None:
    """Refuse two runs of different architectures or data, naming both files."""
    a, b = f"'{run_a.path}'", f"'{run_b.path}'"
    model_a, model_b = dataclasses.asdict(run_a.config.model), dataclasses.asdict(run_b.config.model)
    for key in model_a:
        if model_a[key] != model_b.get(key):
            raise RunFileError(f"{a} and {b} hold different architectures: model.{key} = {model_a[key]!r} in {a} "
                               f"but {model_b.get(key)!r} in {b}; a curve connects two runs of one architecture")
    checks = {"data.source": (run_a.config.data.source, run_b.config.data.source),
              "input shape": (run_a.dataset_info["input_shape"], run_b.dataset_info["input_shape"]),
              "classes": (run_a.classes, run_b.classes),
              "train.loss": (run_a.config.train.loss, run_b.config.train.loss)}
    for what, (va, vb) in checks.items():
        if va != vb:
            raise RunFileError(f"{a} and {b} were trained on different data or losses: {what} is {va!r} in {a} "
                               f"but {vb!r} in {b}")
    if run_a.dataset_info.get("train_fingerprint") != run_b.dataset_info.get("train_fingerprint"):
        raise RunFileError(f"{a} and {b} were trained on different training data (another split, limit or bias); "
                           "the curve needs one data set: give both experiments the same data.split_seed "
                           "(digits and mnist1d split by the experiment seed otherwise)")


def load_end_points(run_a: Run, run_b: Run, epoch_a: int | str, epoch_b: int | str,
                    device: torch.device) -> EndPoints:
    check_compatible(run_a, run_b)
    model = run_a.model(epoch_a)
    names = [n for n, _ in model.named_parameters()]
    buffer_names = [n for n, v in model.named_buffers() if v.is_floating_point()]
    state_a, state_b = run_a.state_dict(epoch_a), run_b.state_dict(epoch_b)
    vector_a = ParamVector.from_state(state_a, names, f"{run_a.path} epoch {epoch_a}")
    vector_b = ParamVector.from_state(state_b, names, f"{run_b.path} epoch {epoch_b}")
    vector_a.check_same_layout(vector_b, f"'{run_a.path}'", f"'{run_b.path}'")

    def pick(state: State, keys: list[str]) -> State:
        return {k: state[k].detach().to(device, torch.float32).clone() for k in keys}

    x_train, y_train = run_a.tensors("train")
    x_test, y_test = run_a.tensors("test")
    return EndPoints(run_a, run_b, run_a.resolve_epoch(epoch_a), run_b.resolve_epoch(epoch_b), model.to(device),
                     pick(state_a, names), pick(state_b, names), pick(state_a, buffer_names),
                     pick(state_b, buffer_names), x_train.to(device), y_train.to(device), x_test.to(device),
                     y_test.to(device), run_a.config.train.loss)


class CurveParameters:
    """The control points ``A, bend_1..bend_k, B``; only the bends are trained."""

    def __init__(self, ends: EndPoints, curve: str, bends: list[State]) -> None:
        self.curve = curve
        self.ends = ends
        self.bends = [{k: nn.Parameter(v.detach().clone()) for k, v in bend.items()} for bend in bends]

    @classmethod
    def straight(cls, ends: EndPoints, curve: str, count: int) -> CurveParameters:
        """Bends on the segment A-B (Garipov et al.'s linear initialisation): the curve starts
        as the straight line, for a Bézier curve exactly ``(1 - t) A + t B``."""
        bends = [ends.line_at((i + 1) / (count + 1)) for i in range(count)]
        return cls(ends, curve, bends)

    def trainable(self) -> list[nn.Parameter]:
        return [p for bend in self.bends for p in bend.values()]

    def at(self, t: float) -> State:
        """theta(t): the weighted sum of the control points (differentiable in the bends)."""
        weights = control_weights(self.curve, len(self.bends), t)
        controls = [self.ends.a, *self.bends, self.ends.b]
        out = {}
        for name in self.ends.names:
            value = weights[0] * controls[0][name]
            for w, point in zip(weights[1:], controls[1:]):
                value = value + w * point[name]
            out[name] = value
        return out

    def bend_arrays(self) -> list[dict]:
        return [{k: v.detach().cpu().numpy().copy() for k, v in bend.items()} for bend in self.bends]
