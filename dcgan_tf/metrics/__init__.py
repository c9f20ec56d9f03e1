"""Image-quality metrics for GAN samples: FID, KID, precision/recall and memorisation from feature vectors
(numpy and scipy), label accuracy from a classifier. Feature extractors live in metrics.features (TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dcgan_tf.config import METRIC_NAMES
from dcgan_tf.metrics import fid, kid, memorisation, precision_recall


@dataclass(frozen=True)
class MetricInfo:
    """What a metric needs ("features": real and sample features; "classifier": a label classifier and labelled
    samples) and the flat keys it reports."""

    needs: str
    keys: tuple[str, ...]


METRICS = {
    "fid": MetricInfo("features", ("fid",)),
    "kid": MetricInfo("features", ("kid", "kid_std")),
    "precision_recall": MetricInfo("features", ("precision", "recall")),
    "memorisation": MetricInfo("features", ("copy_fraction", "median_real_nn", "median_fake_nn")),
    "label_accuracy": MetricInfo("classifier", ("label_accuracy",)),
}
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


def compute_feature_metrics(real_features, fake_features, names, seed: int = 0, kid_subsets: int = 100,
                            kid_subset_size: int = 1000, k: int = 3) -> dict[str, float]:
    """{key: value} of the named metrics that need only features (real [N, D], samples [M, D]); names needing
    more (label_accuracy) are left to the caller. KID's subsets follow the seed."""
    names = check_metric_names(names)
    real, fake = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    found = {}
    if "fid" in names:
        found["fid"] = fid.fid(real, fake)
    if "kid" in names:
        found["kid"], found["kid_std"] = kid.kid(real, fake, kid_subsets, kid_subset_size, seed)
    if "precision_recall" in names:  # on sets of one size, as Kynkaanniemi et al.: recall shrinks with fewer samples
        size = min(len(real), len(fake))
        rng = np.random.default_rng(seed)
        found["precision"], found["recall"] = precision_recall.precision_recall(
            real[np.sort(rng.permutation(len(real))[:size])], fake[np.sort(rng.permutation(len(fake))[:size])], k)
    if "memorisation" in names:
        found.update(memorisation.copy_fraction(fake, real))
    return found
