"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel, over subsets.

Unlike FID it has an unbiased estimator, so small sample sets compare fairly; as stylegan2-ada's
kernel_inception_distance and torch-fidelity compute it.
"""

from __future__ import annotations

import numpy as np

from dcgan_tf.metrics.distances import same_dim


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for rows x [N, D], y [M, D] -> [N, M]."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between equal-size sets x, y [m, D]: the kernel's within-set means without the diagonal,
    minus twice its cross mean."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


PRECOMPUTED_LIMIT = 4000  # up to this many vectors in all, the kernel matrix is computed once for every subset


def kid(features_a, features_b, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of unbiased MMD^2 over `subsets` random subsets of each set (drawn without replacement).

    The subsets hold min(subset_size, half the smaller set) vectors, so they differ from one another even on a
    small set and the std says how much the estimate moves with the images drawn (with subsets as large as the
    set, every subset would be the whole set, and the std 0). The same seed gives the same subsets.
    """
    features_a, features_b = same_dim(features_a, features_b)
    size = min(subset_size, min(len(features_a), len(features_b)) // 2)
    if size < 2:
        raise ValueError(f"KID needs at least 4 feature vectors in each set, got {len(features_a)} and "
                         f"{len(features_b)}")
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(len(features_a), size, replace=False), rng.choice(len(features_b), size, replace=False))
             for _ in range(subsets)]
    if len(features_a) + len(features_b) <= PRECOMPUTED_LIMIT:
        both = np.concatenate([features_a, features_b])
        kernel = polynomial_kernel(both, both)  # every pair once; each subset indexes into it
        offset = len(features_a)
        values = [_mmd2_from_kernel(kernel, a, b + offset) for a, b in draws]
    else:
        values = [mmd2_unbiased(features_a[a], features_b[b]) for a, b in draws]
    return float(np.mean(values)), float(np.std(values))


def _mmd2_from_kernel(kernel: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """mmd2_unbiased of the rows `a` and `b` of the set whose full kernel matrix is `kernel`."""
    m = len(a)
    k_xx, k_yy, k_xy = kernel[np.ix_(a, a)], kernel[np.ix_(b, b)], kernel[np.ix_(a, b)]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())
