"""Pictures from generated images: sample grids (PNG), GIFs (imageio), and the DCGAN paper's looks into z.

`visualize(config, VisualizeOptions(option=...))` works on a trained run and writes into its sample folder:

  0 grid              `visualize_grid_<step>.png` (+ `visualize_grid_<step>/sample_<i>.png` with save_individual);
                      with `numbered`, `visualize_grid_numbered_<step>.png`: the same samples enlarged and numbered
                      (arithmetic's numbered grid), the picture forget's boxes are drawn on
  1 sweep             `sweep_dim<k>_<step>.png` per swept dimension k: one row per base z, the columns run z[k]
                      across the z distribution's range while the other dimensions stay fixed
  2 random_sweep_gif  `random_sweep_dim<k>_<step>.gif`: random dimensions swept from a small random z
  3 sweep_gif         `sweep_dim<k>_<step>.gif`: each dimension swept from the distribution's centre (z = 0)
  4 merged_gif        `merged_sweep_<step>.gif`: every swept dimension in one frame, all moving together
  interpolate         `interpolate_<method>_<step>.png` (one row per walk) and `.gif` (the closed tour)
  arithmetic          `arithmetic_numbered_<step>.png` (the samples to pick from) and, given `arith`,
                      `arithmetic_<step>.png`
  progress            `progress.gif` and `progress_sheet.png` from the training grids `train_<step>.png`
  d_features          `d_features_<step>.png`: D's last-layer filters, their top training images and guided
                      backpropagation maps, trained D above untrained D (DCGAN paper section 6.2)
  forget              `forget_<step>.png` and `.json`: the filters of G's `forget_layer` that draw what the boxes of
                      `forget_boxes` mark on the numbered grid (or `forget_filters`), dropped: each sample beside
                      the same z without them, and how much changed inside the boxes and outside (section 6.3.1)

interpolate and arithmetic take `z_files` (from `--project`) instead of random z, to start from real images.

(<step>: the checkpoint's step, 8 digits, after `label<d>_` when a label is fixed; <k>: 3 digits.) Every z comes
from the run's training distribution (or its range, for sweeps) with integer seeds from `config.seed`, so a command
repeats exactly. Sweep GIFs play forward then back, so they loop without a jump. Conditional (MNIST) runs: PNGs
have one row per digit (row r shows digit r mod y_dim) and a GIF frame shows every digit side by side at the same z,
unless `label` fixes one digit.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from dcgan_tf.config import Config, ConfigError
from dcgan_tf.images import (CELL_PADDING, GridLayout, arithmetic_figure, centred_text, evenly_spaced, font,
                             numbered_grid, ping_pong, row_named_grid, sample_grid, save_gif, save_grid, save_image,
                             tile, to_uint8, upscale)
from dcgan_tf.latent import (FRESH_SEED_OFFSET, INTERPOLATIONS, arithmetic_z, interpolation_path, parse_arithmetic,
                             range_centre, sample_z, sweep_range, sweep_values, sweep_z)
from dcgan_tf.analysis import plots
from dcgan_tf.analysis.d_features import write_d_features
from dcgan_tf.analysis.forget import Forgetter, describe
from dcgan_tf.analysis.forget_boxes import place_boxes, read_boxes
from dcgan_tf.analysis.projection import read_z_files
from dcgan_tf.data import loading
from dcgan_tf.data.datasets import load_training_data
from dcgan_tf.files import write_json
from dcgan_tf.runs import folders
from dcgan_tf.runs.folders import RunError, list_training_grids, open_saved_run, resolve_run
from dcgan_tf.runs.trained import initial_model, load_trained

log = logging.getLogger(__name__)

OPTIONS = ("grid", "sweep", "random_sweep_gif", "sweep_gif", "merged_gif", "interpolate", "arithmetic", "progress",
           "plots", "d_features", "forget")
Z_FILE_OPTIONS = ("interpolate", "arithmetic")  # the options that can start from projected z files (--z_files)
D_FEATURES_IMAGES = 5000  # d_features ranks at most this many training images (a seeded subset of bigger sets)
NUMBERED_OPTIONS = OPTIONS[:5]  # carpedm20's --visualize_option 0-4
DEFAULT_SWEEP_DIMS = 10  # dimensions swept when `dims` is not given (merged_gif: all of them, see select_dims)
SMALL_Z = 0.1  # random_sweep_gif's base: the range's centre +- this fraction of its width (carpedm20: U(-0.2, 0.2))
SHEET_GRIDS = 16  # training grids on the progress contact sheet (evenly spaced, first and last included)
SHEET_THUMB = 256  # their longest side at most, in pixels
CAPTION_HEIGHT = 16  # the step caption under each contact-sheet grid
GENERATE_BATCH = 256
# VisualizeOptions fields whose command-line flag has another name (errors name the flag).
FLAG_NAMES = {"option": "visualize_option", "steps": "visualize_steps", "dims": "sweep_dims", "filters": "d_filters",
              "top": "d_top"}


# ------------------------------------------------------------------------------------------------ options
def option_name(value) -> str:
    """carpedm20's numbers 0-4 (int or text) or a name (any case) -> the canonical option name.

    ConfigError (a ValueError) naming --visualize_option and listing the choices for anything else.
    """
    text = str(value).strip().lower().replace("-", "_")
    if text.isdecimal() and int(text) < len(NUMBERED_OPTIONS):
        return NUMBERED_OPTIONS[int(text)]
    if text in OPTIONS:
        return text
    choices = ", ".join([f"{i} {name}" for i, name in enumerate(NUMBERED_OPTIONS)] + list(OPTIONS[5:]))
    raise ConfigError("visualize_option", f"unknown option {value!r}; choose one of {choices}")


def parse_dims(text: str):
    """`--sweep_dims` text -> "all", N (the first N dimensions; N random ones for random_sweep_gif), or a tuple
    of dimensions from a list with ranges ("0-3,7"; one dimension alone as "7,")."""
    text = str(text).strip().lower()
    if text == "all":
        return "all"
    if text.isdecimal():
        if int(text) < 1:
            raise ConfigError("sweep_dims", f"must be 'all', a count >= 1, or a list like 0-3,7 (got {text!r})")
        return int(text)
    dims = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", part)
        if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise ConfigError("sweep_dims", f"{part!r} is not a dimension or a range a-b; want 'all', a count, "
                                            f"or a list like 0-3,7 (got {text!r})")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        dims += [d for d in range(first, last + 1) if d not in dims]
    if not dims:
        raise ConfigError("sweep_dims", f"must be 'all', a count >= 1, or a list like 0-3,7 (got {text!r})")
    return tuple(dims)


def select_dims(dims, z_dim: int, option: str, seed: int = 0, rows: int = 1) -> list[int]:
    """The z dimensions a sweep option covers.

    dims None: the first DEFAULT_SWEEP_DIMS (random_sweep_gif: that many random ones; merged_gif: all of them,
    or the first DEFAULT_SWEEP_DIMS when its frames have one row per digit, `rows` > 1). "all": every dimension.
    N: the first N (random N for random_sweep_gif), at most z_dim. A tuple: those dimensions, each < z_dim.
    """
    if isinstance(dims, str):
        dims = parse_dims(dims)
    if dims is None:
        dims = "all" if option == "merged_gif" and rows == 1 else DEFAULT_SWEEP_DIMS
    if dims == "all":
        return list(range(z_dim))
    if isinstance(dims, int):
        count = min(dims, z_dim)
        if option == "random_sweep_gif":
            return [int(d) for d in np.random.default_rng(seed).choice(z_dim, count, replace=False)]
        return list(range(count))
    wrong = [d for d in dims if not 0 <= d < z_dim]
    if wrong:
        raise ConfigError("sweep_dims", f"dimension {wrong[0]} is out of range: this run's z has {z_dim} "
                                        f"dimensions, 0-{z_dim - 1}")
    return [int(d) for d in dims]


@dataclass(frozen=True)
class VisualizeOptions:
    """What `visualize` draws. Invalid values raise ConfigError naming the command-line flag."""

    option: str | int = "grid"  # a name in OPTIONS or carpedm20's 0-4; stored as the name
    num_samples: int | None = None  # grid/arithmetic samples; None: grid_rows x grid_cols
    grid_rows: int | None = None  # None: the config's (with num_samples: as many rows of grid_cols as needed)
    grid_cols: int | None = None  # None: the config's
    save_individual: bool = False  # grid: also one PNG per sample
    dims: int | tuple | str | None = None  # sweeps: see select_dims ("all", a count, "0-3,7", a tuple)
    steps: int = 10  # values per sweep (grid columns, GIF frames before the play-back) and points per walk
    interpolation: str = "slerp"  # interpolate: slerp or linear
    walks: int | None = None  # interpolate: random points on the closed tour, one grid row per walk; None: grid_rows
    arith: str | None = None  # arithmetic: "3,17,22 - 5,9,40 + 1,2,8" (indices on the numbered grid); None: grid only
    label: int | str | None = None  # conditional runs: draw only this class (its index or name)
    fps: float = 10.0  # GIF frames per second
    max_frames: int = 200  # progress: at most this many training grids in the GIF (evenly spaced)
    z_files: tuple[str, ...] | None = None  # interpolate/arithmetic: z from --project's .npz files, not random draws
    filters: int = 8  # d_features: the first this many filters of D's last conv layer, a row each
    top: int = 8  # d_features: the training images that activate each filter most, per row
    numbered: bool = False  # grid: enlarged and numbered, as arithmetic's (the picture forget's boxes are drawn on)
    forget_boxes: str | None = None  # forget: a CSV of boxes, sample,x0,y0,x1,y1 in the numbered grid's pixels
    forget_layer: str | None = None  # forget: the generator's conv layer (g_h1, ...); None: the second-highest
    forget_filters: tuple[int, ...] | None = None  # forget: drop these filters as given (no fit; boxes optional)

    def __post_init__(self):
        object.__setattr__(self, "option", option_name(self.option))
        self._check_forget()
        if isinstance(self.dims, str):
            object.__setattr__(self, "dims", parse_dims(self.dims))
        elif isinstance(self.dims, (list, tuple)):
            object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))
            if not self.dims or min(self.dims) < 0:
                raise ConfigError("sweep_dims", f"must list dimensions >= 0 (got {self.dims})")
        elif self.dims is not None and (not isinstance(self.dims, int) or isinstance(self.dims, bool) or self.dims < 1):
            raise ConfigError("sweep_dims", f"must be 'all', a count >= 1 or a list of dimensions (got {self.dims!r})")
        minimum = {"num_samples": 1, "grid_rows": 1, "grid_cols": 1, "walks": 2, "steps": 2, "max_frames": 2,
                   "filters": 1, "top": 1}
        for name, least in minimum.items():
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
                raise ConfigError(FLAG_NAMES.get(name, name), f"must be an integer >= {least} (got {value!r})")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError("interpolation", f"must be one of {', '.join(INTERPOLATIONS)} "
                                               f"(got {self.interpolation!r})")
        if not 0 < self.fps <= 100:
            raise ConfigError("fps", f"must be > 0 and <= 100 (got {self.fps})")
        if isinstance(self.label, str) and self.label.strip().isdecimal():
            object.__setattr__(self, "label", int(self.label))
        if self.label is not None and (isinstance(self.label, bool) or isinstance(self.label, int) and self.label < 0
                                       or not isinstance(self.label, (int, str))):
            raise ConfigError("label", f"must be a class index >= 0 or a class name (got {self.label!r})")
        if self.arith is not None:
            parse_arithmetic(self.arith)
        if self.z_files is not None:
            object.__setattr__(self, "z_files", tuple(self.z_files))
            if self.option not in Z_FILE_OPTIONS:
                raise ConfigError("z_files", f"start {' and '.join(Z_FILE_OPTIONS)} from projected z; "
                                             f"--visualize_option {self.option} draws its own")
            missing = [path for path in self.z_files if not os.path.isfile(path)]
            if missing or not self.z_files:
                raise ConfigError("z_files", f"not a file: {', '.join(missing)}" if missing else "empty")

    def _check_forget(self) -> None:
        """--numbered belongs to grid, the --forget_ flags to forget, which needs boxes or filters; the boxes' file is
        read here (ConfigError naming its row), before any model loads."""
        if self.numbered and self.option != "grid":
            raise ConfigError("numbered", f"numbers the grid: --visualize_option grid (got {self.option})")
        for name in ("forget_boxes", "forget_layer", "forget_filters"):
            if getattr(self, name) is not None and self.option != "forget":
                raise ConfigError(name, f"belongs to --visualize_option forget (got {self.option})")
        if self.option != "forget":
            return
        if isinstance(self.forget_filters, str):
            object.__setattr__(self, "forget_filters", tuple(part for part in self.forget_filters.split(",")
                                                             if part.strip()))
        if self.forget_filters is not None:
            texts = [str(index).strip() for index in self.forget_filters]
            if not texts or not all(text.isdecimal() for text in texts):
                raise ConfigError("forget_filters", f"filter indices >= 0, comma-separated, e.g. 3,17 (got "
                                                    f"{','.join(texts) or 'none'})")
            object.__setattr__(self, "forget_filters", tuple(int(text) for text in texts))
        if self.forget_layer is not None and not str(self.forget_layer).strip():
            raise ConfigError("forget_layer", "empty; name a conv layer of the generator, e.g. g_h2")
        if self.forget_boxes is None and self.forget_filters is None:
            raise ConfigError("forget_boxes", "forget needs boxes to fit the filters to (a CSV: sample,x0,y0,x1,y1 "
                                              "on the grid of --visualize_option grid --numbered) or "
                                              "--forget_filters to drop")
        if self.forget_boxes is not None:
            read_boxes(self.forget_boxes)


# ------------------------------------------------------------------------------------------------ visualize
@dataclass
class _Run:
    """A loaded run and the options: the shared pieces every option's writer uses."""

    config: Config
    model: object
    step: int
    options: VisualizeOptions

    def __post_init__(self):
        config, label = self.config, self.options.label
        if label is not None:  # a class name or index -> its index (ConfigError naming --label)
            self.options = dataclasses.replace(self.options, label=config.label_index(label))
        self.z_label = None  # the label of z files projected on a conditional run (file_z)
        self.rows = self.options.grid_rows or config.grid_rows
        self.cols = self.options.grid_cols or config.grid_cols

    def path(self, name: str) -> str:
        return os.path.join(self.config.sample_path, name)

    @property
    def tag(self) -> str:
        """The end of every file name: the step, after the fixed label if any (so digits do not overwrite)."""
        return f"{self.step:08d}" if self.options.label is None else f"label{self.options.label}_{self.step:08d}"

    def draw_z(self, count: int) -> np.ndarray:
        """[count, z_dim] from the training distribution, seeded by config.seed (+ FRESH_SEED_OFFSET)."""
        seed = self.config.seed + FRESH_SEED_OFFSET
        return np.asarray(sample_z((count, self.config.z_dim), self.config.z_dist, seed), np.float32)

    def file_z(self) -> np.ndarray | None:
        """The z of options.z_files ([N, z_dim], checked against the run's z_dim and z_dist), or None.

        A conditional run draws them with the label they were projected with (--label overrides it), so they must
        share one: `self.z_label`."""
        if not self.options.z_files:
            return None
        try:
            z, labels = read_z_files(list(self.options.z_files), self.config.z_dim, self.config.z_dist)
        except ValueError as error:
            raise ConfigError("z_files", str(error)) from None
        if self.config.conditional and self.options.label is None:
            found = sorted(set(labels), key=lambda label: -1 if label is None else label)
            if len(found) != 1 or found[0] is None or not 0 <= found[0] < self.config.y_dim:
                shown = ", ".join("none" if label is None else str(label) for label in found)
                raise ConfigError("z_files", f"run {self.config.name!r} is conditional: its z files must share one "
                                             f"label 0-{self.config.y_dim - 1} (they hold {shown}), or give --label")
            self.z_label = found[0]
        return z

    def row_digits(self, count: int, cols: int):
        """Digits of `count` cells in rows of `cols`: row r -> r mod y_dim, or the fixed label; None: unconditional."""
        if not self.config.conditional:
            return None
        if self.options.label is not None or self.z_label is not None:
            return np.full(count, self.options.label if self.options.label is not None else self.z_label)
        return np.arange(count) // cols % self.config.y_dim

    def strip_digits(self):
        """The digits a GIF frame shows side by side: every digit, the fixed label, or [None] (unconditional)."""
        if not self.config.conditional:
            return [None]
        if self.options.label is not None or self.z_label is not None:
            return [self.options.label if self.options.label is not None else self.z_label]
        return list(range(self.config.y_dim))

    def generate(self, z, digits=None) -> np.ndarray:
        """z [N, z_dim] (+ digits [N]) -> images [N, H, W, C] float32 in [-1, 1], in batches."""
        z = np.asarray(z, np.float32)
        out = []
        for start in range(0, len(z), GENERATE_BATCH):
            labels = None
            if self.config.conditional:
                chunk = np.asarray(digits[start:start + GENERATE_BATCH], np.int64)
                labels = np.eye(self.config.y_dim, dtype=np.float32)[chunk]
            out.append(np.asarray(self.model.generate(z[start:start + GENERATE_BATCH], labels, training=False)))
        return np.concatenate(out)

    def strips(self, z) -> list[np.ndarray]:
        """z [T, z_dim] -> T uint8 frames, each the strip_digits side by side at that z."""
        digits = self.strip_digits()
        count = len(digits)
        images = self.generate(np.repeat(z, count, axis=0), np.tile(digits, len(z)) if digits[0] is not None else None)
        return [sample_grid(images[i * count:(i + 1) * count], 1, count) for i in range(len(z))]

    def sample_layout(self) -> tuple[int, int, int]:
        """(count, rows, cols) of the grid and arithmetic samples."""
        count = self.options.num_samples or self.rows * self.cols
        rows = self.options.grid_rows or (math.ceil(count / self.cols) if self.options.num_samples else self.rows)
        if count > rows * self.cols:
            raise ConfigError("num_samples", f"{count} samples do not fit a {rows}x{self.cols} grid")
        return count, rows, self.cols


def _write_grid(run: _Run) -> list[str]:
    """carpedm20's option 0: fresh samples from the training distribution in one grid (and one PNG each); numbered:
    enlarged and numbered, as arithmetic's numbered grid (the same z)."""
    count, rows, cols = run.sample_layout()
    digits = run.row_digits(count, cols)
    images = run.generate(run.draw_z(count), digits)
    name = f"visualize_grid_{run.tag}"
    if run.options.numbered:
        name = f"visualize_grid_numbered_{run.tag}"
        paths = [save_image(numbered_grid(images, rows, cols), run.path(name + ".png"))]
    elif run.config.class_names and digits is not None:  # a labelled folder's run: each row's class named
        row_names = [run.config.class_names[digits[row * cols]] for row in range(math.ceil(count / cols))]
        paths = [save_image(row_named_grid(images, rows, cols, row_names), run.path(name + ".png"))]
    else:
        paths = [save_grid(images, rows, cols, run.path(name + ".png"))]
    if run.options.save_individual:
        paths += [save_image(image, run.path(os.path.join(name, f"sample_{i:04d}.png")))
                  for i, image in enumerate(to_uint8(images))]
    return paths


def _dims(run: _Run, rows: int = 1) -> list[int]:
    return select_dims(run.options.dims, run.config.z_dim, run.options.option, run.config.seed, rows)


def _write_sweep(run: _Run) -> list[str]:
    """One PNG per dimension: rows = base z's from the training distribution, columns = the dimension's values."""
    steps, rows = run.options.steps, run.rows
    values = sweep_values(run.config.z_dist, steps)
    bases = run.draw_z(rows)
    digits = run.row_digits(rows * steps, steps)
    paths = []
    for dim in _dims(run):
        z = np.concatenate([sweep_z(base, dim, values) for base in bases])
        images = run.generate(z, digits)
        paths.append(save_grid(images, rows, steps, run.path(f"sweep_dim{dim:03d}_{run.tag}.png")))
    return paths


def _write_sweep_gifs(run: _Run) -> list[str]:
    """One GIF per dimension, swept forward and back: from the centre (sweep_gif) or a small random z."""
    config, steps = run.config, run.options.steps
    values = sweep_values(config.z_dist, steps)
    low, high = sweep_range(config.z_dist)
    rng = np.random.default_rng(config.seed)
    is_random = run.options.option == "random_sweep_gif"
    paths = []
    for dim in _dims(run):
        base = np.full(config.z_dim, range_centre(config.z_dist), np.float32)
        if is_random:  # a fresh small z per dimension, as carpedm20 drew
            base += rng.uniform(-SMALL_Z, SMALL_Z, config.z_dim).astype(np.float32) * (high - low)
        frames = run.strips(sweep_z(base, dim, values))
        name = f"{'random_' if is_random else ''}sweep_dim{dim:03d}_{run.tag}.gif"
        paths.append(save_gif(ping_pong(frames), run.path(name), run.options.fps))
    return paths


def _write_merged_gif(run: _Run) -> list[str]:
    """One GIF, swept forward and back from the centre; a frame holds every swept dimension at the same value
    (a near-square grid of dimensions, or one row per digit and one column per dimension)."""
    config, steps = run.config, run.options.steps
    digits = run.strip_digits()
    dims = _dims(run, len(digits))
    values = sweep_values(config.z_dist, steps)
    base = np.full(config.z_dim, range_centre(config.z_dist), np.float32)
    # cells in frame order: value, then digit, then dimension
    z = np.stack([sweep_z(base, dim, values) for dim in dims], axis=1)  # [steps, dims, z_dim]
    z = np.repeat(z[:, None], len(digits), axis=1).reshape(-1, config.z_dim)  # [steps * digits * dims, z_dim]
    cell_digits = None if digits[0] is None else np.tile(np.repeat(digits, len(dims)), steps)
    images = run.generate(z, cell_digits)
    per_frame = len(digits) * len(dims)
    if len(digits) > 1:
        rows, cols = len(digits), len(dims)
    else:
        cols = math.ceil(math.sqrt(len(dims)))
        rows = math.ceil(len(dims) / cols)
    frames = [sample_grid(images[k * per_frame:(k + 1) * per_frame], rows, cols) for k in range(steps)]
    return [save_gif(ping_pong(frames), run.path(f"merged_sweep_{run.tag}.gif"), run.options.fps)]


def _write_interpolation(run: _Run) -> list[str]:
    """A closed tour through K random z's (paper figure 4), or through the z files' z in order: a PNG with one row per
    walk, and a GIF of the tour."""
    options = run.options
    points = run.file_z()  # a tour through projected real images, in the order given
    if points is not None and len(points) < 2:
        raise ConfigError("z_files", f"a walk needs at least two z (got {len(points)})")
    count, steps = (len(points) if points is not None else options.walks or run.rows), options.steps
    points = run.draw_z(count) if points is None else points
    walks = [interpolation_path(points[i], points[(i + 1) % count], steps, options.interpolation)
             for i in range(count)]
    name = f"interpolate_{options.interpolation}_{run.tag}"
    images = run.generate(np.concatenate(walks), run.row_digits(count * steps, steps))
    png = save_grid(images, count, steps, run.path(name + ".png"))
    tour = np.concatenate([walk[:-1] for walk in walks])  # each walk's end is the next one's start
    return [png, save_gif(run.strips(tour), run.path(name + ".gif"), options.fps)]


def _write_arithmetic(run: _Run) -> list[str]:
    """The numbered grid of samples to pick from and, given `arith`, the vector arithmetic (paper figure 7).

    The figure has one row per group: its sign, its samples, and in the last column the image of the group's mean
    z. The last row: "=", ARITHMETIC_VARIANTS images of the combination plus U(+-0.25) noise, and in the last column
    (under the means) G(combination) itself.
    Conditional runs draw the means and results with `label`, else with the first picked sample's digit.
    """
    bank = run.file_z()  # the numbered grid shows the projected images' z, in the order given
    if bank is None:
        count, rows, cols = run.sample_layout()
        bank = run.draw_z(count)
    else:
        count, cols = len(bank), run.cols
        rows = math.ceil(count / cols)
    digits = run.row_digits(count, cols)
    images = run.generate(bank, digits)
    paths = [save_image(numbered_grid(images, rows, cols), run.path(f"arithmetic_numbered_{run.tag}.png"))]
    if run.options.arith is None:
        log.info("pick groups from %s and pass them as arith (e.g. '3,17,22 - 5,9,40 + 1,2,8')", paths[0])
        return paths
    groups = parse_arithmetic(run.options.arith)
    try:
        new_z = arithmetic_z(bank, groups, run.config.seed)
    except ValueError as error:  # an index past the numbered grid
        raise ConfigError("arith", str(error)) from None
    digit = None if digits is None else (run.options.label if run.options.label is not None
                                         else int(digits[groups[0][1][0]]))
    new_images = upscale(to_uint8(run.generate(new_z, None if digit is None else np.full(len(new_z), digit))))
    figure = arithmetic_figure(upscale(to_uint8(images)), new_images, groups)
    paths.append(save_image(figure, run.path(f"arithmetic_{run.tag}.png")))
    return paths


def write_progress(sample_path: str, fps: float = 10.0, max_frames: int = 200) -> list[str]:
    """carpedm20's training.gif: the fixed-z training grids of a run as `progress.gif` (at most max_frames,
    evenly spaced) and a contact sheet `progress_sheet.png` (SHEET_GRIDS of them, captioned with their step).

    Needs no model. Grids of different sizes (grid_rows changed on a resume) are padded with white to the largest.
    """
    grids = list(list_training_grids(sample_path).items())
    if not grids:
        raise RunError(f"no training grids train_<step>.png in {os.path.abspath(sample_path)}: "
                       f"train the run first (--train), with --sample_freq small enough to get grids")
    chosen = evenly_spaced(grids, max_frames)
    pictures = []
    for _, path in chosen:
        with Image.open(path) as image:
            pictures.append(np.asarray(image.convert("RGB")))
    height, width = max(p.shape[0] for p in pictures), max(p.shape[1] for p in pictures)
    frames = np.full((len(pictures), height, width, 3), 255, np.uint8)
    for frame, picture in zip(frames, pictures):
        frame[:picture.shape[0], :picture.shape[1]] = picture
    gif = save_gif(frames, os.path.join(sample_path, "progress.gif"), fps)

    sheet = evenly_spaced(list(range(len(chosen))), SHEET_GRIDS)
    scale = min(1.0, SHEET_THUMB / max(height, width))
    thumb_w, thumb_h = max(1, round(width * scale)), max(1, round(height * scale))
    cells = []
    for index in sheet:
        thumb = Image.fromarray(frames[index]).resize((thumb_w, thumb_h), Image.Resampling.LANCZOS)
        cell = Image.new("RGB", (thumb_w, thumb_h + CAPTION_HEIGHT), (255, 255, 255))
        cell.paste(thumb, (0, 0))
        centred_text(ImageDraw.Draw(cell), (0, thumb_h, thumb_w, thumb_h + CAPTION_HEIGHT),
                     f"step {chosen[index][0]}", font(CAPTION_HEIGHT - 4))
        cells.append(np.asarray(cell))
    cols = math.ceil(math.sqrt(len(cells)))
    rows = math.ceil(len(cells) / cols)
    return [gif, save_image(tile(np.stack(cells), rows, cols, CELL_PADDING),
                            os.path.join(sample_path, "progress_sheet.png"))]


def _write_d_features(run: _Run) -> list[str]:
    """DCGAN paper section 6.2: for the first filters of D's last conv layer, the training images that activate
    each most and their guided-backpropagation maps, above the same for the untrained D (the run's initial weights)."""
    if run.config.conditional:
        raise ConfigError("visualize_option", f"d_features reads an unconditional D; run {run.config.name!r} is "
                                              f"conditional")
    stored = folders.load_saved_config(run.config)  # the run's own images: its seed and --train_size, not the command's
    training = dataclasses.replace(run.config, seed=stored.seed, train_size=stored.train_size) if stored else run.config
    loaded = load_training_data(training)
    chosen = np.sort(np.random.default_rng(run.config.seed).permutation(len(loaded))[:D_FEATURES_IMAGES])
    if isinstance(loaded, loading.LoadedImages):
        images = loaded.images[chosen]
    else:  # streamed: decode only the chosen files
        images = loading.load_images([loaded.paths[i] for i in chosen], loaded.spec, loaded.channels).images
    untrained = initial_model(run.config).discriminator  # the weights the run started from
    path = run.path(f"d_features_{run.tag}.png")
    return [write_d_features(run.model.discriminator, untrained, images, path, run.options.filters, run.options.top)]


def _forget_boxes(run: _Run) -> dict:
    """forget's boxes placed on the numbered grid of the run's samples ({sample: boxes in its pixels}; {} without
    boxes): ConfigError naming --forget_boxes and the row for one off the grid."""
    if run.options.forget_boxes is None:
        return {}
    count, rows, cols = run.sample_layout()
    layout = GridLayout.numbered(count, rows, cols, run.config.output_height, run.config.output_width)
    return place_boxes(read_boxes(run.options.forget_boxes), layout, run.options.forget_boxes)


def _write_forget(run: _Run) -> list[str]:
    """DCGAN paper section 6.3.1: the filters of G's forget_layer that draw what the boxes mark (a logistic
    regression on the layer's per-position features) or forget_filters, dropped from the grid's samples (the same z
    as grid and arithmetic): each sample beside the same z without them, and a JSON record (forget.Forgetting)."""
    options = run.options
    placed = _forget_boxes(run)
    count, _, cols = run.sample_layout()
    digits = run.row_digits(count, cols)
    labels = None if digits is None else np.eye(run.config.y_dim, dtype=np.float32)[digits]
    forgetter = Forgetter(run.model.sampler, options.forget_layer)  # the EMA generator when the run keeps one
    if options.forget_filters is not None:
        forgetter.check_filters(options.forget_filters)
    result = forgetter.forget(run.draw_z(count), labels, placed, options.forget_filters, seed=run.config.seed)
    name = f"forget_{run.tag}"
    record = result.record(run=run.config.name, step=run.step, generator="EMA" if run.config.ema else "G",
                           seed=run.config.seed, z=f"as visualize_grid_numbered_{run.tag}.png: --seed "
                                                   f"{run.config.seed}, {count} samples in rows of {cols}",
                           label=options.label, boxes_file=options.forget_boxes)
    paths = [save_image(result.picture(cols), run.path(name + ".png")),
             write_json(run.path(name + ".json"), record)]
    log.info("%s", describe(record))
    return paths


_WRITERS = {
    "grid": _write_grid,
    "sweep": _write_sweep,
    "random_sweep_gif": _write_sweep_gifs,
    "sweep_gif": _write_sweep_gifs,
    "merged_gif": _write_merged_gif,
    "interpolate": _write_interpolation,
    "arithmetic": _write_arithmetic,
    "d_features": _write_d_features,
    "forget": _write_forget,
}


def visualize(config: Config, options: VisualizeOptions | None = None, trained=None) -> list[str]:
    """Draw `options.option` for the run `config` names, into its sample folder; returns the paths written.

    `trained`: a (saved config, model, step) from `load_trained(config)`, to draw several options from one load;
    None loads the newest checkpoint. `progress` needs no model. RunError when the run or its checkpoint is missing,
    also when `progress` finds no training grids; ConfigError naming the flag for an option that does not fit the run.
    """
    options = options or VisualizeOptions()
    if options.option == "progress":
        sample_path = trained[0].sample_path if trained else config.resolved().sample_path
        return write_progress(sample_path, options.fps, options.max_frames)
    if options.option == "plots":  # the run's loss log, no model

        run = resolve_run(config.name, config.checkpoint_dir, config.sample_dir)
        return plots.plot_run(run.checkpoint_path, run.sample_path)
    if trained is None:

        if options.option == "forget":  # boxes off the grid fail before the checkpoint loads
            _forget_boxes(_Run(open_saved_run(config), None, 0, options))
        trained = load_trained(config)
    saved, model, step = trained
    paths = _WRITERS[options.option](_Run(saved, model, step, options))
    log.info("visualize %s: wrote %d file(s) in %s", options.option, len(paths), os.path.abspath(saved.sample_path))
    return paths
