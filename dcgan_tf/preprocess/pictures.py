"""Pictures of the autoencoder's work: originals over their reconstructions, and its code space in 2-D (PCA)."""

from __future__ import annotations

import numpy as np

from dcgan_tf.images import save_image, tile

RECONSTRUCTIONS_PNG = "autoencoder_reconstructions.png"
CODES_PNG = "autoencoder_codes_pca.png"
PAIRS_COLS = 8
PAIRS_ROWS = 4  # pairs of rows: originals, then their reconstructions
MAX_THUMBNAILS = 300
THUMBNAIL_PIXELS = 28  # each thumbnail's side on the scatter, at the figure's dpi


def pick(count: int, limit: int, seed: int) -> np.ndarray:
    """A seeded sample of at most `limit` indices in [0, count), sorted."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def reconstruction_pairs(originals: np.ndarray, reconstructions: np.ndarray, path: str, seed: int = 0,
                         rows: int = PAIRS_ROWS, cols: int = PAIRS_COLS) -> str:
    """uint8 [N, H, W, C] pairs -> one PNG: each row of originals above a row of their reconstructions."""
    chosen = pick(len(originals), rows * cols, seed)
    cells = []
    for start in range(0, len(chosen), cols):
        row = chosen[start:start + cols]
        blank = np.full((cols - len(row), *originals.shape[1:]), 255, np.uint8)
        cells += [originals[row], blank, reconstructions[row], blank]
    cells = np.concatenate(cells)
    return save_image(tile(cells, len(cells) // cols, cols, padding=2), path)


def pca_2d(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """codes [N, D] -> (positions [N, 2] on the first two principal components, their share of the variance [2])."""
    centred = codes.astype(np.float64) - codes.mean(0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    share = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    positions = centred @ components[:2].T
    if positions.shape[1] < 2:  # a single code dimension (or one image): put everything on a line
        positions = np.pad(positions, ((0, 0), (0, 2 - positions.shape[1])))
        share = np.pad(share, (0, 2 - len(share)))
    return positions, share


def code_scatter(codes: np.ndarray, images: np.ndarray, path: str, seed: int = 0, title: str = "") -> str:
    """Thumbnails of (a seeded sample of) the images, each placed at its code's 2-D PCA position."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    from dcgan_tf.analysis.plots import save_figure

    positions, share = pca_2d(codes)
    chosen = pick(len(codes), MAX_THUMBNAILS, seed)
    figure = Figure(figsize=(10, 10), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.scatter(positions[chosen, 0], positions[chosen, 1], s=2, color="lightgray")
    zoom = THUMBNAIL_PIXELS / max(images.shape[1:3])
    for index in chosen:
        image = images[index]
        thumbnail = OffsetImage(image.squeeze(-1) if image.shape[-1] == 1 else image, zoom=zoom,
                                cmap="gray" if image.shape[-1] == 1 else None)
        ax.add_artist(AnnotationBbox(thumbnail, positions[index], frameon=False, pad=0))
    ax.set_xlabel(f"principal component 1 ({share[0]:.0%} of the code variance)")
    ax.set_ylabel(f"principal component 2 ({share[1]:.0%})")
    ax.set_title(title or f"autoencoder codes of {len(chosen)} of {len(codes)} images, PCA")
    return save_figure(figure, path)
