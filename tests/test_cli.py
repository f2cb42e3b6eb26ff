"""The command line end to end on the built-in digits, as a user types it."""

import subprocess
import sys
from pathlib import Path

import vtk

ROOT = Path(__file__).parents[1]


def losslab(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_train_and_info_on_a_digits_preset(tmp_path):
    out = tmp_path / "run.h5"
    result = losslab("train", "resources/presets/digits-mlp-quick.toml", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "epoch  10/10" in result.stderr and "train [" in result.stderr
    info = losslab("info", str(out))
    assert info.returncode == 0, info.stderr
    assert "bias       none" in info.stdout and "final      epoch 10" in info.stdout
    assert "precision" in info.stdout


def test_bad_experiment_is_refused_before_work(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[bias]\nkind = "mislabel"\nfraction = 1.5\n')
    result = losslab("train", str(bad), "--out", str(tmp_path / "never.h5"))
    assert result.returncode == 2
    assert "bias.fraction = 1.5 is not valid; expected a number in [0.0, 1.0]" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "never.h5").exists()


def test_info_on_a_missing_file():
    result = losslab("info", "no/such/run.h5")
    assert result.returncode == 2 and "'no/such/run.h5': file not found" in result.stderr


def test_demo_produces_runs_surfaces_and_exports(tmp_path):
    result = losslab("demo", "--out-dir", str(tmp_path), "--grid", "5", "--epochs", "2", timeout=600)
    assert result.returncode == 0, result.stderr
    for name in ("digits-unbiased", "digits-mislabel-30"):
        for suffix in (".h5", "-surface.h5", "-curve.h5", "-test_loss.vts", "-test_loss.png", "-curve.csv"):
            assert (tmp_path / f"{name}{suffix}").is_file(), name + suffix
    reader = vtk.vtkXMLStructuredGridReader()
    reader.SetFileName(str(tmp_path / "digits-mislabel-30-test_loss.vts"))
    reader.Update()
    assert reader.GetOutput().GetNumberOfPoints() == 25
    assert "Files:" in result.stdout and "digits-mislabel-30 " in result.stdout.split("question")[1]
