"""Measure a run: its generator's samples against its training images, by the metrics config.metrics names.

One evaluation = `Evaluator.evaluate(model)`: a fixed set of z (the same at every evaluation of a run, so values move
only because G did), G's images in batches, their features against the real images' (computed once and cached),
and the values as one JSON line in `<run>/metrics.jsonl`, TensorBoard `eval/*`, and with memorisation
`samples/<run>/nearest_<step>.png`. `EvaluateEvery` does it while training (and keeps the best checkpoint under
--keep_best); `evaluate_run` does it afterwards (--evaluate, --evaluate_all).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time

import numpy as np
import tensorflow as tf

from dcgan_tf import files
from dcgan_tf.config import RANKED_VALUES, Config, effective_ema_decay
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.data import loading
from dcgan_tf.data.datasets import load_training_data
from dcgan_tf.images import save_image
from dcgan_tf.latent import sample_z
from dcgan_tf.metrics import (METRICS, Measurement, compute_metrics, feature_caption, features, fid_weights,
                              label_accuracy, memorisation)
from dcgan_tf.preprocess import preprocessing
from dcgan_tf.runs import checkpoints, folders
from dcgan_tf.runs import lock as run_lock
from dcgan_tf.training.callbacks import EveryNSteps, weights_finite

log = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 7919  # the evaluations' z: apart from the training grids' (seed) and test mode's fresh samples
MAX_REAL = 10_000  # real images a run is measured against (a seeded subset of bigger sets)
MIN_SAMPLES, MAX_SAMPLES = 500, 10_000  # the default sample count: the training-set size, within these
GENERATE_BATCH = 256
NEAREST_PAIRS = 16


def nearest_picture_name(step: int) -> str:
    return f"nearest_{step:08d}.png"


def metrics_to_evaluate(config: Config) -> tuple[str, ...]:
    """--metrics, or for --evaluate without it every metric that applies to the run."""
    if config.metric_names:
        return config.metric_names
    return tuple(name for name, metric in METRICS.items() if metric.needs != "classifier" or config.conditional)


def needs_features(names) -> bool:
    return any(METRICS[name].needs == "features" for name in names)


def make_extractor(config: Config):
    """The feature network config.metrics_features names (MissingWeightsError when its weights cannot be had)."""
    if config.metrics_features == "smoke":
        return features.SmokeFeatures(seed=0)
    if config.metrics_features == "keras_inception":
        return features.InceptionFeatures(config.inception_weights)
    return features.FIDInceptionFeatures(config.fid_weights, bfloat16=config.metrics_features == "fid_inception_bf16")


def check_before_work(config: Config, names) -> None:
    """What must be there before a run trains or loads anything: the feature network's weights (found, converted
    or downloaded now; MissingWeightsError naming --fid_weights or --inception_weights when that fails)."""
    if not needs_features(names):
        return
    if config.metrics_features == "keras_inception":
        features.inception_weights_file(config.inception_weights)
    elif config.metrics_features != "smoke":
        fid_weights.fid_weights_file(config.fid_weights)


def real_images(config: Config, images) -> tuple[np.ndarray, np.ndarray | None]:
    """(up to MAX_REAL of the run's training images, uint8 [N, H, W, C], and their labels or None): a seeded subset,
    decoded from disk for a streamed data set. The originals, never autoencoder reconstructions."""
    if isinstance(images, loading.StreamedImages):
        paths = loading.subset_paths(images.paths, MAX_REAL, config.seed)
        return loading.load_images(paths, images.spec, images.channels).images, None
    chosen = loading.subset(images, MAX_REAL, config.seed)
    return chosen.images, chosen.labels


def _cache_name(config: Config, images: np.ndarray) -> str:
    """A file stem for what is cached about these real images: data set, size, and their fingerprint."""
    return f"{config.dataset_name}_{images.shape[1]}x{images.shape[2]}x{images.shape[3]}_" \
           f"{files.array_fingerprint(images)[:12]}"


class Evaluator:
    """Measures a model's samples against one run's real images; built once per run (features and classifier are
    computed or loaded here), then `evaluate(model)` as often as wanted."""

    def __init__(self, config: Config, images, names=None, extractor=None, classifier=None):
        config = config.resolved()
        if config.conditional and config.y_dim is None and getattr(images, "class_names", None):
            # a Config not given to runs.resolve: its labelled folder's classes as the loaded images name them
            config = dataclasses.replace(config, class_names=tuple(images.class_names)).resolved()
        self.config = config
        self.names = tuple(names) if names is not None else metrics_to_evaluate(config)
        self.real, labels = real_images(config, images)
        self.count = config.metrics_samples or min(max(len(self.real), MIN_SAMPLES), MAX_SAMPLES)
        cache_dir = os.path.join(config.checkpoint_dir, folders.METRICS_CACHE_DIR)
        stem = _cache_name(config, self.real)
        self.extractor = self.real_features = None
        if needs_features(self.names):
            self.extractor = extractor or make_extractor(config)
            started = time.perf_counter()
            self.real_features = features.cached_real_features(
                self.extractor, self.real, os.path.join(cache_dir, f"{stem}_{self.extractor.key}.npz"))
            log.info("features of %d real images ready (%s, %.1f s)", len(self.real), self.extractor.key,
                     time.perf_counter() - started)
        self.classifier, self.classifier_accuracy = classifier, None
        if "label_accuracy" in self.names:
            if labels is None:
                raise loading.DataError("label_accuracy needs the data set's labels, and this one has none")
            if self.classifier is None:
                self.classifier, self.classifier_accuracy = label_accuracy.load_or_train_classifier(
                    os.path.join(cache_dir, f"classifier_{stem}"), self.real, labels, config.y_dim, config.seed)
        self.z = np.asarray(sample_z((self.count, config.z_dim), config.z_dist, config.seed + EVAL_SEED_OFFSET),
                            np.float32)
        self.labels = None
        if config.conditional and labels is not None:  # the real images' class proportions, in a seeded order
            order = np.random.default_rng(config.seed + EVAL_SEED_OFFSET).permutation(len(labels))
            self.labels = np.resize(np.asarray(labels)[order], self.count)
        # what makes two evaluations comparable: the same feature network, sample count and real images
        self.signature = {"features": getattr(self.extractor, "key", None), "samples": self.count,
                          "real": len(self.real)}

    def samples(self, model) -> np.ndarray:
        """G's images [count, H, W, C] in [-1, 1] for the evaluation's fixed z (and labels), in batches."""
        parts = []
        for start in range(0, self.count, GENERATE_BATCH):
            z = self.z[start:start + GENERATE_BATCH]
            one_hot = None if self.labels is None else tf.one_hot(self.labels[start:start + GENERATE_BATCH],
                                                                   self.config.y_dim)
            parts.append(model.generate(z, one_hot, training=False).numpy())
        return np.concatenate(parts)

    def _read_labels(self, images) -> dict:
        """label_accuracy's values: the classifier's reading of the samples drawn for each label."""
        found = label_accuracy.label_accuracy(self.classifier, images, self.labels, self.config.y_dim)
        row = {"label_accuracy": found["overall"], "label_accuracy_per_label": found["per_label"]}
        if self.classifier_accuracy is not None:
            row["classifier_accuracy"] = self.classifier_accuracy
        return row

    def evaluate(self, model, picture_dir: str | None = None) -> dict:
        """One evaluation of `model` as a flat dict: step, epoch, every value, sample and real counts, seconds. With
        memorisation and a picture_dir, also nearest_<step>.png there (the closest sample/training pairs)."""
        started = time.perf_counter()
        step = model.steps_done
        images = self.samples(model)
        row = {"step": step, "epoch": model.epochs_done, **self.signature}
        if getattr(model, "ema_decay", None) is not None and step:  # what the sampling generator averaged over
            row["ema_decay"] = round(effective_ema_decay(model.ema_decay, step), 6)
        fake_features = self.extractor(images) if self.extractor is not None else None
        measurement = Measurement(self.real_features, fake_features, seed=self.config.seed,
                                  read_labels=lambda: self._read_labels(images))
        row.update(compute_metrics(measurement, self.names))
        if "memorisation" in self.names and picture_dir:
            picture = memorisation.nearest_pairs_picture(images, self.real, *measurement.nearest, count=NEAREST_PAIRS)
            save_image(picture, os.path.join(picture_dir, nearest_picture_name(step)))
        row["seconds"] = round(time.perf_counter() - started, 3)
        return row


def describe(row: dict) -> str:
    """One log line of an evaluation's main values."""
    shown = []
    for key, fmt in (("fid", "{:.2f}"), ("kid", "{:.4f}"), ("precision", "{:.3f}"), ("recall", "{:.3f}"),
                     ("copy_fraction", "{:.3f}"), ("label_accuracy", "{:.3f}")):
        if key in row:
            text = fmt.format(row[key])
            if key == "kid":
                text += " ± " + fmt.format(row["kid_std"])
            if key == "copy_fraction":  # not a score to lower: a G far from the data scores near 0 too
                text += " (0.5: like the data, 1: copies, near 0: far from it)"
            shown.append(f"{key} {text}")
    if "ema_decay" in row:
        shown.append(f"EMA decay {row['ema_decay']:.4f}")
    measured = f"{feature_caption(row.get('features'))}, " if row.get("features") else ""
    return (f"step {row['step']}: " + ", ".join(shown) + f" ({measured}{row['samples']} samples vs {row['real']} "
            f"real, {row['seconds']:.1f} s)")


def write_tensorboard(log_dir: str, row: dict) -> None:
    """Every numeric value of an evaluation as eval/<key> at its step."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default(step=row["step"]):
        for key, value in row.items():
            if key not in ("step", "epoch") and isinstance(value, (int, float)) and not isinstance(value, bool):
                tf.summary.scalar(f"eval/{key}", float(value))
    writer.close()


def comparable(rows: list[dict], signature: dict) -> list[dict]:
    """The rows of training evaluations made like `signature` says (feature network, sample and real counts): the
    only ones a value may be ranked against."""
    return [row for row in rows if row.get("mode", "train") == "train"
            and all(row.get(key) == value for key, value in signature.items())]


class BestCheckpoint:
    """--keep_best: the checkpoint of the best evaluation so far, in <run>/best/ (one kept), with best.json (its
    step, value and how it was measured). On resume the best is read back (see `resume`), so it survives."""

    def __init__(self, checkpoint: tf.train.Checkpoint, checkpoint_path: str, key: str):
        self.key, self.higher_is_better = key, RANKED_VALUES[key][1]
        self.directory = os.path.join(checkpoint_path, folders.BEST_DIR)
        self.checkpoint = checkpoint
        self.manager = checkpoints.make_manager(checkpoint, self.directory, max_to_keep=1)
        self.best = None
        self.signature = None

    @property
    def record(self) -> str:
        return os.path.join(self.directory, "best.json")

    def resume(self, step: int, signature: dict, rows: list[dict]) -> None:
        """Continue from the restored `step`: keep best/ if it was made at or before it, by evaluations like this
        run's (`signature`); else (made after the checkpoint resumed from, or a rollback, or measured otherwise)
        empty it, and rank from the comparable rows kept."""
        self.signature = signature
        try:
            saved = files.read_json_object(self.record)
        except files.DamagedFileError as error:
            aside = files.set_aside(self.record, folder=os.path.dirname(self.directory))  # best/ may be emptied
            log.warning("--keep_best: %s; set aside as %s, and the best is chosen again from the run's evaluations",
                        error, aside)
            saved = None
        if saved and saved.get("step", step + 1) <= step and saved.get("signature") == signature:
            self.best = saved.get(self.key)
            return
        if os.path.isdir(self.directory):
            log.info("--keep_best: %s holds a checkpoint the resumed run does not (a later step, or measured "
                     "otherwise); it is replaced at the next evaluation", self.directory)
            shutil.rmtree(self.directory, ignore_errors=True)
            self.manager = checkpoints.make_manager(self.checkpoint, self.directory, max_to_keep=1)
        scored = [row[self.key] for row in comparable(rows, signature) if row["step"] <= step
                  and isinstance(row.get(self.key), (int, float)) and np.isfinite(row[self.key])]
        self.best = (max if self.higher_is_better else min)(scored) if scored else None

    def better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.higher_is_better else value < self.best

    def offer(self, row: dict) -> str | None:
        """Save the current model as the best when row[key] beats the best so far; the path saved, or None."""
        value = row.get(self.key)
        if not isinstance(value, (int, float)) or not np.isfinite(value) or not self.better(value):
            return None
        path = self.manager.save(checkpoint_number=row["step"])
        files.write_json(self.record, {"step": row["step"], self.key: value, "signature": self.signature})
        log.info("best %s so far (%.4g, was %s): kept %s", self.key, value,
                 "none" if self.best is None else f"{self.best:.4g}", path)
        self.best = value
        return path


class EvaluateEvery(EveryNSteps):
    """While training: an evaluation every `every` steps and at the end, appended to metrics.jsonl (rows after the
    step a run resumed from are dropped first: the resumed run makes them again, identically)."""

    def __init__(self, evaluator: Evaluator, every: int, checkpoint_path: str, sample_path: str | None,
                 resume_step: int | None = 0, best: BestCheckpoint | None = None):
        super().__init__(every)
        self.evaluator, self.checkpoint_path, self.sample_path = evaluator, checkpoint_path, sample_path
        self.resume_step, self.best = resume_step, best

    def on_train_begin(self, logs=None):
        if self.resume_step is not None:
            kept = folders.keep_metrics_until(self.checkpoint_path, self.resume_step)
            if self.best is not None:
                self.best.resume(self.resume_step, self.evaluator.signature, kept)
            self.resume_step = None

    def save(self, step: int) -> dict | None:
        if not weights_finite(self.model):  # nothing to measure in a diverged model
            return None
        try:
            row = {**self.evaluator.evaluate(self.model, self.sample_path), "mode": "train"}
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:  # a metric, never the run
            log.error("no evaluation at step %d: %s: %s", step, type(error).__name__, error)
            self.last_saved = step
            return None
        folders.append_metrics(self.checkpoint_path, row)
        write_tensorboard(os.path.join(self.checkpoint_path, folders.TENSORBOARD_DIR), row)
        log.info("metrics at %s", describe(row))
        if self.best is not None:
            self.best.offer(row)
        self.last_saved = step
        return row


def evaluate_run(config: Config, every_checkpoint: bool = False, extractor=None) -> list[dict]:
    """--evaluate: the checkpoint --checkpoint names (latest or best) of the run config names; --evaluate_all
    (`every_checkpoint`): every one the run kept, oldest first. Rows appended to metrics.jsonl ("mode": "evaluate")
    and returned. Holds the run's lock: a run being trained is measured with --metrics instead."""
    saved = folders.open_saved_run(config)
    stored = folders.load_saved_config(saved)
    saved = dataclasses.replace(saved, seed=stored.seed, train_size=stored.train_size)  # the run's images and z
    names = metrics_to_evaluate(saved)
    if extractor is None:
        check_before_work(saved, names)
    with run_lock.holding(saved.checkpoint_path):
        folder = folders.checkpoint_folder(saved)
        listed = tf.train.get_checkpoint_state(folder)  # its paths already joined to `folder`
        paths = list(listed.all_model_checkpoint_paths) if listed else []
        if not paths:
            raise folders.RunError(f"run {saved.name!r} has no checkpoint in {os.path.abspath(folder)}"
                                   + (" (--checkpoint best needs a run trained with --keep_best)"
                                      if saved.checkpoint == "best" else " (train it with --train)"))
        if not every_checkpoint:
            paths = paths[-1:]
        model = build_dcgan(saved)
        images = load_training_data(saved)
        if saved.dedupe is not None:  # the images training measured against: without the near-duplicates it dropped
            images = preprocessing.preprocess(saved, images, train_missing=False).originals
        evaluator = Evaluator(saved, images, names, extractor=extractor)
        rows = []
        for path in paths:
            status = checkpoints.make_checkpoint(model).restore(path)
            status.expect_partial()
            row = {**evaluator.evaluate(model, saved.sample_path), "mode": "evaluate",
                   "checkpoint": os.path.relpath(path, saved.checkpoint_path)}  # ckpt-<step> or best/ckpt-<step>
            folders.append_metrics(saved.checkpoint_path, row)
            write_tensorboard(os.path.join(saved.checkpoint_path, folders.TENSORBOARD_DIR), row)
            log.info("metrics of %s at %s", saved.name, describe(row))
            rows.append(row)
    return rows
