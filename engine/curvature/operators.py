"""Matrix-free curvature operators of the mean loss over a data set.

``hessian``: double backward (Pearlmutter's trick through autograd). ``ggn``: the generalised
Gauss-Newton matrix ``Jᵀ H_out J`` (Schraudolph 2002), positive semi-definite for convex losses,
from a Jacobian-vector product (double-vjp trick), the loss's output Hessian and a vjp.
Both sum ``loss_sum / N`` over batches, so one product equals the full-data matrix times ``v``.

Measured on this machine (digits MLP, 1,000 samples, one thread): one Hessian-vector product
took 3.2 ms here vs 9.2 ms with curvlinops-for-pytorch 3.0.1's HessianLinearOperator (3.5 k
parameters) and 22 ms vs 30 ms (85 k parameters), with results equal to 6e-8 relative; the
operator is a few lines on autograd, so LossLab keeps its own and uses scipy for Lanczos.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from engine.errors import ConfigError, LossLabError
from engine.training.losses import LOSSES, loss_function

KINDS = ("hessian", "ggn")
Matvec = Callable[[Tensor], Tensor]


@dataclass
class CurvatureOperator:
    """A symmetric ``dim x dim`` matrix given by its products with flat vectors."""

    matvec: Matvec
    dim: int
    dtype: torch.dtype
    device: torch.device
    names: list[str]  # the parameter tensors it covers, in order
    sizes: list[int]

    def __call__(self, v: Tensor) -> Tensor:
        return self.matvec(v)


def hessian_parameters(model: nn.Module, ignore_biasbn: bool = False) -> dict[str, Tensor]:
    """Trainable parameters the curvature is taken over; ``ignore_biasbn`` drops tensors of dim <= 1."""
    return {n: p for n, p in model.named_parameters()
            if p.requires_grad and not (ignore_biasbn and p.dim() <= 1)}


def layer_blocks(names: Sequence[str]) -> dict[str, list[str]]:
    """Parameter names grouped by the module that owns them (``"fc1.weight"`` -> ``"fc1"``)."""
    blocks: dict[str, list[str]] = {}
    for name in names:
        blocks.setdefault(name.rpartition(".")[0] or name, []).append(name)
    return blocks


def curvature_operator(model: nn.Module, inputs: Tensor, targets: Tensor, loss_name: str,
                       params: Mapping[str, Tensor] | None = None, kind: str = "hessian",
                       batch_size: int = 512) -> CurvatureOperator:
    """The ``kind`` matrix of the mean loss over all of ``inputs`` w.r.t. ``params`` (default:
    every trainable parameter), at the values ``params`` hold. The model runs in eval mode."""
    if kind not in KINDS:
        raise ConfigError("curvature", kind, " or ".join(map(repr, KINDS)))
    if loss_name not in LOSSES:
        raise ConfigError("loss", loss_name, " or ".join(repr(n) for n in LOSSES))
    if len(inputs) == 0:
        raise LossLabError("no samples to take the Hessian over; expected at least one")
    given = dict(hessian_parameters(model) if params is None else params)
    if not given:
        raise LossLabError("the model has no trainable parameters to take the Hessian over")
    leaves = {n: t.detach().requires_grad_(True) for n, t in given.items()}
    model.eval()  # dropout off and batch-norm statistics fixed: the curvature of one function
    product = _hessian_product if kind == "hessian" else _ggn_product
    loss_fn, count = loss_function(loss_name), len(inputs)
    first = next(iter(leaves.values()))

    def matvec(v: Tensor) -> Tensor:
        vs = [piece.view_as(t) for piece, t in zip(torch.split(v, [t.numel() for t in leaves.values()]),
                                                   leaves.values())]
        total = torch.zeros_like(v)
        for start in range(0, count, batch_size):
            x = inputs[start:start + batch_size].to(first.device)
            y = targets[start:start + batch_size].to(first.device)

            def loss_of(outputs: Tensor, y: Tensor = y) -> Tensor:
                return loss_fn(outputs, y, reduction="sum") / count

            outputs = functional_call(model, leaves, (x,))
            parts = product(outputs, loss_of, list(leaves.values()), vs)
            total += torch.cat([p.reshape(-1) for p in parts])
        return total

    return CurvatureOperator(matvec, sum(t.numel() for t in leaves.values()), first.dtype, first.device,
                             list(leaves), [t.numel() for t in leaves.values()])


def _filled(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> list[Tensor]:
    return [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, like)]


def _hessian_product(outputs: Tensor, loss_of: Callable[[Tensor], Tensor], leaves: list[Tensor],
                     vs: list[Tensor]) -> list[Tensor]:
    grads = torch.autograd.grad(loss_of(outputs), leaves, create_graph=True, allow_unused=True)
    dot = sum((g * u).sum() for g, u in zip(_filled(grads, leaves), vs) if g.requires_grad)
    if not isinstance(dot, Tensor):  # the loss is linear in every parameter
        return [torch.zeros_like(t) for t in leaves]
    return _filled(torch.autograd.grad(dot, leaves, allow_unused=True), leaves)


def _ggn_product(outputs: Tensor, loss_of: Callable[[Tensor], Tensor], leaves: list[Tensor],
                 vs: list[Tensor]) -> list[Tensor]:
    probe = torch.zeros_like(outputs, requires_grad=True)
    # Jᵀ probe is linear in probe; differentiating <Jᵀ probe, v> by probe gives J v
    transposed = torch.autograd.grad(outputs, leaves, probe, create_graph=True, allow_unused=True)
    pairs = [(t, v) for t, v in zip(transposed, vs) if t is not None and t.requires_grad]
    jv = None
    if pairs:
        jv = torch.autograd.grad([t for t, _ in pairs], probe, [v for _, v in pairs], retain_graph=True,
                                 allow_unused=True)[0]
    jv = torch.zeros_like(outputs) if jv is None else jv
    detached = outputs.detach().requires_grad_(True)
    gradient = torch.autograd.grad(loss_of(detached), detached, create_graph=True)[0]
    h_jv = torch.autograd.grad(gradient, detached, jv, allow_unused=True)[0]
    h_jv = torch.zeros_like(outputs) if h_jv is None else h_jv
    return _filled(torch.autograd.grad(outputs, leaves, h_jv, allow_unused=True), leaves)

