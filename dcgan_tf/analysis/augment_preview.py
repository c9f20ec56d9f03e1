"""--augment_preview: a grid of training images as D sees them under the run's --augment, to check the policies.

The first row holds training images as they are (a seeded pick); each row below holds the same images augmented
with a fresh draw, with the run's probability (--augment_p; 1 under --ada_target, whose p changes as it trains).
Reads the data only: no model, no checkpoint.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

from dcgan_tf.config import Config, ConfigError
from dcgan_tf.core import augment
from dcgan_tf.data import loading
from dcgan_tf.data.datasets import load_training_data
from dcgan_tf.data.loading import to_float
from dcgan_tf.images import save_grid

log = logging.getLogger(__name__)

PREVIEW_PNG = "augment_preview.png"
PREVIEW_SEED_OFFSET = 7919  # the preview's draws: apart from training's


def preview_images(picked, policies, rows: int, seed: int, p: float = 1.0) -> np.ndarray:
    """[rows * N, H, W, C] float: `picked` (uint8 [N, H, W, C]) as they are in the first row and augmented (each
    row its own key) in the rows below."""
    originals = to_float(picked)
    rows_out = [originals]
    for row in range(1, rows):
        key = tf.constant([seed + PREVIEW_SEED_OFFSET, row], tf.int64)
        rows_out.append(augment.augment(originals, policies, key, p))
    return tf.concat(rows_out, axis=0).numpy()


def write_augment_preview(config: Config) -> str:
    """`<sample_dir>/<run>/augment_preview.png` for the run `config` names (which need not exist yet)."""
    config = config.resolved().validate()
    if not config.augment_policies:
        raise ConfigError("augment_preview", "previews --augment's augmentations: set --augment too")
    loaded = load_training_data(config)
    p = 1.0 if config.ada_target is not None else config.augment_p
    cols = min(config.grid_cols, len(loaded))
    pick = np.random.default_rng(config.seed).permutation(len(loaded))[:cols]
    if isinstance(loaded, loading.StreamedImages):  # too big to hold: decode just the picked files
        picked = np.stack([loading.decode_image(loaded.paths[i], loaded.spec, loaded.c_dim) for i in pick])
    else:
        picked = loaded.images[pick]
    grid = preview_images(picked, config.augment_policies, config.grid_rows, config.seed, p)
    path = save_grid(grid, config.grid_rows, cols, os.path.join(config.sample_path, PREVIEW_PNG))
    log.info("augment preview: first row as loaded, the %d below augmented by %s with p = %g%s", config.grid_rows - 1,
             ", ".join(config.augment_policies), p, " (--ada_target adapts p while training)"
             if config.ada_target is not None else "")
    return path
