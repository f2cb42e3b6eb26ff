"""Bad inputs and faults a user can cause: each ends in one message naming the file or key, exit 2,
no traceback, nothing foreign executed and no valid file damaged.

Most cases call ``engine.cli.main`` in-process; subprocesses only where a crash or a signal is the
point (disk full inside HDF5, Ctrl-C).
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import tomli_w
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.config import from_dict, from_toml_text
from engine.errors import ConfigError, LossLabError, OutputError
from engine.storage.run import load_run, load_state_file

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "name": "tiny", "seed": 0,
    "data": {"source": "digits", "train_limit": 200, "test_limit": 100},
    "model": {"arch": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 64, "threads": 1},
}


class Marker:
    """A pickle payload that would create ``path`` when unpickled (it must never run)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def experiment(tmp_path: Path, name: str = "exp.toml", **sections) -> Path:
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY.items()}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data))
    return path


def cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def refused(capsys, *argv, names: tuple[str, ...]) -> str:
    """Run the CLI; assert one clear message naming every string in ``names``, exit 2, no traceback."""
    code, err = cli(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err and err.count("losslab: error") == 1, err
    for name in names:
        assert name in err, (name, err)
    assert "weights_only=False" not in err and "weights_only` set to `False" not in err
    return err


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    out = folder / "tiny.h5"
    assert main(["train", str(experiment(folder)), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def surface_file(run_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("surface") / "s.h5"
    assert main(["surface", str(run_file), "--x=-1:1:5", "--split", "test", "--workers", "1",
                 "--out", str(out)]) == 0
    return out


def damaged_copy(src: Path, tmp_path: Path, edit) -> Path:
    dst = tmp_path / f"damaged-{src.name}"
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        edit(f)
    return dst


# ---------------------------------------------------------------- config: keys, values, combinations
CONFIG_CASES = [
    ({"model": {"skip": False}}, "model.skip"),                              # MLP has no skip connections
    ({"model": {"arch": "resnet20", "taaf": True}}, "model.taaf"),           # TAAF is an MLP option
    ({"model": {"arch": "vgg9", "activation": "tanh"}}, "model.activation"),
    ({"model": {"width": 4}}, "model.width"),
    ({"model": {"user": "net.py:Net"}}, "model.user"),
    ({"train": {"loss": "mae"}}, "train.loss"),                              # regression loss, class labels
    ({"data": {"augment": True}}, "data.augment"),                           # 8x8 digits
    ({"model": {"depth": 3}}, "model.depth"),                                # unknown key
    ({"train": {"lr": "fast"}}, "train.lr"),
    ({"train": {"lr": 50.0}}, "train.lr"),
    ({"train": {"threads": 4096}}, "train.threads"),
    ({"train": {"milestones": [5, 2]}}, "train.milestones"),
    ({"data": {"source": "imagenet"}}, "data.source"),
    ({"data": {"source": "cifar10"}}, "data.root"),
    ({"bias": {"kind": "size", "fraction": 0.5, "class": 12}}, "bias.class"),
    ({"bias": {"kind": "noise", "fraction": 0.5}}, "bias.class"),
    ({"train": {"batch_size": 0}}, "train.batch_size"),
    ({"seed": -1}, "seed"),
]


@pytest.mark.parametrize(("sections", "key"), CONFIG_CASES, ids=[k for _, k in CONFIG_CASES])
def test_config_refused_before_work(tmp_path, capsys, sections, key):
    toml = experiment(tmp_path, **sections)
    out = tmp_path / "run.h5"
    refused(capsys, "train", toml, "--out", out, names=(key, "exp.toml"))
    assert not out.exists()  # nothing started


def test_nan_learning_rate_in_toml(tmp_path, capsys):
    toml = tmp_path / "nan.toml"
    toml.write_text(tomli_w.dumps(TINY).replace("[train]", "[train]\nlr = nan"))
    refused(capsys, "train", toml, "--out", tmp_path / "r.h5", names=("train.lr", "nan.toml", "finite"))


@pytest.mark.parametrize("content", [b"name = \n", b"[data\nsource='digits'", b"\xff\xfe\x00garbage"],
                         ids=["no-value", "unclosed-table", "not-utf8"])
def test_unreadable_experiment_file(tmp_path, capsys, content):
    toml = tmp_path / "broken.toml"
    toml.write_bytes(content)
    refused(capsys, "train", toml, "--out", tmp_path / "r.h5", names=("broken.toml",))


def test_experiment_is_a_folder_or_missing(tmp_path, capsys):
    refused(capsys, "train", tmp_path, "--out", tmp_path / "r.h5", names=(str(tmp_path), "folder"))
    refused(capsys, "train", tmp_path / "nope.toml", "--out", tmp_path / "r.h5", names=("nope.toml",))


def test_presets_pass_the_combination_checks():
    from engine.config import load_experiment

    presets = sorted((ROOT / "resources" / "presets").glob("*.toml"))
    assert len(presets) >= 20
    for preset in presets:
        load_experiment(preset)


# ---------------------------------------------------------------- data files
def npz(tmp_path: Path, name: str = "data.npz", **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((60, 5)).astype(np.float32), "y_train": np.arange(60) % 3,
              "x_test": rng.random((30, 5)).astype(np.float32), "y_test": np.arange(30) % 3}
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def tensors_experiment(tmp_path: Path, data_file: Path, **sections) -> Path:
    sections.setdefault("model", {})
    return experiment(tmp_path, data={"source": "tensors", "root": str(data_file), "train_limit": 0,
                                      "test_limit": 0}, **sections)


NAN_X = np.full((60, 5), np.nan, dtype=np.float32)
DATA_CASES = [
    ({"x_train": NAN_X}, ("x_train", "NaN")),                                # was "lower train.lr"
    ({"x_test": np.full((30, 5), np.inf, dtype=np.float32)}, ("x_test", "infinite")),
    ({"y_test": None}, ("y_test", "missing")),
    ({"y_train": np.arange(59) % 3}, ("x_train", "y_train", "59")),
    ({"y_train": -(np.arange(60) % 3)}, ("y_train", "negative")),
    ({"y_train": np.full(60, 10**9)}, ("y_train", "1000000000")),
    ({"x_test": np.zeros((30, 7), np.float32)}, ("x_test", "(7,)")),
    ({"x_train": np.array(["a"] * 60)}, ("x_train", "dtype")),
]


@pytest.mark.parametrize(("arrays", "names"), DATA_CASES, ids=[n[0] + "-" + n[1] for _, n in DATA_CASES])
def test_bad_npz_contents(tmp_path, capsys, arrays, names):
    data = npz(tmp_path, **arrays)
    refused(capsys, "train", tensors_experiment(tmp_path, data), "--out", tmp_path / "r.h5",
            names=("data.npz", *names))


def test_npz_header_declaring_huge_array_is_not_read(tmp_path, capsys):
    data = npz(tmp_path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(data, "a") as z:  # a later member of the same name wins when numpy reads it
        z.writestr("x_test.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:])
    refused(capsys, "train", tensors_experiment(tmp_path, data), "--out", tmp_path / "r.h5",
            names=("data.npz", "x_test", "1000000000000"))


def test_npz_not_a_zip(tmp_path, capsys):
    data = tmp_path / "data.npz"
    data.write_bytes(b"definitely not a zip archive")
    refused(capsys, "train", tensors_experiment(tmp_path, data), "--out", tmp_path / "r.h5",
            names=("data.npz", "not a readable .npz"))


@pytest.mark.parametrize(("targets", "sections", "key"), [
    ("labels", {"train": {"loss": "mae"}}, "train.loss"),                    # mae on class labels
    ("floats", {"train": {"loss": "ce"}}, "train.loss"),                     # ce on regression targets
    ("labels", {"model": {"arch": "resnet20", "hidden": [64, 64]}}, "model.arch"),  # conv net on vectors
    ("floats", {"train": {"loss": "mae"}, "bias": {"kind": "size", "fraction": 0.5, "class": 1}}, "bias.kind"),
])
def test_model_data_loss_combinations_need_the_data(tmp_path, capsys, targets, sections, key):
    extra = {} if targets == "labels" else {"y_train": np.linspace(0, 1, 60), "y_test": np.linspace(0, 1, 30)}
    data = npz(tmp_path, **extra)
    out = tmp_path / "r.h5"
    refused(capsys, "train", tensors_experiment(tmp_path, data, **sections), "--out", out, names=(key,))
    assert not out.exists()


def cifar_folder(tmp_path: Path, n: int = 8) -> Path:
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {"batch_label": "b", "labels": [int(v) for v in rng.integers(0, 10, n)],
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": ["f"] * n}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def cifar_experiment(tmp_path: Path, folder: Path) -> Path:
    return experiment(tmp_path, data={"source": "cifar10", "root": str(folder.parent), "train_limit": 0,
                                      "test_limit": 0})


def test_cifar_folder_reads_without_pickle_load(tmp_path):
    from engine.data.sources import load_cifar10_folder

    folder = cifar_folder(tmp_path)
    raw = load_cifar10_folder(str(folder.parent))
    first = pickle.loads((folder / "data_batch_1").read_bytes())
    assert raw.x_train.shape == (40, 3, 32, 32)
    np.testing.assert_array_equal(raw.x_train[:8] * 255, first["data"].reshape(8, 3, 32, 32))
    assert raw.y_train[:8].tolist() == first["labels"]


@pytest.mark.parametrize(("batch", "names"), [
    ({"labels": [0] * 4, "data": np.zeros((4, 100), np.uint8)}, ("data_batch_2", "'data'", "3072")),
    ({"labels": [11] * 4, "data": np.zeros((4, 3072), np.uint8)}, ("data_batch_2", "'labels'", "0..9")),
    ([1, 2, 3], ("data_batch_2", "dict")),
    (b"\x80\x02garbage", ("data_batch_2", "not a readable pickle")),
], ids=["short-rows", "label-11", "a-list", "garbage"])
def test_bad_cifar_batches(tmp_path, capsys, batch, names):
    folder = cifar_folder(tmp_path)
    payload = batch if isinstance(batch, bytes) else pickle.dumps(batch, protocol=2)
    (folder / "data_batch_2").write_bytes(payload)
    refused(capsys, "train", cifar_experiment(tmp_path, folder), "--out", tmp_path / "r.h5", names=names)


def test_cifar_folder_missing_a_batch(tmp_path, capsys):
    folder = cifar_folder(tmp_path)
    (folder / "data_batch_3").unlink()
    refused(capsys, "train", cifar_experiment(tmp_path, folder), "--out", tmp_path / "r.h5",
            names=("data.root", "data_batch_3"))


def test_bad_idx_file(tmp_path, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(b"\x00\x00\x08\x03garbage")
    toml = experiment(tmp_path, data={"source": "mnist", "root": str(folder)})
    refused(capsys, "train", toml, "--out", tmp_path / "r.h5", names=("train-images-idx3-ubyte", "idx"))


def idx_bytes(magic_type: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    import struct

    return bytes([0, 0, magic_type, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


@pytest.mark.parametrize("case, images, expected", [
    ("declares 400 GB", idx_bytes(0x08, (100_000, 2_000, 2_000), b"\0" * 64), "declares 100000 x 2000 x 2000"),
    ("longer than declared", idx_bytes(0x08, (2, 2, 2), b"\0" * (1 << 20)), "longer than the 8 data bytes"),
    ("shorter than declared", idx_bytes(0x08, (10, 28, 28), b"\0" * 100), "ends after 100 of the 7,840"),
    ("labels with images' rank", None, "it has 3 dimensions, expected 1"),
])
def test_gzipped_idx_files_are_checked_before_they_are_expanded(tmp_path, capsys, case, images, expected):
    import gzip

    folder = tmp_path / "mnist"
    folder.mkdir()
    good_images, good_labels = idx_bytes(0x08, (4, 28, 28), bytes(4 * 784)), idx_bytes(0x08, (4,), bytes(4))
    files = {"train-images-idx3-ubyte": images or good_images,
             "train-labels-idx1-ubyte": good_labels if images else good_images,
             "t10k-images-idx3-ubyte": good_images, "t10k-labels-idx1-ubyte": good_labels}
    for name, data in files.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(data))
    toml = experiment(tmp_path, data={"source": "mnist", "root": str(folder)})
    wrong = "train-images-idx3-ubyte.gz" if images else "train-labels-idx1-ubyte.gz"
    refused(capsys, "train", toml, "--out", tmp_path / "r.h5", names=(wrong, expected))


# ---------------------------------------------------------------- security: payloads never run
def test_tampered_cifar_batch_never_runs(tmp_path, capsys):
    folder = cifar_folder(tmp_path)
    marker = tmp_path / "PWNED"
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": Marker(marker), "labels": []}, protocol=2))
    refused(capsys, "train", cifar_experiment(tmp_path, folder), "--out", tmp_path / "r.h5",
            names=("data_batch_1", "system", "refused"))
    assert not marker.exists()


def test_tampered_cifar_meta_never_runs(tmp_path):
    from engine.data.sources import load_cifar10_folder

    folder = cifar_folder(tmp_path)
    marker = tmp_path / "PWNED"
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": Marker(marker)}, protocol=2))
    with pytest.raises(LossLabError, match="batches.meta.*refused"):
        load_cifar10_folder(str(folder.parent))
    assert not marker.exists()


def test_tampered_state_dict_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "payload": Marker(marker)}, evil)
    with pytest.raises(LossLabError) as info:
        load_state_file(evil)
    assert "evil.pt" in str(info.value) and "system" in str(info.value)
    assert "weights_only" not in str(info.value)
    assert not marker.exists()


def test_tampered_resume_state_in_run_file_never_runs(tmp_path, capsys, run_file):
    marker = tmp_path / "PWNED"
    buffer = io.BytesIO()
    torch.save({"optimizer": Marker(marker)}, buffer)

    def plant(f):
        epoch = f["resume"].attrs["epoch"]
        del f["resume"]
        f["resume"] = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
        f["resume"].attrs["epoch"] = epoch

    run = damaged_copy(run_file, tmp_path, plant)
    toml = experiment(tmp_path, train={"epochs": 3})
    with h5py.File(run, "a") as f:  # same experiment as the run, so only the payload is in question
        f.attrs["config_toml"] = from_toml_text(toml.read_text()).to_toml()
    refused(capsys, "train", toml, "--out", run, "--resume", names=(run.name, "system"))
    assert not marker.exists()


def test_npz_object_arrays_never_unpickled(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    data = npz(tmp_path, x_train=np.array([Marker(marker)] * 60, dtype=object))
    refused(capsys, "train", tensors_experiment(tmp_path, data), "--out", tmp_path / "r.h5",
            names=("data.npz", "x_train"))
    assert not marker.exists()


def test_user_model_needs_explicit_opt_in(tmp_path, capsys, run_file):
    def make_user(f):
        text = f.attrs["config_toml"]
        f.attrs["config_toml"] = text.replace('arch = "mlp"', 'arch = "user"').replace(
            'user = ""', f'user = "{tmp_path / "evil.py"}:Net"').replace("hidden = [\n    8,\n]", "")
    (tmp_path / "evil.py").write_text(f"open({str(tmp_path / 'PWNED')!r}, 'w')\n")
    run = damaged_copy(run_file, tmp_path, make_user)
    refused(capsys, "surface", run, "--x=-1:1:3", "--out", tmp_path / "s.h5", names=("model.user",
                                                                                      "--allow-user-code"))
    assert not (tmp_path / "PWNED").exists()


# ---------------------------------------------------------------- run and surface files
RUN_DAMAGE = [
    (lambda f: f.__delitem__("checkpoints"), "'/checkpoints' is missing"),
    (lambda f: f.__delitem__("metrics"), "'/metrics' is missing"),
    (lambda f: f.__delitem__("data/classes"), "'/data/classes' is missing"),
    (lambda f: f.attrs.__delitem__("config_toml"), "'config_toml'"),
    (lambda f: f["data"].attrs.__delitem__("input_shape"), "'input_shape'"),
    (lambda f: f["metrics"].create_dataset("huge", shape=(10**12,), dtype="f8", chunks=(1024,)), "'/metrics/huge'"),
    (lambda f: f["metrics"].create_dataset("words", data=np.array([b"a", b"b"])), "'/metrics/words'"),
]


@pytest.mark.parametrize(("damage", "named"), RUN_DAMAGE, ids=[n for _, n in RUN_DAMAGE])
@pytest.mark.parametrize("command", ["info", "surface"])
def test_damaged_run_file(tmp_path, capsys, run_file, damage, named, command):
    run = damaged_copy(run_file, tmp_path, damage)
    extra = ["--x=-1:1:3", "--out", tmp_path / "s.h5"] if command == "surface" else []
    refused(capsys, command, run, *extra, names=(run.name, named))


def test_checkpoint_tensor_declaring_huge_shape(tmp_path, capsys, run_file):
    def grow(f):
        group = f["checkpoints/2"]
        name = next(iter(group))
        del group[name]
        group.create_dataset(name, shape=(10**6, 10**6), dtype="f4", chunks=(64, 64))

    run = damaged_copy(run_file, tmp_path, grow)
    refused(capsys, "surface", run, "--x=-1:1:3", "--out", tmp_path / "s.h5", names=(run.name, "declares shape"))


SURFACE_DAMAGE = [
    (lambda f: f.__delitem__("point_seconds"), "'/point_seconds' is missing"),
    (lambda f: f.attrs.__delitem__("metrics"), "'metrics'"),
    (lambda f: f.__delitem__("xcoordinates"), "xcoordinates"),
    (lambda f: (f.__delitem__("test_loss"), f.__setitem__("test_loss", np.zeros(7)))[0], "7 values; expected 5"),
    (lambda f: f.__delitem__("test_acc"), "'/test_acc' is missing"),
]


@pytest.mark.parametrize(("damage", "named"), SURFACE_DAMAGE, ids=[n for _, n in SURFACE_DAMAGE])
@pytest.mark.parametrize("command", ["info", "export"])
def test_damaged_surface_file(tmp_path, capsys, surface_file, damage, named, command):
    surface = damaged_copy(surface_file, tmp_path, damage)
    extra = ["--format", "csv", "--out", tmp_path / "s.csv"] if command == "export" else []
    refused(capsys, command, surface, *extra, names=(surface.name, named))


@pytest.mark.parametrize("command", ["info", "export"])
def test_not_hdf5_or_missing(tmp_path, capsys, command):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"no hdf5 here")
    extra = ["--format", "csv", "--out", tmp_path / "g.csv"] if command == "export" else []
    refused(capsys, command, garbage, *extra, names=("garbage.h5",))
    refused(capsys, command, tmp_path / "absent.h5", *extra, names=("absent.h5",))


def curve_file(folder: Path) -> Path:
    """A small, valid curve file as `losslab connect` writes it (one bend, evaluated at 3 values of t)."""
    from engine.connect.options import ConnectOptions
    from engine.connect.store import CurveRecord, write_curve

    record = CurveRecord(ConnectOptions(), "a.h5", "b.h5", 3, 3, "fa", "fb", ["w"], [{"w": np.zeros(4)}],
                         epochs_done=1, train_loss=[0.5], resume=np.zeros(8, dtype=np.uint8), status="complete",
                         t=np.linspace(0, 1, 3), values={"curve": {"train_loss": np.ones(3)},
                                                         "line": {"train_loss": np.ones(3)}})
    write_curve(record, folder / "curve.h5")
    return folder / "curve.h5"


@pytest.mark.parametrize("damage, expected", [
    (lambda f: f.__delitem__("bends"), "'/bends/0/w' is missing"),
    (lambda f: (f.__delitem__("bends/0/w"), f.create_dataset("bends/0/w", data=np.array([b"x"]))), "has dtype"),
    (lambda f: (f.__delitem__("curve/train_loss"), f.create_dataset("curve/train_loss", data=np.ones(5))),
     "has 5 values; expected 3"),
    (lambda f: (f.__delitem__("resume"), f.create_dataset("resume", data=np.ones(3))), "'/resume' has dtype"),
    (lambda f: f.attrs.__delitem__("epochs_done"), "attribute 'epochs_done'"),
    (lambda f: f.attrs.__setitem__("format", "something else"), "not a LossLab curve file"),
])
def test_damaged_curve_files_name_what_is_wrong(tmp_path, damage, expected):
    from engine.connect.store import load_curve
    from engine.errors import RunFileError

    path = curve_file(tmp_path)
    assert load_curve(path).values["curve"]["train_loss"].tolist() == [1.0, 1.0, 1.0]
    with h5py.File(path, "a") as f:
        damage(f)
    with pytest.raises(RunFileError, match="curve.h5") as caught:
        load_curve(path)
    assert expected in str(caught.value), str(caught.value)


# ---------------------------------------------------------------- command-line options
OPTION_CASES = [
    (["--x=-1:1:100000", "--y=-1:1:100000"], ("100000 x 100000", "at most")),
    (["--threads", "4096"], ("threads = 4096", "1 to")),
    (["--workers", "4096"], ("workers = 4096", "1 to")),
    (["--x=-1:1"], ("x = '-1:1'", "MIN:MAX:N")),
    (["--x=1:-1:5"], ("MIN <= MAX",)),
    (["--checkpoint", "99"], ("epoch 99", "stored epochs")),
    (["--directions", "pca"], ("y = None", "y axis")),
    (["--average", "5", "--y=-1:1:3"], ("average = 5",)),
]


@pytest.mark.parametrize(("flags", "names"), OPTION_CASES, ids=[n[0] for _, n in OPTION_CASES])
def test_surface_options_refused(tmp_path, capsys, run_file, flags, names):
    out = tmp_path / "s.h5"
    refused(capsys, "surface", run_file, *flags, "--out", out, names=names)
    assert not out.exists() and not out.with_name("s.h5.partial").exists()


def test_unknown_device(tmp_path, capsys):
    refused(capsys, "train", experiment(tmp_path), "--out", tmp_path / "r.h5", "--device", "cuda:7",
            names=("device", "cuda:7"))


def test_choice_errors_name_the_option(capsys, run_file, tmp_path):
    refused(capsys, "surface", run_file, "--split", "validation", "--out", tmp_path / "s.h5",
            names=("split", "'validation'", "train, test, both"))


# ---------------------------------------------------------------- output paths
def test_out_is_a_folder(tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    refused(capsys, "train", experiment(tmp_path), "--out", folder, "--overwrite", names=("runs", "folder"))


def test_out_inside_a_file(tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    refused(capsys, "train", experiment(tmp_path), "--out", blocker / "run.h5", names=("notes.txt",))


def test_surface_out_is_a_folder(tmp_path, capsys, run_file):
    refused(capsys, "surface", run_file, "--x=-1:1:3", "--out", tmp_path, names=(str(tmp_path),))


def test_existing_out_needs_resume_or_overwrite(tmp_path, capsys, run_file):
    shutil.copy(run_file, tmp_path / "r.h5")
    refused(capsys, "train", experiment(tmp_path), "--out", tmp_path / "r.h5", names=("--resume", "--overwrite"))


@pytest.fixture
def read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)]).returncode != 0:
            pytest.skip("cannot mount a read-only tmpfs here")
        yield folder
        subprocess.run(["umount", str(folder)])
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_unwritable_folder(tmp_path, capsys, read_only_folder, run_file, surface_file):
    refused(capsys, "train", experiment(tmp_path), "--out", read_only_folder / "r.h5",
            names=(str(read_only_folder), "choose another --out"))
    refused(capsys, "surface", run_file, "--x=-1:1:3", "--out", read_only_folder / "s.h5",
            names=(str(read_only_folder), "choose another --out"))
    refused(capsys, "export", surface_file, "--format", "csv", "--out", read_only_folder / "s.csv",
            names=("s.csv", "write"))


def test_killed_before_first_checkpoint_resumes(tmp_path, capsys):
    from engine.storage.runfile import RunWriter

    toml = experiment(tmp_path)
    out = tmp_path / "r.h5"
    RunWriter(out).create(from_toml_text(toml.read_text()).to_toml(), {}, {
        "classes": ["0"], "input_shape": (1, 8, 8), "task": "classification", "num_outputs": 10,
        "train_fingerprint": "x", "train_size": 1, "test_size": 1})
    assert main(["train", str(toml), "--out", str(out), "--resume"]) == 0
    assert load_run(out).epochs == [0, 1, 2] and load_run(out).status == "complete"


def test_resume_without_training_state_keeps_the_checkpoints(tmp_path, capsys, run_file):
    run = damaged_copy(run_file, tmp_path, lambda f: f.__delitem__("resume"))
    before = run.read_bytes()
    refused(capsys, "train", experiment(tmp_path), "--out", run, "--resume", names=(run.name, "'resume'",
                                                                                   "--overwrite"))
    assert run.read_bytes() == before


def test_truncated_run_file_resume_mentions_overwrite(tmp_path, capsys, run_file):
    out = tmp_path / "r.h5"
    out.write_bytes(run_file.read_bytes()[:2048])
    refused(capsys, "train", experiment(tmp_path), "--out", out, "--resume", names=("r.h5", "--overwrite"))


def test_ctrl_c_is_recorded_and_info_does_not_say_running(tmp_path, capsys):
    # Far more epochs than can finish before the interrupt: a tiny net runs hundreds a second.
    toml = experiment(tmp_path, train={"epochs": 20_000})
    out = tmp_path / "r.h5"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "train", str(toml), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # The first finished epoch's progress line (its checkpoint is written before it); reading
        # the HDF5 file instead raced with the writer, which never pauses here.
        first = next((line for line in proc.stderr if line.split("\r")[-1].lstrip().startswith("epoch")), "")
        assert first and proc.poll() is None, "the training ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err and "interrupted" in err
    assert main(["info", str(out)]) == 0
    status = capsys.readouterr().out.splitlines()[0]
    assert "running" not in status and "stopped by the user" in status


# ---------------------------------------------------------------- disk full
@pytest.fixture
def small_disk(tmp_path):
    """A 700 KiB tmpfs where the test may mount one; else None (the ENOSPC is simulated)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        yield None
        return
    yield folder
    subprocess.run(["umount", "-l", str(folder)])


def test_training_on_a_full_disk(tmp_path, small_disk):
    if small_disk is None:
        pytest.skip("no tmpfs here; test_simulated_enospc covers the same path")
    toml = experiment(tmp_path, model={"hidden": [64]}, train={"epochs": 40}, data={"train_limit": 300})
    out = small_disk / "r.h5"
    result = subprocess.run([sys.executable, "-m", "engine", "train", str(toml), "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    message = [line for line in result.stderr.splitlines() if line.startswith("losslab")]
    assert len(message) == 1 and "disk is full" in message[0] and "r.h5" in message[0], result.stderr[-2000:]
    run = load_run(out)  # the file is valid: every stored checkpoint loads
    assert 1 <= run.final_epoch < 40 and "running" not in run.status
    run.model(run.final_epoch)


def test_surface_on_a_full_disk_leaves_no_partial(tmp_path, capsys, run_file, small_disk):
    if small_disk is None:
        pytest.skip("no tmpfs here; test_simulated_enospc covers the same path")
    keep = small_disk / "keep.h5"
    shutil.copy(run_file, keep)
    out = small_disk / "s.h5"
    refused(capsys, "surface", keep, "--x=-1:1:201", "--y=-1:1:201", "--out", out, names=("s.h5", "disk is full"))
    assert not out.exists() and not out.with_name("s.h5.partial").exists()
    assert load_run(keep).final_epoch == 2


def test_simulated_enospc(tmp_path, capsys, monkeypatch, run_file):
    """The same paths without a tmpfs: the disk reports no free space."""
    import engine.storage.h5safe as h5safe
    import engine.storage.runfile as runfile

    full = shutil._ntuple_diskusage(10**9, 10**9, 0)
    monkeypatch.setattr(runfile.shutil, "disk_usage", lambda path: full)
    monkeypatch.setattr(h5safe.shutil, "disk_usage", lambda path: full)
    out = tmp_path / "r.h5"
    refused(capsys, "train", experiment(tmp_path), "--out", out, names=("r.h5", "disk is full"))
    refused(capsys, "surface", run_file, "--x=-1:1:3", "--out", tmp_path / "s.h5", names=("s.h5", "disk is full"))
    assert not (tmp_path / "s.h5.partial").exists()


def test_disk_full_after_surface_creation_keeps_a_resumable_file(tmp_path, capsys, monkeypatch, run_file):
    import engine.storage.h5safe as h5safe

    real, calls = shutil.disk_usage, []

    def fills_up(path):
        calls.append(path)
        return real(path) if len(calls) == 1 else shutil._ntuple_diskusage(10**9, 10**9, 0)

    monkeypatch.setattr(h5safe.shutil, "disk_usage", fills_up)
    out = tmp_path / "s.h5"
    refused(capsys, "surface", run_file, "--x=-1:1:5", "--workers", "1", "--out", out,
            names=("s.h5", "disk is full", "computed so far are kept"))
    monkeypatch.setattr(h5safe.shutil, "disk_usage", real)
    assert main(["surface", str(run_file), "--x=-1:1:5", "--workers", "1", "--out", str(out)]) == 0
    assert not out.with_name("s.h5.partial").exists()


def test_hdf5_enospc_during_write_is_one_message(tmp_path, monkeypatch):
    from engine.storage.runfile import RunWriter

    writer = RunWriter(tmp_path / "r.h5")

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("engine.storage.runfile.h5py.File", no_space)
    with pytest.raises(OutputError, match="r.h5.*disk is full"):
        writer.set_status("complete")


# ---------------------------------------------------------------- the error boundary
def test_internal_error_is_logged_not_shown(tmp_path, capsys, monkeypatch, run_file):
    import engine.cli.info as info

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(info, "run_summary", lambda path: 1 / 0)
    code, err = cli(capsys, "info", run_file)
    log = tmp_path / "state" / "losslab" / "errors.log"
    assert code == 1 and "internal error" in err and str(log) in err and "Traceback" not in err
    assert "ZeroDivisionError" in log.read_text()
    code, err = cli(capsys, "info", run_file, "--debug")
    assert code == 1 and "Traceback" in err and "ZeroDivisionError" in err


# ---------------------------------------------------------------- fuzz: the TOML/options layer
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=12), st.lists(st.integers(-5, 300), max_size=4))
KEYS = {
    "data": ["source", "root", "normalize", "augment", "test_fraction", "train_limit", "bogus"],
    "model": ["arch", "skip", "width", "hidden", "activation", "taaf", "user", "user_kwargs", "bogus"],
    "train": ["optimizer", "lr", "momentum", "batch_size", "epochs", "loss", "schedule", "milestones", "threads"],
    "bias": ["kind", "fraction", "class", "variance"],
}
SECTIONS = st.fixed_dictionaries({}, optional={
    section: st.dictionaries(st.sampled_from(keys), SCALARS, max_size=4) for section, keys in KEYS.items()})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SECTIONS)
def test_fuzz_experiment_dicts(data):
    """Any mix of keys and values builds a valid experiment or raises one ConfigError naming a key."""
    try:
        cfg = from_dict(data, "fuzz.toml")
    except ConfigError as exc:
        assert exc.key and "fuzz.toml" in str(exc)
    else:
        assert from_toml_text(cfg.to_toml()) == cfg


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_toml_text(text):
    try:
        from_toml_text(text, "fuzz.toml")
    except ConfigError as exc:
        assert "fuzz.toml" in str(exc)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["x", "y", "directions", "average", "threads", "split", "checkpoint",
                                        "subset", "to"]), SCALARS, max_size=4))
def test_fuzz_surface_options(values):
    from engine.landscape.options import SurfaceOptions

    try:
        SurfaceOptions(**values)
    except ConfigError as exc:
        assert exc.key
