"""Label accuracy of a conditional generator, judged as carpedm20 judged MNIST: a small CNN trained on the real
labelled images reads each sample, and the share read as the label asked for says how well G obeys it."""

from __future__ import annotations

import logging
import math
import os

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf import files
from dcgan_tf.metrics.features import as_float_images

log = logging.getLogger(__name__)

CLASSIFIER_VERSION = 2  # part of the cache key: bump it when the network or its training changes (2: MIN_STEPS)
# Adam steps at the least, whatever the set's size: 3 epochs of 300 images were 9 steps, which read three easy classes
# at 57 % held-out accuracy (30 epochs: 100 %)
MIN_STEPS = 300
TRUSTED_ACCURACY = 0.9  # below this held-out accuracy a warning says label_accuracy says little
MODEL_FILE = "label_classifier.keras"
SIDECAR_FILE = "label_classifier.json"  # the cache key and held-out accuracy; written last, so it vouches for the model


def build_label_classifier(image_shape: tuple[int, int, int], y_dim: int, seed: int) -> keras.Model:
    """Two conv + max-pool stages, then a dense layer: images [N, H, W, C] in [-1, 1] -> probabilities [N, y_dim]."""
    def init(index):
        return keras.initializers.GlorotUniform(seed=seed * 10 + index)

    return keras.Sequential([
        keras.Input(image_shape),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=init(0)),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init(1)),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu", kernel_initializer=init(2)),
        keras.layers.Dense(y_dim, activation="softmax", kernel_initializer=init(3)),
    ], name="label_classifier")


def _check_labels(images: np.ndarray, labels, y_dim: int) -> np.ndarray:
    labels = np.asarray(labels, np.int64)
    if labels.shape != (len(images),):
        raise ValueError(f"labels {labels.shape} do not match {len(images)} images")
    if len(labels) and not 0 <= labels.min() <= labels.max() < y_dim:
        raise ValueError(f"labels must lie in [0, {y_dim}), got {labels.min()}..{labels.max()}")
    return labels


def train_label_classifier(images, labels, y_dim: int, seed: int, epochs: int = 3, held_out: float = 0.1,
                           batch_size: int = 128, min_steps: int = MIN_STEPS) -> tuple[keras.Model, float]:
    """(classifier, accuracy on a held-out share) trained on images [N, H, W, C] (uint8, or float in [-1, 1])
    with int labels [N], for `epochs` or as many more as make `min_steps` Adam steps. The split, initial weights and
    batch order follow the seed. An evaluation trains it on at most 10,000 of a run's images (9,000 after the
    held-out tenth: 71 batches an epoch, 300 steps, about 20 s on 2 CPU cores); 300 images take 100 epochs of 3."""
    images = as_float_images(images)
    labels = _check_labels(images, labels, y_dim)
    order = np.random.default_rng(seed).permutation(len(images))
    held = max(1, int(round(held_out * len(images))))
    if held >= len(images):
        raise ValueError(f"{len(images)} images leave none to train on after holding out {held}")
    test, train = order[:held], order[held:]
    model = build_label_classifier(images.shape[1:], y_dim, seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    per_epoch = math.ceil(len(train) / batch_size)
    batches = tf.data.Dataset.from_tensor_slices((images[train], labels[train])) \
        .shuffle(len(train), seed=seed, reshuffle_each_iteration=True).batch(batch_size).repeat()
    # the epochs as one fit call (a small set's many epochs would each pay fit's per-epoch overhead)
    model.fit(batches, epochs=1, steps_per_epoch=max(epochs * per_epoch, min_steps), shuffle=False, verbose=0)
    return model, label_accuracy(model, images[test], labels[test], y_dim)["overall"]


def load_or_train_classifier(cache_dir: str, images, labels, y_dim: int, seed: int,
                             **training) -> tuple[keras.Model, float]:
    """(classifier, held-out accuracy): the one cached in cache_dir for these images and labels, else a new one
    (train_label_classifier with `training`), saved there as label_classifier.keras with a JSON sidecar."""
    labels = np.asarray(labels, np.int64)
    key = f"v{CLASSIFIER_VERSION}:y{y_dim}:{files.array_fingerprint(np.asarray(images))}:" \
          f"{files.array_fingerprint(labels)}"
    model_path, sidecar_path = os.path.join(cache_dir, MODEL_FILE), os.path.join(cache_dir, SIDECAR_FILE)
    sidecar = files.read_json(sidecar_path)
    if sidecar and sidecar.get("key") == key:
        try:
            return keras.models.load_model(model_path), float(sidecar["held_out_accuracy"])
        except Exception as error:  # noqa: BLE001 - a torn or foreign model file: retrain, never fail the run
            log.warning("retraining the label classifier: %s is unreadable (%s)", model_path, error)
    model, accuracy = train_label_classifier(images, labels, y_dim, seed, **training)
    files.remove_if_present(sidecar_path)  # a model without its sidecar is never trusted
    with files.replacing(model_path, suffix=".keras") as temporary:
        model.save(temporary)
    files.write_json(sidecar_path, {"key": key, "held_out_accuracy": accuracy, "y_dim": y_dim, "images": len(labels)})
    log.info("label classifier trained: %.1f%% held-out accuracy, saved to %s", 100 * accuracy, model_path)
    commonest = np.bincount(labels, minlength=y_dim).max() / len(labels)
    if accuracy < max(TRUSTED_ACCURACY, commonest + 0.05):
        log.warning("the label classifier reads only %.1f%% of held-out real images right (the commonest class is "
                    "%.1f%% of them): a sample read wrong may be the classifier's error, so label_accuracy is coarse "
                    "here; read it beside classifier_accuracy", 100 * accuracy, 100 * commonest)
    return model, accuracy


def label_accuracy(classifier, images, labels, y_dim: int, batch_size: int = 256) -> dict:
    """{overall, per_label}: the share of images [N, H, W, C] the classifier reads as their label [N]; per_label
    [y_dim] holds None for a label with no images."""
    images = as_float_images(images)
    labels = _check_labels(images, labels, y_dim)
    correct = classifier.predict(images, batch_size=batch_size, verbose=0).argmax(axis=1) == labels
    per_label = [float(correct[labels == label].mean()) if np.any(labels == label) else None for label in range(y_dim)]
    return {"overall": float(correct.mean()), "per_label": per_label}
