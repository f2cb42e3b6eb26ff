"""What curvature costs: top-1 Hessian eigenvalue and Hutchinson trace against plain training passes.

    .venv/bin/python benchmarks/bench_hessian.py [--images 1000] [--trace-samples 10] [--device cuda]

On ResNet-20 with ``--images`` CIFAR-shaped inputs (batch norm with trained-looking statistics,
eval mode), runs LossLab's top-1 eigenvalue (Lanczos, scipy eigsh) and Hutchinson trace and,
right after every Hessian-vector product, one plain forward+backward pass over the same images in
the same batches, so that load from other processes hits both alike. Prints the seconds of each,
the number of products, and the ratio: the cost of one Hessian-vector product in units of a
training step's full-data gradient (double backward usually lands at 2-4).
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

from engine.analysis.curvature import CurvatureProblem, top_eigenpairs, trace  # noqa: E402
from engine.curvature.operators import CurvatureOperator  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: wait before reading the clock
        torch.cuda.synchronize(device)


class TimedProblem(CurvatureProblem):
    """Times every Hessian-vector product and pairs it with one timed forward+backward pass."""

    hvp_seconds = fb_seconds = 0.0
    products = 0

    def operator(self, names: list[str] | None = None) -> CurvatureOperator:
        op = super().operator(names)
        product = op.matvec
        op.matvec = lambda v: timed_product(self, product, v)
        return op

    def forward_backward(self) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        for first in range(0, len(self.inputs), self.batch_size):
            x, y = self.inputs[first:first + self.batch_size], self.targets[first:first + self.batch_size]
            loss = nn.functional.cross_entropy(self.model(x), y, reduction="sum") / len(self.inputs)
            torch.autograd.grad(loss, params)


def timed_product(problem: TimedProblem, product, v: torch.Tensor) -> torch.Tensor:
    """One timed Hessian-vector product, then one timed forward+backward pass."""
    holder: list[torch.Tensor] = []
    problem.hvp_seconds += _timed(lambda: holder.append(product(v)), v.device)
    problem.fb_seconds += _timed(problem.forward_backward, v.device)
    problem.products += 1
    print(f"  product {problem.products}: HVPs {problem.hvp_seconds:.1f} s, forward+backward passes "
          f"{problem.fb_seconds:.1f} s", file=sys.stderr, flush=True)
    return holder[0]


def _timed(work, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    work()
    _sync(device)
    return time.perf_counter() - start


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
    problem = TimedProblem(work.model.to(device), work.inputs.to(device), work.labels.to(device), "ce",
                           batch_size=args.batch_size)
    dim = sum(p.numel() for p in problem.parameters().values())
    print(f"ResNet-20, {dim} parameters, {args.images} images 3x32x32, batch {args.batch_size}, "
          f"{args.device}, {torch.get_num_threads()} thread(s)", flush=True)
    top, _ = top_eigenpairs(problem, 1, tol=1e-3)
    eig = (problem.hvp_seconds, problem.fb_seconds, problem.products)
    result = trace(problem, args.trace_samples)
    hvp, fb, products = problem.hvp_seconds, problem.fb_seconds, problem.products
    print(f"top-1 eigenvalue {top[0]:.5g}: {eig[0]:.1f} s, {eig[2]} Hessian-vector products")
    print(f"trace {result['mean']:.5g} ± {result['stderr']:.3g}: {hvp - eig[0]:.1f} s, {products - eig[2]} "
          "Hessian-vector products")
    print(f"{products} plain forward+backward passes over the same images (interleaved): {fb:.1f} s")
    print(f"HVP cost ratio (eigenvalue + trace seconds / same count of forward+backward passes): {hvp / fb:.2f}")


if __name__ == "__main__":
    main()
