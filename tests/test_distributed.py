"""Surfaces split over the processes of a torchrun job (gloo, 2 CPU processes here).

The job's result must equal a single-process run bit for bit, and a job killed midway must be
finished by a job with another number of processes (here one) to the same numbers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from engine.cli import main
from engine.errors import ConfigError, RunFileError
from engine.landscape import SurfaceOptions, compute_surface, load_direction_tensors, load_surface
from engine.landscape.distribution.distributed import World, plan_devices, world_from_env
from engine.landscape.distribution.shards import (
    ShardMerger,
    merge_leftover_shards,
    read_pending,
    shard_files,
    shard_path,
)
from engine.landscape.surface import stored_directions

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--x=-1:1:7", "--y=-1:1:5"]
LARGE = ["--x=-1:1:61", "--y=-1:1:61"]  # ~1.5 s per process: long enough to be killed midway


def _torchrun(processes: int, run: Path, grid: list[str], out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command += ["-m", "engine.cli", "surface", str(run), *grid, "--out", str(out)]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _reference(run: Path, grid: list[str], out: Path):
    x, y = (g.split("=", 1)[1] for g in grid)
    return load_surface(compute_surface(run, SurfaceOptions(x=x, y=y), out))


def _assert_same_surface(got, want) -> None:
    assert got.metric_names == want.metric_names
    for name in want.metric_names:
        assert np.array_equal(got.values[name], want.values[name], equal_nan=True), name
    assert got.attrs["directions_sha256"] == want.attrs["directions_sha256"]
    assert got.is_complete


def _computed_in_shards(out: Path) -> list[int]:
    counts = []
    for shard in shard_files(out):
        try:
            with h5py.File(shard, "r", locking=False) as f:
                counts.append(int(np.isfinite(f["point_seconds"][()]).sum()))
        except OSError:  # being created right now
            counts.append(0)
    return counts


def test_torchrun_environment_is_read_and_checked():
    assert world_from_env({}) is None
    assert world_from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None
    env = {"MASTER_ADDR": "node1", "MASTER_PORT": "29500", "WORLD_SIZE": "8", "RANK": "5"}
    assert world_from_env(env | {"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}) == World(5, 8, 1, 4)
    assert world_from_env(env) == World(5, 8, 0, 8)  # unknown node size: assume all on one node
    assert world_from_env(env | {"RANK": "0"}).is_main
    with pytest.raises(ConfigError, match="MASTER_ADDR.*torchrun"):
        world_from_env({k: v for k, v in env.items() if k != "MASTER_ADDR"})
    with pytest.raises(ConfigError, match="RANK = 8 .*0 <= RANK < WORLD_SIZE = 8"):
        world_from_env(env | {"RANK": "8"})
    with pytest.raises(ConfigError, match="WORLD_SIZE = 'two'.*whole number"):
        world_from_env(env | {"WORLD_SIZE": "two"})


def test_each_process_gets_its_own_gpu_and_nccl_only_when_none_is_shared():
    # the CUDA path's decisions; the gloo tests below run everything else of it on CPUs
    assert plan_devices("cpu", World(3, 8, 1, 4), 0) == ("gloo", None)
    assert plan_devices("cuda", World(5, 8, 1, 4), 4) == ("nccl", 1)  # 2 nodes x 4 GPUs: cuda:LOCAL_RANK
    assert plan_devices("cuda", World(3, 4, 3, 4), 2) == ("gloo", 1)  # 4 processes on 2 GPUs share them


def test_two_gloo_processes_compute_the_same_surface_as_one(trained_run, tmp_path):
    out = tmp_path / "two.h5"
    job = _torchrun(2, trained_run, SMALL, out)
    stdout, stderr = job.communicate(timeout=120)
    assert job.returncode == 0, stderr[-3000:]
    assert "35 points to compute by 2 processes" in stderr
    assert stdout.count(f"surface: {out} (2D, 7x5 points") == 1  # only process 0 reports
    assert shard_files(out) == []  # merged and deleted

    got, want = load_surface(out), _reference(trained_run, SMALL, tmp_path / "one.h5")
    _assert_same_surface(got, want)
    stored, expected = load_direction_tensors(out), load_direction_tensors(want.path)
    for axis in expected:
        for name, array in expected[axis].items():
            assert np.array_equal(stored[axis][name], array), (axis, name)


def test_a_killed_two_process_job_is_finished_by_one_process(trained_run, tmp_path, capsys):
    out = tmp_path / "killed.h5"
    job = _torchrun(2, trained_run, LARGE, out)
    deadline = time.monotonic() + 90
    try:
        while not (len(counts := _computed_in_shards(out)) == 2 and min(counts) > 0):
            assert job.poll() is None, job.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the job wrote no points"
            time.sleep(0.02)
    finally:
        job.send_signal(signal.SIGTERM)  # what Ctrl-C or scancel does: torchrun stops its processes
        job.communicate(timeout=60)
    left = _computed_in_shards(out)
    merged = int((~read_pending(out)).sum())
    assert len(left) == 2 and min(left) > 0, left
    assert sum(left) + merged < 61 * 61, "the job finished before it was killed"

    capsys.readouterr()
    assert main(["surface", str(trained_run), *LARGE, "--out", str(out)]) == 0
    assert "already computed" in capsys.readouterr().err
    assert shard_files(out) == []
    _assert_same_surface(load_surface(out), _reference(trained_run, LARGE, tmp_path / "one.h5"))


def test_leftover_shards_are_merged_once_and_foreign_ones_refused(trained_run, tmp_path):
    options = SurfaceOptions(x="-1:1:7", y="-1:1:5")
    out = tmp_path / "s.h5"
    compute_surface(trained_run, options, out, select=lambda todo: [])  # process 0's set-up: no points
    directions = stored_directions(out, trained_run, options)
    for rank, count in ((0, 4), (2, 9)):  # processes 0 and 2 of 3 got this far; process 1 nowhere
        compute_surface(
            trained_run,
            options,
            shard_path(out, rank, 3),
            directions=directions,
            select=lambda todo, r=rank, n=count: todo[r::3][:n],
        )
    want = _reference(trained_run, SMALL, tmp_path / "one.h5")

    assert merge_leftover_shards(out) == 13 and shard_files(out) == []
    partial = load_surface(out)
    assert partial.computed.sum() == 13
    for name in want.metric_names:
        done = partial.computed
        assert np.array_equal(partial.values[name][done], want.values[name][done])
    compute_surface(trained_run, options, out)  # one process computes only the 22 others
    _assert_same_surface(load_surface(out), want)

    # a shard of another surface (other seed, so other directions) next to a new file is refused
    fresh = tmp_path / "fresh.h5"
    compute_surface(trained_run, SurfaceOptions(x="-1:1:7", y="-1:1:5", seed=1), shard_path(fresh, 1, 2))
    with pytest.raises(RunFileError, match=r"fresh\.h5\.rank1-of-2 holds points of another surface"):
        compute_surface(trained_run, options, fresh)
    assert load_surface(fresh).computed.sum() == 0


@pytest.mark.parametrize("damage, expected", [
    (lambda f: (f.__delitem__("train_loss"), f.create_dataset("train_loss", data=np.ones(3))), "has 3 values"),
    (lambda f: (f.__delitem__("point_seconds"), f.create_dataset("point_seconds", data=np.array([b"x"] * 35))),
     "has dtype"),
])
def test_a_damaged_shard_is_named_and_nothing_is_merged(trained_run, tmp_path, damage, expected):
    options = SurfaceOptions(x="-1:1:7", y="-1:1:5", split="train")
    out = tmp_path / "s.h5"
    compute_surface(trained_run, options, out, select=lambda todo: [])
    shard = shard_path(out, 1, 2)
    compute_surface(trained_run, options, shard, directions=stored_directions(out, trained_run, options),
                    select=lambda todo: todo[:6])
    with h5py.File(shard, "a") as f:
        damage(f)
    with pytest.raises(RunFileError, match=r"s\.h5\.rank1-of-2") as caught:
        merge_leftover_shards(out)
    assert expected in str(caught.value)
    assert load_surface(out).computed.sum() == 0 and shard.exists()  # nothing half-merged, nothing deleted


def test_process_0_merges_its_own_open_shard_and_the_others_while_it_computes(trained_run, tmp_path):
    options = SurfaceOptions(x="-1:1:7", y="-1:1:5")
    out = tmp_path / "s.h5"
    compute_surface(trained_run, options, out, select=lambda todo: [])
    directions = stored_directions(out, trained_run, options)
    compute_surface(  # process 1 of 2 is done
        trained_run, options, shard_path(out, 1, 2), directions=directions, select=lambda todo: todo[1::2]
    )
    own = shard_path(out, 0, 2)
    merger, seen = ShardMerger(out, own), []

    def merge_now(event):  # process 0's own shard is open for writing in this very process
        seen.append(len(merger.merge()))

    try:
        compute_surface(
            trained_run, options, own, directions=directions, select=lambda todo: todo[0::2], on_event=merge_now
        )
        # the first event comes before any point of process 0: process 1's 17 points; the later
        # ones bring process 0's points from its open shard, all of them by the last event
        assert seen[0] == 17 and sum(seen) == 35
        assert merger.merge(remove=True) == []
    finally:
        merger.close()
    got = load_surface(out)
    _assert_same_surface(got, _reference(trained_run, SMALL, tmp_path / "one.h5"))
    assert shard_files(out) == [] and got.attrs["evaluator"]  # how process 0 computed, as one process records it


def test_torchrun_processes_on_one_machine_share_its_cores(monkeypatch):
    from engine.device import usable_cores
    from engine.landscape.distribution.distributed import cores_per_process

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torchrun sets it for every process: not a core limit here
    cores = usable_cores({})
    options = SurfaceOptions(x="-1:1:5")
    two_here = World(rank=1, size=4, local_rank=1, local_size=2)
    assert cores_per_process(options, two_here) == max(1, cores // 2)
    assert cores_per_process(SurfaceOptions(x="-1:1:5", workers=1), two_here) == 1  # as given
    assert cores_per_process(options, World(rank=0, size=64, local_rank=0, local_size=64)) == 1
