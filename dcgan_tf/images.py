"""Pictures from image arrays: uint8 conversion, grids, labelled cells, PNG and GIF writing, and the one font.

Images inside the library are float32 in [-1, 1]; here they become uint8 pictures at the edge (files).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIN_LABELED_CELL = 64  # numbered figures upscale smaller images to this many pixels, for the text
CELL_PADDING = 2  # white pixels between the cells of numbered figures and contact sheets


def to_uint8(images) -> np.ndarray:
    """float images in [-1, 1] -> uint8 in [0, 255] (values outside are clipped)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def tile(images: np.ndarray, rows: int, cols: int, padding: int = 0) -> np.ndarray:
    """uint8 images [N, H, W, C] -> one picture [rows*H + (rows-1)*padding, cols*W + ..., C], row by row.

    N must be at most rows*cols; empty cells and the padding are white.
    """
    count, height, width, channels = images.shape
    if count > rows * cols:
        raise ValueError(f"{count} images do not fit a {rows}x{cols} grid")
    step_h, step_w = height + padding, width + padding
    grid = np.full((rows * step_h - padding, cols * step_w - padding, channels), 255, np.uint8)
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        grid[row * step_h: row * step_h + height, col * step_w: col * step_w + width] = image
    return grid


def sample_grid(images, rows: int, cols: int, padding: int = 0) -> np.ndarray:
    """images [N, H, W, C] float in [-1, 1] -> one uint8 picture [rows*H, cols*W, C], filled row by row.

    N must be at most rows*cols; empty cells stay white. `padding` white pixels separate the cells.
    """
    return tile(to_uint8(images), rows, cols, padding)


def save_image(array: np.ndarray, path: str) -> str:
    """Write a uint8 [H, W, C] (C = 1 or 3) array as an image file; parent folders are created."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(path)
    return path


def save_grid(images, rows: int, cols: int, path: str) -> str:
    """sample_grid + save_image."""
    return save_image(sample_grid(images, rows, cols), path)


def save_gif(frames, path: str, fps: float = 10.0) -> str:
    """Write uint8 frames [N, H, W] or [N, H, W, C] (C = 1 or 3) as a looping GIF through imageio.

    Each frame shows for 1/fps s (GIF stores hundredths). Pillow, imageio's GIF writer, stores a run of identical
    consecutive frames as one frame shown that much longer, so the animation and its total time are unchanged.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(f"save_gif wants uint8 frames [N, H, W(, C)], got {frames.dtype} {frames.shape}")
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if not fps > 0:
        raise ValueError(f"fps must be > 0 (got {fps})")
    duration_ms = 1000.0 / fps
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        import imageio.v3 as iio
    except ImportError:  # imageio < 2.16: the v2 API, duration in seconds
        import imageio

        imageio.mimsave(path, list(frames), format="GIF", duration=duration_ms / 1000.0, loop=0)
        return path
    iio.imwrite(path, frames, plugin="pillow", extension=".gif", is_batch=True,
                mode="L" if frames.ndim == 3 else "RGB", duration=duration_ms, loop=0)
    return path


def ping_pong(frames: list) -> list:
    """frames 0..n-1 then n-2..1: a loop that plays forward and back without repeating its ends (2n-2 frames)."""
    return list(frames) + list(frames[-2:0:-1])


def font(size: int):
    """Pillow's default font at `size` pixels (a scalable font from Pillow 10.1; the small bitmap font before)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def text_size(draw: ImageDraw.ImageDraw, text: str, text_font) -> tuple[int, int]:
    """(width, height) of `text` drawn in `text_font`."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=text_font)
    return right - left, bottom - top


def centred_text(draw: ImageDraw.ImageDraw, box: tuple, text: str, text_font) -> None:
    """Draw `text` in black centred in box (left, top, right, bottom); works with bitmap and scalable fonts."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=text_font)
    x = (box[0] + box[2] - (right - left)) / 2 - left
    y = (box[1] + box[3] - (bottom - top)) / 2 - top
    draw.text((x, y), text, fill=(0, 0, 0), font=text_font)


def text_cell(text: str, height: int, width: int) -> np.ndarray:
    """A white RGB cell [height, width, 3] with `text` centred in black."""
    cell = Image.new("RGB", (width, height), (255, 255, 255))
    centred_text(ImageDraw.Draw(cell), (0, 0, width, height), text, font(max(10, height // 3)))
    return np.asarray(cell)


def upscale(images: np.ndarray, min_side: int = MIN_LABELED_CELL) -> np.ndarray:
    """uint8 [N, H, W, C] -> RGB, enlarged by the least whole factor (nearest pixel) making both sides >= min_side."""
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    factor = max(1, math.ceil(min_side / min(images.shape[1:3])))
    return images.repeat(factor, axis=1).repeat(factor, axis=2)


@dataclass(frozen=True)
class GridLayout:
    """Where each sample lies on a numbered grid: `count` images of height x width pixels, enlarged `scale` times
    (nearest pixel), filled row by row into `cols` columns, `padding` white pixels apart. Coordinates are pixel edges:
    (0, 0) is the picture's top-left corner, and pixel (x, y) spans [x, x + 1) x [y, y + 1)."""

    count: int
    rows: int
    cols: int
    height: int
    width: int
    scale: int = 1
    padding: int = CELL_PADDING

    @classmethod
    def numbered(cls, count: int, rows: int, cols: int, height: int, width: int,
                 min_side: int = MIN_LABELED_CELL) -> "GridLayout":
        """The layout of numbered_grid (min_side: what upscale enlarged the images to)."""
        return cls(count, rows, cols, height, width, max(1, math.ceil(min_side / min(height, width))))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole picture."""
        return (self.cols * (self.width * self.scale + self.padding) - self.padding,
                self.rows * (self.height * self.scale + self.padding) - self.padding)

    def origin(self, index: int) -> tuple[int, int]:
        """(x, y) of sample `index`'s top-left corner on the picture."""
        row, col = divmod(index, self.cols)
        return col * (self.width * self.scale + self.padding), row * (self.height * self.scale + self.padding)

    def cell_at(self, x: float, y: float) -> int | None:
        """The sample under the point (x, y) of the picture; None on the padding, an empty cell or off the picture."""
        col, left = divmod(x, self.width * self.scale + self.padding)
        row, top = divmod(y, self.height * self.scale + self.padding)
        if not (0 <= col < self.cols and 0 <= row < self.rows and left < self.width * self.scale
                and top < self.height * self.scale):
            return None
        index = int(row) * self.cols + int(col)
        return index if index < self.count else None

    def to_sample(self, index: int, box) -> tuple[float, float, float, float]:
        """A box (x0, y0, x1, y1) on the picture -> the same box in sample `index`'s own pixels, clipped to it."""
        x, y = self.origin(index)
        x0, y0, x1, y1 = ((value - offset) / self.scale for value, offset in zip(box, (x, y, x, y)))
        return (min(max(x0, 0.0), self.width), min(max(y0, 0.0), self.height),
                min(max(x1, 0.0), self.width), min(max(y1, 0.0), self.height))

    def to_picture(self, index: int, box) -> tuple[float, float, float, float]:
        """A box (x0, y0, x1, y1) in sample `index`'s own pixels -> the same box on the picture."""
        x, y = self.origin(index)
        return tuple(value * self.scale + offset for value, offset in zip(box, (x, y, x, y)))


def numbered_grid(images, rows: int, cols: int) -> np.ndarray:
    """images [N, H, W, C] float in [-1, 1] -> an RGB grid (upscaled, padded) with each cell's index drawn on it.

    Index i is row i // cols, column i % cols, counting from 0; GridLayout.numbered says where each cell lies.
    """
    cells = upscale(to_uint8(images))
    _, height, width, _ = cells.shape
    picture = Image.fromarray(tile(cells, rows, cols, CELL_PADDING))
    draw = ImageDraw.Draw(picture)
    index_font = font(max(8, height // 5))
    for index in range(len(cells)):
        row, col = divmod(index, cols)
        x, y = col * (width + CELL_PADDING), row * (height + CELL_PADDING)
        left, top, right, bottom = draw.textbbox((x + 2, y + 1), str(index), font=index_font)
        draw.rectangle((x, y, right + 2, bottom + 2), fill=(0, 0, 0))
        draw.text((x + 2, y + 1), str(index), fill=(255, 255, 0), font=index_font)
    return np.asarray(picture)


def row_named_grid(images, rows: int, cols: int, names: list[str]) -> np.ndarray:
    """images [N, H, W, C] float in [-1, 1], filled row by row -> an RGB grid (upscaled, padded) with each row's
    name (names[r]) in a white column on its left, wide enough for the longest."""
    cells = upscale(to_uint8(images))
    _, height, width, _ = cells.shape
    name_font = font(max(10, height // 3))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    name_width = max([width] + [text_size(measure, name, name_font)[0] + 12 for name in names])
    grid = tile(cells, rows, cols, CELL_PADDING)
    column = np.full((grid.shape[0], name_width + CELL_PADDING, 3), 255, np.uint8)
    picture = Image.fromarray(np.concatenate([column, grid], axis=1))
    draw = ImageDraw.Draw(picture)
    for row, name in enumerate(names[:rows]):
        top = row * (height + CELL_PADDING)
        centred_text(draw, (0, top, name_width, top + height), name, name_font)
    return np.asarray(picture)


def arithmetic_figure(picked: np.ndarray, generated: np.ndarray, groups) -> np.ndarray:
    """The vector-arithmetic figure (DCGAN paper figure 7), uint8 [rows * side + padding, ..., 3], from the numbered
    samples `picked` [N, h, w, 3] and the images of latent.arithmetic_z's z `generated` [G + 1 + V, h, w, 3] (uint8,
    one size): one row per group, its sign, its samples and last G(its mean z); the last row "=", the V noisy results
    and last G(the signed sum) itself."""
    height, width = picked.shape[1:3]
    variants = len(generated) - len(groups) - 1
    longest = max(len(indices) for _, indices in groups)
    cols = max(longest + 2, 1 + variants)  # samples, a gap, the mean; or the result row
    blank = np.full((height, width, 3), 255, np.uint8)
    cells = []
    for g, (sign, indices) in enumerate(groups):
        row = [text_cell("+" if sign > 0 else "-", height, width)] + [picked[i] for i in indices]
        cells += row + [blank] * (cols - len(indices) - 1) + [generated[g]]
    exact, noisy = generated[len(groups)], list(generated[len(groups) + 1:])
    cells += [text_cell("=", height, width)] + [blank] * (cols - 1 - variants) + noisy + [exact]
    return tile(np.stack(cells), len(groups) + 1, cols + 1, CELL_PADDING)


def evenly_spaced(items: list, count: int) -> list:
    """At most `count` of items (frames, grids), evenly spaced, first and last included."""
    if len(items) <= count:
        return list(items)
    return [items[i] for i in sorted(set(np.linspace(0, len(items) - 1, count).round().astype(int)))]
