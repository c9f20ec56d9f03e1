"""Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls reaching
each point's k-th nearest neighbour; precision = share of samples inside the real manifold (fidelity), recall =
share of real images inside the samples' manifold (coverage)."""

from __future__ import annotations

from dcgan_tf.metrics.distances import kth_nearest, same_dim, within_any_radius


def manifold_radii(features, k: int = 3):
    """[N]: each point's distance to its k-th nearest other point of the same set [N, D]."""
    return kth_nearest(features, features, k, same_set=True)[1]


def precision_recall(real_features, fake_features, k: int = 3) -> tuple[float, float]:
    """(precision, recall), each in [0, 1], for real [N, D] and sample [M, D] features (both sets need > k)."""
    real, fake = same_dim(real_features, fake_features, ("real_features", "fake_features"))
    precision = within_any_radius(fake, real, manifold_radii(real, k)).mean()
    recall = within_any_radius(real, fake, manifold_radii(fake, k)).mean()
    return float(precision), float(recall)
