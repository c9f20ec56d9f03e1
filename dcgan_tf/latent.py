"""The latent space: drawing z, the z of sample grids, and paths through z (lerp / slerp, sweeps, arithmetic).

Every draw is keyed by a seed (an int, or a stateless [2] key of (seed, counter)), so a run repeats and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import re

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf.config import ConfigError

INTERPOLATIONS = ("slerp", "linear")
# z draws for pictures use config.seed + this, apart from the training grids' fixed z (drawn with the seed itself);
# test mode's grid and visualize's grid share it, so both show the same samples.
FRESH_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class ZDistribution:
    """How z is drawn (U(low, high), or N(0, 1) when `normal`) and the range a sweep runs each dimension over:
    the support of a uniform distribution, +-2 sigma of the normal one."""

    low: float
    high: float
    normal: bool = False

    @property
    def centre(self) -> float:
        return (self.low + self.high) / 2.0


# The names are config.Z_DISTRIBUTIONS.
Z_DISTRIBUTIONS = {
    "uniform_signed": ZDistribution(-1.0, 1.0),
    "uniform_unsigned": ZDistribution(0.0, 1.0),
    "normal01": ZDistribution(-2.0, 2.0, normal=True),
}


def _distribution(z_dist: str) -> ZDistribution:
    if z_dist not in Z_DISTRIBUTIONS:
        raise ValueError(f"unknown z_dist {z_dist!r}")
    return Z_DISTRIBUTIONS[z_dist]


def sample_z(shape, z_dist: str, seed):
    """Draw latent vectors: uniform_signed U(-1, 1), uniform_unsigned U(0, 1) or normal01 N(0, 1).

    `seed` is an int, a keras.random.SeedGenerator (advanced on each call), or an int tensor [2] (a stateless key).
    """
    dist = _distribution(z_dist)
    if tf.is_tensor(seed):
        if dist.normal:
            return tf.random.stateless_normal(shape, seed)
        return tf.random.stateless_uniform(shape, seed, dist.low, dist.high)
    if dist.normal:
        return keras.random.normal(shape, seed=seed)
    return keras.random.uniform(shape, dist.low, dist.high, seed=seed)


def grid_inputs(config, seed: int, bank=None):
    """z [rows*cols, z_dim] from the training distribution of a (resolved) Config, and one-hot labels (one row per
    class) or None.

    With `bank` (a saved z [M, z_dim]), its first rows are used and any more are drawn with `seed`.
    """
    count = config.grid_rows * config.grid_cols
    if bank is None:
        z = sample_z((count, config.z_dim), config.z_dist, seed)
    else:
        z = tf.convert_to_tensor(bank)[:count]
        if count > z.shape[0]:
            z = tf.concat([z, sample_z((count - z.shape[0], config.z_dim), config.z_dist, seed + 1)], axis=0)
    labels = None
    if config.conditional:
        labels = tf.one_hot(np.arange(count) // config.grid_cols % config.y_dim, config.y_dim)
    return z, labels


def sweep_range(z_dist: str) -> tuple[float, float]:
    """(low, high) a sweep runs each dimension over (see ZDistribution)."""
    dist = _distribution(z_dist)
    return dist.low, dist.high


def range_centre(z_dist: str) -> float:
    return _distribution(z_dist).centre


def sweep_values(z_dist: str, steps: int) -> np.ndarray:
    """`steps` values evenly across the sweep range of z_dist, ends included: [steps] float32."""
    low, high = sweep_range(z_dist)
    return np.linspace(low, high, steps, dtype=np.float32)


def sweep_z(base_z, dim: int, values) -> np.ndarray:
    """base_z [D] -> [len(values), D]: copies of base_z whose dimension `dim` takes each value in turn."""
    base_z = np.asarray(base_z, np.float32)
    batch = np.tile(base_z, (len(values), 1))
    batch[:, dim] = values
    return batch


def lerp(z0, z1, t) -> np.ndarray:
    """Straight line: z0 [D], z1 [D], t scalar -> [D] or t [T] -> [T, D]."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    t = np.asarray(t, np.float64)[..., None]
    return (1.0 - t) * z0 + t * z1


def slerp(z0, z1, t) -> np.ndarray:
    """Spherical interpolation: z0 [D], z1 [D], t scalar -> [D] or t [T] -> [T, D]; t = 0 gives z0, 1 gives z1.

    The direction turns along the great circle and the norm goes linearly from |z0| to |z1|, so no point is
    shorter than both ends (a straight line through a high-dimensional distribution cuts through its
    improbable middle) or longer than both (plain slerp of unequal norms can overshoot). Equal norms: White's
    slerp exactly. Parallel, opposite or zero vectors: the straight line.
    """
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 == 0 or n1 == 0:
        return lerp(z0, z1, t)
    u0, u1 = z0 / n0, z1 / n1
    omega = np.arccos(np.clip(u0 @ u1, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return lerp(z0, z1, t)
    t = np.asarray(t, np.float64)[..., None]
    direction = (np.sin((1.0 - t) * omega) * u0 + np.sin(t * omega) * u1) / np.sin(omega)
    return ((1.0 - t) * n0 + t * n1) * direction


def interpolation_path(z0, z1, steps: int, method: str = "slerp") -> np.ndarray:
    """`steps` evenly spaced points from z0 to z1, both ends included: [steps, D] float32."""
    if method not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)} (got {method!r})")
    if steps < 2:
        raise ValueError(f"an interpolation path needs steps >= 2 (got {steps})")
    path = (slerp if method == "slerp" else lerp)(z0, z1, np.linspace(0.0, 1.0, steps))
    return path.astype(np.float32)


def combine_groups(z_bank, groups) -> np.ndarray:
    """z_bank [N, D], groups [(sign, [indices])] -> sum of sign * mean(z_bank[indices]) over groups: [D].

    ValueError naming the first index not in the bank.
    """
    z_bank = np.asarray(z_bank, np.float32)
    for _, indices in groups:
        for index in indices:
            if not 0 <= index < len(z_bank):
                raise ValueError(f"sample {index} is not on the numbered grid: it has {len(z_bank)} samples, "
                                 f"0-{len(z_bank) - 1}")
    return np.sum([sign * z_bank[indices].mean(axis=0) for sign, indices in groups], axis=0).astype(np.float32)


ARITHMETIC_VARIANTS = 8  # results with noise, beside the exact one (paper figure 7)
ARITHMETIC_NOISE = 0.25  # their uniform noise: +-0.25 on every z dimension


def arithmetic_z(z_bank, groups, seed: int) -> np.ndarray:
    """The z of the vector-arithmetic figure's generated cells, float32 [len(groups) + 1 + ARITHMETIC_VARIANTS, z_dim]:
    each group's mean z, the signed sum of the means (combine_groups: ValueError naming an index off the bank), then
    ARITHMETIC_VARIANTS copies of that sum plus U(+-ARITHMETIC_NOISE) noise drawn from `seed`."""
    result = combine_groups(z_bank, groups)
    noise = np.random.default_rng(seed).uniform(-ARITHMETIC_NOISE, ARITHMETIC_NOISE,
                                                (ARITHMETIC_VARIANTS, np.shape(z_bank)[1]))
    means = np.stack([z_bank[indices].mean(axis=0) for _, indices in groups])
    return np.concatenate([means, result[None], result + noise.astype(np.float32)])


def parse_arithmetic(text: str) -> list[tuple[int, list[int]]]:
    """"3,17,22 - 5,9,40 + 1,2,8" -> [(+1, [3, 17, 22]), (-1, [5, 9, 40]), (+1, [1, 2, 8])].

    Groups of sample indices (>= 0, comma-separated) joined by + and -; a leading sign is allowed.
    ValueError (a ConfigError naming --arith) saying what is wrong otherwise.
    """
    example = "e.g. '3,17,22 - 5,9,40 + 1,2,8'"
    parts = re.split(r"\s*([+-])\s*", str(text).strip())
    if parts == [""]:
        raise ConfigError("arith", f"empty; write groups of sample indices joined by + and -, {example}")
    if parts[0] == "" and len(parts) > 1:  # a leading sign: "", sign, group, sign, group, ...
        signs, groups_text = parts[1::2], parts[2::2]
    else:  # group, sign, group, ...
        signs, groups_text = ["+"] + parts[1::2], parts[0::2]
    groups = []
    for sign, group in zip(signs, groups_text):
        if not group:
            raise ConfigError("arith", f"an empty group in {text!r}: every + or - must be followed by indices, "
                                       f"{example}")
        items = [item.strip() for item in group.split(",")]
        if not all(item.isdecimal() for item in items):
            raise ConfigError("arith", f"{group!r} in {text!r} is not a group of sample indices (whole numbers "
                                       f">= 0 separated by commas), {example}")
        groups.append((1 if sign == "+" else -1, [int(item) for item in items]))
    return groups
