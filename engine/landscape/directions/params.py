"""One parameter-vector type shared by every direction method and by the evaluator.

A :class:`ParamVector` is an ordered mapping ``name -> tensor`` keyed like the model's
``named_parameters()`` (plus batch-norm ``running_mean``/``running_var`` buffers for the
direction type ``"states"``). Its algebra is in place, with a trailing underscore, in the
style of loss-landscapes' ``ParameterVector``.

Normalisation follows Li et al. (2018) / tomgoldstein/loss-landscape:

* ``filter``: each output filter (slice along dim 0) of the direction is rescaled to the
  norm of the same filter of the reference; fully connected weights are 1x1 convolutions,
  so each row is a filter.
* ``layer``: each tensor is rescaled to the norm of the same tensor of the reference.
* ``none``: the Gaussian entries are kept as drawn.

Tensors of dim <= 1 (biases, batch-norm affine weights and running statistics) are zeroed
when ``ignore="biasbn"``. When they are kept, LossLab rescales the whole 1-D tensor to the
norm of the reference tensor (for ``filter`` and ``layer``), so the direction stays random;
loss-landscape instead copies the reference into the direction (``d.copy_(w)``), which
makes that part of every "random" direction the same, non-random vector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from engine.errors import RunFileError

DIR_TYPES = ("weights", "states")
NORMS = ("filter", "layer", "none")
IGNORES = ("biasbn", "none")
_EPS = 1e-10
_BN_BUFFERS = ("running_mean", "running_var")


def direction_keys(model: nn.Module, dir_type: str) -> list[str]:
    """Names a direction of ``dir_type`` covers, in ``named_parameters()`` order then buffers."""
    keys = [name for name, _ in model.named_parameters()]
    if dir_type == "states":
        keys += [
            name
            for name, buf in model.named_buffers()
            if name.rsplit(".", 1)[-1] in _BN_BUFFERS and buf.is_floating_point()
        ]
    return keys


class ParamVector(Mapping[str, Tensor]):
    """An ordered ``name -> tensor`` vector with in-place algebra (float32 on one device)."""

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        self._t: dict[str, Tensor] = dict(tensors)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_state(cls, state: Mapping[str, Tensor], keys: list[str], source: str = "") -> ParamVector:
        """Detached float32 CPU copies of ``state[key]`` for each key (a missing key is an error)."""
        missing = [k for k in keys if k not in state]
        if missing:
            raise RunFileError(
                f"{source or 'checkpoint'}: no tensor {missing[0]!r} in the stored model state"
            )
        return cls({k: state[k].detach().to("cpu", torch.float32).clone() for k in keys})

    @classmethod
    def from_module(cls, model: nn.Module, dir_type: str = "weights") -> ParamVector:
        return cls.from_state(model.state_dict(keep_vars=False), direction_keys(model, dir_type))

    def zeros_like(self) -> ParamVector:
        return ParamVector({k: torch.zeros_like(t) for k, t in self._t.items()})

    def randn_like(self, generator: torch.Generator) -> ParamVector:
        """Standard Gaussian entries drawn on the CPU in key order (same on every device)."""
        return ParamVector(
            {
                k: torch.randn(t.shape, generator=generator, dtype=torch.float32).to(t.device)
                for k, t in self._t.items()
            }
        )

    def clone(self) -> ParamVector:
        return ParamVector({k: t.clone() for k, t in self._t.items()})

    def to(self, device: torch.device | str) -> ParamVector:
        return ParamVector({k: t.to(device) for k, t in self._t.items()})

    # ---- mapping ------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Tensor:
        return self._t[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._t)

    def __len__(self) -> int:
        return len(self._t)

    @property
    def numel(self) -> int:
        return sum(t.numel() for t in self._t.values())

    # ---- algebra (in place) -------------------------------------------------------------
    def add_(self, other: Mapping[str, Tensor], alpha: float = 1.0) -> ParamVector:
        torch._foreach_add_(list(self._t.values()), [other[k] for k in self._t], alpha=alpha)
        return self

    def sub_(self, other: Mapping[str, Tensor]) -> ParamVector:
        return self.add_(other, alpha=-1.0)

    def scale_(self, factor: float) -> ParamVector:
        torch._foreach_mul_(list(self._t.values()), factor)
        return self

    def dot(self, other: Mapping[str, Tensor]) -> float:
        """Inner product accumulated in float64."""
        return float(
            sum(torch.dot(t.flatten().double(), other[k].flatten().double()) for k, t in self._t.items())
        )

    def norm(self) -> float:
        return self.dot(self) ** 0.5

    def cosine(self, other: ParamVector) -> float:
        denominator = self.norm() * other.norm()
        return self.dot(other) / denominator if denominator > 0 else float("nan")

    def flatten(self) -> Tensor:
        return torch.cat([t.flatten() for t in self._t.values()]) if self._t else torch.zeros(0)

    def fingerprint(self) -> str:
        """SHA-256 of names, shapes and float32 bytes: identifies a model state exactly."""
        digest = hashlib.sha256()
        for k, t in self._t.items():
            digest.update(f"{k}{tuple(t.shape)}".encode())
            digest.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()

    # ---- normalisation ------------------------------------------------------------------
    def zero_ignored_(self, ignore: str) -> ParamVector:
        """``ignore="biasbn"`` zeroes every tensor of dim <= 1 (biases, BN weights and statistics)."""
        if ignore == "biasbn":
            for t in self._t.values():
                if t.dim() <= 1:
                    t.zero_()
        return self

    def filter_normalize_(self, reference: Mapping[str, Tensor]) -> ParamVector:
        """Each filter (dim-0 slice) gets the norm of the same filter of ``reference``."""
        for k, d in self._t.items():
            w = reference[k]
            if d.dim() <= 1:
                d.mul_(w.norm() / (d.norm() + _EPS))
                continue
            d_norms = d.flatten(1).norm(dim=1)
            w_norms = w.flatten(1).norm(dim=1)
            d.mul_((w_norms / (d_norms + _EPS)).view(-1, *([1] * (d.dim() - 1))))
        return self

    def layer_normalize_(self, reference: Mapping[str, Tensor]) -> ParamVector:
        """Each tensor gets the norm of the same tensor of ``reference``."""
        for k, d in self._t.items():
            d.mul_(reference[k].norm() / (d.norm() + _EPS))
        return self

    def normalize_(self, reference: Mapping[str, Tensor], norm: str, ignore: str) -> ParamVector:
        """Apply ``norm`` (filter | layer | none) relative to ``reference``, then ``ignore``."""
        if norm == "filter":
            self.filter_normalize_(reference)
        elif norm == "layer":
            self.layer_normalize_(reference)
        elif norm != "none":
            raise ValueError(f"unknown normalisation {norm!r}; expected one of {NORMS}")
        return self.zero_ignored_(ignore)

    # ---- comparison ---------------------------------------------------------------------
    def check_same_layout(self, other: ParamVector, name: str, other_name: str) -> None:
        """Raise RunFileError naming both sources if keys or shapes differ."""
        if list(self._t) != list(other._t):
            only_self = sorted(set(self._t) - set(other._t))
            only_other = sorted(set(other._t) - set(self._t))
            detail = (
                f"{name} has {only_self[0]!r} which {other_name} lacks"
                if only_self
                else f"{other_name} has {only_other[0]!r} which {name} lacks"
                if only_other
                else "their tensors are stored in a different order"
            )
            raise RunFileError(f"{name} and {other_name} hold different architectures: {detail}")
        for k, t in self._t.items():
            if t.shape != other._t[k].shape:
                raise RunFileError(
                    f"{name} and {other_name} hold different architectures: {k!r} has shape "
                    f"{tuple(t.shape)} in {name} but {tuple(other._t[k].shape)} in {other_name}"
                )


def difference(start: ParamVector, end: ParamVector, start_name: str, end_name: str) -> ParamVector:
    """``end - start`` after checking both have the same names and shapes."""
    start.check_same_layout(end, start_name, end_name)
    return end.clone().sub_(start)


def to_numpy(vector: ParamVector) -> dict[str, np.ndarray]:
    return {k: t.detach().cpu().numpy() for k, t in vector.items()}
