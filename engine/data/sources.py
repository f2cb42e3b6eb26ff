"""Raw data sources: each returns numpy arrays ``(x_train, y_train, x_test, y_test, classes)``.

Nothing is downloaded: built-in sets are generated or bundled locally, and folder sets are
read with torchvision's readers (``download=False``) with messages that say which folder
and which files were expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError

DIGIT_CLASSES = [str(i) for i in range(10)]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot"]


@dataclass
class RawData:
    """Unprocessed arrays: images ``(N, C, H, W)`` float in [0, 1] or features ``(N, D)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]


def load_digits_split(test_fraction: float, seed: int) -> RawData:
    """scikit-learn's bundled 8x8 digits with a fixed, seeded, stratified train/test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test_idx: list[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        test_idx.extend(members[: int(round(len(members) * test_fraction))].tolist())
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_idx] = True
    return RawData(images[~is_test], labels[~is_test], images[is_test], labels[is_test], DIGIT_CLASSES)


def load_mnist1d(seed: int) -> RawData:
    """MNIST-1D generated locally (never the package's download path)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    return RawData(
        np.asarray(data["x"], dtype=np.float32), np.asarray(data["y"], dtype=np.int64),
        np.asarray(data["x_test"], dtype=np.float32), np.asarray(data["y_test"], dtype=np.int64),
        DIGIT_CLASSES,
    )


def _images_uint8_to_float(images: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) uint8 -> (N, C, H, W) float32 in [0, 1]."""
    if images.ndim == 3:
        images = images[:, :, :, None]
    return (images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2).copy()


def load_cifar10_folder(root: str) -> RawData:
    """A CIFAR-10 python-pickle folder (``cifar-10-batches-py``), md5 checks off."""
    from torchvision.datasets import CIFAR10

    folder = Path(root)
    if (folder / "cifar-10-batches-py").is_dir():
        folder_root = folder
    elif folder.name == "cifar-10-batches-py" and folder.is_dir():
        folder_root = folder.parent
    else:
        raise DataError(
            f"data.root = {root!r}: no CIFAR-10 folder found. Expected '{folder}/cifar-10-batches-py/' "
            "holding data_batch_1 … data_batch_5 and test_batch (the python version of CIFAR-10); "
            "LossLab never downloads data."
        )

    class LocalCIFAR10(CIFAR10):
        """Accepts re-encoded folders: the official md5 sums are not required."""

        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    expected = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
    missing = [n for n in expected if not (folder_root / "cifar-10-batches-py" / n).is_file()]
    if missing:
        raise DataError(f"data.root = {root!r}: '{folder_root / 'cifar-10-batches-py'}' lacks {', '.join(missing)}")
    try:
        train = LocalCIFAR10(str(folder_root), train=True, download=False)
        test = LocalCIFAR10(str(folder_root), train=False, download=False)
    except Exception as exc:  # torchvision raises many types for malformed pickles
        raise DataError(f"data.root = {root!r}: could not read the CIFAR-10 batches ({exc})") from exc
    classes = list(getattr(train, "classes", CIFAR10_CLASSES)) or CIFAR10_CLASSES
    return RawData(
        _images_uint8_to_float(np.asarray(train.data)), np.asarray(train.targets, dtype=np.int64),
        _images_uint8_to_float(np.asarray(test.data)), np.asarray(test.targets, dtype=np.int64),
        classes,
    )


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")


def _find_idx_folder(root: Path, dataset_dir: str) -> Path | None:
    for candidate in (root / dataset_dir / "raw", root / "raw", root):
        if all((candidate / n).is_file() or (candidate / f"{n}.gz").is_file() for n in IDX_FILES):
            return candidate
    return None


def load_idx_folder(root: str, source: str) -> RawData:
    """MNIST or Fashion-MNIST idx files (plain or .gz), as torchvision lays them out or flat."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    dataset_dir = "FashionMNIST" if source == "fashion-mnist" else "MNIST"
    folder = _find_idx_folder(Path(root), dataset_dir)
    if folder is None:
        raise DataError(
            f"data.root = {root!r}: no {source} idx files found. Expected {', '.join(IDX_FILES)} "
            f"(optionally .gz) in '{root}/{dataset_dir}/raw/', '{root}/raw/' or '{root}/'; "
            "LossLab never downloads data."
        )
    arrays = [_read_idx(folder, name, read_image_file if "images" in name else read_label_file)
              for name in IDX_FILES]
    classes = FASHION_CLASSES if source == "fashion-mnist" else DIGIT_CLASSES
    return RawData(
        _images_uint8_to_float(arrays[0]), arrays[1].astype(np.int64),
        _images_uint8_to_float(arrays[2]), arrays[3].astype(np.int64), classes,
    )


def _read_idx(folder: Path, name: str, reader) -> np.ndarray:
    import gzip
    import shutil
    import tempfile

    path = folder / name
    try:
        if path.is_file():
            return reader(str(path)).numpy()
        with tempfile.TemporaryDirectory() as tmp, gzip.open(folder / f"{name}.gz", "rb") as packed:
            plain = Path(tmp) / name
            with open(plain, "wb") as out:
                shutil.copyfileobj(packed, out)
            return reader(str(plain)).numpy()
    except Exception as exc:  # malformed idx headers raise assorted errors
        raise DataError(f"'{path}': not a valid idx file ({exc})") from exc


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_tensors_npz(root: str) -> RawData:
    """User tensors: images uint8 (N,H,W,C), float (N,C,H,W), or features (N,D)."""
    path = Path(root)
    if not path.is_file():
        raise DataError(f"data.root = {root!r}: file not found; expected a .npz with keys {', '.join(NPZ_KEYS)}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise DataError(f"'{path}': missing keys {', '.join(missing)}; found {', '.join(npz.files) or 'none'}")
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except (ValueError, OSError) as exc:
        raise DataError(f"'{path}': not a readable .npz file ({exc})") from exc
    x_train, x_test = (_user_inputs(path, k, arrays[k]) for k in ("x_train", "x_test"))
    y_train, y_test = (_user_targets(path, k, arrays[k]) for k in ("y_train", "y_test"))
    for xs, ys, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(xs) != len(ys):
            raise DataError(f"'{path}': x_{split} has {len(xs)} samples but y_{split} has {len(ys)}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"'{path}': x_train samples are {x_train.shape[1:]} but x_test samples are {x_test.shape[1:]}")
    classes = [] if y_train.dtype.kind == "f" else [str(c) for c in range(int(max(y_train.max(), y_test.max())) + 1)]
    return RawData(x_train, y_train, x_test, y_test, classes)


def _user_inputs(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8 and x.ndim in (3, 4):
        return _images_uint8_to_float(x)
    if x.dtype.kind == "f" and x.ndim in (2, 4):
        return x.astype(np.float32)
    raise DataError(f"'{path}': {key} has dtype {x.dtype} and shape {x.shape}; expected uint8 images (N,H,W[,C]), "
                    "float images (N,C,H,W) or float features (N,D)")


def _user_targets(path: Path, key: str, y: np.ndarray) -> np.ndarray:
    if y.dtype.kind in "iu" and y.ndim == 1:
        if y.min() < 0:
            raise DataError(f"'{path}': {key} has negative class labels; expected labels 0..K-1")
        return y.astype(np.int64)
    if y.dtype.kind == "f" and y.ndim in (1, 2):
        return y.astype(np.float32)
    raise DataError(f"'{path}': {key} has dtype {y.dtype} and shape {y.shape}; expected integer labels (N,) "
                    "or float regression targets (N,) / (N,K)")
