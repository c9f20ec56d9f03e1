"""Fréchet Inception Distance (Heusel et al. 2017): the Fréchet distance of Gaussians fitted to two feature sets."""

from __future__ import annotations

import numpy as np

from dcgan_tf.metrics.distances import as_features, same_dim


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], covariance [D, D]) of features [N, D] (N >= 2), in float64."""
    features = as_features(features)
    if len(features) < 2:
        raise ValueError("a covariance needs at least 2 feature vectors")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance (eigenvalues rounded below 0 count as 0)."""
    values, vectors = np.linalg.eigh(sigma)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1 S2)^1/2) for covariances S1, S2: the sum of the square roots of the eigenvalues of the symmetric
    S1^1/2 S2 S1^1/2, which S1 S2 shares. Two symmetric eigendecompositions: real, exact for singular covariances
    (fewer images than feature dimensions, as on small data sets), and several times faster than scipy's sqrtm."""
    root = _psd_sqrt(sigma1)
    values = np.linalg.eigvalsh(root @ sigma2 @ root)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), the formula of pytorch-fid and TTUR's reference code."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"statistics disagree: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))


def fid(features_a, features_b) -> float:
    """FID between two feature sets [N, D] and [M, D] (0 for identical sets; lower is closer)."""
    features_a, features_b = same_dim(features_a, features_b)
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))
