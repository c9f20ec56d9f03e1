"""dcgan_tf.images: uint8 conversion, grids, numbered grids and GIF writing."""

import numpy as np
import pytest
from PIL import Image

from conftest import gif_info, png_size
from dcgan_tf import images

FPS = 10  # 100 ms a frame, a whole number of the GIF's hundredths


def test_save_gif_frames_durations_and_channels(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 12, 20, 3), dtype=np.uint8)
    path = images.save_gif(frames, str(tmp_path / "sub" / "a.gif"), fps=FPS)
    assert gif_info(path) == ((20, 12), 6, 600)
    with Image.open(path) as gif:  # the pixels survive (6 frames of 240 pixels fit a palette exactly)
        gif.seek(4)
        np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), frames[4])
    gray = images.save_gif(list(frames[..., :1]), str(tmp_path / "g.gif"), fps=20)
    assert gif_info(gray) == ((20, 12), 6, 300)
    # identical neighbours become one longer frame: the animation's length is kept
    repeated = images.save_gif(frames[[0, 0, 1, 2, 2, 2]], str(tmp_path / "r.gif"), fps=FPS)
    assert gif_info(repeated) == ((20, 12), 3, 600)
    with pytest.raises(ValueError, match="uint8"):
        images.save_gif(frames.astype(np.float32), str(tmp_path / "f.gif"))


def test_existing_grid_functions_unchanged(tmp_path):
    pictures = np.linspace(-1, 1, 5 * 4 * 4 * 3).reshape(5, 4, 4, 3)
    grid = images.sample_grid(pictures, 2, 3, padding=1)
    assert grid.shape == (9, 14, 3) and (grid[:, 4] == 255).all() and (grid[5:, 10:] == 255).all()
    np.testing.assert_array_equal(grid[:4, :4], images.to_uint8(pictures[0]))
    assert png_size(images.save_grid(pictures, 2, 3, str(tmp_path / "g.png"))) == (12, 8)


def test_numbered_grid_is_upscaled_and_labelled():
    pictures = np.zeros((5, 16, 16, 1), np.float32)
    picture = images.numbered_grid(pictures, 2, 3)
    assert picture.shape == (2 * 64 + 2, 3 * 64 + 4, 3)  # 16 px -> x4, 2 px padding
    cell = picture[:64, :64]
    assert (cell != 127).any()  # something is drawn on the grey cell
    assert (picture[66:, 132:] == 255).all()  # the empty sixth cell stays white
