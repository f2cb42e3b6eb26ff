"""How a surface is evaluated fast: batch size, precision, compilation, and the record of it.

Rules measured on a 2-core AMD EPYC (see README "Speed"):

* Batch size on the CPU: conv nets gain nothing above ~128 images per forward (activations
  leave the cache), flat inputs keep gaining up to ~2,048 rows (per-call overhead); both are
  capped so that one batch's activations fit the memory budget. On CUDA the batch grows with
  the free device memory: larger batches fill the GPU better.
* ``precision = "bf16" | "fp16"`` runs the forward pass under autocast; outputs are cast to
  float32 before the loss and the loss is summed in float64, so only the layers round more.
* Several grid points per forward pass (``vmap``) only for small MLPs on few samples.
* Cross-entropy is evaluated as ``logsumexp(logits) - logit[label]``: the value of
  ``F.cross_entropy`` (same formula, ~1e-7 relative), ~3.5x faster for 10 classes here because
  the CPU ``log_softmax`` kernel is slow over a short class axis (16 % of an MLP's grid point).
* ``torch.compile`` took ~40 s cold (minutes on busy cores) on ResNet-20 here for a 3-7 % faster
  forward pass, so it is off unless asked for; its kernels persist in :func:`compile_cache_dir`;
  any compile failure falls back to eager with the reason recorded. ``torch.jit.freeze`` +
  ``optimize_for_inference`` bakes the weights into the graph, so it would have to be redone at
  every grid point (3.6 s each for ResNet-20, more than the point itself): not used. Batches of 256
  images were 9 % slower than 128 (measured interleaved, ResNet-20, one thread).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from engine.errors import ConfigError
from engine.training.losses import loss_function

SOURCE = "surface options"
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "tf32": None}
CPU_IMAGE_BATCH = 128
CPU_FLAT_BATCH = 2048
GPU_MAX_BATCH = 8192
CPU_BUDGET_BYTES = 1 << 30  # at most 1 GiB of activations per batch on the CPU
GPU_FREE_FRACTION = 0.5  # of the free device memory; the rest is headroom for the allocator
ACTIVATION_FACTOR = 3  # live activations per layer output in a forward pass (input, output, temporary)
# Several points per forward (vmap) paid on this CPU only while samples x parameters of a point
# stayed below ~1e6 (1.3-1.6x faster); above it the per-point path was faster. The CUDA value
# assumes a GPU is launch-bound ~100x longer; it has not been measured here (no GPU).
BATCHED_POINTS = 16
GPU_MAX_POINTS = 32  # grid points per forward pass on CUDA (vmap; conv nets as grouped convolutions)
BATCHED_MAX_WORK = {"cpu": 1_000_000, "cuda": 100_000_000}
BN_TRAIN_BATCH = 256  # batch statistics depend on the batch size: keep it fixed, as before "auto" existed


@dataclass
class SpeedRecord:
    """What the evaluator used, stored as JSON in the surface file's ``evaluator`` attribute."""

    device: str = "cpu"
    batch_size: int = 0
    threads: int = 1
    bn_folded: bool = False
    folded_layers: int = 0
    channels_last: bool = False
    flat_parameters: bool = True
    input_layer_precomputed: bool = False
    compiled: bool = False
    compile_error: str = ""
    autocast: str = "off"
    points_per_forward: int = 1
    workers: int = 1  # processes that evaluated points, each with ``threads`` threads

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def evaluation_loss(name: str) -> Callable[..., Tensor]:
    """``fn(outputs, targets, reduction)`` for grid points: LossLab's loss, cross-entropy computed faster."""
    return _cross_entropy if name == "ce" else loss_function(name)


def _cross_entropy(outputs: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
    if outputs.dim() != 2:
        return loss_function("ce")(outputs, labels, reduction=reduction)
    per_sample = outputs.logsumexp(dim=1) - outputs.gather(1, labels[:, None]).squeeze(1)
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (None for fp32); an unsupported pair is a ConfigError."""
    if precision not in PRECISIONS:
        raise ConfigError("precision", precision, "one of " + ", ".join(map(repr, PRECISIONS)), SOURCE)
    dtype = PRECISIONS[precision]
    if precision == "tf32" and device.type != "cuda":
        raise ConfigError("precision", precision, "'fp32' or 'bf16' on the CPU (TF32 is an NVIDIA GPU mode)", SOURCE)
    if dtype is not None and not torch.amp.is_autocast_available(device.type):
        raise ConfigError("precision", precision, f"'fp32' on {device.type} (no autocast there)", SOURCE)
    return dtype


def autocast(device: torch.device, dtype: torch.dtype | None, tf32: bool = False) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype``; or, with ``tf32`` on CUDA, fp32 tensors whose matrix products and
    convolutions round their inputs to TF32 (set for the block only, then restored)."""
    if tf32 and device.type == "cuda":
        return _tf32()
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def _tf32():  # noqa: ANN202 - a context manager
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def activation_bytes_per_sample(model: nn.Module, probe: Tensor) -> int:
    """Bytes of activations one sample needs: the largest layer output times a safety factor."""
    largest = [probe[:1].numel() * probe.element_size()]

    def note(_module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, Tensor):
            largest[0] = max(largest[0], output[:1].numel() * output.element_size())

    hooks = [m.register_forward_hook(note) for m in model.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            model(probe[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return ACTIVATION_FACTOR * largest[0]


def choose_batch_size(
    device_type: str, samples: int, per_sample_bytes: int, images: bool, free_bytes: int | None = None
) -> int:
    """The automatic batch size (never more than ``samples``). ``free_bytes``: free device memory."""
    per_sample = max(per_sample_bytes, 1)
    if device_type == "cuda":
        budget = int((free_bytes or 0) * GPU_FREE_FRACTION)
        ceiling = GPU_MAX_BATCH
    else:
        budget = min(CPU_BUDGET_BYTES, _installed_memory() // 8)
        ceiling = CPU_IMAGE_BATCH if images else CPU_FLAT_BATCH
    fits = max(1, budget // per_sample)
    size = min(ceiling, _power_of_two_at_most(fits), max(samples, 1))
    return max(size, 1)


def choose_points_per_forward(
    device_type: str,
    samples: int,
    parameters: int,
    eligible: bool,
    *,
    any_model: bool = False,
    free_bytes: int | None = None,
    bytes_per_point: int = 0,
) -> int:
    """Points per forward pass (``vmap`` over stacked parameter sets).

    CPU: BATCHED_POINTS for MLPs cheap enough to be overhead-bound (``eligible``). CUDA: any model
    (``any_model``: conv nets run as grouped convolutions), as many points as half the free
    memory holds at ``bytes_per_point`` (a parameter set plus one batch of activations), up to
    GPU_MAX_POINTS, a power of two so that the choice is stable between runs."""
    if device_type == "cuda" and any_model and free_bytes and bytes_per_point > 0:
        fits = int(free_bytes * GPU_FREE_FRACTION) // bytes_per_point
        points = min(GPU_MAX_POINTS, _power_of_two_at_most(fits)) if fits >= 2 else 1
        return points if points > 1 else 1
    limit = BATCHED_MAX_WORK.get(device_type, 0)
    return BATCHED_POINTS if eligible and samples * parameters <= limit else 1


def free_device_memory(device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def _installed_memory() -> int:
    """Installed, not free, memory: the batch size must not change between runs on one machine
    (the same batches give bit-identical sums, so a resumed surface equals an uninterrupted one)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * CPU_BUDGET_BYTES


def _power_of_two_at_most(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


def compile_mode(device_type: str) -> str:
    """CUDA: replay CUDA graphs (launch overhead gone); CPU: inductor's default C++ kernels."""
    return "reduce-overhead" if device_type == "cuda" else "default"


def compile_cache_dir() -> Path:
    """Where compiled kernels persist between runs (inductor's FX-graph and kernel caches), so the
    compile of a model shape is paid once: ~40 s cold, a few seconds warm on ResNet-20 here."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "losslab" / "inductor"


def try_compile(
    model: nn.Module, device: torch.device, warm_up: Callable[[nn.Module], object]
) -> tuple[nn.Module, str]:
    """``(compiled model, "")``, or ``(model, reason)`` when compiling or its first run fails.

    ``warm_up`` runs the compiled model once on real inputs, so a failure surfaces here and
    not in the middle of a grid. On CUDA the "reduce-overhead" mode replays CUDA graphs; the
    parameters live at fixed addresses (one flat buffer), which is what graph replay needs.
    """
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_dir()))
    try:
        compiled = torch.compile(model, mode=compile_mode(device.type), dynamic=False)
        warm_up(compiled)
    except Exception as exc:  # noqa: BLE001 - any failure: keep evaluating eagerly, say why
        return model, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return compiled, ""
