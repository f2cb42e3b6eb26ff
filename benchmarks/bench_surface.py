"""How fast LossLab computes surfaces and trains, relative to the plain ways of doing it.

    .venv/bin/python benchmarks/bench_surface.py [--quick] [--images N] [--compile] [--no-app]

Prints, in one run: grid points/s of LossLab's evaluator against (a) a bare batched eager fp32
forward pass of the same model over the same images and (b) a simplified in-process per-point
loop (in-memory tensors, no per-image decoding, no DataLoader workers - loss-landscape's real
pipeline, in its own process, is in bench_speed.py), for ResNet-20, ResNet-56 and an MLP; the
time until the first complete coarse surface of a 33x33 grid as a fraction of the whole;
training epoch time against a bare PyTorch loop; and the GUI event-loop stall while the app
computes a surface. Then a table of ratios against the targets of issue 5. Timings are
interleaved medians; other processes on the machine slow every method of a round alike, but
the figures still vary from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import product
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
import training_bench  # noqa: E402
import workloads as wl  # noqa: E402

from engine.landscape import ModelSource, SurfaceOptions, compute_surface  # noqa: E402
from engine.landscape.grid import axis_levels  # noqa: E402

TARGETS = {  # issue 5, item 6
    "evaluator / bare eager fp32": 1.0,
    "evaluator / naive loop": 5.0,
    "training / bare loop": 0.9,
}


def evaluator_rows(w: wl.Workload, rounds: int, with_compile: bool) -> list[dict]:
    """points/s of LossLab (fp32 default, and bf16), bare forward and the naive loop, interleaved."""
    points = wl.grid_points(w.points_per_round)
    ours, evaluator, setup = wl.losslab(w)
    half, _, _ = wl.losslab(w, precision="bf16")
    bare_run, naive_run = wl.bare(w, evaluator.batch_size), wl.naive(w)
    methods = {
        "losslab": lambda: ours(points),
        "losslab bf16": lambda: half(points),
        "bare": lambda: bare_run(points),
        "naive": lambda: naive_run(points),
    }
    if with_compile:
        start = time.perf_counter()
        compiled, compiled_eval, _ = wl.losslab(w, compile=True)
        compile_seconds = time.perf_counter() - start
        if compiled_eval.record.compiled:
            methods["losslab compiled"] = lambda: compiled(points)
    seconds = wl.interleaved(methods, rounds)
    rate = {name: len(points) / s for name, s in seconds.items()}
    check = _agreement(ours(points[:2]), naive_run(points[:2]))
    print(f"\n{w.name}: {len(points)} points per round, {rounds} rounds; evaluator set-up {setup:.2f} s")
    print(f"  evaluator: {evaluator.record.to_json()}")
    print(f"  LossLab vs naive loop, same points: largest relative loss difference {check:.1e}")
    for name, value in rate.items():
        print(f"  {name:<18} {value:9.2f} points/s")
    if with_compile:
        print(f"  compile: {compile_seconds:.1f} s set-up ({compiled_eval.record.compile_error or 'ok'})")
    rows = [
        {
            "what": f"{w.name}: evaluator / bare eager fp32",
            "ratio": rate["losslab"] / rate["bare"],
            "target": TARGETS["evaluator / bare eager fp32"],
        },
        {
            "what": f"{w.name}: evaluator / naive loop",
            "ratio": rate["losslab"] / rate["naive"],
            "target": TARGETS["evaluator / naive loop"],
        },
        {
            "what": f"{w.name}: evaluator bf16 / naive loop (option)",
            "ratio": rate["losslab bf16"] / rate["naive"],
            "target": None,
        },
    ]
    if "losslab compiled" in rate:
        rows.append(
            {
                "what": f"{w.name}: compiled evaluator / bare (option)",
                "ratio": rate["losslab compiled"] / rate["bare"],
                "target": None,
            }
        )
    return rows


def _agreement(ours: list[dict], theirs: list[tuple[float, float]]) -> float:
    return max(abs(o["test_loss"] - t[0]) / abs(t[0]) for o, t in zip(ours, theirs))


def coarse_surface_row(folder: Path) -> dict:
    """Time until every stride-8 point of a 33x33 grid is in the file, over the whole job's time
    (a real ``compute_surface`` job: random directions from 50 candidates, both splits)."""
    w = wl.small_resnet_workload()
    half = len(w.raw) // 3 * 2
    data = {"train": (w.inputs[:half], w.labels[:half]), "test": (w.inputs[half:], w.labels[half:])}
    source = ModelSource.from_module(w.model, data, "ce", name="resnet20")
    n = 33
    coarse = set(product(axis_levels(n)[0], axis_levels(n)[0]))
    seen: set = set()
    marks: dict[str, float] = {}
    start = time.perf_counter()

    def watch(event) -> None:
        marks.setdefault("start-up", time.perf_counter() - start)  # directions, file, evaluator
        seen.update(tuple(i) for i in event.payload.get("indices", []))
        if "coarse" not in marks and coarse <= seen:
            marks["coarse"] = time.perf_counter() - start

    options = SurfaceOptions(x=f"-1:1:{n}", y=f"-1:1:{n}")
    compute_surface(source, options, folder / "coarse.h5", on_event=watch)
    total = time.perf_counter() - start
    print(
        f"\nCoarse surface: {w.name}, {n}x{n} grid, both splits: stride-8 sub-grid ({len(coarse)} of "
        f"{n * n} points) complete after {marks['coarse']:.2f} s (start-up {marks['start-up']:.2f} s) "
        f"of {total:.2f} s"
    )
    return {
        "what": f"first coarse surface (33x33, {len(coarse)} pts) / total time",
        "ratio": marks["coarse"] / total,
        "target": 0.05,
        "lower_is_better": True,
    }


def thread_rows(rounds: int) -> list[dict]:
    """LossLab's evaluator on 1 and on 2 torch threads (the machine's cores), interleaved."""
    rows = []
    for w in (wl.resnet_workload(20, 256, 1), wl.mlp_workload(100)):
        points = wl.grid_points(w.points_per_round)
        run, _, _ = wl.losslab(w)

        def on(threads: int, run=run, points=points) -> None:
            torch.set_num_threads(threads)
            run(points)

        seconds = wl.interleaved({"1": lambda on=on: on(1), "2": lambda on=on: on(2)}, rounds)
        torch.set_num_threads(1)
        print(
            f"\nThreads, {w.name}: 1 thread {len(points) / seconds['1']:.2f} points/s, "
            f"2 threads {len(points) / seconds['2']:.2f} points/s"
        )
        rows.append(
            {
                "what": f"{w.name}: 2 threads / 1 thread (informative)",
                "ratio": seconds["1"] / seconds["2"],
                "target": None,
            }
        )
    return rows


def training_rows(quick: bool) -> list[dict]:
    rows = []
    cases = [("mlp", [256, 256], 12)] + ([] if quick else [("resnet20", None, 4)])
    for arch, hidden, epochs in cases:
        cfg = training_bench.config(arch, epochs=epochs, hidden=hidden)
        ours, bare = training_bench.compare(cfg, rounds=3)
        name = f"{arch}{'-' + '-'.join(map(str, hidden)) if hidden else ''} on digits, batch 64"
        print(f"\nTraining {name}: LossLab {ours:.3f} s/epoch, bare loop {bare:.3f} s/epoch")
        rows.append(
            {
                "what": f"training {name}: speed / bare loop",
                "ratio": bare / ours,
                "target": TARGETS["training / bare loop"],
            }
        )
    return rows


def app_stall_rows(folder: Path, seconds: float) -> list[dict]:
    """The event-loop stall of the whole main window under Xvfb (the app as a user sees it), and of
    the surface panel alone off-screen (worker and engine without the 3D views' rendering)."""
    try:
        import PySide6.QtWidgets  # noqa: F401
    except ImportError:
        print("\nUI stall: skipped (Qt is not importable)")
        return []
    run = folder / "app-run.h5"
    from engine.training import train

    train(training_bench.config("mlp", epochs=2, hidden=[128, 128]), run, device="cpu", overwrite=True)
    script = [sys.executable, str(ROOT / "benchmarks" / "app_stall.py"), str(run), "65", str(seconds)]
    variants = [("offscreen", script, {"QT_QPA_PLATFORM": "offscreen"})]
    if shutil.which("xvfb-run"):
        variants.insert(0, ("xvfb", ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", *script], {}))
    else:
        print("\nUI stall: xvfb-run not found, so the main window (3D views need X) is not measured")
    rows = []
    for kind, command, extra in variants:
        env = os.environ | {"QT_API": "pyside6", "LOSSLAB_SETTINGS": str(folder / "settings.ini")} | extra
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=folder)
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if result.returncode != 0 or not lines:
            print(
                f"\nUI stall ({kind}): the app subprocess failed ({result.returncode}): "
                f"{result.stderr[-800:]}"
            )
            continue
        stall = json.loads(lines[-1])
        print(
            f"\nUI stall while the app computes a 65x65 surface ({stall['window']}, "
            f"{stall['ticks']:.0f} ticks of 10 ms, {stall['updates']} view updates, job running throughout: "
            f"{stall['job_running_throughout']}): p50 {stall['p50_ms']:.1f} ms, "
            f"p99 {stall['p99_ms']:.1f} ms, max {stall['max_ms']:.1f} ms"
        )
        rows.append(
            {
                "what": f"UI stall p99 during a surface job: {stall['window']}",
                "ratio": stall["p99_ms"],
                "target": 50.0,
                "lower_is_better": True,
                "unit": "ms",
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    width = max(len(row["what"]) for row in rows)
    rule = width + 34
    print("\n" + "=" * rule)
    print(f"{'measure':<{width}} {'value':>9} {'target':>9}  result")
    print("-" * rule)
    for row in rows:
        value, target, verdict = _cells(row)
        print(f"{row['what']:<{width}} {value:>9} {target:>9}  {verdict}")
    print("=" * rule)


def _cells(row: dict) -> tuple[str, str, str]:
    """(value, target, PASS | MISS | no target) as printed; fractions of time in percent."""
    unit, lower = row.get("unit", "x"), row.get("lower_is_better", False)
    percent = lower and unit == "x"
    value = f"{100 * row['ratio']:.1f}%" if percent else f"{row['ratio']:.3g}{unit}"
    if row["target"] is None:
        return value, "-", "(no target)"
    met = row["ratio"] <= row["target"] if lower else row["ratio"] >= row["target"]
    shown = f"{100 * row['target']:.0f}%" if percent else f"{row['target']:g}{unit}"
    return value, f"{'<=' if lower else '>='}{shown}", "PASS" if met else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds (about 1-2 minutes)")
    parser.add_argument(
        "--images", type=int, default=0, help="images per ResNet workload (default 512, quick 256)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile on ResNet-20 (~1 min)"
    )
    parser.add_argument("--no-app", action="store_true", help="skip the GUI stall measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)  # what LossLab chooses for these models on this machine (see README)
    images = args.images or (256 if args.quick else 512)
    rounds = 3 if args.quick else 5
    began = time.perf_counter()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPU cores, 1 torch thread, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    rows = []
    rows += evaluator_rows(wl.resnet_workload(20, images, 2), rounds, args.compile)
    rows += evaluator_rows(wl.resnet_workload(56, images, 1), rounds, False)
    rows += evaluator_rows(wl.mlp_workload(100 if args.quick else 200), rounds, False)
    rows += evaluator_rows(wl.pixels_mlp_workload(10 if args.quick else 20), rounds, False)
    rows += thread_rows(rounds)
    with tempfile.TemporaryDirectory() as folder:
        rows.append(coarse_surface_row(Path(folder)))
        rows += training_rows(args.quick)
        if not args.no_app:
            rows += app_stall_rows(Path(folder), 3.0 if args.quick else 5.0)
    print(f"\nTotal {time.perf_counter() - began:.0f} s; load average {os.getloadavg()[0]:.1f} at the end")
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
