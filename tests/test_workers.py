"""Surfaces evaluated by several worker processes: the same bits as one process, crash-safe, cancellable.

Workers are pinned explicitly (``workers=2``): the default (one per usable core, started only
when the job is long enough) serves a workstation, and these grids are tiny.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from landscape_fixtures import ConvBN, digit_images, train_states, trained_mlp_source, wide_mlp_source

from engine.device import usable_cores
from engine.events import Cancelled, CancelToken
from engine.landscape import ModelSource, SurfaceOptions, compute_surface, load_surface
from engine.landscape.distribution.pool import plan_workers

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
GRID = {"x": "-1:1:9", "y": "-1:1:7", "candidates": 4}
# More workers than usable cores is refused (no oversubscription); OMP_NUM_THREADS=1 counts as one core.
two_cores = pytest.mark.skipif(usable_cores() < 2, reason="needs 2 usable cores for 2 workers")


def _same(got, want) -> None:
    assert got.metric_names == want.metric_names
    for name in want.metric_names:
        assert np.array_equal(got.values[name], want.values[name], equal_nan=True), name
    assert got.is_complete and want.is_complete


def _evaluator(surface) -> dict:
    return json.loads(surface.attrs["evaluator"])


def conv_source() -> ModelSource:
    data = digit_images(120, 60)
    model = ConvBN(seed=1)
    states = train_states(model, {s: (x, y) for s, (x, y) in data.items()}, epochs=2, lr=0.1)
    return ModelSource.from_module(model, data, "ce", states, name="convbn")


@two_cores
@pytest.mark.parametrize("make_source", [trained_mlp_source, conv_source], ids=["mlp", "convbn"])
def test_two_workers_give_the_same_bits_as_one_process(make_source, tmp_path):
    source = make_source()
    one = load_surface(compute_surface(source, SurfaceOptions(**GRID, workers=1), tmp_path / "one.h5"))
    two = load_surface(compute_surface(source, SurfaceOptions(**GRID, workers=2), tmp_path / "two.h5"))
    _same(two, one)
    assert _evaluator(one)["workers"] == 1 and _evaluator(two)["workers"] == 2
    assert _evaluator(two)["threads"] == 1
    assert int(two.attrs["workers"]) == 2  # the option as given, next to what was used


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


KILL_OPTIONS = {"x": "-1:1:15", "y": "-0.5:0.5:11", "candidates": 4}
KILL_SCRIPT = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from landscape_fixtures import wide_mlp_source
from engine.landscape import SurfaceOptions, compute_surface
def report(event):
    if event.payload:
        print("written", event.done, flush=True)
compute_surface(wide_mlp_source(), SurfaceOptions(**{KILL_OPTIONS!r}, workers=2), sys.argv[1], on_event=report)
print("finished", flush=True)
"""


@two_cores
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_two_worker_job_resumes_to_the_uninterrupted_surface(tmp_path):
    out = tmp_path / "killed.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    job = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out)], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = job.stdout.readline()
        assert line.startswith("written"), line + job.stderr.read()
        workers = _children(job.pid)
        assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
    finally:
        if job.poll() is None:
            job.kill()
        job.stdout.close()
        job.stderr.close()
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in workers if Path(f"/proc/{pid}/stat").exists()
             and ") Z" not in Path(f"/proc/{pid}/stat").read_text()]
    assert not alive, "worker processes outlived their killed parent"
    partial = load_surface(out)
    assert not partial.is_complete
    resumed = load_surface(compute_surface(wide_mlp_source(), SurfaceOptions(**KILL_OPTIONS, workers=1), out))
    reference = compute_surface(wide_mlp_source(), SurfaceOptions(**KILL_OPTIONS, workers=1), tmp_path / "ref.h5")
    _same(resumed, load_surface(reference))


@two_cores
def test_cancel_leaves_a_valid_partial_file_that_resumes(tmp_path):
    source = wide_mlp_source()
    options = SurfaceOptions(**KILL_OPTIONS, workers=2)
    token, out = CancelToken(), tmp_path / "cancelled.h5"

    def cancel_after_first_write(event) -> None:
        if event.payload:
            token.cancel()

    with pytest.raises(Cancelled):
        compute_surface(source, options, out, on_event=cancel_after_first_write, cancel=token)
    partial = load_surface(out)
    done = np.isfinite(partial.values["train_loss"])
    assert 0 < done.sum() < done.size
    assert _evaluator(partial)["workers"] == 2
    resumed = load_surface(compute_surface(source, SurfaceOptions(**KILL_OPTIONS, workers=1), out))
    reference = load_surface(compute_surface(source, SurfaceOptions(**KILL_OPTIONS, workers=1), tmp_path / "r.h5"))
    _same(resumed, reference)


def test_worker_plan_follows_cores_points_and_overrides():
    assert plan_workers(0, 0, "cpu", 1000, cores=8).workers == 8
    assert plan_workers(0, 0, "cpu", 3, cores=8).workers == 3  # never more than points
    assert plan_workers(0, 2, "cpu", 1000, cores=8) == plan_workers(4, 2, "cpu", 1000, cores=8)
    assert plan_workers(3, 0, "cpu", 1000, cores=8).workers == 3  # --workers wins
    assert plan_workers(0, 0, "cuda", 1000, cores=8).workers == 1  # GPUs: torchrun, one process each
    assert plan_workers(0, 0, "cpu", 1000, bytes_per_worker=1 << 60, cores=8).workers == 1
    assert plan_workers(0, 0, "cpu", 1000).workers == usable_cores()


def test_usable_cores_reads_the_cgroup_quota_and_omp_num_threads(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert usable_cores({}, tmp_path) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cores({}, tmp_path) == len(os.sched_getaffinity(0))
    assert usable_cores({"OMP_NUM_THREADS": "1"}, tmp_path) == 1


@two_cores
def test_default_workers_take_over_from_the_parent_with_the_same_bits(tmp_path, monkeypatch):
    """The default (workers = 0) starts in this process and hands the rest to workers once they
    are ready; the parent is slowed down here so that the hand-over surely happens mid-job."""
    from engine.landscape.distribution import pool

    original = pool.evaluate_chunk

    def slow_parent(evaluator, chunk):  # noqa: ANN001, ANN202 - workers run the original
        time.sleep(0.3)
        return original(evaluator, chunk)

    monkeypatch.setattr(pool, "evaluate_chunk", slow_parent)
    monkeypatch.setattr(pool, "PARALLEL_MIN_SECONDS", 0.0)
    messages = []
    source = wide_mlp_source()
    out = compute_surface(source, SurfaceOptions(**KILL_OPTIONS), tmp_path / "auto.h5",
                          on_event=lambda event: messages.append(event.message))
    auto = load_surface(out)
    assert any("starting 2 worker processes" in m for m in messages if m)
    assert _evaluator(auto)["workers"] == 2
    reference = compute_surface(source, SurfaceOptions(**KILL_OPTIONS, workers=1), tmp_path / "one.h5")
    _same(auto, load_surface(reference))
