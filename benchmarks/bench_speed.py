"""LossLab's surface evaluation against loss-landscape's real pipeline, whole process, equal work.

    .venv/bin/python benchmarks/bench_speed.py            # ~3-4 minutes on an idle 2-core machine
    .venv/bin/python benchmarks/bench_speed.py --quick    # smoke run, ~2 minutes

The baseline reproduces loss-landscape's ``plot_surface.py`` evaluation (Li et al. 2018) in its
own process: a torchvision ``CIFAR10`` dataset object over uint8 HxWxC images stored in CIFAR's
own batch format, decoding and normalising each image (``ToTensor`` + ``Normalize`` with
CIFAR-10's mean/std), ``DataLoader(batch_size=128, num_workers=2, pin_memory=True)`` iterated
anew for every point, weights set per point as ``p.data = w + a*d + b*e``, ``model.eval()`` under
``no_grad``, cross-entropy summed per batch, the loss and accuracy arrays written to HDF5 after
every point, torch's default thread count. LossLab runs ``compute_surface`` with its defaults
(plus ``--precision bf16``) in its own process on the same model, directions, points and
images (stored once as a normalised float tensor, as a LossLab run file stores them).

Printed in one run: seconds per point of both, whole process, for ResNet-20 and ResNet-56;
LossLab's evaluator against a bare batched eager forward pass; points/s with 1 and 2 workers and
the parallel efficiency; default workers against one worker while another process keeps a core
busy; the time to the first complete coarse surface; the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CIFAR_MEAN = [x / 255.0 for x in (125.3, 123.0, 113.9)]  # loss-landscape's cifar10 normalisation
CIFAR_STD = [x / 255.0 for x in (63.0, 62.1, 66.7)]
TARGETS = {"fp32": 2.5, "bf16": 6.0, "efficiency": 0.85}


# ---- set-up: CIFAR-format images, a model with trained-looking batch norm, directions -------------
def write_cifar_folder(root: Path, images: int, seed: int = 0) -> None:
    """uint8 images and labels in CIFAR-10's python batch format (what torchvision's CIFAR10 reads)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batch = {"data": rng.integers(0, 256, (images, 3072), dtype=np.uint8),
             "labels": rng.integers(0, 10, images).tolist()}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))


def cifar_dataset(root: Path):  # noqa: ANN201 - torchvision type
    """torchvision's own CIFAR10 class over the folder (integrity hashes of the real files dropped)."""
    import torchvision
    from torchvision import transforms

    class LocalCIFAR10(torchvision.datasets.CIFAR10):
        train_list = [["data_batch_1", None]]
        test_list = []
        meta = {"filename": "batches.meta", "key": "label_names", "md5": None}

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])
    return LocalCIFAR10(root=str(root), train=True, download=False, transform=transform)


def prepare(work: Path, depth: int, images: int) -> None:
    """Model state, directions and LossLab's tensor copy of the images, shared by every process."""
    import torch
    import workloads as wl

    from engine.landscape import ParamVector
    from engine.landscape.directions.build import random_direction
    from engine.models.resnet import CifarResNet

    write_cifar_folder(work / "cifar", images)
    torch.manual_seed(depth)
    model = wl.with_trained_batch_norm(CifarResNet(depth, 10), seed=depth)
    origin = ParamVector.from_module(model)
    x = random_direction(origin, 0, 0, "filter", "biasbn")
    y = random_direction(origin, 0, 1, "filter", "biasbn")
    torch.save({"state": model.state_dict(), "x": dict(x), "y": dict(y)}, work / f"resnet{depth}.pt")
    dataset = cifar_dataset(work / "cifar")
    inputs = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor(dataset.targets, dtype=torch.int64)
    torch.save({"inputs": inputs, "labels": labels}, work / "tensors.pt")


def grid(n: int) -> list[float]:
    return [-1.0 + 2.0 * k / (n - 1) for k in range(n)] if n > 1 else [0.0]


# ---- the two processes ------------------------------------------------------------------------
def baseline_role(work: Path, depth: int, n: int, out: Path) -> dict:
    """loss-landscape's crunch loop (plot_surface.py), in its single-process form."""
    import h5py
    import numpy as np
    import torch
    from torch import nn

    from engine.models.resnet import CifarResNet

    saved = torch.load(work / f"resnet{depth}.pt", weights_only=True)
    net = CifarResNet(depth, 10)
    net.load_state_dict(saved["state"])
    names = [name for name, _ in net.named_parameters()]
    weights = [p.data.clone() for p in net.parameters()]
    dx, dy = [saved["x"][k] for k in names], [saved["y"][k] for k in names]
    loader = torch.utils.data.DataLoader(cifar_dataset(work / "cifar"), batch_size=128, shuffle=False,
                                         num_workers=2, pin_memory=True)
    xs = ys = np.array(grid(n))
    losses, accuracies = -np.ones((n, n)), -np.ones((n, n))
    criterion = nn.CrossEntropyLoss()
    finished = []  # seconds since the start of the loop at which each point was written
    start = time.perf_counter()
    with h5py.File(out, "w") as f:
        f["xcoordinates"], f["ycoordinates"] = xs, ys
        f["train_loss"], f["train_acc"] = losses, accuracies
        for ind in range(n * n):
            coord = (xs[ind % n], ys[ind // n])
            changes = [d0 * coord[0] + d1 * coord[1] for d0, d1 in zip(dx, dy)]
            for p, w, d in zip(net.parameters(), weights, changes):
                p.data = w + torch.Tensor(d).type(type(w))
            loss, acc = _eval_loss(net, criterion, loader)
            losses.ravel()[ind], accuracies.ravel()[ind] = loss, acc
            f["train_loss"][:] = losses
            f["train_acc"][:] = accuracies
            f.flush()
            finished.append(time.perf_counter() - start)
    flushes = [(seconds, done) for done, seconds in enumerate(finished, 1)]
    return {"losses": losses.tolist(), "threads": torch.get_num_threads(), "flushes": flushes}


def _eval_loss(net, criterion, loader) -> tuple[float, float]:  # noqa: ANN001
    """loss-landscape's evaluation.eval_loss for cross-entropy."""
    import torch

    correct, total_loss, total = 0, 0.0, 0
    net.eval()
    with torch.no_grad():
        for inputs, targets in loader:
            batch_size = inputs.size(0)
            total += batch_size
            outputs = net(inputs)
            total_loss += criterion(outputs, targets).item() * batch_size
            _, predicted = torch.max(outputs.data, 1)
            correct += predicted.eq(targets).sum().item()
    return total_loss / total, 100.0 * correct / total


def losslab_role(work: Path, depth: int, n: int, out: Path, precision: str, workers: int, threads: int) -> dict:
    """``compute_surface`` with its defaults on the same model, directions, points and images."""
    import torch

    from engine.landscape import Directions, ModelSource, ParamVector, SurfaceOptions, compute_surface
    from engine.landscape.evaluation.runner import tune_allocator
    from engine.landscape.grid import axis_levels
    from engine.models.resnet import CifarResNet

    tune_allocator()  # as `losslab surface` does
    saved = torch.load(work / f"resnet{depth}.pt", weights_only=True)
    tensors = torch.load(work / "tensors.pt", weights_only=True)
    model = CifarResNet(depth, 10)
    model.load_state_dict(saved["state"])
    origin = ParamVector.from_module(model)
    directions = Directions("random", origin, [ParamVector(saved["x"])], ParamVector(saved["y"]))
    source = ModelSource.from_module(model, {"train": (tensors["inputs"], tensors["labels"])}, "ce")
    axis = f"-1:1:{n}"
    options = SurfaceOptions(x=axis, y=axis, split="train", precision=precision, workers=workers, threads=threads)
    coarse = len(axis_levels(n)[0]) ** 2
    start, first_coarse, flushes = time.perf_counter(), None, []

    def track(event) -> None:  # noqa: ANN001
        nonlocal first_coarse
        if event.payload:
            flushes.append((time.perf_counter() - start, event.done))
            if first_coarse is None and event.done >= coarse:
                first_coarse = time.perf_counter() - start

    compute_surface(source, options, out, directions=directions, on_event=track)
    from engine.landscape import load_surface

    surface = load_surface(out)
    return {"compute": time.perf_counter() - start, "first_coarse": first_coarse, "flushes": flushes,
            "losses": surface.values["train_loss"].tolist(), "evaluator": surface.attrs["evaluator"]}


def run_process(args: list[str]) -> tuple[float, dict]:
    """Whole-process seconds (interpreter start to exit) and the process's JSON result."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


# ---- the measurements -------------------------------------------------------------------------
def compare(work: Path, depth: int, n: int) -> dict:
    base = ["--work", str(work), "--depth", str(depth), "--n", str(n)]
    results = {}
    results["baseline"] = run_process(["--role", "baseline", *base, "--out", str(work / f"ll{depth}.h5")])
    for precision in ("fp32", "bf16"):
        out = work / f"losslab{depth}-{precision}.h5"
        out.unlink(missing_ok=True)
        results[precision] = run_process(["--role", "losslab", *base, "--out", str(out), "--precision", precision])
    points = n * n
    print(f"\nResNet-{depth}, {points} points ({n}x{n}), whole process, equal work:")
    base_s = results["baseline"][0]
    print(f"  loss-landscape pipeline : {base_s:7.1f} s  {base_s / points:6.2f} s/point"
          f"  ({results['baseline'][1]['threads']} torch threads)")
    rows = []
    for precision in ("fp32", "bf16"):
        seconds, info = results[precision]
        error = _largest_difference(info["losses"], results["baseline"][1]["losses"])
        ratio = base_s / seconds
        print(f"  LossLab defaults {precision:<6} : {seconds:7.1f} s  {seconds / points:6.2f} s/point  "
              f"{ratio:5.2f}x  (largest relative loss difference vs baseline {error:.1e})")
        print(f"      evaluator {info['evaluator']}")
        rows.append((f"ResNet-{depth}: LossLab {precision} / loss-landscape pipeline", ratio, TARGETS[precision]))
    base_rate = second_half_rate(results["baseline"][1]["flushes"], points)
    for precision in ("fp32", "bf16"):
        rate = second_half_rate(results[precision][1]["flushes"], points)
        print(f"  second half of the grid (start-up over): LossLab {precision} {rate:.2f} points/s, "
              f"loss-landscape {base_rate:.2f} points/s: {rate / base_rate:.2f}x")
        rows.append((f"ResNet-{depth}: same, second half of the grid, {precision} (start-up over)",
                     rate / base_rate, None))
    info = results["fp32"][1]
    if info["first_coarse"] is not None:
        print(f"  first complete coarse surface after {info['first_coarse']:.1f} s of "
              f"{info['compute']:.1f} s computing ({100 * info['first_coarse'] / info['compute']:.0f} %)")
    return {"rows": rows, "first_coarse": info["first_coarse"], "compute": info["compute"]}


def second_half_rate(flushes: list, points: int) -> float:
    """points/s between the first write at or past half the grid and the last write: the rate once
    every process has started. ``flushes`` holds (seconds, points done) pairs, one per write."""
    pairs = sorted(tuple(pair) for pair in flushes)
    half = next(k for k, (_, done) in enumerate(pairs) if done >= points / 2)
    (t0, d0), (t1, d1) = pairs[half], pairs[-1]
    return (d1 - d0) / (t1 - t0) if t1 > t0 else float("nan")


def _largest_difference(a: list, b: list) -> float:
    """Largest relative difference of two loss grids (the baseline sums batch means, LossLab sums
    per-sample losses in float64: fp32 agrees to ~1e-6)."""
    import numpy as np

    a, b = np.array(a), np.array(b)
    return float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def scaling(work: Path, depth: int, n: int) -> list[tuple[str, float, float | None]]:
    """points/s with 1 and 2 workers (the same grid), steady state after the first write."""
    base = ["--work", str(work), "--depth", str(depth), "--n", str(n)]
    rates = {}
    print(f"\nResNet-{depth}, {n * n} points: points/s against workers (x threads each)")
    for workers, threads in ((1, 1), (2, 1), (1, 2)):
        out = work / f"workers{workers}x{threads}.h5"
        out.unlink(missing_ok=True)
        _, info = run_process(["--role", "losslab", *base, "--out", str(out), "--workers", str(workers),
                               "--threads", str(threads)])
        (t0, done0), (t1, done1) = info["flushes"][0], info["flushes"][-1]
        steady = (done1 - done0) / (t1 - t0) if t1 > t0 else float("nan")
        rates[workers, threads] = steady
        print(f"  {workers} worker(s) x {threads} thread(s): {n * n / info['compute']:6.2f} points/s including "
              f"start-up, {steady:6.2f} after the first write")
    efficiency = rates[2, 1] / (2 * rates[1, 1])
    print(f"  parallel efficiency at 2 workers: {100 * efficiency:.0f} %; 1 worker x 2 threads "
          f"{100 * rates[1, 2] / (2 * rates[1, 1]):.0f} %")
    return [(f"ResNet-{depth}: parallel efficiency at 2 workers", efficiency, TARGETS["efficiency"]),
            (f"ResNet-{depth}: 2 workers / 1 worker x 2 threads", rates[2, 1] / rates[1, 2], 1.0)]


def with_busy_core(work: Path, depth: int, n: int) -> list[tuple[str, float, float | None]]:
    """Default workers against one worker while another process keeps one core busy."""
    base = ["--work", str(work), "--depth", str(depth), "--n", str(n)]
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        seconds = {}
        for workers in (1, 0):
            out = work / f"busy{workers}.h5"
            out.unlink(missing_ok=True)
            _, info = run_process(["--role", "losslab", *base, "--out", str(out), "--workers", str(workers)])
            seconds[workers] = info["compute"]
    finally:
        spinner.kill()
        spinner.wait()
    ratio = seconds[1] / seconds[0]
    print(f"\nResNet-{depth}, {n * n} points, one core kept busy by another process: 1 worker "
          f"{seconds[1]:.1f} s, default workers {seconds[0]:.1f} s ({ratio:.2f}x)")
    return [(f"ResNet-{depth}, other core busy: default workers / 1 worker", ratio, 1.0)]


def evaluator_vs_bare(depth: int, images: int) -> list[tuple[str, float, float | None]]:
    """LossLab's evaluator against a bare batched eager fp32 forward, in this process, one thread."""
    import torch
    import workloads as wl

    torch.set_num_threads(1)
    w = wl.resnet_workload(depth, images, 3)
    points = wl.grid_points(w.points_per_round)
    ours, evaluator, _ = wl.losslab(w)
    bare_run = wl.bare(w, evaluator.batch_size)
    seconds = wl.interleaved({"losslab": lambda: ours(points), "bare": lambda: bare_run(points)}, 3)
    ratio = seconds["bare"] / seconds["losslab"]
    print(f"\nResNet-{depth}, {images} images, one thread: evaluator {len(points) / seconds['losslab']:.2f} "
          f"points/s, bare eager forward {len(points) / seconds['bare']:.2f} points/s: {ratio:.2f}x")
    return [(f"ResNet-{depth}: evaluator / bare eager fp32 forward", ratio, 1.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer images and points")
    parser.add_argument("--images", type=int, default=None, help="CIFAR-sized images (default 1000; quick 256)")
    parser.add_argument("--role", choices=("baseline", "losslab"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "baseline":
        print(json.dumps(baseline_role(args.work, args.depth, args.n, args.out)))
        return
    if args.role == "losslab":
        print(json.dumps(losslab_role(args.work, args.depth, args.n, args.out, args.precision, args.workers,
                                      args.threads)))
        return
    run_all(args.quick, args.images or (256 if args.quick else 1000))


def run_all(quick: bool, images: int) -> None:
    started, load_before = time.perf_counter(), os.getloadavg()
    print(f"bench_speed: {images} CIFAR-sized images, {os.cpu_count()} CPUs, load average "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} (1, 5, 15 min)")
    rows, plan = [], [(20, 3 if quick else 5), (56, 2 if quick else 3)]
    with tempfile.TemporaryDirectory(prefix="losslab-bench-") as tmp:
        for depth, n in plan:
            work = Path(tmp) / f"r{depth}"
            work.mkdir()
            prepare(work, depth, images)
            rows += compare(work, depth, n)["rows"]
            if depth == 20:
                rows += scaling(work, depth, 4 if quick else 5)
                rows += with_busy_core(work, depth, 3 if quick else 5)
    rows += evaluator_vs_bare(20, 128 if quick else 512)
    load_after = os.getloadavg()
    print("\n| measure | value | target |\n|---|---|---|")
    for what, value, target in rows:
        unit = f"{100 * value:.0f} %" if "efficiency" in what else f"{value:.2f}x"
        if target is None:
            print(f"| {what} | {unit} | (information) |")
            continue
        want = f"{100 * target:.0f} %" if "efficiency" in what else f"{target:g}x"
        print(f"| {what} | {unit} | >= {want} {'PASS' if value >= target else 'MISS'} |")
    print(f"\nload average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min; 2 cores = fully busy "
          f"at 2.0); {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
