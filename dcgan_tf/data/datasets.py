"""A run's images: the built-in set, MNIST, or a folder (a labelled one for conditional runs), at the run's output
size; in memory or streamed."""

from __future__ import annotations

import logging
import os

import numpy as np

from dcgan_tf.config import MNIST, Config, ConfigError
from dcgan_tf.data import loading
from dcgan_tf.data.mnist import load_mnist

log = logging.getLogger(__name__)

MIN_CLASS_IMAGES = 2  # a conditional run refuses a class with fewer readable images than this


def needs_memory(needed_bytes: int) -> ConfigError:
    """The error for autoencoder work on a data set over --cache_limit, naming the limit that would do."""
    return ConfigError("cache_limit", f"the autoencoder (--preprocess autoencoder, --dedupe) needs the decoded images "
                                      f"in memory: raise --cache_limit to at least {needed_bytes // 2**20 + 1} (MB)")


def image_files(config: Config) -> tuple[str, str]:
    """(folder, glob) of a folder run's image files, or the built-in set's; not for MNIST."""
    folder = config.image_folder()
    return (folder, config.input_fname_pattern) if folder else (loading.builtin_dataset_dir(), "*.png")


def load_training_data(config: Config) -> loading.LoadedImages | loading.StreamedImages:
    """The run's images (uint8, at the output size) from the built-in set, MNIST, or a folder: decoded into memory,
    or, when they would take more than config.cache_limit MB, checked and left on disk to stream (MNIST: memory)."""
    config = config.resolved()
    spec = loading.ImageSpec(config.output_height, config.output_width, config.crop, config.input_height,
                             config.input_width)
    if config.dataset == MNIST:
        loaded = loading.subset(load_mnist(os.path.expanduser(config.data_dir)), config.train_size, config.seed)
        return loading.resize(loaded, config.output_height, config.output_width)
    if config.conditional:
        return load_labelled_training_data(config, spec)
    directory, pattern = image_files(config)
    # --train_size picks its subset before decoding; files skipped as unreadable are not replaced
    paths = loading.subset_paths(loading.find_image_files(directory, pattern), config.train_size, config.seed)
    needed = loading.cache_bytes(len(paths), spec, config.c_dim)
    if needed > config.cache_limit * 2**20:
        if config.uses_autoencoder:  # say so before decoding anything
            raise needs_memory(needed)
        if config.y_dim:
            raise loading.DataError("a conditional model needs labels, and this data set has none")
        log.info("%d images need about %d MB decoded, over --cache_limit %d MB: streaming them from disk",
                 len(paths), needed // 2**20, config.cache_limit)
        return loading.probe_images(paths, spec, c_dim=config.c_dim)
    return loading.load_images(paths, spec, c_dim=config.c_dim)


def load_labelled_training_data(config: Config, spec: loading.ImageSpec) -> loading.LoadedImages:
    """A conditional run's labelled folder (class sub-folders, or INDEX.csv), decoded into memory with int labels.

    DataError naming what is wrong: images outside the class folders, classes other than the run's (class_names),
    a class left with fewer than MIN_CLASS_IMAGES readable images, more images than --cache_limit holds.
    """
    directory = config.image_folder()
    paths, labels, classes = loading.find_labelled_files(directory)
    if config.class_names is not None and tuple(classes) != tuple(config.class_names):
        raise loading.DataError(f"the classes of {directory} are not the run's: it was made with "
                                f"{', '.join(config.class_names)}; the folder now has {', '.join(classes)} (restore "
                                f"the folder, or pass --run_name NEW_NAME for a new run)")
    label_of = dict(zip(paths, labels))
    paths = loading.subset_paths(paths, config.train_size, config.seed)  # --train_size: a seeded subset of all classes
    needed = loading.cache_bytes(len(paths), spec, config.c_dim)
    if needed > config.cache_limit * 2**20:
        raise ConfigError("cache_limit", f"a conditional run decodes its {len(paths)} images into memory (about "
                                         f"{needed // 2**20 + 1} MB): raise --cache_limit to at least that")
    loaded = loading.load_images(paths, spec, c_dim=config.c_dim)
    kept = np.asarray([label_of[path] for path in loaded.paths], np.int64)
    counts = np.bincount(kept, minlength=len(classes))
    few = [f"{name} ({count})" for name, count in zip(classes, counts) if count < MIN_CLASS_IMAGES]
    if few:
        raise loading.DataError(f"a conditional run needs at least {MIN_CLASS_IMAGES} readable images per class, and "
                                f"{directory} has fewer in: {', '.join(few)}. Add images to those folders or move them "
                                f"out")
    log.info("%d images in %d classes: %s", len(kept), len(classes),
             ", ".join(f"{name} {count}" for name, count in zip(classes, counts)))
    return loading.LoadedImages(loaded.images, loaded.paths, loaded.skipped, kept, list(classes))
