"""Autoencoder preprocessing: a convolutional autoencoder learns the run's images; the GAN can train on its
blurrier reconstructions (and swap to the originals later), and its codes find near-duplicate images.

The autoencoder is its own run: `<checkpoint_dir>/<config.autoencoder_name>/` holds its weights
(`autoencoder.weights.h5`), what they were trained on (`autoencoder.json`: settings, a fingerprint of the images,
the loss per epoch) and the cached reconstructions and codes (`reconstructions.npz`). Every GAN run on the same
data and autoencoder settings reuses them; a change of the images or of the settings trains it again.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from dcgan_tf import files
from dcgan_tf.config import AUTOENCODER_FIELDS, Config
from dcgan_tf.data.loading import DataError, LoadedImages, to_float
from dcgan_tf.runs import lock as run_lock

log = logging.getLogger(__name__)

WEIGHTS_FILE = "autoencoder.weights.h5"
INFO_FILE = "autoencoder.json"
CACHE_FILE = "reconstructions.npz"
FILTERS = 32  # the first conv's filters; each stage doubles them
MAX_STAGES = 4
PREDICT_BATCH = 256
DISTANCE_SAMPLE = 2000  # codes used to estimate the median distance between two images


def conv_stages(height: int, width: int) -> int:
    """Stride-2 stages: halve while both sides stay even and at least 4, at most MAX_STAGES (64x64 -> 4x4)."""
    stages = 0
    while stages < MAX_STAGES and height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 4:
        height, width, stages = height // 2, width // 2, stages + 1
    return max(stages, 1)


class ConvAutoencoder(keras.Model):
    """Stride-2 conv encoder -> dense code [code_dim] -> mirrored transposed-conv decoder, tanh output in [-1, 1]."""

    def __init__(self, height: int, width: int, channels: int, code_dim: int = 128, filters: int = FILTERS,
                 **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.code_dim = (height, width, channels), code_dim
        stages = conv_stages(height, width)
        encoder = [keras.Input((height, width, channels))]
        for stage in range(stages):
            encoder += [layers.Conv2D(filters * 2**stage, 4, strides=2, padding="same"), layers.LeakyReLU(0.2)]
        encoder += [layers.Flatten(), layers.Dense(code_dim, name="code")]
        self.encoder = keras.Sequential(encoder, name="encoder")

        top_h, top_w, top_filters = height >> stages, width >> stages, filters * 2 ** (stages - 1)
        decoder = [keras.Input((code_dim,)), layers.Dense(top_h * top_w * top_filters),
                   layers.Reshape((top_h, top_w, top_filters)), layers.ReLU()]
        for stage in reversed(range(stages - 1)):
            decoder += [layers.Conv2DTranspose(filters * 2**stage, 4, strides=2, padding="same"), layers.ReLU()]
        decoder += [layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh")]
        self.decoder = keras.Sequential(decoder, name="decoder")

    def call(self, images, training=False):
        """images [N, H, W, C] float in [-1, 1] -> reconstructions, same shape."""
        return self.decoder(self.encoder(images, training=training), training=training)


@dataclass
class Autoencoded:
    """The autoencoder's view of a data set: reconstructions (uint8, like the originals) and codes [N, code_dim]."""

    reconstructions: np.ndarray
    codes: np.ndarray
    folder: str
    trained_now: bool  # False: the saved weights were reused
    cache_reused: bool
    losses: list = field(default_factory=list)  # mean squared error per epoch of its training

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


# ------------------------------------------------------------------------------------------------ training
def _dataset(images: np.ndarray, batch_size: int, seed: int, shuffle: bool) -> tf.data.Dataset:
    """uint8 images -> batches of float (x, x) pairs in [-1, 1]; reshuffled every epoch when `shuffle`."""
    dataset = tf.data.Dataset.from_tensor_slices(images)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(lambda x: (to_float(x), to_float(x)), num_parallel_calls=tf.data.AUTOTUNE) \
        .prefetch(tf.data.AUTOTUNE)


def build_autoencoder(config: Config, image_shape) -> ConvAutoencoder:
    """The autoencoder for images of `image_shape` (H, W, C), seeded and compiled with Adam on squared error."""
    keras.utils.set_random_seed(config.seed)
    model = ConvAutoencoder(*image_shape, code_dim=config.ae_code_dim)
    model.compile(optimizer=keras.optimizers.Adam(config.ae_learning_rate), loss="mse")
    model(tf.zeros((1, *image_shape)))  # build the weights (and the optimizer's) now, so loading needs no data
    model.optimizer.build(model.trainable_variables)
    return model


def load_saved_autoencoder(config: Config, image_shape) -> ConvAutoencoder:
    """The run's trained autoencoder read from its folder, to encode other images (the linear probe); DataError
    naming the folder when it has none."""
    weights_path = os.path.join(autoencoder_folder(config), WEIGHTS_FILE)
    if not os.path.isfile(weights_path):
        raise DataError(f"{weights_path} does not exist: train the run (or --train_autoencoder) first")
    model = build_autoencoder(config, image_shape)
    model.load_weights(weights_path)
    return model


def fit_autoencoder(model: ConvAutoencoder, images: np.ndarray, config: Config) -> list[float]:
    """Train on uint8 images [N, H, W, C] for config.ae_epochs; returns the loss (mean squared error) per epoch."""
    batch = min(config.batch_size, len(images))
    verbose = 2 if config.verbose == 1 and not files.stdout_is_terminal() else config.verbose  # a log: a line an epoch
    history = model.fit(_dataset(images, batch, config.seed, shuffle=True), epochs=config.ae_epochs,
                        verbose=verbose, shuffle=False)  # the dataset reshuffles itself, seeded
    return [float(value) for value in history.history["loss"]]


def encode_and_reconstruct(model: ConvAutoencoder, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, H, W, C] -> (codes [N, code_dim] float32, reconstructions uint8 [N, H, W, C])."""
    codes, reconstructions = [], []
    for start in range(0, len(images), PREDICT_BATCH):
        batch = to_float(tf.constant(images[start:start + PREDICT_BATCH]))
        code = model.encoder(batch, training=False)
        decoded = model.decoder(code, training=False)
        codes.append(code.numpy())
        reconstructions.append(np.clip(np.rint((decoded.numpy() + 1.0) * 127.5), 0, 255).astype(np.uint8))
    return np.concatenate(codes).astype(np.float32), np.concatenate(reconstructions)


def _settings(config: Config, images: np.ndarray) -> dict:
    return {**{name: getattr(config, name) for name in AUTOENCODER_FIELDS}, "seed": config.seed,
            "image_shape": list(images.shape[1:]), "filters": FILTERS, "max_stages": MAX_STAGES}


def autoencoder_folder(config: Config) -> str:
    return os.path.join(config.checkpoint_dir, config.autoencoder_name)


def autoencode(config: Config, images: np.ndarray, train_missing: bool = True) -> Autoencoded:
    """Train the run's autoencoder on uint8 `images` (or reuse its saved weights) and return its reconstructions
    and codes (or reuse the cached ones). Weights and cache are checked against the images and the settings.

    train_missing=False (the workers of a multiworker run, which must all use one autoencoder) only reads: no valid
    saved autoencoder is an error, and the cache is not written. A writer holds the autoencoder folder's lock, so
    two runs on the same data wait for each other instead of training it twice at once.
    """
    folder = autoencoder_folder(config)
    with run_lock.holding(folder if train_missing else None, what="autoencoder", wait=True):
        return _autoencode(config, images, folder, train_missing)


def _autoencode(config: Config, images: np.ndarray, folder: str, train_missing: bool) -> Autoencoded:
    if train_missing:
        os.makedirs(folder, exist_ok=True)
    weights_path, info_path = os.path.join(folder, WEIGHTS_FILE), os.path.join(folder, INFO_FILE)
    data_key, settings = files.array_fingerprint(images), _settings(config, images)

    info = files.read_json(info_path)
    model = build_autoencoder(config, images.shape[1:])
    reusable = bool(info and info.get("settings") == settings and info.get("data") == data_key
                    and os.path.isfile(weights_path) and info.get("weights") == files.file_digest(weights_path))
    reason = "no saved autoencoder" if not info else "the images, its settings or its weights file changed"
    if reusable:
        try:
            model.load_weights(weights_path)
            log.info("reusing the autoencoder in %s", folder)
        except Exception as error:  # noqa: BLE001 - a damaged file: train again rather than fail the run
            reusable, reason = False, f"its weights could not be loaded: {error}"
            model = build_autoencoder(config, images.shape[1:])
    if not reusable and not train_missing:
        raise DataError(f"{folder} holds no autoencoder for these images and settings ({reason}), and a --strategy "
                        f"multiworker run does not train one, so that every worker uses the same: run the same command "
                        f"with --train_autoencoder first (one machine, no --strategy), then start the workers")
    if not reusable:
        log.info("training the autoencoder %s (%s): %d images, %d epochs", config.autoencoder_name, reason,
                 len(images), config.ae_epochs)
        files.remove_if_present(info_path)  # a run killed from here on finds no info, so never pairs old info with new weights
        losses = fit_autoencoder(model, images, config)
        with files.replacing(weights_path, suffix=".weights.h5") as temporary:
            model.save_weights(temporary)
        info = {"settings": settings, "data": data_key, "weights": files.file_digest(weights_path),
                "num_images": len(images), "losses": losses}
        files.write_json(info_path, info)
        log.info("autoencoder trained: mean squared error %.4f after epoch 1, %.4f after epoch %d", losses[0],
                 losses[-1], len(losses))
    trained_now = not reusable

    # The cache belongs to these exact images and these exact weights.
    cache_key = hashlib.sha256((data_key + info["weights"]).encode()).hexdigest()
    cache_path = os.path.join(folder, CACHE_FILE)
    cached = files.read_keyed_npz(cache_path, cache_key, ("codes", "reconstructions"), what="reconstruction cache")
    if cached is not None:
        codes, reconstructions = cached
        log.info("reusing %d cached reconstructions from %s", len(reconstructions), cache_path)
    else:
        codes, reconstructions = encode_and_reconstruct(model, images)
    if cached is None and train_missing:
        files.write_keyed_npz(cache_path, cache_key, codes=codes, reconstructions=reconstructions)
        log.info("cached %d reconstructions in %s", len(reconstructions), cache_path)
    return Autoencoded(reconstructions, codes, folder, trained_now, cached is not None, list(info.get("losses", [])))


# ------------------------------------------------------------------------------------------------ duplicates
def median_distance(codes: np.ndarray, seed: int = 0) -> float:
    """The median Euclidean distance between the codes of two different images (from a seeded sample of codes),
    copies left out: so a set made mostly of copies still has the scale of its distinct images. 0: all alike."""
    if len(codes) > DISTANCE_SAMPLE:
        codes = codes[np.random.default_rng(seed).choice(len(codes), DISTANCE_SAMPLE, replace=False)]
    distances = _pairwise(codes, codes)[np.triu_indices(len(codes), k=1)]
    distances = distances[distances > 0]
    return float(np.median(distances)) if len(distances) else 0.0


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)]; a squared distance lost in rounding (identical codes) is exactly 0."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    norms_a, norms_b = (a * a).sum(1)[:, None], (b * b).sum(1)[None, :]
    squared = norms_a + norms_b - 2.0 * a @ b.T
    squared[squared <= 1e-9 * (norms_a + norms_b)] = 0.0
    return np.sqrt(squared)


def near_duplicates(codes: np.ndarray, threshold: float, seed: int = 0, block: int | None = None) -> list[tuple]:
    """Images whose code lies within `threshold` x the median code distance of the code of an earlier image that
    is kept. Greedy in order, so the first image of every group is kept and every dropped image names a kept one.

    Returns (index, kept earlier index, relative distance) for each image to drop.
    """
    scale = median_distance(codes, seed)
    limit = threshold * scale  # all codes alike: scale 0, and every copy of the first image goes
    kept = np.ones(len(codes), dtype=bool)
    found = []
    block = block or max(1, min(1024, 2**24 // max(1, len(codes))))  # bounds the distance block's memory
    for start in range(1, len(codes), block):
        stop = min(start + block, len(codes))
        distances = _pairwise(codes[start:stop], codes[:stop])
        for row in range(stop - start):
            index = start + row
            candidates = np.where(kept[:index], distances[row, :index], np.inf)
            nearest = int(candidates.argmin())
            if candidates[nearest] <= limit:
                kept[index] = False
                found.append((index, nearest, float(candidates[nearest] / scale) if scale > 0 else 0.0))
    return found


def drop_images(data: LoadedImages, indices) -> LoadedImages:
    """`data` without the images at `indices` (paths and labels alike)."""
    keep = np.setdiff1d(np.arange(len(data)), np.asarray(list(indices), dtype=np.int64))
    paths = [data.paths[i] for i in keep] if data.paths else []
    labels = None if data.labels is None else data.labels[keep]
    return LoadedImages(data.images[keep], paths, data.skipped, labels)
