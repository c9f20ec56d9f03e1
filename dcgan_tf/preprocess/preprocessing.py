"""The data a run trains on: the originals, or the autoencoder's reconstructions until `swap_epoch`, with
near-duplicates dropped under `dedupe`; and the standalone autoencoder mode (`train_autoencoder`)."""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from dcgan_tf.config import Config
from dcgan_tf.data.datasets import load_training_data, needs_memory
from dcgan_tf.data.loading import LoadedImages, StreamedImages, cache_bytes
from dcgan_tf.images import save_image
from dcgan_tf.preprocess import pictures
from dcgan_tf.preprocess.autoencoder import Autoencoded, autoencode, autoencoder_folder, drop_images, near_duplicates
from dcgan_tf.runs import lock as run_lock

log = logging.getLogger(__name__)

ORIGINALS, RECONSTRUCTIONS = "originals", "reconstructions"
DUPLICATES_CSV = "duplicates.csv"
LOGGED_DUPLICATES = 10  # listed in the log; duplicates.csv lists them all


@dataclass
class Preprocessed:
    """The originals, their reconstructions (None without autoencoder preprocessing), and what dedupe dropped."""

    originals: LoadedImages
    reconstructions: LoadedImages | None = None
    duplicates: list = field(default_factory=list)  # (dropped name, kept name, relative distance)
    autoencoded: Autoencoded | None = None
    written: list = field(default_factory=list)  # files written (pictures, duplicates.csv)

    def source(self, epoch: int, swap_epoch: int | None) -> tuple[str, LoadedImages]:
        """(name, images) to train on in `epoch`: reconstructions before swap_epoch (or always, without a swap)."""
        if self.reconstructions is not None and (swap_epoch is None or epoch < swap_epoch):
            return RECONSTRUCTIONS, self.reconstructions
        return ORIGINALS, self.originals


def _name(data: LoadedImages, index: int) -> str:
    return data.paths[index] if data.paths else f"#{index}"


def preprocess(config: Config, images: LoadedImages, picture_dirs=(), report_dir: str | None = None,
               train_missing: bool = True) -> Preprocessed:
    """Autoencode `images` when config asks for reconstructions or dedupe, drop near-duplicates, draw pictures.

    picture_dirs: folders that get the reconstruction and code pictures (when missing there, or the autoencoder's
    output is new). report_dir: where duplicates.csv goes. train_missing=False: use a saved autoencoder, never
    train or write one (see autoencode).
    """
    if not config.uses_autoencoder:
        return Preprocessed(images)
    if isinstance(images, StreamedImages):
        raise needs_memory(cache_bytes(len(images), images.spec, images.c_dim))
    encoded = autoencode(config, images.images, train_missing)
    result = Preprocessed(images, None, [], encoded)
    fresh = encoded.trained_now or not encoded.cache_reused
    for folder in picture_dirs:
        pairs = os.path.join(folder, pictures.RECONSTRUCTIONS_PNG)
        scatter = os.path.join(folder, pictures.CODES_PNG)
        if fresh or not os.path.isfile(pairs):
            result.written.append(pictures.reconstruction_pairs(images.images, encoded.reconstructions, pairs,
                                                                config.seed))
        if fresh or not os.path.isfile(scatter):
            result.written.append(pictures.code_scatter(encoded.codes, images.images, scatter, config.seed))

    reconstructions = dataclasses.replace(images, images=encoded.reconstructions)
    if config.dedupe is not None:
        found = near_duplicates(encoded.codes, config.dedupe, config.seed)
        result.duplicates = [(_name(images, i), _name(images, j), distance) for i, j, distance in found]
        dropped = [i for i, _, _ in found]
        _report_duplicates(result.duplicates, len(images), config.dedupe)
        if len(dropped) > len(images) // 2:
            log.warning("--dedupe %g dropped more than half the images (%d of %d); it is a fraction of the median "
                        "code distance, so 0.05 drops near-copies only", config.dedupe, len(dropped), len(images))
        if report_dir:
            result.written.append(write_duplicates(result.duplicates, os.path.join(report_dir, DUPLICATES_CSV)))
        images, reconstructions = drop_images(images, dropped), drop_images(reconstructions, dropped)
        result.originals = images
    if config.preprocess == "autoencoder":
        result.reconstructions = reconstructions
    return result


def _report_duplicates(duplicates: list, total: int, threshold: float) -> None:
    log.info("dedupe: dropped %d of %d images as near-duplicates (codes within %g x the median code distance)%s",
             len(duplicates), total, threshold, ":" if duplicates else "")
    for dropped, kept, distance in duplicates[:LOGGED_DUPLICATES]:
        log.info("  dropped %s (near %s, distance %.3g)", dropped, kept, distance)
    if len(duplicates) > LOGGED_DUPLICATES:
        log.info("  ... and %d more (see %s)", len(duplicates) - LOGGED_DUPLICATES, DUPLICATES_CSV)


def write_duplicates(duplicates: list, path: str) -> str:
    """duplicates.csv: dropped, kept (its nearest earlier image), relative_distance; one row per dropped image."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dropped", "kept", "relative_distance"])
        writer.writerows([dropped, kept, f"{distance:.6g}"] for dropped, kept, distance in duplicates)
    return path


def export_reconstructions(data: LoadedImages, reconstructions: np.ndarray, folder: str) -> int:
    """Each reconstruction as a PNG named after its source file (or its index), for use outside dcgan_tf."""
    if os.path.isdir(folder):  # this folder is ours: no reconstruction of an image since removed stays behind
        for name in os.listdir(folder):
            if name.endswith(".png"):
                os.remove(os.path.join(folder, name))
    used = set()  # lower case: names differing only in case are one file on macOS and Windows
    for index, image in enumerate(reconstructions):
        stem = os.path.splitext(os.path.basename(data.paths[index]))[0] if data.paths else f"{index:06d}"
        name, suffix = stem, 1
        while name.lower() in used:  # the same name in different subfolders
            name, suffix = f"{stem}_{suffix}", suffix + 1
        used.add(name.lower())
        save_image(image, os.path.join(folder, name + ".png"))
    return len(reconstructions)


def train_autoencoder(config: Config) -> Preprocessed:
    """Standalone mode: train (or reuse) the autoencoder for config's data, write its pictures, the reconstruction
    of every image kept as a PNG, and (with dedupe) duplicates.csv, into `<sample_dir>/<autoencoder name>/`."""
    config = dataclasses.replace(config.resolved(), preprocess="autoencoder", swap_epoch=None).validate()
    with run_lock.holding(autoencoder_folder(config), what="autoencoder"):  # one writer, before any work
        images = load_training_data(config)  # the GAN's own loader: the same images, the same folder
        config = dataclasses.replace(config, c_dim=images.c_dim)
        out = os.path.join(config.sample_dir, config.autoencoder_name)
        result = preprocess(config, images, picture_dirs=[out], report_dir=out if config.dedupe is not None else None)
        folder = os.path.join(out, RECONSTRUCTIONS)
        count = export_reconstructions(result.originals, result.reconstructions.images, folder)
        result.written.append(folder)
        log.info("wrote %d reconstructions to %s", count, folder)
        return result
