"""What curvature costs: top-1 Hessian eigenvalue and Hutchinson trace against plain training passes.

    .venv/bin/python benchmarks/bench_hessian.py [--images 1000] [--trace-samples 10] [--threads N]

On ResNet-20 with ``--images`` CIFAR-shaped inputs (batch norm with trained-looking statistics,
eval mode), times LossLab's top-1 eigenvalue (Lanczos, scipy eigsh) and Hutchinson trace, counts
the Hessian-vector products they used, then times the same number of plain forward+backward
passes over the same images and prints the ratio: the cost of one Hessian-vector product in
units of a training step's gradient (double backward usually lands at 2-4).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
import workloads as wl  # noqa: E402
from torch import nn  # noqa: E402

from engine.analysis.curvature import CurvatureProblem, Progress, top_eigenpairs, trace  # noqa: E402
from engine.events import ProgressEvent  # noqa: E402


def forward_backward_seconds(problem: CurvatureProblem, passes: int) -> float:
    """``passes`` full-data gradients (forward + backward over every image, in the same batches)."""
    params = [p for p in problem.model.parameters() if p.requires_grad]
    _sync(problem.inputs.device)
    start = time.perf_counter()
    for _ in range(passes):
        for first in range(0, len(problem.inputs), problem.batch_size):
            x = problem.inputs[first:first + problem.batch_size]
            y = problem.targets[first:first + problem.batch_size]
            loss = nn.functional.cross_entropy(problem.model(x), y, reduction="sum") / len(problem.inputs)
            torch.autograd.grad(loss, params)
    _sync(problem.inputs.device)
    return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: wait before reading the clock
        torch.cuda.synchronize(device)


class ProductCounter:
    def __init__(self) -> None:
        self.products: dict[str, int] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if event.done < event.total:  # the closing event of a stage repeats the last product
            self.products[event.stage] = max(self.products.get(event.stage, 0), event.done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--trace-samples", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = wl.resnet_workload(20, args.images, points=1)
    device = torch.device(args.device)
    problem = CurvatureProblem(work.model.to(device), work.inputs.to(device), work.labels.to(device), "ce",
                               batch_size=args.batch_size)
    counter = ProductCounter()
    progress = Progress(counter)
    dim = sum(p.numel() for p in problem.parameters().values())
    print(f"ResNet-20, {dim} parameters, {args.images} images 3x32x32, batch {args.batch_size}, "
          f"{args.device}, {torch.get_num_threads()} thread(s)", flush=True)
    start = time.perf_counter()
    top, _ = top_eigenpairs(problem, 1, tol=1e-3, progress=progress)
    eig_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = trace(problem, args.trace_samples, progress=progress)
    trace_seconds = time.perf_counter() - start
    products = sum(counter.products.values())
    fb_seconds = forward_backward_seconds(problem, products)
    print(f"top-1 eigenvalue {top[0]:.5g}: {eig_seconds:.1f} s, {counter.products.get('eigenvalues', 0)} "
          "Hessian-vector products")
    print(f"trace {result['mean']:.5g} ± {result['stderr']:.3g}: {trace_seconds:.1f} s, {args.trace_samples} "
          "Hessian-vector products")
    print(f"{products} plain forward+backward passes over the same images: {fb_seconds:.1f} s")
    ratio = (eig_seconds + trace_seconds) / fb_seconds
    print(f"HVP cost ratio (eigenvalue + trace time / same count of forward+backward passes): {ratio:.2f}")


if __name__ == "__main__":
    main()
