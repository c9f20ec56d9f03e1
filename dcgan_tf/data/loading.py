"""Image data: find files, decode them with Pillow, settle one channel count, crop/resize, and feed tf.data.

Images are decoded once, in parallel threads (Pillow releases the GIL while decoding and resizing), into one
uint8 array held in memory: the cache. Training then reads batches from that array through an index stream whose
order is a pure function of (seed, pass number), so a resumed run continues the exact data order. A data set
bigger than the cache limit is streamed instead: checked once up front (unreadable files skipped by name, the
channel count settled), then decoded again batch by batch, in parallel, in the same order.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

from dcgan_tf.data.labelled import (INDEX_COLUMNS, INDEX_FILE, LabelledFolderError, class_sub_folders, index_rows,
                                     is_image_name)

log = logging.getLogger(__name__)

GRAYSCALE_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
BUILTIN_PACKAGE = "dcgan_tf.data.builtin_data"
BUILTIN_FOLDER = "twemoji_smileys"


class DataError(ValueError):
    """The data set cannot be used at all (no files, every file unreadable, missing folder)."""


@dataclass(frozen=True)
class ImageSpec:
    """How raw images become training images: optional centre crop, then resize to the output size."""

    output_height: int
    output_width: int
    crop: bool = False
    input_height: int = 108
    input_width: int = 108


@dataclass
class LoadedImages:
    """Decoded images [N, H, W, C] uint8, the paths they came from (empty for MNIST), and the files skipped."""

    images: np.ndarray
    paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    labels: np.ndarray | None = None  # int class ids [N], for conditional data sets
    class_names: list[str] | None = None  # the name of each class id, for labelled folders

    @property
    def c_dim(self) -> int:
        return self.images.shape[-1]

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class StreamedImages:
    """A data set decoded from its files while training: the readable paths, their spec and channel count."""

    paths: list[str]
    spec: ImageSpec
    channels: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    labels: np.ndarray | None = None

    @property
    def c_dim(self) -> int:
        return self.channels

    def __len__(self) -> int:
        return len(self.paths)


def cache_bytes(num_images: int, spec: ImageSpec, c_dim: int | None = None) -> int:
    """Bytes the decoded cache of `num_images` takes (3 channels when the count is not known yet)."""
    return num_images * spec.output_height * spec.output_width * (c_dim or 3)


# ---------------------------------------------------------------------------------------------- finding files
def builtin_dataset_dir() -> str:
    """The folder of the small image set shipped inside the package (Twemoji smileys, CC-BY 4.0)."""
    return str(resources.files(BUILTIN_PACKAGE).joinpath(BUILTIN_FOLDER))


def _level_regex(level: str) -> str:
    """One folder level of a glob as a regex: `*` and `?` never cross a `/`; `[...]` / `[!...]` are classes."""
    out, i = [], 0
    while i < len(level):
        c = level[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in level[i + 2:]:  # a class; "[]...]" may hold "]" first, as in fnmatch
            close = level.index("]", i + 2)
            body = level[i + 1:close]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = close
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _pattern_regex(pattern: str) -> re.Pattern:
    """A glob over relative paths, `/`-separated, matched case-insensitively (`*.jpg` finds `IMG_1.JPG`);
    a `**` level spans any number of folders (zero included)."""
    regex = ""
    levels = pattern.replace(os.sep, "/").split("/")
    for index, level in enumerate(levels):
        last = index == len(levels) - 1
        if level == "**":
            regex += "(?:[^/]+/)*" if not last else ".*"
        else:
            regex += _level_regex(level) + ("" if last else "/")
    return re.compile(regex, re.IGNORECASE)


def find_image_files(directory: str, pattern: str) -> list[str]:
    """Sorted paths under `directory` whose relative path matches `pattern` (a glob; a `**` level recurses).

    Folder links are followed once each, so a link loop cannot walk forever. A matching name that is no readable
    file (a broken or looping link) is still returned, so loading skips it by name instead of losing it silently.
    Raises DataError naming the folder or the exact pattern looked for.
    """
    absolute = os.path.abspath(os.path.expanduser(directory))
    if not os.path.isdir(absolute):
        raise DataError(f"data folder {absolute} does not exist" if not os.path.exists(absolute)
                        else f"data folder {absolute} is not a folder")
    matcher = _pattern_regex(pattern)
    recursive = "**" in pattern or "/" in pattern.replace(os.sep, "/")
    found, visited = [], set()
    for root, folders, names in os.walk(absolute, followlinks=True):
        visited.add(os.path.realpath(root))
        # enter each real folder once (link loops), and only when the pattern can reach below this level
        folders[:] = sorted(f for f in folders if recursive and not f.startswith(".")
                            and os.path.realpath(os.path.join(root, f)) not in visited)
        relative_root = os.path.relpath(root, absolute).replace(os.sep, "/")
        for name in names:
            relative = name if relative_root == "." else f"{relative_root}/{name}"
            if (name.startswith(".") and not pattern.startswith(".")) or not matcher.fullmatch(relative):
                continue
            found.append(os.path.join(root, name))
    if not found:
        raise DataError(f"no files match {os.path.join(absolute, pattern)}")
    return sorted(found)


# ------------------------------------------------------------------------------------------ labelled folders


_is_image_name = is_image_name


def find_labelled_files(directory: str) -> tuple[list[str], np.ndarray, list[str]]:
    """(paths, int labels [N], class names) of a labelled folder (config's rules: one sub-folder per class, sorted,
    as torchvision's ImageFolder, or INDEX.csv with `file` and `category` columns). DataError naming the folder,
    the images outside any class folder, or the rows whose file is missing."""
    absolute = os.path.abspath(os.path.expanduser(directory))
    if not os.path.isdir(absolute):
        raise DataError(f"labelled folder {absolute} does not exist" if not os.path.exists(absolute)
                        else f"labelled folder {absolute} is not a folder")
    index = os.path.join(absolute, INDEX_FILE)
    if os.path.isfile(index):
        return _indexed_files(absolute, index)
    classes = class_sub_folders(absolute)
    loose = sorted(name for name in os.listdir(absolute)
                   if _is_image_name(name) and os.path.isfile(os.path.join(absolute, name)))
    if loose:
        raise DataError(f"{absolute} holds images outside any class folder ({', '.join(loose[:5])}"
                        f"{', ...' if len(loose) > 5 else ''}): put each image in the sub-folder of its class")
    paths, labels = [], []
    for label, name in enumerate(classes):
        found = []
        for root, folders, names in os.walk(os.path.join(absolute, name), followlinks=True):
            folders[:] = [folder for folder in folders if not folder.startswith(".")]  # hidden ones left out
            found += [os.path.join(root, file) for file in names if _is_image_name(file)]
        found.sort()
        paths += found
        labels += [label] * len(found)
    if len(classes) < 2 or not paths:
        raise DataError(f"{absolute} is no labelled folder: it needs one sub-folder of images per class (at least "
                        f"two), or an {INDEX_FILE} with columns {', '.join(INDEX_COLUMNS)}")
    return paths, np.asarray(labels, np.int64), classes


def _indexed_files(folder: str, index: str) -> tuple[list[str], np.ndarray, list[str]]:
    try:
        rows = index_rows(index)
    except LabelledFolderError as error:
        raise DataError(str(error)) from None
    classes = sorted({row["category"] for row in rows})
    number = {name: label for label, name in enumerate(classes)}
    paths = [os.path.join(folder, row["file"]) for row in rows]
    absent = [row["file"] for row, path in zip(rows, paths) if not os.path.exists(path)]
    if absent:
        raise DataError(f"{index} names {len(absent)} file(s) that are not in {folder}: {', '.join(absent[:5])}")
    return paths, np.asarray([number[row["category"]] for row in rows], np.int64), classes


def load_labelled_images(directory: str, spec: ImageSpec, c_dim: int | None = None) -> LoadedImages:
    """A labelled folder (find_labelled_files) decoded, with int labels and class names; unreadable files are
    skipped by name, as in training."""
    paths, labels, classes = find_labelled_files(directory)
    loaded = load_images(paths, spec, c_dim)
    label_of = dict(zip(paths, labels))
    return LoadedImages(loaded.images, loaded.paths, loaded.skipped,
                        np.asarray([label_of[path] for path in loaded.paths], np.int64), classes)


# ---------------------------------------------------------------------------------------------- decoding
def _open(path: str) -> Image.Image:
    """Open and fully decode the first frame; EXIF orientation applied. Raises on anything unreadable.

    An image over Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS) is refused before it is decoded.
    """
    with Image.open(path) as image:
        limit = Image.MAX_IMAGE_PIXELS
        if limit and image.width * image.height > limit:
            raise ValueError(f"{image.width}x{image.height} pixels is over the decompression-bomb limit of {limit}")
        image.seek(0)  # first frame of animations
        image.load()
        return ImageOps.exif_transpose(image)


def is_grayscale(image: Image.Image) -> bool:
    """True for single-channel modes (and palettes whose colours are all grey)."""
    if image.mode in GRAYSCALE_MODES:
        return True
    if image.mode == "P":
        palette = image.convert("RGB").getcolors(maxcolors=256 * 256)
        return palette is not None and all(r == g == b for _, (r, g, b) in palette)
    return False


def _to_channels(image: Image.Image, c_dim: int) -> Image.Image:
    """Convert any mode to 'L' (c_dim 1) or 'RGB' (c_dim 3); transparency is composited onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.int64)
        top = 65535 if image.mode.startswith("I;16") or array.max() > 255 else 255
        image = Image.fromarray((np.clip(array, 0, top) * 255 // top).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    if "transparency" in image.info or image.mode in ("PA", "LA", "La", "RGBA", "RGBa"):  # incl. tRNS in RGB/L
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("L" if c_dim == 1 else "RGB")


def _crop_and_resize(image: Image.Image, spec: ImageSpec) -> Image.Image:
    if spec.crop:  # centre crop input_height x input_width (carpedm20's center_crop), then resize
        width, height = image.size
        if width < spec.input_width or height < spec.input_height:  # Pillow would pad the crop with black
            raise ValueError(f"{width}x{height} is smaller than the {spec.input_width}x{spec.input_height} crop "
                             f"(--input_height/--input_width)")
        left = int(round((width - spec.input_width) / 2.0))
        top = int(round((height - spec.input_height) / 2.0))
        image = image.crop((left, top, left + spec.input_width, top + spec.input_height))
    if image.size != (spec.output_width, spec.output_height):
        image = image.resize((spec.output_width, spec.output_height), Image.Resampling.BICUBIC)
    return image


def decode_image(path: str, spec: ImageSpec, c_dim: int | None = None) -> np.ndarray:
    """One file -> uint8 [output_height, output_width, c_dim]. Raises if the file is not a readable image.

    c_dim None keeps the image's own channel count: 1 for grayscale images, else 3.
    """
    image = _open(path)
    if c_dim is None:
        c_dim = 1 if is_grayscale(image) else 3
    array = np.asarray(_crop_and_resize(_to_channels(image, c_dim), spec), dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def load_images(paths: list[str], spec: ImageSpec, c_dim: int | None = None,
                workers: int | None = None) -> LoadedImages:
    """Decode every readable file once, in parallel threads; skip (and log by path) the rest.

    c_dim None: 1 if every readable image is grayscale, else 3 (grayscale images then get three equal channels,
    exactly what Pillow's L -> RGB conversion gives).
    """
    images, kept, skipped = _decode_all(paths, spec, c_dim, workers, keep=True)
    channels = max(array.shape[-1] for array in images)
    stacked = np.stack([np.repeat(array, channels, axis=-1) if array.shape[-1] < channels else array
                        for array in images])
    log.info("loaded %d images (%dx%dx%d), skipped %d unreadable", len(images), spec.output_height,
             spec.output_width, channels, len(skipped))
    return LoadedImages(stacked, kept, skipped)


def _decode_all(paths, spec, c_dim, workers, keep: bool):
    """Decode every file in parallel threads: (arrays, or just their channel counts unless `keep`; readable paths;
    (path, reason) of the files skipped, each logged)."""

    def decode(path):
        try:
            array = decode_image(path, spec, c_dim)
            return (array if keep else array.shape[-1]), None
        except Exception as error:  # noqa: BLE001 - any decoder failure means "skip this file", with the reason
            return None, f"{type(error).__name__}: {error}"

    with ThreadPoolExecutor(workers or min(32, (os.cpu_count() or 1) + 4)) as pool:
        decoded = list(pool.map(decode, paths))
    results = [value for value, _ in decoded if value is not None]
    kept = [path for path, (value, _) in zip(paths, decoded) if value is not None]
    skipped = [(path, reason) for path, (value, reason) in zip(paths, decoded) if value is None]
    for path, reason in skipped:
        log.warning("skipped unreadable image %s (%s)", path, reason)
    if not results:
        raise DataError(f"none of the {len(paths)} files could be read as an image "
                        f"(first: {skipped[0][0]}: {skipped[0][1]})" if skipped else "no images given")
    return results, kept, skipped


def probe_images(paths: list[str], spec: ImageSpec, c_dim: int | None = None,
                 workers: int | None = None) -> StreamedImages:
    """Check every file once for streaming: decode it (keeping nothing), skip and log the unreadable ones, and
    settle the channel count as load_images does."""
    channel_counts, kept, skipped = _decode_all(paths, spec, c_dim, workers, keep=False)
    channels = c_dim or max(channel_counts)
    log.info("checked %d images for streaming (%dx%dx%d), skipped %d unreadable", len(kept), spec.output_height,
             spec.output_width, channels, len(skipped))
    return StreamedImages(kept, spec, channels, skipped)


def subset_paths(paths: list[str], size: int | None, seed: int) -> list[str]:
    """A seeded random subset of `size` paths, in their original order (all of them when size is None or larger)."""
    if size is None or size >= len(paths):
        return paths
    keep = np.sort(np.random.default_rng(seed).permutation(len(paths))[:size])
    return [paths[i] for i in keep]


def subset(data: LoadedImages, size: int | None, seed: int) -> LoadedImages:
    """A seeded random subset of `size` images (all of them when size is None or larger)."""
    if size is None or size >= len(data):
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data))[:size])
    labels = None if data.labels is None else data.labels[keep]
    paths = [data.paths[i] for i in keep] if data.paths else []
    return LoadedImages(data.images[keep], paths, data.skipped, labels, data.class_names)


def resize(data: LoadedImages, height: int, width: int) -> LoadedImages:
    """The same images at height x width (bicubic), e.g. MNIST's 28x28 digits for a 32x32 model."""
    if data.images.shape[1:3] == (height, width):
        return data
    mode = "L" if data.c_dim == 1 else "RGB"
    resized = [np.asarray(Image.fromarray(image.squeeze(-1) if data.c_dim == 1 else image, mode)
                          .resize((width, height), Image.Resampling.BICUBIC)) for image in data.images]
    images = np.stack(resized)
    return LoadedImages(images[..., None] if images.ndim == 3 else images, data.paths, data.skipped, data.labels,
                        data.class_names)


# ---------------------------------------------------------------------------------------------- tf.data
def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Batches per epoch: every image seen once (a set smaller than a batch still gives 1 step)."""
    return max(1, -(-num_images // batch_size))


def epoch_order(num_images: int, batch_size: int, seed: int, epoch) -> tf.Tensor:
    """The image indices of one epoch: a permutation seeded by (seed, epoch), so every image comes once, then a
    seeded top-up that fills the last batch. Length: steps_per_epoch * batch_size."""
    epoch = tf.cast(epoch, tf.int64)
    seed = tf.cast(seed, tf.int64)
    order = tf.random.experimental.stateless_shuffle(tf.range(num_images, dtype=tf.int64), seed=tf.stack([seed, epoch]))
    top_up = steps_per_epoch(num_images, batch_size) * batch_size - num_images
    if not top_up:
        return order
    extra = tf.random.stateless_uniform([top_up], seed=tf.stack([seed, -1 - epoch]), maxval=num_images,
                                        dtype=tf.int64)
    return tf.concat([order, extra], axis=0)


def index_stream(num_images: int, batch_size: int, seed: int, start_epoch: int = 0,
                 start_step: int = 0) -> tf.data.Dataset:
    """Endless image indices, epoch after epoch (see epoch_order), from batch `start_step` of `start_epoch` on."""
    epochs = tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max)
    stream = epochs.flat_map(lambda e: tf.data.Dataset.from_tensor_slices(epoch_order(num_images, batch_size, seed, e)))
    return stream.skip(start_step * batch_size)


def to_float(images):
    """uint8 [..., C] -> float32 in [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def make_dataset(data: LoadedImages, batch_size: int, seed: int, start_epoch: int = 0, start_step: int = 0,
                 y_dim: int | None = None) -> tf.data.Dataset:
    """Endless batches of float32 images in [-1, 1] (with one-hot labels when y_dim), reshuffled every epoch.

    Batches have a fixed size, so the compiled train_step traces once, and they line up with epochs: each epoch
    shows every image once, its last batch topped up with random others. A resumed run passes the epoch and the
    step within it to continue the exact order.
    """
    if isinstance(data, StreamedImages):
        return _streaming_dataset(data, batch_size, seed, start_epoch, start_step)
    images = tf.constant(data.images)
    labels = None
    if y_dim:
        if data.labels is None:
            raise DataError("a conditional model needs labels, and this data set has none")
        labels = tf.one_hot(tf.constant(data.labels, tf.int64), y_dim)

    def gather(indices):
        batch = to_float(tf.gather(images, indices))
        return batch if labels is None else (batch, tf.gather(labels, indices))

    stream = index_stream(len(data), batch_size, seed, start_epoch, start_step).batch(batch_size, drop_remainder=True)
    return stream.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _streaming_dataset(data: StreamedImages, batch_size: int, seed: int, start_epoch: int,
                       start_step: int) -> tf.data.Dataset:
    """make_dataset's batches, in the same order, decoded from the files as they are needed (parallel map)."""
    spec, channels, paths = data.spec, data.channels, data.paths
    shape = (spec.output_height, spec.output_width, channels)

    def decode(index):
        path = paths[int(index)]
        try:
            return decode_image(path, spec, channels)
        except Exception as error:  # noqa: BLE001 - it was readable when checked; say which file broke
            raise DataError(f"{path} could no longer be read while streaming ({type(error).__name__}: {error}); "
                            f"fix or remove it and run the same command to resume") from error

    def load(index):
        image = tf.numpy_function(decode, [index], tf.uint8, stateful=False)
        image.set_shape(shape)
        return image

    stream = index_stream(len(paths), batch_size, seed, start_epoch, start_step)
    return stream.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True) \
        .batch(batch_size, drop_remainder=True).map(to_float).prefetch(tf.data.AUTOTUNE)
