"""Shared fixtures: tiny image folders and a tiny, fast Config."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image, ImageSequence

from dcgan_tf.config import Config

SHARED_DATASETS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets")


def write_images(folder, count, size=(16, 16), mode="RGB", seed=0, suffix=".png"):
    """`count` random images of `size` (width, height) in `folder`; returns their paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    paths = []
    for i in range(count):
        array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        path = os.path.join(folder, f"img_{i:03d}{suffix}")
        Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)
        paths.append(path)
    return paths


def png_size(path):
    with Image.open(path) as image:
        return image.size  # (width, height)


def gif_info(path):
    """((width, height), stored frames, total duration in ms)."""
    with Image.open(path) as gif:
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
        return gif.size, gif.n_frames, sum(durations)


@pytest.fixture
def image_folder(tmp_path):
    """10 random 16x16 RGB PNGs."""
    folder = tmp_path / "pics"
    write_images(folder, 10)
    return str(folder)


def tiny_config(tmp_path, dataset, **overrides) -> Config:
    """A small, fast model on 16x16 images whose outputs go under tmp_path."""
    values = dict(dataset=str(dataset), input_fname_pattern="*.png", output_height=16, batch_size=4, epoch=1,
                  z_dim=8, gf_dim=8, df_dim=8, sample_freq=2, ckpt_freq=2, grid_rows=2, grid_cols=3, verbose=0,
                  checkpoint_dir=str(tmp_path / "checkpoints"), sample_dir=str(tmp_path / "samples"), seed=3)
    values.update(overrides)
    return Config(**values)
