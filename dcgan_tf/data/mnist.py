"""MNIST for the conditional DCGAN: the four IDX files from `data_dir/mnist` (plain or .gz), else keras.datasets."""

from __future__ import annotations

import gzip
import logging
import os
import zlib

import numpy as np

from dcgan_tf.data.loading import DataError, LoadedImages

log = logging.getLogger(__name__)

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Parse one IDX file (plain, or gzip if it ends in .gz) into an array of its declared shape and type."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:  # a cut-off or corrupt .gz download
        raise DataError(f"{path} is not a readable gzip file ({type(error).__name__}: {error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    start = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - start != expected:
        raise DataError(f"{path} is truncated or padded: {len(raw) - start} bytes of data, header says {expected}")
    return np.frombuffer(raw, dtype, offset=start).reshape(shape)


def _find(folder: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def load_mnist(data_dir: str) -> LoadedImages:
    """All 70,000 digits (train + test, as carpedm20) as uint8 [N, 28, 28, 1] with int labels [N]."""
    train, test = load_mnist_parts(data_dir)
    return LoadedImages(np.concatenate([train.images, test.images]), [], [],
                        np.concatenate([train.labels, test.labels]))


def load_mnist_parts(data_dir: str) -> tuple[LoadedImages, LoadedImages]:
    """MNIST's training and test sets apart (60,000 and 10,000 digits), as uint8 [N, 28, 28, 1] with int labels."""
    folder = os.path.join(data_dir, "mnist")
    found = {key: _find(folder, stem) for key, stem in FILES.items()}
    if all(found.values()):
        parts = [(read_idx(found[f"{part}_images"]), read_idx(found[f"{part}_labels"])) for part in ("train", "test")]
        source = os.path.abspath(folder)
    else:
        try:
            import keras

            parts = list(keras.datasets.mnist.load_data())
        except Exception as error:  # noqa: BLE001 - no network, no cache: say where the files go
            missing = ", ".join(f"{stem}[.gz]" for key, stem in FILES.items() if not found[key])
            raise DataError(
                f"MNIST not found: put the four IDX files ({missing}) in {os.path.abspath(folder)}; "
                f"downloading through keras.datasets.mnist failed too ({type(error).__name__}: {error})"
            ) from None
        source = "keras.datasets.mnist"
    for images, labels in parts:
        if images.ndim != 3 or len(images) != len(labels):
            raise DataError(f"MNIST files disagree: images {images.shape}, labels {labels.shape}")
    log.info("loaded %d MNIST digits from %s", sum(len(images) for images, _ in parts), source)
    return tuple(LoadedImages(images[..., None].astype(np.uint8), [], [], labels.astype(np.int64),
                              [str(digit) for digit in range(10)]) for images, labels in parts)
