"""The boxes of forgetting to draw (DCGAN paper section 6.3.1): read from a CSV (sample, x0, y0, x1, y1, drawn on a
numbered grid), checked against the grid's layout (images.GridLayout) and placed in each sample's own pixels, then
as the feature-map positions and pixels they cover. numpy only, so --visualize checks a box file before TensorFlow
loads; forget.py fits and drops the filters.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

from dcgan_tf.config import ConfigError
from dcgan_tf.images import GridLayout

BOX_COLUMNS = ("sample", "x0", "y0", "x1", "y1")
POSITIVE_COVER = 0.5  # a feature-map position is inside the boxes when they cover at least this much of its area


@dataclass(frozen=True)
class Box:
    """One box: the CSV row it came from (its line number), the sample it marks and its corners (x0 < x1, y0 < y1)."""

    row: int
    sample: int
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def corners(self) -> tuple[float, float, float, float]:
        return self.x0, self.y0, self.x1, self.y1


def _row_error(path: str, row: int, message: str) -> ConfigError:
    return ConfigError("forget_boxes", f"{path} row {row}: {message}")


def read_boxes(path: str) -> tuple[Box, ...]:
    """The boxes of a CSV file (see parse_boxes); ConfigError naming --forget_boxes, the file and the row otherwise."""
    if not os.path.isfile(path):
        raise ConfigError("forget_boxes", f"not a file: {path}")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return parse_boxes(handle.read(), path)


def parse_boxes(text: str, source: str = "the boxes") -> tuple[Box, ...]:
    """CSV text of boxes: one row per box, `sample,x0,y0,x1,y1` (a header row with those names may come first;
    empty rows and rows starting with # are skipped; the corners in either order). ConfigError naming
    --forget_boxes, `source` and the row otherwise, or when there is no box at all."""
    boxes = []
    reader = csv.reader(text.splitlines())
    for fields in reader:
        fields = [field.strip() for field in fields]
        row = reader.line_num
        if not any(fields) or fields[0].startswith("#"):
            continue
        if not boxes and [field.lower() for field in fields] == list(BOX_COLUMNS):
            continue  # the header
        if len(fields) != len(BOX_COLUMNS):
            raise _row_error(source, row, f"want {len(BOX_COLUMNS)} values {','.join(BOX_COLUMNS)}, got "
                                          f"{len(fields)}: {','.join(fields)}")
        if not fields[0].isdecimal():
            raise _row_error(source, row, f"the sample number must be a whole number >= 0 (got {fields[0]!r})")
        try:
            x0, y0, x1, y1 = (float(field) for field in fields[1:])
        except ValueError:
            raise _row_error(source, row, f"the corners must be numbers (got {','.join(fields[1:])})") from None
        if not all(math.isfinite(value) for value in (x0, y0, x1, y1)):
            raise _row_error(source, row, f"the corners must be finite numbers (got {','.join(fields[1:])})")
        x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        if x0 == x1 or y0 == y1:
            raise _row_error(source, row, f"the box {','.join(fields[1:])} is empty: x1 must differ from x0 and y1 "
                                          f"from y0")
        boxes.append(Box(row, int(fields[0]), x0, y0, x1, y1))
    if not boxes:
        raise ConfigError("forget_boxes", f"{source} holds no boxes: write one row per box, {','.join(BOX_COLUMNS)} "
                                          f"(pixels of the numbered grid)")
    return tuple(boxes)


def place_boxes(boxes, layout: GridLayout, source: str = "the boxes") -> dict[int, list[tuple]]:
    """Boxes on the grid picture `layout` describes -> {sample: [(x0, y0, x1, y1) in its own pixels]}, each box
    clipped to its sample's cell. ConfigError naming --forget_boxes and the row for a sample not on the grid, a box
    reaching off the picture, or a box whose centre is not on its sample's cell."""
    width, height = layout.size
    placed: dict[int, list[tuple]] = {}
    for box in boxes:
        if not 0 <= box.sample < layout.count:
            raise _row_error(source, box.row, f"sample {box.sample} is not on the grid: it numbers "
                                              f"0-{layout.count - 1} (draw it with the same --num_samples, --grid_cols "
                                              f"and --seed)")
        if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height:
            raise _row_error(source, box.row, f"the box {box.x0:g},{box.y0:g},{box.x1:g},{box.y1:g} reaches outside "
                                              f"the grid, which is {width} x {height} pixels")
        under = layout.cell_at((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        if under != box.sample:
            left, top = layout.origin(box.sample)
            where = "padding between cells" if under is None else f"sample {under}"
            raise _row_error(source, box.row, f"the box's centre is on {where}, not on sample {box.sample}, whose "
                                              f"cell spans x {left}-{left + layout.width * layout.scale}, y {top}-"
                                              f"{top + layout.height * layout.scale}")
        placed.setdefault(box.sample, []).append(layout.to_sample(box.sample, box.corners))
    return placed


def _cover(low: float, high: float, cells: int, side: int) -> np.ndarray:
    """[cells]: the fraction of each of `cells` equal spans of [0, side] that [low, high] covers."""
    edges = np.arange(cells + 1) * (side / cells)
    return np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0, None) / (side / cells)


def position_labels(placed: dict, count: int, height: int, width: int, rows: int, cols: int) -> np.ndarray:
    """bool [count, rows, cols]: the positions of a rows x cols feature map over height x width images that the
    boxes (sample pixels, as place_boxes gives) cover by at least POSITIVE_COVER of their area, and for each box the
    position it covers most (so a box smaller than a position still marks one)."""
    labels = np.zeros((count, rows, cols), bool)
    for sample, boxes in placed.items():
        for x0, y0, x1, y1 in boxes:
            cover = np.outer(_cover(y0, y1, rows, height), _cover(x0, x1, cols, width))
            labels[sample] |= cover >= POSITIVE_COVER
            labels[sample].flat[int(np.argmax(cover))] = True
    return labels


def pixel_mask(placed: dict, count: int, height: int, width: int) -> np.ndarray:
    """bool [count, height, width]: the pixels whose centre lies in a box."""
    mask = np.zeros((count, height, width), bool)
    ys, xs = np.arange(height) + 0.5, np.arange(width) + 0.5
    for sample, boxes in placed.items():
        for x0, y0, x1, y1 in boxes:
            mask[sample] |= np.outer((ys > y0) & (ys < y1), (xs > x0) & (xs < x1))
    return mask
