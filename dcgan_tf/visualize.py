"""Pictures from generated images: tile a batch into one grid and write it as PNG (Pillow)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def to_uint8(images) -> np.ndarray:
    """float images in [-1, 1] -> uint8 in [0, 255] (values outside are clipped)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def sample_grid(images, rows: int, cols: int, padding: int = 0) -> np.ndarray:
    """images [N, H, W, C] float in [-1, 1] -> one uint8 picture [rows*H, cols*W, C], filled row by row.

    N must be at most rows*cols; empty cells stay white. `padding` white pixels separate the cells.
    """
    images = to_uint8(images)
    count, height, width, channels = images.shape
    if count > rows * cols:
        raise ValueError(f"{count} images do not fit a {rows}x{cols} grid")
    step_h, step_w = height + padding, width + padding
    grid = np.full((rows * step_h - padding, cols * step_w - padding, channels), 255, np.uint8)
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        grid[row * step_h: row * step_h + height, col * step_w: col * step_w + width] = image
    return grid


def save_image(array: np.ndarray, path: str) -> str:
    """Write a uint8 [H, W, C] (C = 1 or 3) array as an image file; parent folders are created."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(path)
    return path


def save_grid(images, rows: int, cols: int, path: str) -> str:
    """sample_grid + save_image."""
    return save_image(sample_grid(images, rows, cols), path)
