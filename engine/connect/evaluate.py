"""Loss and accuracy along the trained curve and along the straight line, barrier heights, and
the ensemble of models sampled on the curve (Garipov et al. 2018, sections 4 and 5).

Batch-norm statistics at a point are re-estimated from the training data (``update_bn`` of
dnn-mode-connectivity: running averages weighted by batch size, in train mode, no gradients);
without re-estimation, or for nets without batch norm, they are interpolated linearly
between A's and B's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from engine.connect.options import ConnectOptions
from engine.connect.setup import EndPoints, State, is_tracking_batch_norm
from engine.events import CancelToken, EventSink, ProgressEvent, Stopwatch
from engine.training.evaluation import ensemble_accuracy, evaluate_split

STAGE = "evaluate"


@torch.no_grad()
def update_bn(model: nn.Module, inputs: Tensor, batch_size: int) -> bool:
    """Re-estimate every tracking batch-norm layer's statistics on ``inputs``; False if there is none."""
    layers = [m for m in model.modules() if is_tracking_batch_norm(m)]
    if not layers:
        return False
    momenta = {m: m.momentum for m in layers}
    for m in layers:
        m.reset_running_stats()
    model.train()
    seen = 0
    # near-equal batches: none of one sample, which batch norm cannot normalise
    for chunk in torch.tensor_split(inputs, max(1, -(-len(inputs) // batch_size))):
        for m in layers:
            m.momentum = len(chunk) / (seen + len(chunk))  # running mean weighted by batch size
        model(chunk)
        seen += len(chunk)
    for m, momentum in momenta.items():
        m.momentum = momentum
    model.eval()
    return True


class PathEvaluator:
    """Evaluates models on a path at given t, with the chosen batch-norm treatment."""

    def __init__(self, ends: EndPoints, options: ConnectOptions) -> None:
        self.ends, self.options = ends, options
        self.bn_update = options.bn_update and ends.has_batch_norm

    def model(self, params: State, t: float) -> nn.Module:
        net = self.ends.model_at(params, self.ends.buffers_at(t))
        if self.bn_update:
            update_bn(net, self.ends.x_train, self.options.batch_size)
        return net

    def point(self, params: State, t: float) -> tuple[dict[str, float], Tensor | None]:
        """train/test loss and accuracy at one point, and its test probabilities."""
        ends, size = self.ends, self.options.eval_batch_size
        net = self.model(params, t)
        train = evaluate_split(net, ends.x_train, ends.y_train, ends.loss, size)
        test = evaluate_split(net, ends.x_test, ends.y_test, ends.loss, size)
        values = {"train_loss": train.loss, "train_acc": train.accuracy, "test_loss": test.loss,
                  "test_acc": test.accuracy}
        return values, test.probabilities


def evaluate_paths(evaluator: PathEvaluator, curve_at: Callable[[float], State], cancel: CancelToken,
                   on_event: EventSink) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]], dict]:
    """Metrics at every t of the grid along the curve and the line, plus the ensemble summary."""
    options, ends = evaluator.options, evaluator.ends
    t_values, ensemble_t = options.t_values, options.ensemble_t
    extra = [t for t in ensemble_t if not np.isclose(t_values, t, atol=1e-12).any()]
    total, clock, done = 2 * len(t_values) + len(extra) + 2, Stopwatch(), 0
    paths = {"curve": curve_at, "line": ends.line_at}
    values: dict[str, dict[str, list[float]]] = {p: {} for p in paths}
    members: dict[float, Tensor] = {}
    for name, at in paths.items():
        for t in t_values:
            cancel.raise_if_cancelled()
            with torch.no_grad():
                point, probabilities = evaluator.point(at(float(t)), float(t))
            for metric, value in point.items():
                values[name].setdefault(metric, []).append(value)
            if name == "curve":
                members[float(t)] = probabilities
            done += 1
            on_event(ProgressEvent(STAGE, done, total, clock(), payload={"path": name, "t": float(t), **point}))
    for t in extra:
        cancel.raise_if_cancelled()
        with torch.no_grad():
            members[float(t)] = evaluator.point(curve_at(float(t)), float(t))[1]
        done += 1
        on_event(ProgressEvent(STAGE, done, total, clock()))
    arrays = {p: {m: np.asarray(v, dtype=np.float64) for m, v in metrics.items()} for p, metrics in values.items()}
    summary = barrier_summary(t_values, arrays)
    summary.update(ensemble_summary(evaluator, members, ensemble_t, t_values))
    summary["bn_updated"] = evaluator.bn_update
    on_event(ProgressEvent(STAGE, total, total, clock()))
    return t_values, arrays, summary


def barrier(t: np.ndarray, values: np.ndarray) -> float:
    """Max over t minus the mean of the two end points' values (Garipov et al.)."""
    ends = (values[np.argmin(t)] + values[np.argmax(t)]) / 2.0
    return float(np.nanmax(values) - ends)


def barrier_summary(t: np.ndarray, arrays: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    return {f"barrier_{path}_{metric}": barrier(t, arrays[path][metric])
            for path in arrays for metric in ("train_loss", "test_loss")}


def ensemble_summary(evaluator: PathEvaluator, members: dict[float, Tensor], ensemble_t: np.ndarray,
                     t_values: np.ndarray) -> dict[str, object]:
    """Each end point's own test accuracy (as trained), A+B averaged, and K curve models averaged."""
    ends = evaluator.ends
    if ends.y_test.dtype.is_floating_point:
        return {}  # regression: no accuracy to ensemble
    own = {}
    for key, run, epoch in (("a", ends.run_a, ends.epoch_a), ("b", ends.run_b, ends.epoch_b)):
        model = run.model(epoch).to(ends.x_test.device)
        own[key] = evaluate_split(model, ends.x_test, ends.y_test, ends.loss, evaluator.options.eval_batch_size)
    out: dict[str, object] = {"a_test_acc": own["a"].accuracy, "b_test_acc": own["b"].accuracy,
                              "ends_ensemble_test_acc": ensemble_accuracy([own["a"].probabilities,
                                                                           own["b"].probabilities], ends.y_test)}
    if len(ensemble_t):
        chosen = [members[_nearest(members, t)] for t in ensemble_t]
        out["ensemble_test_acc"] = ensemble_accuracy(chosen, ends.y_test)
        out["ensemble_t"] = np.asarray([_nearest(members, t) for t in ensemble_t])
    return out


def _nearest(members: dict[float, Tensor], t: float) -> float:
    return min(members, key=lambda s: abs(s - t))
