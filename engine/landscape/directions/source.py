"""What a landscape is computed on: a model, its stored states, its data and its loss.

:class:`ModelSource` is a thin adapter over a training run (``engine.load_run``) or over a
plain ``nn.Module`` with tensors, so direction builders and the evaluator never care where
the model came from.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from engine.errors import RunFileError
from engine.landscape.directions.params import ParamVector, direction_keys

Epoch = int | str  # an epoch number or "final"


@dataclass
class ModelSource:
    """A model with stored states (by epoch), evaluation tensors and the loss it was trained with."""

    name: str  # shown in messages: the run file or a label
    loss: str  # "ce" | "mse" | "mae"
    epochs: list[int]  # stored states, sorted; 0 = initialisation
    build_model: Callable[[Epoch], nn.Module]  # a fresh model holding the state of an epoch
    read_state: Callable[[Epoch], Mapping[str, Tensor]]
    read_split: Callable[[str], tuple[Tensor, Tensor]]
    path: Path | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_run(cls, run: Any) -> ModelSource:
        """Adapter over ``engine.load_run(path)``'s Run."""
        return cls(
            name=str(run.path),
            loss=run.config.train.loss,
            epochs=sorted(run.epochs),
            build_model=run.model,
            read_state=run.state_dict,
            read_split=run.tensors,
            path=Path(run.path),
        )

    @classmethod
    def from_module(
        cls,
        model: nn.Module,
        data: Mapping[str, tuple[Tensor, Tensor]],
        loss: str = "ce",
        states: Mapping[int, Mapping[str, Tensor]] | None = None,
        name: str = "<model>",
    ) -> ModelSource:
        """A plain model: ``data`` maps "train"/"test" to (inputs, labels); ``states`` maps
        epochs to state dicts (default: the model's current state as the only, final, epoch)."""
        given = states or {0: model.state_dict()}
        stored = {int(e): {k: v.detach().clone() for k, v in s.items()} for e, s in given.items()}
        epochs = sorted(stored)

        def read_state(epoch: Epoch) -> Mapping[str, Tensor]:
            key = epochs[-1] if epoch == "final" else epoch
            if key not in stored:
                raise RunFileError(f"{name}: no stored state for epoch {epoch} (stored: {epochs})")
            return stored[key]

        def build_model(epoch: Epoch) -> nn.Module:
            fresh = copy.deepcopy(model)
            fresh.load_state_dict(read_state(epoch))
            return fresh.eval()

        def read_split(split: str) -> tuple[Tensor, Tensor]:
            if split not in data:
                raise RunFileError(f"{name}: no {split!r} data (have {sorted(data)})")
            return data[split]

        return cls(
            name=name,
            loss=loss,
            epochs=epochs,
            build_model=build_model,
            read_state=read_state,
            read_split=read_split,
        )

    @property
    def final_epoch(self) -> int:
        return self.epochs[-1]

    def resolve(self, epoch: Epoch) -> int:
        """The stored epoch number for ``epoch`` ("final" -> the last one)."""
        if epoch == "final":
            return self.final_epoch
        if epoch not in self.epochs:
            raise RunFileError(
                f"{self.name}: no checkpoint for epoch {epoch}; stored epochs: {_short(self.epochs)}"
            )
        return int(epoch)

    def model(self, epoch: Epoch) -> nn.Module:
        return self.build_model(self.resolve(epoch))

    def vector(self, epoch: Epoch, dir_type: str, cache: bool = True) -> ParamVector:
        """The state of ``epoch`` as a ParamVector with the keys of ``dir_type``."""
        key = (self.resolve(epoch), dir_type)
        if key in self._cache:
            return self._cache[key]
        if "keys" not in self._cache:
            template = self.model(self.final_epoch)
            self._cache["keys"] = {t: direction_keys(template, t) for t in ("weights", "states")}
        vector = ParamVector.from_state(
            self.read_state(key[0]), self._cache["keys"][dir_type], f"{self.name} epoch {key[0]}"
        )
        if cache:
            self._cache[key] = vector
        return vector


def as_source(subject: Any) -> ModelSource:
    """A ModelSource from a ModelSource, a Run, or a run file path."""
    if isinstance(subject, ModelSource):
        return subject
    if isinstance(subject, (str, Path)):
        from engine.storage.run import load_run

        return ModelSource.from_run(load_run(subject))
    if all(hasattr(subject, a) for a in ("state_dict", "tensors", "config", "epochs")):
        return ModelSource.from_run(subject)
    raise TypeError(f"expected a run file path, a Run or a ModelSource, got {type(subject).__name__}")


def _short(epochs: list[int]) -> str:
    return (
        ", ".join(map(str, epochs))
        if len(epochs) <= 12
        else ", ".join(map(str, epochs[:5])) + ", ..., " + ", ".join(map(str, epochs[-3:]))
    )
