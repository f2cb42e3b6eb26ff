"""Raw data sources: each returns numpy arrays ``(x_train, y_train, x_test, y_test, classes)``.

Nothing is downloaded: built-in sets are generated or bundled locally, and folder sets are
read by LossLab's own checked readers (CIFAR's pickles through a restricted unpickler, idx files
with their headers checked before any data) with messages that say which folder and which files
were expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError, UnsafeFileError

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


CIFAR10_TRAIN = tuple(f"data_batch_{k}" for k in range(1, 6))
CIFAR10_TEST = ("test_batch",)
CIFAR10_PIXELS = 3 * 32 * 32


def load_cifar10_folder(root: str) -> RawData:
    """A CIFAR-10 python-pickle folder (``cifar-10-batches-py``); md5 sums not required.

    The batches are read with a restricted unpickler (plain dicts, lists, bytes, numpy arrays
    only), never with ``pickle.load``: a tampered folder cannot run code.
    """
    folder = _cifar10_batches(root)
    x_train, y_train = _cifar10_split(folder, CIFAR10_TRAIN)
    x_test, y_test = _cifar10_split(folder, CIFAR10_TEST)
    return RawData(x_train, y_train, x_test, y_test, _cifar10_classes(folder))


def _cifar10_batches(root: str) -> Path:
    folder = Path(root)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    elif not (folder.name == "cifar-10-batches-py" and folder.is_dir()):
        raise DataError(
            f"data.root = {root!r}: no CIFAR-10 folder found. Expected '{folder}/cifar-10-batches-py/' "
            "holding data_batch_1 … data_batch_5 and test_batch (the python version of CIFAR-10); "
            "LossLab never downloads data."
        )
    missing = [n for n in (*CIFAR10_TRAIN, *CIFAR10_TEST) if not (folder / n).is_file()]
    if missing:
        raise DataError(f"data.root = {root!r}: '{folder}' lacks {', '.join(missing)}")
    return folder


def _cifar10_split(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in names:
        batch = _cifar10_batch(folder / name)
        images.append(batch[0])
        labels.append(batch[1])
    x = np.concatenate(images).reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return x, np.concatenate(labels)


def _cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: ``{b"data": uint8 (N, 3072), b"labels": [N ints in 0..9], ...}``."""
    from engine.data.safe_pickle import load_plain_pickle

    batch = load_plain_pickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"'{path}': expected a CIFAR-10 batch (a dict), found {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR10_PIXELS:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"'{path}': 'data' is {found}; expected uint8 (N, {CIFAR10_PIXELS})")
    labels = np.asarray(labels if isinstance(labels, list) else [], dtype=np.int64)
    if len(labels) != len(data) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DataError(f"'{path}': 'labels' must hold {len(data)} class numbers 0..9, found {len(labels)} "
                        f"values" + (f" in {labels.min()}..{labels.max()}" if labels.size else ""))
    return data, labels


def _cifar10_classes(folder: Path) -> list[str]:
    from engine.data.safe_pickle import load_plain_pickle

    meta_path = folder / "batches.meta"
    if not meta_path.is_file():
        return list(CIFAR10_CLASSES)
    meta = load_plain_pickle(meta_path)
    names = meta.get("label_names", meta.get(b"label_names")) if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10:
        return list(CIFAR10_CLASSES)
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")


def _find_idx_folder(root: Path, dataset_dir: str) -> Path | None:
    for candidate in (root / dataset_dir / "raw", root / "raw", root):
        if all((candidate / n).is_file() or (candidate / f"{n}.gz").is_file() for n in IDX_FILES):
            return candidate
    return None


def load_idx_folder(root: str, source: str) -> RawData:
    """MNIST or Fashion-MNIST idx files (plain or .gz), as torchvision lays them out or flat."""
    dataset_dir = "FashionMNIST" if source == "fashion-mnist" else "MNIST"
    folder = _find_idx_folder(Path(root), dataset_dir)
    if folder is None:
        raise DataError(
            f"data.root = {root!r}: no {source} idx files found. Expected {', '.join(IDX_FILES)} "
            f"(optionally .gz) in '{root}/{dataset_dir}/raw/', '{root}/raw/' or '{root}/'; "
            "LossLab never downloads data."
        )
    arrays = [_read_idx(folder, name) for name in IDX_FILES]
    classes = FASHION_CLASSES if source == "fashion-mnist" else DIGIT_CLASSES
    return RawData(
        _images_uint8_to_float(arrays[0]), arrays[1].astype(np.int64),
        _images_uint8_to_float(arrays[2]), arrays[3].astype(np.int64), classes,
    )


def _read_idx(folder: Path, name: str) -> np.ndarray:
    from engine.data.idx_files import read_idx

    path = folder / name
    return read_idx(path if path.is_file() else folder / f"{name}.gz", 3 if "images" in name else 1)


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MAX_CLASSES = 100_000


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
            for key in NPZ_KEYS:
                _check_npz_member(path, npz, key)
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except (ValueError, OSError, EOFError) as exc:
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


def _check_npz_member(path: Path, npz: np.lib.npyio.NpzFile, key: str) -> None:
    """Shape and dtype from the member's header, before its data is read (a header may lie)."""
    from engine.device import available_memory

    with npz.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        shape, _, dtype = reader(member)
    if dtype.hasobject:
        raise UnsafeFileError(f"'{path}': {key} holds Python objects (dtype {dtype}); only numeric arrays "
                              "are read, objects could run code when loaded")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > available_memory() // 2:
        raise DataError(f"'{path}': {key} declares shape {tuple(shape)} ({nbytes / 2**30:.1f} GiB), more than "
                        "half of this machine's available memory")


def _user_inputs(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise DataError(f"'{path}': {key} holds {bad} NaN or infinite values; expected finite numbers")
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
        if y.size and y.max() >= MAX_CLASSES:
            raise DataError(f"'{path}': {key} has class label {int(y.max())}; expected labels 0..K-1 with "
                            f"K <= {MAX_CLASSES}")
        return y.astype(np.int64)
    if y.dtype.kind == "f" and y.ndim in (1, 2):
        if not np.isfinite(y).all():
            raise DataError(f"'{path}': {key} holds NaN or infinite targets; expected finite numbers")
        return y.astype(np.float32)
    raise DataError(f"'{path}': {key} has dtype {y.dtype} and shape {y.shape}; expected integer labels (N,) "
                    "or float regression targets (N,) / (N,K)")
