"""Studies: validation, resumable runs, summary numbers equal to info/flatness, a self-contained report."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError, LossLabError
from engine.study import bundled_studies, load_study, run_study, write_report, write_summary

TINY = """
name = "tiny"
base = "digits-mlp-quick"
set = { "train.epochs" = 2, "data.train_limit" = 300, "data.test_limit" = 160, "model.hidden" = [16] }
[[variant]]
name = "unbiased"
[[variant]]
name = "mislabel-30"
set = { "bias.kind" = "mislabel", "bias.fraction" = 0.3 }
[surface]
x = "-1:1:5"
y = "-1:1:5"
split = "test"
workers = 1
[curves]
x = "-1:1:5"
average = 2
workers = 1
[flatness]
subset = 160
top_k = 1
trace_samples = 2
density = "off"
sharpness_steps = 2
perturbations = 2
radius = 0.5
"""
VARIANTS = ("unbiased", "mislabel-30")


def _write(tmp: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory) -> tuple:
    tmp = tmp_path_factory.mktemp("study")
    study = load_study(_write(tmp, TINY))
    outcome = run_study(study, tmp / "out")
    write_summary(study, tmp / "out")
    write_report(study, tmp / "out")
    return study, tmp / "out", outcome


def _rows(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "summary.csv", newline="") as f:
        return {row["variant"]: row for row in csv.DictReader(f)}


def _cli(*argv: str) -> str:
    from engine.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


# ---- the study file ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", bundled_studies())
def test_every_bundled_study_validates(name: str) -> None:
    study = load_study(name)
    assert len(study.variants) >= 4
    assert study.surface is not None and study.flatness is not None
    assert len({v.config.to_toml() for v in study.variants}) == len(study.variants)  # all different


def test_bundled_studies_cover_the_sources() -> None:
    assert {"digits-bias-sweep", "cifar10-bias-sweep", "digits-resnet-skip", "fashion-mnist-resnet-skip",
            "digits-batch-weight-decay", "mnist1d-distance-strength"} <= set(bundled_studies())
    sweep = load_study("digits-bias-sweep")
    kinds = [(v.config.bias.kind, v.config.bias.fraction, v.config.bias.target_class) for v in sweep.variants]
    assert kinds == [("none", 0.0, -1), ("mislabel", 0.3, -1), ("mislabel", 0.6, -1), ("mislabel", 0.8, -1),
                     ("size", 0.3, 3), ("size", 0.6, 3), ("size", 0.9, 3), ("noise", 0.6, 3)]


def test_grid_is_the_product_of_its_lists(tmp_path: Path) -> None:
    text = ('name = "g"\nbase = "digits-mlp-quick"\n[grid]\n"train.batch_size" = [16, 512]\n'
            '"train.weight_decay" = [0.0, 0.0005]\n')
    study = load_study(_write(tmp_path, text))
    pairs = [(v.config.train.batch_size, v.config.train.weight_decay) for v in study.variants]
    assert pairs == [(16, 0.0), (16, 0.0005), (512, 0.0), (512, 0.0005)]
    assert study.varied_keys == ["train.batch_size", "train.weight_decay"]
    assert study.variants[1].name == "batch_size=16+weight_decay=0.0005"


BAD = [
    ('[[variant]]\nname = "v1"\nset = { "bias.kind" = "mislabel", "bias.fraction" = 2.0 }',
     "variant 'v1'", "bias.fraction = 2.0"),
    ('[[variant]]\nname = "v2"\nset = { "bias.fractio" = 0.2 }', "variant 'v2'", "bias.fractio = 0.2"),
    ('[[variant]]\nname = "v3"\nset = { "train.epochs" = "ten" }', "variant 'v3'", "train.epochs = 'ten'"),
    ('[[variant]]\nname = "a"\n[[variant]]\nname = "a"', "", "variant.name = 'a'"),
    ('[[variant]]\nname = "a b"', "", "variant[0].name = 'a b'"),
    ('[surface]\nsplit = "tset"', "", "surface.split = 'tset'"),
    ('[surface]\nx = "1:-1:5"', "", "surface.x = '1:-1:5'"),
    ('[flatness]\ntop_k = 0', "", "flatness.top_k = 0"),
    ('[flatness]\nsurface = "s.h5"', "", "flatness.surface = 's.h5'"),
    ('[grid]\n"train.lr" = 0.1', "", "grid.train.lr = 0.1"),
    ('colour = "red"', "", "colour = 'red'"),
]


@pytest.mark.parametrize(("body", "variant", "key"), BAD)
def test_validation_errors_name_the_file_variant_and_key(tmp_path: Path, body: str, variant: str, key: str) -> None:
    path = _write(tmp_path, f'name = "bad"\nbase = "digits-mlp-quick"\n{body}\n')
    with pytest.raises(ConfigError) as caught:
        load_study(path)
    message = str(caught.value)
    assert str(path) in message and key in message and "expected" in message
    assert variant in message


def test_unknown_base_lists_the_presets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"base = 'no-such-preset'.*digits-mlp-quick"):
        load_study(_write(tmp_path, 'name = "x"\nbase = "no-such-preset"\n'))


# ---- running ------------------------------------------------------------------------------------
def test_study_writes_every_file(tiny_study) -> None:
    study, folder, outcome = tiny_study
    assert not outcome.failed
    assert len(outcome.ran) == 8 and not outcome.skipped
    for name in VARIANTS:
        for file in ("experiment.toml", "run.h5", "surface.h5", "curve.h5", "flatness.json"):
            assert (folder / name / file).is_file()
    record = json.loads((folder / "study.json").read_text())
    assert set(record["variants"]["unbiased"]["steps"]) == {"train", "surface", "curves", "flatness"}


def test_summary_equals_info_and_flatness(tiny_study, tmp_path: Path) -> None:
    study, folder, _ = tiny_study
    rows = _rows(folder)
    assert list(rows) == list(VARIANTS)
    columns = next(csv.reader(open(folder / "summary.csv")))
    for column in ("variant", "bias.kind", "bias.fraction", "train_acc", "test_acc", "gen_error",
                   "centre_test_loss", "loss_rise", "top_eigenvalue", "trace", "sharpness", "wall_seconds"):
        assert column in columns
    for column in ("train_acc", "test_acc", "gen_error", "top_eigenvalue", "trace", "sharpness"):
        assert all(rows[name][column] for name in VARIANTS)  # computed: no empty cell
    for name in VARIANTS:
        row, run, surface = rows[name], folder / name / "run.h5", folder / name / "surface.h5"
        info = _cli("info", str(run))
        accs = re.search(r"train loss ([\d.]+) acc ([\d.]+)%\s+test loss ([\d.]+) acc ([\d.]+)%", info)
        assert f"{100 * float(row['train_acc']):.2f}" == accs.group(2)
        assert f"{100 * float(row['test_acc']):.2f}" == accs.group(4)
        assert 0.0 <= float(row["test_acc"]) <= 1.0
        assert f"{float(row['gen_error']):.4f}" in re.search(r"generalisation error (\S+)", info).group(1)
        report = tmp_path / f"{name}.json"
        _cli("flatness", str(run), "--subset", "160", "--top-k", "1", "--trace-samples", "2", "--density", "off",
             "--sharpness-steps", "2", "--perturbations", "2", "--surface", str(surface), "--radius", "0.5",
             "--json", str(report))
        flat = json.loads(report.read_text())
        assert float(row["top_eigenvalue"]) == pytest.approx(flat["top_eigenvalues"][0], rel=1e-6)
        assert float(row["min_eigenvalue"]) == pytest.approx(flat["min_eigenvalue"], rel=1e-6)
        assert float(row["trace"]) == pytest.approx(flat["trace"]["mean"], rel=1e-6)
        assert float(row["trace_stderr"]) == pytest.approx(flat["trace"]["stderr"], rel=1e-6)
        assert float(row["sharpness"]) == pytest.approx(flat["sharpness"]["value"], rel=1e-6)
        assert float(row["centre_test_loss"]) == pytest.approx(flat["surface_rise"]["centre"], rel=1e-6)
        assert float(row["loss_rise"]) == pytest.approx(flat["surface_rise"]["mean_rise"], rel=1e-6)
        assert float(row["wall_seconds"]) > 0


def test_rerun_does_nothing_and_keeps_files(tiny_study) -> None:
    study, folder, _ = tiny_study
    before = {p: p.stat().st_mtime_ns for p in folder.glob("*/*.h5")}
    outcome = run_study(study, folder)
    assert not outcome.ran and len(outcome.skipped) == 8
    assert before == {p: p.stat().st_mtime_ns for p in folder.glob("*/*.h5")}


def test_changed_variant_refuses_the_old_folder(tiny_study, tmp_path: Path) -> None:
    study, folder, _ = tiny_study
    changed = load_study(_write(tmp_path, TINY.replace('"train.epochs" = 2', '"train.epochs" = 3')))
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    with pytest.raises(Exception, match="different experiment"):
        run_study(changed, copy)


def _wait_for_done_step(record: Path, process: subprocess.Popen, timeout: float = 120) -> int:
    """Poll the step record until at least one step is finished; return how many are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            data = {}
        done = sum(s.get("done", False) for v in data.get("variants", {}).values() for s in v["steps"].values())
        if done >= 2:
            return done
        time.sleep(0.02)
    raise AssertionError("the study subprocess finished no step in time")


def test_killed_study_resumes_without_redoing_finished_steps(tmp_path: Path) -> None:
    study_file = _write(tmp_path, TINY)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "engine.cli", "study", str(study_file), "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_done_step(out / "study.json", process)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    record = json.loads((out / "study.json").read_text())
    finished = [(v, s) for v, entry in record["variants"].items() for s, e in entry["steps"].items() if e["done"]]
    files = {"train": "run.h5", "surface": "surface.h5", "curves": "curve.h5", "flatness": "flatness.json"}
    stamps = {(v, s): (out / v / files[s]).stat().st_mtime_ns for v, s in finished}
    assert finished and len(finished) < 8  # killed in the middle

    study = load_study(study_file)
    outcome = run_study(study, out)
    assert set(outcome.skipped) == set(finished)
    assert len(outcome.ran) == 8 - len(finished)
    for (v, s), stamp in stamps.items():
        assert (out / v / files[s]).stat().st_mtime_ns == stamp
    write_summary(study, out)
    rows = _rows(out)
    assert all(rows[name]["status"] == "complete" and rows[name]["trace"] for name in VARIANTS)


# ---- the report -----------------------------------------------------------------------------------
def test_report_is_self_contained(tiny_study) -> None:
    _, folder, _ = tiny_study
    page = (folder / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page and "<script" not in page
    sources = re.findall(r"""src=["']([^"']+)""", page)
    assert len(sources) == 8  # flatness bars, 2 3D views, top views, 1D curves, training, per-class, weights
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<table id='summary'>" in page and "mislabel-30" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (packaging/setup.sh)")
def test_report_renders_in_headless_chromium(tiny_study, tmp_path: Path) -> None:
    from PIL import Image

    _, folder, _ = tiny_study
    shot = tmp_path / "report.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
                    "--enable-unsafe-swiftshader", "--disable-background-networking", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
                    "--window-size=1200,1600", f"--screenshot={shot}", (folder / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1600, 1200)
    ink = (pixels < 200).any(axis=2)
    band = ink[120:300]  # title, then the summary table: text and cell borders
    assert band.mean() > 0.02
    assert ink[1500:].mean() > 0.01  # the page goes on below the first screen: the figures
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 3000  # shaded 3D surfaces and colour-mapped top views, not flat blocks


# ---- the app ----------------------------------------------------------------------------------------
@pytest.fixture
def study_window(qtbot, tiny_study):
    from app.panels.study_panel import StudyWindow
    from app.worker import JobRunner

    runner = JobRunner()
    window = StudyWindow(runner)
    qtbot.addWidget(window)
    window.open_folder(tiny_study[1])
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()
    runner.shutdown()


def test_app_table_sorts_by_value_and_compares_with_one_colour_scale(study_window, tiny_study) -> None:
    from PySide6.QtCore import Qt

    from engine.storage.surface_file import load_surface

    window, folder = study_window, tiny_study[1]
    rows = _rows(folder)
    assert window.proxy.rowCount() == 2
    column = window.model.columns.index("test_acc")
    window.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
    ordered = [window.proxy.index(r, 0).data() for r in range(2)]
    assert ordered == sorted(VARIANTS, key=lambda n: float(rows[n]["test_acc"]))
    window.table.selectAll()
    window.compare_selected()
    assert len(window.grid.scenes) == 2
    values = np.concatenate([load_surface(folder / n / "surface.h5").values["test_loss"].ravel() for n in VARIANTS])
    expected = (values.min(), values.max())
    if window.grid.settings.log_scale:
        expected = tuple(np.log10(expected))
    assert window.grid.shared_limits == pytest.approx(expected, rel=1e-6)


def test_app_grid_shows_more_than_four_surfaces_with_linked_cameras(qtbot, tiny_study) -> None:
    from app.views.comparison import PanelTitle
    from app.views.study_grid import StudyGrid, grid_shape
    from engine.storage.surface_file import load_surface

    folder = tiny_study[1]
    surfaces = [load_surface(folder / n / "surface.h5") for n in VARIANTS]
    grid = StudyGrid()
    qtbot.addWidget(grid)
    grid.resize(900, 700)
    grid.show()
    qtbot.waitExposed(grid)
    grid.set_surfaces([(surfaces[k % 2], PanelTitle(f"panel {k}")) for k in range(6)])
    assert grid.plotter.shape == grid_shape(6) == (2, 3)
    assert len(grid.scenes) == 6
    assert len({id(r.camera) for r in grid.plotter.renderers}) == 1  # one camera: linked views
    qtbot.wait(50)  # the fit after the layout pass
    first = grid.plotter.renderers[0]  # top left: its viewport does not start at the window's corner
    width, height = first.GetSize()
    corners = []
    for x, y, z in itertools.product(*np.reshape(first.ComputeVisiblePropBounds(), (3, 2))):
        first.SetWorldPoint(x, y, z, 1.0)
        first.WorldToDisplay()
        corners.append(np.subtract(first.GetDisplayPoint()[:2], first.GetOrigin()))
    corners = np.array(corners)
    assert corners.min() >= 0 and corners[:, 0].max() <= width
    assert corners[:, 1].max() <= height * (1 - grid.top_room) + 1  # below the titles
    assert corners[:, 1].max() - corners[:, 1].min() > 0.4 * height  # and not a speck
    grid.close_plotter()


def test_app_table_keeps_the_study_order_and_titles_carry_curvature(study_window, tiny_study) -> None:
    from app.panels.study_panel import panel_title

    window, folder = study_window, tiny_study[1]
    assert [window.proxy.index(r, 0).data() for r in range(2)] == list(VARIANTS)  # unsorted: the study's order
    row = _rows(folder)[VARIANTS[0]]
    title = panel_title({**row, **{k: float(v) for k, v in row.items()
                                   if k in ("test_acc", "gen_error", "loss_rise", "rise_radius", "top_eigenvalue",
                                            "trace", "sharpness")}}).text()
    assert "max eig" in title and f"{row['rise_metric']} rise within" in title


def test_app_runs_the_missing_steps_as_a_background_job(study_window, tiny_study, qtbot, tmp_path: Path) -> None:
    window, folder = study_window, tiny_study[1]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "mislabel-30" / "flatness.json").unlink()
    (copy / "report.html").unlink()
    window.open_folder(copy)
    events = []
    window.start()
    window.job.progress.connect(events.append)
    qtbot.waitUntil(lambda: window.job.state.is_final, timeout=180_000)
    assert window.job.state.name == "FINISHED", window.job.error
    assert (copy / "mislabel-30" / "flatness.json").is_file() and (copy / "report.html").is_file()
    study_events = [e for e in events if e.stage == "study"]
    assert study_events[-1].done == study_events[-1].total == 8
    assert window.actions_by_name["run"].isEnabled() and not window.actions_by_name["cancel"].isEnabled()


def test_processes_running_different_variants_keep_each_others_records(tmp_path: Path) -> None:
    from engine.study.record import StudyRecord

    first = StudyRecord.open(tmp_path, "s", "s.toml")
    second = StudyRecord.open(tmp_path, "s", "s.toml")  # opened before the first one wrote anything
    first.mark("a", "train", 1.0)
    second.mark("b", "train", 2.0)
    first.mark("a", "surface", 3.0)
    record = json.loads((tmp_path / "study.json").read_text())
    assert {v: sorted(e["steps"]) for v, e in record["variants"].items()} == {"a": ["surface", "train"],
                                                                               "b": ["train"]}


def test_app_cancels_the_study_job_and_keeps_finished_work(study_window, tiny_study, qtbot, tmp_path: Path) -> None:
    window, folder = study_window, tiny_study[1]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    for name in VARIANTS:
        (copy / name / "flatness.json").unlink()
    kept = (copy / "unbiased" / "surface.h5").stat().st_mtime_ns
    window.open_folder(copy)
    window.start()
    window.cancel()
    qtbot.waitUntil(lambda: window.job.state.is_final, timeout=60_000)
    assert window.job.state.name == "CANCELLED"
    assert (copy / "unbiased" / "surface.h5").stat().st_mtime_ns == kept
    assert window.actions_by_name["run"].isEnabled() and not window.progress.isVisible()


def test_torchrun_processes_share_the_variants_and_the_last_writes_the_report(tmp_path: Path) -> None:
    """Two processes as torchrun starts them (RANK, WORLD_SIZE, ...): each runs every 2nd variant of
    the same folder; the record holds both, and whichever finishes last writes summary and report."""
    study_file, out = _write(tmp_path, TINY), tmp_path / "out"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": "29555", "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-m", "engine.cli", "study", str(study_file), "--out", str(out)],
                                  cwd=root, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for rank in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert "process 0 of 2: variants unbiased" in outputs[0] and "process 1 of 2: variants mislabel-30" in outputs[1]
    assert "mislabel-30:" not in outputs[0] and "unbiased:" not in outputs[1]  # each ran only its own share
    assert sum("report:" in text for text in outputs) >= 1
    record = json.loads((out / "study.json").read_text())
    assert {name: sorted(entry["steps"]) for name, entry in record["variants"].items()} == {
        name: sorted(["train", "surface", "curves", "flatness"]) for name in VARIANTS}
    assert set(_rows(out)) == set(VARIANTS) and (out / "report.html").is_file()


def test_a_study_folder_is_a_row_of_the_workspace(qtbot, tiny_study, tmp_path: Path) -> None:
    """Opening a study folder's study.json (menu, recent list, command line) shows the study window
    and lists the study in the workspace; double-clicking the row raises the same window; the
    project file keeps it."""
    from PySide6.QtCore import Qt

    from app.main_window import MainWindow
    from app.panels.study_panel import StudyWindow
    from app.settings import AppSettings

    window = MainWindow(settings=AppSettings(tmp_path / "settings.ini"), restore_layout=False)
    qtbot.addWidget(window)
    window.show()
    record = tiny_study[1] / "study.json"
    assert window.open_file(record) == "study"
    studies = [w for w in window.findChildren(StudyWindow) if w.isVisible()]
    assert len(studies) == 1 and studies[0].proxy.rowCount() == len(VARIANTS)
    tree = window.workspace.dock.tree
    assert (tree.topLevelItem(0).text(0), tree.topLevelItem(0).text(1)) == ("tiny (out)", "study")
    tree.itemDoubleClicked.emit(tree.topLevelItem(0), 0)  # the row opens the same window again
    assert len([w for w in window.findChildren(StudyWindow) if w.isVisible()]) == 1
    assert tree.topLevelItemCount() == 1
    saved = window.workspace.save_project(tmp_path / "session")
    again = MainWindow(settings=AppSettings(tmp_path / "again.ini"), restore_layout=False)
    qtbot.addWidget(again)
    assert again.open_file(saved) == "project"
    assert [(i.kind, i.path) for i in again.workspace.model.items] == [("study", str(record.resolve()))]
    assert tree.topLevelItem(0).checkState(0) == Qt.CheckState.Checked
    for w in (*window.findChildren(StudyWindow), *again.findChildren(StudyWindow)):
        w.close()
    other = tmp_path / "notes.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(LossLabError, match="notes.json': not a study record"):
        window.open_file(other, interactive=False)
