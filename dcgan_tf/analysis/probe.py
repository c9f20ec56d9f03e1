"""The linear probe of the DCGAN paper's section 5: is what D learned useful for classifying real images?

Each labelled image becomes a feature vector, and an L2-regularised linear classifier (scikit-learn's logistic
regression on standardised features, its strength C picked on a validation split of the training labels) learns the
classes from `labels_per_class` labelled images per class; its accuracy on held-out images is the probe's score.
Feature sets, each measured the same way:

  trained D     D's conv layers (each max-pooled to a 4 x 4 grid, flattened, concatenated), the paper's features
  untrained D   the same architecture with the run's initial weights (build_dcgan seeds Keras with the run's seed)
  pixels        the images themselves, flattened
  autoencoder   the code of the run's autoencoder, when it has one (--preprocess autoencoder or --dedupe)

Labels come from MNIST (its training set for the labelled images, its test set for testing) or from a labelled
folder (data.find_labelled_files: one sub-folder per class, or INDEX.csv), whose other images are the test set.
The result goes to `<run>/probe.json` (one entry per step, data and label count; later ones replace earlier ones)
and as one line ("mode": "probe") to `<run>/metrics.jsonl`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from dcgan_tf import files
from dcgan_tf.config import MNIST, Config, ConfigError
from dcgan_tf.data import loading as data
from dcgan_tf.metrics.features import DiscriminatorFeatures, as_float_images
from dcgan_tf.runs import folders
from dcgan_tf.runs import lock as run_lock

log = logging.getLogger(__name__)

PROBE_FILE = "probe.json"
C_VALUES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # inverse L2 strengths tried on the validation split
VALIDATION_FRACTION = 0.2  # of each class's labelled images, to pick C (then the probe is refitted on all of them)
MAX_ITER = 2000
FEATURE_SETS = ("trained D", "untrained D", "pixels", "autoencoder")


@dataclasses.dataclass(frozen=True)
class ProbeOptions:
    """What the probe reads: `data` a labelled folder (None: MNIST's labels, for MNIST runs); `labels_per_class`
    labelled training images per class; `layers` D's conv layers to read (indices from 0; None: all); `max_test`
    test images at most (a seeded subset; None: all)."""

    data: str | None = None
    labels_per_class: int = 100
    layers: tuple[int, ...] | None = None
    max_test: int | None = None

    def __post_init__(self):
        if self.labels_per_class < 1:
            raise ConfigError("probe_labels", f"must be >= 1 (got {self.labels_per_class})")
        if self.max_test is not None and self.max_test < 1:
            raise ConfigError("probe_max_test", f"must be >= 1, or unset for all (got {self.max_test})")
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ConfigError("probe_layers", f"conv layer indices from 0 expected (got {list(self.layers)})")


@dataclasses.dataclass(frozen=True)
class LabelledSplit:
    """The probe's images (uint8 [N, H, W, C] at the run's size) and int labels: `labels_per_class` per class to
    train on, the rest (or MNIST's test set) to test on; `skipped` the classes with too few images, and why."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    source: str
    skipped: dict[str, str]


# ------------------------------------------------------------------------------------------------ the labels
def labelled_split(config: Config, options: ProbeOptions, seed: int) -> LabelledSplit:
    """Choose the labelled images (seeded): from options.data, else MNIST's training and test sets; a class with
    too few images is skipped by name; DataError when fewer than two classes are left."""
    n = options.labels_per_class
    spec = data.ImageSpec(config.output_height, config.output_width, config.crop, config.input_height,
                          config.input_width)
    if options.data:
        pool = data.load_labelled_images(options.data, spec, config.c_dim)
        test, source, needed = None, os.path.abspath(os.path.expanduser(options.data)), n + 1
    elif config.dataset == MNIST:
        from dcgan_tf.data.mnist import load_mnist_parts

        pool, test = (data.resize(part, config.output_height, config.output_width)
                      for part in load_mnist_parts(os.path.expanduser(config.data_dir)))
        source, needed = MNIST, n
    else:
        raise ConfigError("probe_data", f"the probe needs labelled images: give a folder with one sub-folder per "
                                        f"class (or an {data.INDEX_FILE}); run {config.name!r} has no labels of its own")
    rng = np.random.default_rng(seed)
    train, rest, skipped = [], [], {}
    tests = None if test is None else np.bincount(test.labels.astype(np.int64), minlength=len(pool.class_names))
    for label, name in enumerate(pool.class_names):
        members = np.flatnonzero(pool.labels == label)
        if len(members) < needed:
            skipped[name] = f"{len(members)} images, fewer than the {needed} it needs ({n} to train on" + (
                ", 1 to test)" if test is None else f"; {tests[label]} test images)")
            continue
        if tests is not None and tests[label] == 0:  # MNIST's own test set: nothing of this class to test on
            skipped[name] = f"no test images ({len(members)} training images)"
            continue
        members = rng.permutation(members)
        train.append(members[:n])
        rest.append(members[n:])
    for name, why in skipped.items():
        log.warning("probe: class %r left out: %s", name, why)
    kept = [name for name in pool.class_names if name not in skipped]
    if len(kept) < 2:
        what = f"{needed} images each" if test is None else f"{needed} training images and a test image each"
        raise data.DataError(f"the probe needs at least two classes with {what}; {source} has "
                             f"{len(kept)} (--probe_labels {n}): " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    train_index = np.sort(np.concatenate(train))
    if test is None:
        test_images, test_labels = pool.images, pool.labels
        test_index = np.sort(np.concatenate(rest))
    else:
        test_images, test_labels = test.images, test.labels
        test_index = np.flatnonzero(np.isin(test.labels, [pool.class_names.index(name) for name in kept]))
    if options.max_test is not None and len(test_index) > options.max_test:
        test_index = np.sort(rng.permutation(test_index)[:options.max_test])
    # classes renumbered 0..K-1 over the kept ones
    number = {pool.class_names.index(name): k for k, name in enumerate(kept)}
    relabel = np.vectorize(number.__getitem__, otypes=[np.int64])
    return LabelledSplit(pool.images[train_index], relabel(pool.labels[train_index]), test_images[test_index],
                         relabel(test_labels[test_index]), kept, source, skipped)


# -------------------------------------------------------------------------------------------- the classifier
def validation_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices: VALIDATION_FRACTION of each class (at least one image, none for a class of one)
    held out, seeded."""
    rng = np.random.default_rng(seed)
    fit, held = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = max(1, round(len(members) * VALIDATION_FRACTION)) if len(members) > 1 else 0
        held.append(members[:count])
        fit.append(members[count:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(held))


def fit_linear_probe(train_x, train_y, test_x, test_y, seed: int = 0) -> dict:
    """An L2 logistic regression on standardised features, C from C_VALUES by validation accuracy (ties: the
    stronger regularisation), refitted on every training row -> {accuracy, error, c, validation_accuracy}."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    import warnings

    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)

    def fitted(c, x, y):
        with warnings.catch_warnings():  # a probe capped at MAX_ITER still ranks its C; say nothing per fit
            warnings.simplefilter("ignore", ConvergenceWarning)
            scaler = StandardScaler().fit(x)
            return scaler, LogisticRegression(C=c, max_iter=MAX_ITER).fit(scaler.transform(x), y)

    fit, held = validation_split(train_y, seed)
    best_c, best_validation = C_VALUES[len(C_VALUES) // 2], None
    if len(held) and len(np.unique(train_y[fit])) == len(np.unique(train_y)):
        for c in C_VALUES:
            scaler, model = fitted(c, train_x[fit], train_y[fit])
            accuracy = float(model.score(scaler.transform(train_x[held]), train_y[held]))
            if best_validation is None or accuracy > best_validation:
                best_c, best_validation = c, accuracy
    scaler, model = fitted(best_c, train_x, train_y)
    accuracy = float(model.score(scaler.transform(test_x), test_y))
    return {"accuracy": accuracy, "error": 1.0 - accuracy, "c": best_c, "validation_accuracy": best_validation}


# ---------------------------------------------------------------------------------------------- the features
def pixel_features(images) -> np.ndarray:
    """images [N, H, W, C] -> [N, H * W * C] float64 in [-1, 1]."""
    return as_float_images(images).reshape(len(images), -1).astype(np.float64)


def feature_extractors(config: Config, model, untrained, layers=None, autoencoder=None) -> dict:
    """{feature set name: images -> [N, D]} for the trained and untrained D, pixels, and the autoencoder's code."""
    found = {"trained D": DiscriminatorFeatures(model.discriminator, layers),
             "untrained D": DiscriminatorFeatures(untrained.discriminator, layers), "pixels": pixel_features}
    if autoencoder is not None:
        from dcgan_tf.preprocess.autoencoder import encode_and_reconstruct

        found["autoencoder"] = lambda images: encode_and_reconstruct(autoencoder, images)[0].astype(np.float64)
    return found


def run_probe(split: LabelledSplit, extractors: dict, seed: int = 0) -> list[dict]:
    """Each feature set's probe on one split: [{features, dim, accuracy, error, c, validation_accuracy, seconds}]."""
    results = []
    for name, extract in extractors.items():
        started = time.monotonic()
        train_x, test_x = extract(split.train_images), extract(split.test_images)
        found = fit_linear_probe(train_x, split.train_labels, test_x, split.test_labels, seed)
        results.append({"features": name, "dim": int(train_x.shape[1]), **found,
                        "seconds": round(time.monotonic() - started, 1)})
        log.info("probe %s: accuracy %.4f (%d features, C %g)", name, found["accuracy"], train_x.shape[1],
                 found["c"])
    return results


# ------------------------------------------------------------------------------------------------- the run
def probe_run(config: Config, options: ProbeOptions | None = None) -> dict:
    """--probe: the probe of the run `config` names at its --checkpoint, against its untrained D, pixels and (when
    it has one) its autoencoder; the record written to probe.json and metrics.jsonl, and returned."""
    options = options or ProbeOptions()
    saved = folders.open_saved_run(config)  # its settings: what cannot be probed fails before any work
    if saved.conditional:
        raise ConfigError("probe", f"run {saved.name!r} is conditional: its D reads the label with the image, so its "
                                   f"features would hand the classifier the answer; probe an unconditional run "
                                   f"(MNIST: --conditional=false)")
    count = saved.d_layers  # D's conv layers
    layers = options.layers
    if layers is not None and max(layers) >= count:
        raise ConfigError("probe_layers", f"this discriminator has {count} conv layers (0-{count - 1}); got "
                                          f"{','.join(map(str, layers))}")
    with run_lock.holding(saved.checkpoint_path):  # one writer: not while the run trains, nor two probes at once
        return _probe_run(config, options)


def _probe_run(config: Config, options: ProbeOptions) -> dict:
    from dcgan_tf.runs.trained import initial_model, load_trained

    saved, model, step = load_trained(config)
    untrained = initial_model(saved)  # the weights the run started from
    layers = options.layers
    split = labelled_split(saved, options, saved.seed)
    autoencoder = None
    if saved.uses_autoencoder:
        from dcgan_tf.preprocess.autoencoder import load_saved_autoencoder

        autoencoder = load_saved_autoencoder(saved, split.train_images.shape[1:])
    results = run_probe(split, feature_extractors(saved, model, untrained, layers, autoencoder), saved.seed)
    record = {"run": saved.name, "step": step, "checkpoint": saved.checkpoint, "data": split.source,
              "labels_per_class": options.labels_per_class, "classes": len(split.class_names),
              "class_names": split.class_names, "skipped_classes": split.skipped,
              "train_images": len(split.train_labels), "test_images": len(split.test_labels),
              "layers": list(layers) if layers is not None else "all", "max_test": options.max_test,
              "seed": saved.seed, "results": results}
    write_probe_record(saved.checkpoint_path, record)
    folders.append_metrics(saved.checkpoint_path, metrics_row(record))
    return record


def same_probe(a: dict, b: dict) -> bool:
    return all(a.get(key) == b.get(key) for key in ("step", "checkpoint", "data", "labels_per_class", "layers",
                                                    "max_test", "seed"))


def write_probe_record(checkpoint_path: str, record: dict) -> str:
    """probe.json: {"probes": [...]} with `record` replacing an earlier probe of the same step, data and labels."""
    path = os.path.join(checkpoint_path, PROBE_FILE)
    try:
        found = files.read_json_object(path) or {}
    except files.DamagedFileError as error:  # keep it to look at; the earlier probes are in metrics.jsonl too
        log.warning("%s; set aside as %s, and a new %s is begun", error, files.set_aside(path), PROBE_FILE)
        found = {}
    probes = [entry for entry in found.get("probes", []) if isinstance(entry, dict) and not same_probe(entry, record)]
    return files.write_json(path, {"probes": probes + [record]})


def metrics_row(record: dict) -> dict:
    """The probe as one metrics.jsonl line: each feature set's accuracy under probe_accuracy_<set>."""
    row = {"step": record["step"], "mode": "probe", "checkpoint": record["checkpoint"], "probe_data": record["data"],
           "probe_labels": record["labels_per_class"], "probe_classes": record["classes"]}
    for result in record["results"]:
        row[f"probe_accuracy_{result['features'].lower().replace(' ', '_')}"] = result["accuracy"]
    return row


def describe(record: dict) -> str:
    """The probe as a table: one line per feature set (accuracy, error, feature count, C)."""
    lines = [f"linear probe at step {record['step']}: {record['classes']} classes, {record['labels_per_class']} "
             f"labelled images per class ({record['train_images']} in all), tested on {record['test_images']} "
             f"images from {record['data']}",
             f"  {'features':<12} {'accuracy':>9} {'error':>8} {'dim':>7} {'C':>7}"]
    for result in record["results"]:
        lines.append(f"  {result['features']:<12} {result['accuracy']:>9.4f} {result['error']:>8.4f} "
                     f"{result['dim']:>7d} {result['c']:>7g}")
    for name, why in record["skipped_classes"].items():
        lines.append(f"  class {name!r} left out: {why}")
    return "\n".join(lines)
