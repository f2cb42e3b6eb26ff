import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.config import DataConfig
from engine.data import augment_batch, load_dataset
from engine.errors import DataError


def test_digits_default_split_is_fixed_and_stratified():
    a = load_dataset(DataConfig(), seed=0)
    b = load_dataset(DataConfig(), seed=0)
    assert a.input_shape == (1, 8, 8) and a.num_outputs == 10 and a.task == "classification"
    assert len(a.x_train) + len(a.x_test) == 1797
    assert torch.equal(a.x_train, b.x_train) and a.fingerprint == b.fingerprint
    assert abs(float(a.x_train.mean())) < 1e-4  # standardised with training statistics


def test_demean_subtracts_each_samples_mean():
    ds = load_dataset(DataConfig(normalize="demean"), seed=0)
    assert float(ds.x_train.mean(dim=(1, 2, 3)).abs().max()) < 1e-5


def test_mnist1d_is_generated_locally():
    ds = load_dataset(DataConfig(source="mnist1d"), seed=0)
    assert ds.input_shape == (40,) and len(ds.x_train) == 4000 and len(ds.x_test) == 1000


def _write_idx(folder: Path, name: str, array: np.ndarray, magic: int) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(folder / f"{name}.gz", "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_folder_re_encoded(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _write_idx(raw, "train-images-idx3-ubyte", rng.integers(0, 255, (20, 28, 28)), 2051)
    _write_idx(raw, "train-labels-idx1-ubyte", np.arange(20) % 10, 2049)
    _write_idx(raw, "t10k-images-idx3-ubyte", rng.integers(0, 255, (10, 28, 28)), 2051)
    _write_idx(raw, "t10k-labels-idx1-ubyte", np.arange(10), 2049)
    ds = load_dataset(DataConfig(source="fashion-mnist", root=str(tmp_path), normalize="unit"), seed=0)
    assert ds.input_shape == (1, 28, 28) and ds.classes[0] == "t-shirt" and len(ds.x_test) == 10
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian_package():
    cfg = DataConfig(source="fashion-mnist", root="/usr/share/datasets/fashion-mnist", test_limit=500, train_limit=500)
    ds = load_dataset(cfg, seed=0)
    assert ds.input_shape == (1, 28, 28) and len(ds.x_train) == 500


def test_cifar10_pickle_folder_without_official_md5(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["a", "b", "c", "d"] + list("efghij")}))
    ds = load_dataset(DataConfig(source="cifar10", root=str(tmp_path)), seed=0)
    assert ds.input_shape == (3, 32, 32) and len(ds.x_train) == 20 and len(ds.x_test) == 4


def test_missing_folders_name_the_folder_and_expected_files(tmp_path):
    with pytest.raises(DataError, match=r"cifar-10-batches-py.*data_batch_1.*never downloads"):
        load_dataset(DataConfig(source="cifar10", root=str(tmp_path / "nowhere")), seed=0)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*FashionMNIST/raw"):
        load_dataset(DataConfig(source="fashion-mnist", root=str(tmp_path)), seed=0)
    with pytest.raises(DataError, match="MNIST/raw") as info:
        load_dataset(DataConfig(source="mnist", root=str(tmp_path)), seed=0)
    assert "download=True" not in str(info.value)


def test_npz_variants(tmp_path):
    rng = np.random.default_rng(0)
    images = tmp_path / "images.npz"
    np.savez(images, x_train=rng.integers(0, 255, (30, 12, 12, 3), dtype=np.uint8), y_train=np.arange(30) % 3,
             x_test=rng.integers(0, 255, (9, 12, 12, 3), dtype=np.uint8), y_test=np.arange(9) % 3)
    ds = load_dataset(DataConfig(source="tensors", root=str(images)), seed=0)
    assert ds.input_shape == (3, 12, 12) and ds.num_outputs == 3
    features = tmp_path / "regression.npz"
    np.savez(features, x_train=rng.normal(size=(30, 5)), y_train=rng.normal(size=30),
             x_test=rng.normal(size=(9, 5)), y_test=rng.normal(size=9))
    ds = load_dataset(DataConfig(source="tensors", root=str(features)), seed=0)
    assert ds.task == "regression" and ds.num_outputs == 1 and ds.input_shape == (5,)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.zeros((3, 4)), "y_train": np.zeros(3, int)}, "missing keys x_test, y_test"),
        ({"x_train": np.zeros((3, 4)), "y_train": np.zeros(2, int), "x_test": np.zeros((1, 4)),
          "y_test": np.zeros(1, int)}, "x_train has 3 samples but y_train has 2"),
        ({"x_train": np.zeros((3, 4, 5), np.float32), "y_train": np.zeros(3, int), "x_test": np.zeros((1, 4)),
          "y_test": np.zeros(1, int)}, "x_train has dtype float32 and shape"),
        ({"x_train": np.zeros((3, 4)), "y_train": np.zeros(3, int), "x_test": np.zeros((1, 5)),
          "y_test": np.zeros(1, int)}, "x_test samples are"),
    ],
)
def test_npz_with_wrong_keys_or_shapes(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset(DataConfig(source="tensors", root=str(path)), seed=0)


def test_npz_that_is_not_an_npz(tmp_path):
    path = tmp_path / "fake.npz"
    path.write_text("hello")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(DataConfig(source="tensors", root=str(path)), seed=0)


def test_augment_crops_and_flips_deterministically():
    images = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    a = augment_batch(images, torch.Generator().manual_seed(0))
    b = augment_batch(images, torch.Generator().manual_seed(0))
    assert a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, images)
