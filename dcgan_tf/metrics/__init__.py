"""Image-quality metrics for GAN samples: FID, KID, precision/recall and memorisation from feature vectors
(numpy and scipy), label accuracy from a classifier. Feature extractors live in metrics.features (TensorFlow)."""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass

import numpy as np

from dcgan_tf.config import METRIC_NAMES
from dcgan_tf.metrics import fid, kid, memorisation, precision_recall


@dataclass(frozen=True)
class Metric:
    """A registered metric: what it needs ("features": real and sample features; "classifier": a label classifier
    and labelled samples), the flat keys it reports, and `compute(measurement) -> {key: value}`."""

    name: str
    needs: str
    keys: tuple[str, ...]
    compute: typing.Callable[["Measurement"], dict]


METRICS: dict[str, Metric] = {}  # the registry (stylegan2-ada's metric_main): --metrics' names are its keys


def register_metric(name: str, needs: str, keys: tuple[str, ...]):
    """A decorator: register `compute(measurement) -> dict` as the metric `name`."""
    def register(compute):
        METRICS[name] = Metric(name, needs, keys, compute)
        return compute
    return register


@dataclass
class Measurement:
    """What an evaluation's metrics are computed from: real features [N, D] and sample features [M, D] (float64),
    KID's and precision/recall's settings, and for label_accuracy `read_labels()`, the caller's classifier run on its
    labelled samples ({"label_accuracy", ...}: TensorFlow stays out of this package's import)."""

    real: np.ndarray | None = None
    fake: np.ndarray | None = None
    seed: int = 0
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    k: int = 3
    read_labels: typing.Callable[[], dict] | None = None

    def __post_init__(self):
        for name in ("real", "fake"):  # the statistics in float64, whatever the features' dtype
            if getattr(self, name) is not None:
                setattr(self, name, np.asarray(getattr(self, name), np.float64))

    @functools.cached_property
    def nearest(self) -> tuple[np.ndarray, np.ndarray]:
        """Each sample's nearest real image (indices, distances): computed once, for memorisation and its picture."""
        return memorisation.nearest_training(self.fake, self.real)


@register_metric("fid", "features", ("fid",))
def _fid(m: Measurement) -> dict:
    return {"fid": fid.fid(m.real, m.fake)}


@register_metric("kid", "features", ("kid", "kid_std"))
def _kid(m: Measurement) -> dict:
    value, std = kid.kid(m.real, m.fake, m.kid_subsets, m.kid_subset_size, m.seed)
    return {"kid": value, "kid_std": std}


@register_metric("precision_recall", "features", ("precision", "recall"))
def _precision_recall(m: Measurement) -> dict:
    # on sets of one size, as Kynkaanniemi et al.: recall shrinks with fewer samples
    size = min(len(m.real), len(m.fake))
    rng = np.random.default_rng(m.seed)
    precision, recall = precision_recall.precision_recall(m.real[np.sort(rng.permutation(len(m.real))[:size])],
                                                          m.fake[np.sort(rng.permutation(len(m.fake))[:size])], m.k)
    return {"precision": precision, "recall": recall}


@register_metric("memorisation", "features", ("copy_fraction", "median_real_nn", "median_fake_nn"))
def _memorisation(m: Measurement) -> dict:
    return memorisation.copy_fraction(m.fake, m.real, m.nearest)


@register_metric("label_accuracy", "classifier", ("label_accuracy",))
def _label_accuracy(m: Measurement) -> dict:
    if m.read_labels is None:
        raise ValueError("label_accuracy needs a classifier and labelled samples (Measurement.read_labels)")
    return m.read_labels()


assert tuple(METRICS) == METRIC_NAMES, "config.METRIC_NAMES (what --metrics accepts) and METRICS must agree"


# What measured a metrics.jsonl row, by the start of its "features" key: shown beside every value printed, plotted
# or reported, so that a stand-in's numbers are never read as a quality measure
FEATURE_CAPTIONS = (
    ("fid_inception_bf16", "FID Inception in bfloat16 (compares only with itself)"),
    ("fid_inception", "FID Inception"),
    ("inception_v3", "Keras' ImageNet InceptionV3 (not the FID Inception: compares only with itself)"),
    ("smoke", "smoke features: NOT a quality measure"),
    ("tiny_conv", "smoke features: NOT a quality measure"),  # the name before 2026-12
)


def feature_caption(key) -> str:
    """A few words naming the feature network of a metrics row's "features" key (see FEATURE_CAPTIONS)."""
    for prefix, caption in FEATURE_CAPTIONS:
        if str(key or "").startswith(prefix):
            return caption
    return f"features {key}" if key else "no features"


def check_metric_names(names) -> tuple[str, ...]:
    """names (a sequence, or one comma-separated string as on the command line) as a tuple; ValueError naming any
    unknown one and the known ones."""
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}: choose from {', '.join(METRIC_NAMES)}")
    return tuple(names)


def compute_metrics(measurement: Measurement, names) -> dict:
    """{key: value} of the named metrics, each computed by its registered function, in the order named."""
    found = {}
    for name in dict.fromkeys(check_metric_names(names)):  # each once, however often named
        found.update(METRICS[name].compute(measurement))
    return found


def compute_feature_metrics(real_features, fake_features, names, seed: int = 0, kid_subsets: int = 100,
                            kid_subset_size: int = 1000, k: int = 3) -> dict[str, float]:
    """{key: value} of the named metrics that need only features (real [N, D], samples [M, D]); names needing
    more (label_accuracy) are left to the caller. KID's subsets follow the seed."""
    names = check_metric_names(names)
    measurement = Measurement(np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64), seed,
                              kid_subsets, kid_subset_size, k)
    return compute_metrics(measurement, [name for name in names if METRICS[name].needs == "features"])
