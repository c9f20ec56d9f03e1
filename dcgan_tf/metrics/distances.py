"""Feature arrays and the Euclidean distances between them, in row blocks so thousands x thousands fit in memory."""

from __future__ import annotations

import numpy as np

BLOCK_ELEMENTS = 1 << 23  # distances held at once: 8M float64 = 64 MB, whatever the set sizes


def as_features(features, name: str = "features") -> np.ndarray:
    """features [N, D] as float64; ValueError naming `name` for any other rank or an empty set."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or not len(features):
        raise ValueError(f"{name} must be a non-empty [N, D] array, got shape {features.shape}")
    return features


def same_dim(a, b, names: tuple[str, str] = ("features_a", "features_b")) -> tuple[np.ndarray, np.ndarray]:
    """Two feature sets [N, D], [M, D] as float64; ValueError when D differs."""
    a, b = as_features(a, names[0]), as_features(b, names[1])
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} has {a.shape[1]} dims and {names[1]} {b.shape[1]}: not the same extractor")
    return a, b


def distance_blocks(queries: np.ndarray, references: np.ndarray):
    """Yield (start, distances [rows, M]) from each query row block to every reference, by the BLAS identity
    |q - r|^2 = |q|^2 + |r|^2 - 2 q.r (clipped at 0 against rounding)."""
    ref_norms = np.einsum("ij,ij->i", references, references)
    rows = max(1, BLOCK_ELEMENTS // len(references))
    for start in range(0, len(queries), rows):
        block = queries[start:start + rows]
        squared = np.einsum("ij,ij->i", block, block)[:, None] + ref_norms[None, :] - 2.0 * block @ references.T
        yield start, np.sqrt(np.maximum(squared, 0.0))


def kth_nearest(queries: np.ndarray, references: np.ndarray, k: int = 1,
                same_set: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(indices [Q], distances [Q]) of each query's k-th nearest reference (k = 1: the nearest).

    same_set: queries are the references, and each point is not its own neighbour.
    """
    needed = k + (1 if same_set else 0)
    if k < 1 or len(references) < needed:
        raise ValueError(f"k = {k} needs at least {needed} points in the set, got {len(references)}")
    indices = np.empty(len(queries), np.int64)
    distances = np.empty(len(queries), np.float64)
    for start, block in distance_blocks(queries, references):
        if same_set:
            rows = np.arange(len(block))
            block[rows, start + rows] = np.inf
        found = np.argpartition(block, k - 1, axis=1)[:, k - 1]
        indices[start:start + len(block)] = found
        distances[start:start + len(block)] = np.take_along_axis(block, found[:, None], axis=1)[:, 0]
    return indices, distances


def within_any_radius(queries: np.ndarray, references: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """bool [Q]: whether each query lies within radii[j] of some reference j (a union of balls)."""
    inside = np.empty(len(queries), bool)
    for start, block in distance_blocks(queries, references):
        inside[start:start + len(block)] = (block <= radii[None, :]).any(axis=1)
    return inside
