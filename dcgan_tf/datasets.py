"""A run's images: the built-in set, MNIST, or a folder, at the run's output size; in memory or streamed."""

from __future__ import annotations

import logging
import os

from dcgan_tf import data
from dcgan_tf.config import MNIST, Config, ConfigError
from dcgan_tf.mnist import load_mnist

log = logging.getLogger(__name__)


def needs_memory(needed_bytes: int) -> ConfigError:
    """The error for autoencoder work on a data set over --cache_limit, naming the limit that would do."""
    return ConfigError("cache_limit", f"the autoencoder (--preprocess autoencoder, --dedupe) needs the decoded images "
                                      f"in memory: raise --cache_limit to at least {needed_bytes // 2**20 + 1} (MB)")


def image_files(config: Config) -> tuple[str, str]:
    """(folder, glob) of a folder run's image files, or the built-in set's; not for MNIST."""
    folder = config.image_folder()
    return (folder, config.input_fname_pattern) if folder else (data.builtin_dataset_dir(), "*.png")


def load_training_data(config: Config) -> data.LoadedImages | data.StreamedImages:
    """The run's images (uint8, at the output size) from the built-in set, MNIST, or a folder: decoded into memory,
    or, when they would take more than config.cache_limit MB, checked and left on disk to stream (MNIST: memory)."""
    config = config.resolved()
    spec = data.ImageSpec(config.output_height, config.output_width, config.crop, config.input_height,
                          config.input_width)
    if config.dataset == MNIST:
        loaded = data.subset(load_mnist(os.path.expanduser(config.data_dir)), config.train_size, config.seed)
        return data.resize(loaded, config.output_height, config.output_width)
    directory, pattern = image_files(config)
    # --train_size picks its subset before decoding; files skipped as unreadable are not replaced
    paths = data.subset_paths(data.find_image_files(directory, pattern), config.train_size, config.seed)
    needed = data.cache_bytes(len(paths), spec, config.c_dim)
    if needed > config.cache_limit * 2**20:
        if config.uses_autoencoder:  # say so before decoding anything
            raise needs_memory(needed)
        if config.y_dim:
            raise data.DataError("a conditional model needs labels, and this data set has none")
        log.info("%d images need about %d MB decoded, over --cache_limit %d MB: streaming them from disk",
                 len(paths), needed // 2**20, config.cache_limit)
        return data.probe_images(paths, spec, c_dim=config.c_dim)
    return data.load_images(paths, spec, c_dim=config.c_dim)
