"""The engine bridge: jobs run in order on one background thread, each reports through its own
handle's signals and state, pauses or cancels at a safe point with valid files, and the GUI
event loop stays responsive.

Run under a display like the other GUI tests:
QT_API=pyside6 xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest tests/test_worker.py
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

os.environ.setdefault("QT_API", "pyside6")

from app.stall_probe import measure_event_loop_stall  # noqa: E402
from app.worker import Job, JobRunner, JobState, describe_error, preload_engine_libraries  # noqa: E402
from engine.config import ExperimentConfig  # noqa: E402
from engine.errors import ConfigError, DataError  # noqa: E402
from engine.events import Cancelled, ProgressEvent  # noqa: E402
from engine.landscape.options import SurfaceOptions  # noqa: E402
from engine.landscape.surface import compute_surface  # noqa: E402
from engine.storage.run import load_run  # noqa: E402
from engine.storage.surface_file import load_surface  # noqa: E402
from engine.training import train  # noqa: E402

preload_engine_libraries()  # at collection: before any test of the session opens a GL context
pytestmark = pytest.mark.gui


@pytest.fixture
def worker(qtbot):
    w = JobRunner()
    yield w
    assert w.shutdown(30000)


def test_jobs_run_in_order_off_the_gui_thread(qtbot, worker) -> None:
    seen: list[tuple[str, bool]] = []
    gui_thread = threading.get_ident()
    gate = threading.Event()  # holds the first job until all three are queued

    def make(name: str):
        def run(on_event, cancel):
            gate.wait(10)
            seen.append((name, threading.get_ident() != gui_thread))
            on_event(ProgressEvent("test", 1, 1, 0.0, payload={"name": name}))
            return name
        return Job("test", name, run)

    results: list[str] = []
    jobs = [worker.submit(make(n)) for n in ("a", "b", "c")]
    for job in jobs:
        job.finished.connect(results.append)
    assert worker.busy and [j.state for j in jobs] == [JobState.IDLE] * 3
    with qtbot.waitSignal(worker.idle, timeout=10000):
        gate.set()
    assert results == ["a", "b", "c"]
    assert seen == [("a", True), ("b", True), ("c", True)]
    assert [j.id for j in jobs] == sorted(j.id for j in jobs)
    assert [j.state for j in jobs] == [JobState.FINISHED] * 3 and [j.result for j in jobs] == ["a", "b", "c"]
    assert [j.last_event.payload["name"] for j in jobs] == ["a", "b", "c"]  # each saw only its own events
    assert not worker.busy


def test_failures_reach_the_gui_with_field_and_file(qtbot, worker) -> None:
    def bad_config(on_event, cancel):
        raise ConfigError("bias.fraction", 1.5, "a number in [0.0, 1.0]", "exp.toml")

    def crash(on_event, cancel):
        raise ZeroDivisionError("boom")

    failures = []
    for title, run in (("config", bad_config), ("crash", crash)):
        job = worker.submit(Job("test", title, run))
        job.failed.connect(lambda error, job=job: failures.append((job.title, error)))
    done = []
    after = worker.submit(Job("test", "after", lambda on_event, cancel: "still alive"))
    after.finished.connect(done.append)
    qtbot.waitUntil(lambda: done == ["still alive"], timeout=10000)
    (t1, e1), (t2, e2) = failures
    assert t1 == "config" and "1.5" in e1.message and e1.where == "field bias.fraction in exp.toml"
    assert t2 == "crash" and e2.message == "ZeroDivisionError: boom" and "Traceback" in e2.details
    assert describe_error(DataError("'/x': no data files")).message == "'/x': no data files"


def test_cancel_a_queued_job_never_runs_it(qtbot, worker) -> None:
    release = threading.Event()
    ran: list[str] = []

    def slow(on_event, cancel):
        release.wait(10)
        return "slow"

    first = worker.submit(Job("test", "slow", slow))
    queued = worker.submit(Job("test", "queued", lambda e, c: ran.append("queued")))
    cancelled = []
    queued.cancelled.connect(lambda: cancelled.append(queued.title))
    queued.cancel()
    assert cancelled == ["queued"] and queued.state is JobState.CANCELLED  # at once, not after "slow"
    release.set()
    qtbot.waitUntil(lambda: first.state is JobState.FINISHED and not worker.busy, timeout=10000)
    assert ran == [] and queued.state is JobState.CANCELLED


def held_until_gui_cancels(on_event, cancel, when):
    """An event sink that, after an event matching ``when``, waits until the GUI has cancelled:
    the test then does not depend on how fast the job runs compared with the event loop."""
    def sink(event: ProgressEvent) -> None:
        on_event(event)
        deadline = time.monotonic() + 30
        while when(event) and not cancel.cancelled:
            assert time.monotonic() < deadline, "the GUI did not cancel"
            time.sleep(0.005)

    return sink


def test_cancelled_training_leaves_a_valid_resumable_run(qtbot, worker, quick_config, tmp_path) -> None:
    cfg: ExperimentConfig = quick_config(train={"epochs": 6})
    out = tmp_path / "run.h5"

    def run(on_event, cancel):
        sink = held_until_gui_cancels(on_event, cancel, lambda e: e.payload.get("epoch") == 2)
        return train(cfg, out, on_event=sink, cancel=cancel)

    job = Job("train", "train", run, out)
    states: list[JobState] = []
    job.state_changed.connect(states.append)

    def pause_after_epoch_2(event: ProgressEvent) -> None:
        if event.payload.get("epoch") == 2:
            job.pause()  # from the GUI thread, as the Pause button does

    job.progress.connect(pause_after_epoch_2)
    with qtbot.waitSignal(job.paused, timeout=60000):
        worker.submit(job)
    assert states == [JobState.RUNNING, JobState.PAUSING, JobState.PAUSED]
    run = load_run(out)
    assert run.final_epoch == 2 and "stopped" in run.status
    resumed = train(cfg, out, resume=True)
    assert load_run(resumed).final_epoch == 6


def test_cancelled_surface_keeps_computed_points(qtbot, worker, trained_run, tmp_path) -> None:
    options = SurfaceOptions(x="-1:1:9", y="-1:1:9", subset=100)
    out = tmp_path / "surface.h5"

    def run(on_event, cancel):
        sink = held_until_gui_cancels(on_event, cancel, lambda e: "indices" in e.payload)
        return compute_surface(str(trained_run), options, out, on_event=sink, cancel=cancel)

    job = Job("surface", "surface", run, out)
    job.progress.connect(lambda event: job.cancel() if "indices" in event.payload else None)
    with qtbot.waitSignal(job.cancelled, timeout=60000):
        worker.submit(job)
    assert job.state is JobState.CANCELLED
    surface = load_surface(out)
    computed = np.isfinite(surface.values["train_loss"]).sum()
    assert 0 < computed < 81 and computed == surface.computed.sum()
    compute_surface(str(trained_run), options, out)  # resumes the missing points only
    assert load_surface(out).is_complete


def test_event_loop_stays_responsive_while_training(qtbot, worker, quick_config, tmp_path) -> None:
    cfg = quick_config(train={"epochs": 1000}, model={"hidden": [256, 256]})
    started = threading.Event()

    def run(on_event, cancel):
        started.set()
        return train(cfg, tmp_path / "busy.h5", on_event=on_event, cancel=cancel)

    job = worker.submit(Job("train", "busy", run))
    assert started.wait(30)
    time.sleep(0.5)  # past data loading, into the batches
    stall = measure_event_loop_stall(1.5)
    assert worker.current is job, "the job must still be running while we measure"
    job.cancel()
    assert stall["ticks"] > 50
    # A 10 ms timer on a shared 2-core machine: a frozen GUI would show seconds here.
    assert stall["p99_ms"] < 150 and stall["max_ms"] < 1000, stall
    with pytest.raises(Cancelled):
        job.token.raise_if_cancelled()


def test_pause_while_queued_ends_paused_at_once_and_states_arrive_in_order(qtbot, worker) -> None:
    release = threading.Event()
    first = worker.submit(Job("test", "first", lambda e, c: release.wait(10) and "first"))
    queued = worker.submit(Job("test", "queued", lambda e, c: "never"))
    failing = worker.submit(Job("test", "failing", lambda e, c: 1 / 0))
    seen: dict[str, list] = {job.title: [] for job in (first, queued, failing)}
    for job in (first, queued, failing):
        job.state_changed.connect(lambda state, job=job: seen[job.title].append(state))
    queued.pause()
    assert queued.state is JobState.PAUSED and seen["queued"] == [JobState.PAUSED]
    queued.cancel()  # a final state never changes
    assert queued.state is JobState.PAUSED
    release.set()
    qtbot.waitUntil(lambda: not worker.busy, timeout=10000)
    assert seen["first"] == [JobState.RUNNING, JobState.FINISHED] and first.result == "first"
    assert seen["failing"] == [JobState.RUNNING, JobState.FAILED]
    assert failing.error.message == "ZeroDivisionError: division by zero" and queued.result is None


def test_the_data_check_answers_the_newest_request_only(qtbot, quick_config, tmp_path) -> None:
    from app.panels.bias_preview import DataCheck

    check = DataCheck()
    answers: list[str] = []
    check.finished.connect(lambda preview: answers.append(preview["summary"]))
    check.failed.connect(lambda error: answers.append(f"failed: {error}"))
    missing = quick_config(data={"source": "cifar10", "root": str(tmp_path)})
    check.request(missing)
    check.request(quick_config(bias={"kind": "mislabel", "fraction": 0.3}))
    assert check.wait(30000) and check.pending
    qtbot.waitUntil(lambda: not check.pending, timeout=10000)
    assert len(answers) == 1 and answers[0].startswith("mislabel") and "0.3" in answers[0]
    check.request(missing)
    qtbot.waitUntil(lambda: not check.pending, timeout=30000)
    assert answers[-1].startswith("failed") and str(tmp_path) in answers[-1]
    assert check.shutdown()
