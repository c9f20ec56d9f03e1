"""The fixed images behind tests/data/fid_reference.npz (pure numpy: tests/make_fid_reference.py imports this in a
scratch environment with PyTorch, the tests import it with TensorFlow).

Two sets of uint8 images of two sizes, so the resize to 299 x 299 is part of what is compared: set A is 24 RGB images
32 x 32, set B 24 RGB images 48 x 48 plus 4 grey ones 40 x 40 (repeated to RGB, as pytorch-fid's loader does) -- smooth
coloured blobs over gradients, from a seeded generator.
"""

import numpy as np

SEED = 20151205
COUNT = 24
CHECKED = 4  # images of each set whose features are stored one by one (the rest only through the sets' FID)


def _images(rng, count: int, side: int, channels: int) -> np.ndarray:
    coarse = rng.uniform(0, 255, (count, 4, 4, channels))
    smooth = np.kron(coarse, np.ones((1, side // 4, side // 4, 1)))[:, :side, :side]
    ys, xs = np.mgrid[0:side, 0:side] / side
    gradient = (ys[None, :, :, None] * rng.uniform(-80, 80, (count, 1, 1, channels))
                + xs[None, :, :, None] * rng.uniform(-80, 80, (count, 1, 1, channels)))
    centre = rng.uniform(0.2, 0.8, (count, 2))
    blob = np.exp(-((ys[None] - centre[:, :1, None]) ** 2 + (xs[None] - centre[:, 1:, None]) ** 2) / 0.02)
    colour = rng.uniform(-120, 120, (count, 1, 1, channels))
    values = smooth + gradient + blob[..., None] * colour + rng.normal(0, 6, (count, side, side, channels))
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def reference_sets() -> tuple[np.ndarray, list[np.ndarray]]:
    """(set A uint8 [24, 32, 32, 3], set B as two arrays: uint8 [24, 48, 48, 3] and grey uint8 [4, 40, 40, 1])."""
    rng = np.random.default_rng(SEED)
    return _images(rng, COUNT, 32, 3), [_images(rng, COUNT, 48, 3), _images(rng, 4, 40, 1)]
