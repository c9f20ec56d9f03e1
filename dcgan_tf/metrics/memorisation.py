"""Memorisation: each sample's nearest training image in feature space, the share that sit closer to the training
set than real images sit to each other, and a picture of the closest pairs to look at."""

from __future__ import annotations

import math

import numpy as np

from dcgan_tf import images as pictures
from dcgan_tf.metrics.distances import kth_nearest, same_dim

PAIR_PADDING = pictures.CELL_PADDING  # white pixels between pairs; the two images of a pair touch


def nearest_training(fake_features, real_features) -> tuple[np.ndarray, np.ndarray]:
    """(indices [M], distances [M]): for each sample [M, D], its nearest real image [N, D] (Euclidean)."""
    fake, real = same_dim(fake_features, real_features, ("fake_features", "real_features"))
    return kth_nearest(fake, real)


def copy_fraction(fake_features, real_features, nearest: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """{copy_fraction, median_real_nn, median_fake_nn}: the share of samples nearer their nearest real image than
    the median real image is to its nearest other real image, and those two medians.

    About 0.5 for samples drawn like the real images themselves, 1 for copies, near 0 for samples far from the
    data. `nearest`: nearest_training's result when already computed (N >= 2 real images).
    """
    fake, real = same_dim(fake_features, real_features, ("fake_features", "real_features"))
    _, fake_nn = nearest if nearest is not None else kth_nearest(fake, real)
    median_real_nn = float(np.median(kth_nearest(real, real, same_set=True)[1]))
    return {"copy_fraction": float(np.mean(fake_nn < median_real_nn)), "median_real_nn": median_real_nn,
            "median_fake_nn": float(np.median(fake_nn))}


def _as_uint8(images) -> np.ndarray:
    images = np.asarray(images)
    return images if images.dtype == np.uint8 else pictures.to_uint8(images)


def nearest_pairs_picture(fake_images, real_images, indices, distances, count: int = 16) -> np.ndarray:
    """uint8 picture of the `count` closest pairs (sample | its nearest training image), closest first, row by row.

    fake_images [M, H, W, C] and real_images [N, H, W, C]: float in [-1, 1] or uint8; indices and distances are
    nearest_training's. Saved by the caller as nearest_<step>.png.
    """
    fake, real = _as_uint8(fake_images), _as_uint8(real_images)
    order = np.argsort(distances, kind="stable")[:count]
    if not len(order):
        raise ValueError("no pairs to show (count < 1 or no samples)")
    pairs = np.concatenate([fake[order], real[np.asarray(indices)[order]]], axis=2)  # [count, H, 2W, C]
    cols = math.ceil(math.sqrt(len(pairs)))
    return pictures.tile(pairs, math.ceil(len(pairs) / cols), cols, PAIR_PADDING)
