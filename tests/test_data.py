"""dcgan_tf.data.loading: finding files, decoding (channels, transparency, 16-bit, EXIF, formats), crop/resize, bad
files, subsets, the seeded index stream and the tf.data pipeline; plus datasets.load_training_data for image folders.

Every input file is written here, into tmp_path, with Pillow and numpy.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import pytest
from PIL import Image

from dcgan_tf.config import Config, ConfigError
from dcgan_tf.data import loading
from dcgan_tf.data.datasets import load_training_data
from dcgan_tf.data.loading import DataError, ImageSpec, LoadedImages

SPEC16 = ImageSpec(16, 16)


# ---------------------------------------------------------------------------------------------- helpers
def save(path, image: Image.Image, **kwargs) -> str:
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, **kwargs)
    return path


def gray(value: int, size=(16, 16)) -> Image.Image:
    """An 'L' image of one value; size is (width, height) as Pillow takes it."""
    return Image.new("L", size, value)


def rgb(colour, size=(16, 16)) -> Image.Image:
    return Image.new("RGB", size, colour)


def halves(size, bright_side: str, mode="L") -> Image.Image:
    """An image (width, height) = size, 255 on one half ('left', 'right', 'top', 'bottom') and 0 on the other."""
    width, height = size
    array = np.zeros((height, width), np.uint8)
    if bright_side == "left":
        array[:, : width // 2] = 255
    elif bright_side == "right":
        array[:, width // 2:] = 255
    elif bright_side == "top":
        array[: height // 2] = 255
    else:
        array[height // 2:] = 255
    image = Image.fromarray(array, "L")
    return image if mode == "L" else image.convert(mode)


def palette_image(colours, indices: np.ndarray) -> Image.Image:
    """A 'P' image whose palette is `colours` (list of RGB tuples) and whose pixels are `indices` [H, W]."""
    image = Image.fromarray(indices.astype(np.uint8), "P")
    flat = [channel for colour in colours for channel in colour]
    image.putpalette(flat + [0] * (768 - len(flat)))
    return image


def load_one(path, spec=SPEC16, c_dim=None) -> np.ndarray:
    loaded = loading.load_images([str(path)], spec, c_dim=c_dim)
    assert loaded.skipped == []
    return loaded.images[0]


def take(dataset, count: int) -> list[int]:
    return [int(x) for x in dataset.take(count).as_numpy_iterator()]


# ---------------------------------------------------------------------------------------------- find_image_files
def test_find_image_files_returns_sorted_absolute_matches(tmp_path):
    folder = tmp_path / "imgs"
    for name in ("c.png", "a.png", "b.png", "z.jpg", "sub/d.png"):
        save(folder / name, gray(0))
    os.makedirs(folder / "dir.png")  # a folder whose name matches is not a file

    assert loading.find_image_files(str(folder), "*.png") == [str(folder / n) for n in ("a.png", "b.png", "c.png")]
    assert loading.find_image_files(str(folder), "**/*.png") == [
        str(folder / n) for n in ("a.png", "b.png", "c.png", "sub/d.png")]
    assert loading.find_image_files(str(folder), "*.jpg") == [str(folder / "z.jpg")]


def test_find_image_files_no_match_names_the_absolute_pattern(tmp_path, monkeypatch):
    save(tmp_path / "imgs" / "a.png", gray(0))
    monkeypatch.chdir(tmp_path)
    expected = os.path.join(os.getcwd(), "imgs", "*.jpg")
    with pytest.raises(DataError) as info:
        loading.find_image_files("imgs", "*.jpg")  # relative folder: the message gives the absolute pattern
    assert expected in str(info.value)


def test_find_image_files_missing_folder_names_the_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="does not exist") as info:
        loading.find_image_files("no_such_folder", "*.png")
    assert os.path.join(os.getcwd(), "no_such_folder") in str(info.value)


# ---------------------------------------------------------------------------------------------- channels
def _grey_palette_png(path, value=128):
    return save(path, palette_image([(0, 0, 0), (value, value, value)], np.ones((16, 16))))


def _i16_png(path, value=32768):
    return save(path, Image.fromarray(np.full((16, 16), value, np.uint16)))


GRAYSCALE_WRITERS = {
    "L": lambda path: save(path, gray(77)),
    "I;16": _i16_png,
    "grey palette": _grey_palette_png,
    "LA": lambda path: save(path, Image.new("LA", (16, 16), (90, 255))),
}

COLOUR_WRITERS = {
    "RGB": lambda path: save(path, rgb((200, 10, 30))),
    "RGBA": lambda path: save(path, Image.new("RGBA", (16, 16), (200, 10, 30, 255))),
    "colour palette": lambda path: save(path, palette_image([(0, 0, 0), (200, 10, 30)], np.ones((16, 16)))),
    "CMYK JPEG": lambda path: save(path, Image.new("CMYK", (16, 16), (0, 200, 180, 40)), quality=95),
}


def test_all_grayscale_set_gives_one_channel(tmp_path):
    paths = [writer(tmp_path / f"{i}.png") for i, writer in enumerate(GRAYSCALE_WRITERS.values())]
    assert Image.open(paths[1]).mode == "I;16"  # the 16-bit file really is 16-bit
    loaded = loading.load_images(paths, ImageSpec(12, 10))
    assert loaded.c_dim == 1
    assert loaded.images.shape == (4, 12, 10, 1)
    assert loaded.images.dtype == np.uint8
    assert loaded.paths == paths
    # the value each one was written with (16-bit 32768 scaled to about 128)
    assert loaded.images[0].min() == loaded.images[0].max() == 77
    assert abs(int(loaded.images[1].mean()) - 128) <= 1
    assert loaded.images[2].min() == loaded.images[2].max() == 128
    assert loaded.images[3].min() == loaded.images[3].max() == 90


@pytest.mark.parametrize("kind", list(GRAYSCALE_WRITERS))
def test_each_grayscale_kind_alone_gives_one_channel(tmp_path, kind):
    path = GRAYSCALE_WRITERS[kind](tmp_path / "x.png")
    assert load_one(path).shape == (16, 16, 1)


@pytest.mark.parametrize("kind", list(COLOUR_WRITERS))
def test_one_colour_image_makes_every_image_three_channels(tmp_path, kind):
    suffix = ".jpg" if "JPEG" in kind else ".png"
    grays = [save(tmp_path / "g0.png", gray(40)), _i16_png(tmp_path / "g1.png", 257 * 100)]
    colour = COLOUR_WRITERS[kind](tmp_path / f"c{suffix}")
    if "JPEG" in kind:
        assert Image.open(colour).mode == "CMYK"
    loaded = loading.load_images(grays + [colour], ImageSpec(8, 8))
    assert loaded.c_dim == 3
    assert loaded.images.shape == (3, 8, 8, 3)
    assert loaded.images.dtype == np.uint8
    # grayscale images become grey RGB (equal channels, same value), the colour image keeps its colour
    assert (loaded.images[0] == 40).all()
    assert (loaded.images[1] == 100).all()
    red, green, blue = (int(v) for v in loaded.images[2].reshape(-1, 3).mean(axis=0))
    assert red > 150 and green < 60 and blue < 80


def test_c_dim_given_overrides_detection(tmp_path):
    colour = save(tmp_path / "c.png", rgb((255, 0, 0)))
    grey = save(tmp_path / "g.png", gray(60))
    as_gray = loading.load_images([colour, grey], SPEC16, c_dim=1)
    assert as_gray.images.shape == (2, 16, 16, 1)
    assert abs(int(as_gray.images[0].mean()) - 76) <= 1  # ITU-R 601 luma of pure red: 0.299 * 255
    as_rgb = loading.load_images([grey], SPEC16, c_dim=3)
    assert as_rgb.images.shape == (1, 16, 16, 3) and (as_rgb.images == 60).all()


@pytest.mark.parametrize("size", [(13, 7), (40, 9), (7, 31), (16, 12)])
def test_odd_sizes_are_resized_to_the_output_size(tmp_path, size):
    # top half bright, bottom half dark: after resizing to 12 high x 16 wide the top stays bright (no H/W mix-up)
    paths = [save(tmp_path / "a.png", halves(size, "top")), save(tmp_path / "b.png", halves((20, 20), "top", "RGB"))]
    loaded = loading.load_images(paths, ImageSpec(12, 16))
    assert loaded.images.shape == (2, 12, 16, 3)
    first = loaded.images[0].astype(float)
    assert first[:3].mean() > 200 and first[-3:].mean() < 55


# ---------------------------------------------------------------------------------------------- transparency, 16-bit
def test_rgba_transparent_pixels_become_white(tmp_path):
    array = np.zeros((8, 8, 4), np.uint8)
    array[:, :4] = (255, 0, 0, 0)  # invisible red: must not show as red
    array[:, 4:] = (0, 0, 255, 255)  # opaque blue
    array[0, 0] = (0, 0, 0, 0)  # invisible black
    image = load_one(save(tmp_path / "a.png", Image.fromarray(array, "RGBA")), ImageSpec(8, 8))
    assert image.shape == (8, 8, 3)
    assert (image[:, :4] == 255).all()
    assert (image[:, 4:] == (0, 0, 255)).all()


def test_rgba_half_transparent_is_blended_with_white(tmp_path):
    array = np.zeros((8, 8, 4), np.uint8)
    array[...] = (0, 0, 0, 128)
    image = load_one(save(tmp_path / "a.png", Image.fromarray(array, "RGBA")), ImageSpec(8, 8))
    assert abs(int(image.mean()) - 127) <= 1


def test_palette_transparent_index_becomes_white(tmp_path):
    indices = np.zeros((8, 8))
    indices[:, 4:] = 1
    image = palette_image([(0, 0, 0), (255, 0, 0)], indices)  # index 0 (black) is the transparent one
    path = save(tmp_path / "p.png", image, transparency=0)
    assert "transparency" in Image.open(path).info
    out = load_one(path, ImageSpec(8, 8))
    assert out.shape == (8, 8, 3)
    assert (out[:, :4] == 255).all()
    assert (out[:, 4:] == (255, 0, 0)).all()


def test_grey_palette_with_transparent_index_stays_one_channel_and_white(tmp_path):
    indices = np.zeros((8, 8))
    indices[:, 4:] = 1
    path = save(tmp_path / "p.png", palette_image([(0, 0, 0), (100, 100, 100)], indices), transparency=0)
    out = load_one(path, ImageSpec(8, 8))
    assert out.shape == (8, 8, 1)
    assert (out[:, :4] == 255).all() and (out[:, 4:] == 100).all()


def test_la_transparent_pixels_become_white(tmp_path):
    array = np.zeros((8, 8, 2), np.uint8)
    array[:, 4:] = (30, 255)
    out = load_one(save(tmp_path / "a.png", Image.fromarray(array, "LA")), ImageSpec(8, 8))
    assert out.shape == (8, 8, 1)
    assert (out[:, :4] == 255).all() and (out[:, 4:] == 30).all()


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    array = np.zeros((8, 8), np.uint16)
    array[0:2] = 65535
    array[2:4] = 32768
    array[4:6] = 257 * 100  # exactly 100 in 8 bits
    array[6:8] = 0
    path = save(tmp_path / "deep.png", Image.fromarray(array))
    assert Image.open(path).mode == "I;16"
    out = load_one(path, ImageSpec(8, 8))[..., 0]
    assert (out[0:2] == 255).all()
    assert (np.abs(out[2:4].astype(int) - 128) <= 1).all()
    assert (out[4:6] == 100).all()
    assert (out[6:8] == 0).all()


# ---------------------------------------------------------------------------------------------- EXIF, formats
@pytest.mark.parametrize("orientation, bright", [(1, None), (6, "top"), (8, "bottom")])
def test_exif_orientation_is_applied(tmp_path, orientation, bright):
    raw = halves((16, 8), "left", "RGB")  # stored wide (16 x 8), left half bright
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save(tmp_path / "photo.jpg", raw, exif=exif, quality=95)
    assert Image.open(path).getexif().get(0x0112) == orientation
    if bright is None:  # no rotation: still wide, left half bright
        out = load_one(path, ImageSpec(8, 16)).astype(float)
        assert out[:, :6].mean() > 200 and out[:, -6:].mean() < 55
        return
    out = load_one(path, ImageSpec(16, 8)).astype(float)  # shown tall: 16 high, 8 wide
    top, bottom = out[:6].mean(), out[-6:].mean()
    if bright == "top":
        assert top > 200 and bottom < 55
    else:
        assert bottom > 200 and top < 55


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [rgb((255, 0, 0), (8, 8)), rgb((0, 255, 0), (8, 8)), rgb((0, 0, 255), (8, 8))]
    path = save(tmp_path / "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 3
    out = load_one(path, ImageSpec(8, 8))
    assert out.shape == (8, 8, 3)
    assert (out == (255, 0, 0)).all()


def test_grey_animated_gif_is_one_channel_first_frame(tmp_path):
    frames = [gray(200, (8, 8)), gray(10, (8, 8))]
    path = save(tmp_path / "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=100)
    with Image.open(path) as check:
        assert check.n_frames == 2
    out = load_one(path, ImageSpec(8, 8))
    assert out.shape == (8, 8, 1) and (out == 200).all()


@pytest.mark.parametrize("suffix, options", [(".bmp", {}), (".webp", {"lossless": True})])
def test_bmp_and_webp_decode(tmp_path, suffix, options):
    array = np.zeros((8, 8, 3), np.uint8)
    array[:4] = (10, 200, 30)
    array[4:] = (250, 250, 250)
    path = save(tmp_path / f"img{suffix}", Image.fromarray(array), **options)
    out = load_one(path, ImageSpec(8, 8))
    np.testing.assert_array_equal(out, array)


# ---------------------------------------------------------------------------------------------- crop
def test_crop_takes_the_centre(tmp_path):
    # 30 wide x 20 high; the centre 10 wide x 6 high is white, the rest black
    array = np.zeros((20, 30), np.uint8)
    array[7:13, 10:20] = 255
    path = save(tmp_path / "c.png", Image.fromarray(array))
    exact = load_one(path, ImageSpec(6, 10, crop=True, input_height=6, input_width=10))
    assert exact.shape == (6, 10, 1) and (exact == 255).all()
    resized = load_one(path, ImageSpec(12, 12, crop=True, input_height=6, input_width=10))
    assert resized.shape == (12, 12, 1) and (resized == 255).all()
    uncropped = load_one(path, ImageSpec(6, 10))
    assert uncropped.min() == 0  # without --crop the black border is still there


def test_crop_of_odd_margin_matches_centre_crop(tmp_path):
    array = np.arange(9 * 9, dtype=np.uint8).reshape(9, 9)
    path = save(tmp_path / "c.png", Image.fromarray(array))
    out = load_one(path, ImageSpec(4, 4, crop=True, input_height=4, input_width=4))[..., 0]
    top = left = int(round((9 - 4) / 2.0))
    np.testing.assert_array_equal(out, array[top:top + 4, left:left + 4])


# ---------------------------------------------------------------------------------------------- bad files
def test_bad_files_are_skipped_and_logged(tmp_path, caplog):
    good = [save(tmp_path / "a.png", gray(10)), save(tmp_path / "c.png", gray(30))]
    text = tmp_path / "b.png"
    text.write_text("this is not an image\n")
    empty = tmp_path / "d.png"
    empty.write_bytes(b"")
    full = tmp_path / "e.png"
    save(full, gray(50, (32, 32)))
    truncated = tmp_path / "f.png"
    truncated.write_bytes(full.read_bytes()[:60])
    bad = [str(text), str(empty), str(truncated)]
    paths = sorted(good + bad)

    with caplog.at_level(logging.WARNING, logger="dcgan_tf.data.loading"):
        loaded = loading.load_images(paths, ImageSpec(8, 8))

    assert loaded.paths == good
    assert loaded.images.shape == (2, 8, 8, 1)
    assert (loaded.images[0] == 10).all() and (loaded.images[1] == 30).all()
    assert sorted(path for path, _ in loaded.skipped) == bad
    assert all(reason for _, reason in loaded.skipped)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "dcgan_tf.data.loading"
                       and r.levelno == logging.WARNING)
    for path in bad:
        assert path in logged
    for path in good:
        assert path not in logged


def test_all_files_bad_raises(tmp_path):
    text = tmp_path / "a.png"
    text.write_text("nope")
    empty = tmp_path / "b.png"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="none of the 2 files could be read") as info:
        loading.load_images([str(text), str(empty)], SPEC16)
    assert str(text) in str(info.value)


def test_no_files_raises():
    with pytest.raises(DataError, match="no images"):
        loading.load_images([], SPEC16)


# ---------------------------------------------------------------------------------------------- subset
def _numbered(count: int) -> LoadedImages:
    """Image k is filled with value 10 + k, has label k and path 'k.png'."""
    images = (10 + np.arange(count, dtype=np.uint8))[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    return LoadedImages(images, [f"{k}.png" for k in range(count)], [("bad.png", "why")], np.arange(count))


def test_subset_is_seeded_sized_and_aligned():
    full = _numbered(20)
    part = loading.subset(full, 6, seed=3)
    assert len(part) == 6 and part.images.shape == (6, 4, 4, 1)
    assert len(set(part.labels.tolist())) == 6  # no repeats
    for image, label, path in zip(part.images, part.labels, part.paths):
        assert image[0, 0, 0] == 10 + label
        assert path == f"{label}.png"
    assert part.skipped == full.skipped
    again = loading.subset(full, 6, seed=3)
    np.testing.assert_array_equal(again.images, part.images)
    assert again.paths == part.paths
    picks = {tuple(loading.subset(full, 6, seed=s).labels.tolist()) for s in range(5)}
    assert len(picks) > 1  # the seed matters


def test_subset_without_paths_or_labels():
    full = LoadedImages(np.arange(10, dtype=np.uint8)[:, None, None, None], [])
    part = loading.subset(full, 3, seed=0)
    assert part.paths == [] and part.labels is None and len(part) == 3


@pytest.mark.parametrize("size", [None, 20, 25])
def test_subset_of_everything_is_everything(size):
    full = _numbered(20)
    assert loading.subset(full, size, seed=1) is full


# ---------------------------------------------------------------------------------------------- steps, index stream
@pytest.mark.parametrize("num_images, batch_size, steps", [
    (3, 8, 1), (1, 64, 1), (64, 64, 1), (65, 64, 2), (128, 64, 2), (169, 64, 3), (10, 3, 4)])
def test_steps_per_epoch(num_images, batch_size, steps):
    assert loading.steps_per_epoch(num_images, batch_size) == steps


@pytest.mark.parametrize("n, batch", [(7, 7), (7, 3), (169, 64), (3, 8)])
def test_every_epoch_shows_every_image_and_fills_whole_batches(n, batch):
    per_epoch = loading.steps_per_epoch(n, batch) * batch
    stream = take(loading.index_stream(n, batch, seed=5), 5 * per_epoch)
    epochs = [stream[e * per_epoch:(e + 1) * per_epoch] for e in range(5)]
    for epoch in epochs:
        assert sorted(epoch[:n]) == list(range(n))  # each image once
        assert all(0 <= i < n for i in epoch[n:])  # the top-up of the last batch
    assert len({tuple(e) for e in epochs}) == 5  # reshuffled every epoch


def test_index_stream_is_deterministic_per_seed():
    n = 9
    first = take(loading.index_stream(n, 4, seed=11), 3 * 12)
    assert take(loading.index_stream(n, 4, seed=11), 3 * 12) == first
    assert take(loading.index_stream(n, 4, seed=12), 3 * 12) != first


@pytest.mark.parametrize("epoch, step", [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (3, 1)])
def test_index_stream_resumes_at_any_epoch_and_step(epoch, step):
    n, batch = 7, 3  # 3 steps (9 indices) per epoch
    full = take(loading.index_stream(n, batch, seed=2), 6 * 9)
    resumed = take(loading.index_stream(n, batch, seed=2, start_epoch=epoch, start_step=step), 9)
    start = epoch * 9 + step * batch
    assert resumed == full[start:start + 9]


def test_index_stream_of_one_image():
    assert take(loading.index_stream(1, 1, seed=0), 5) == [0] * 5
    assert take(loading.index_stream(1, 4, seed=0, start_epoch=2), 6) == [0] * 6


# ---------------------------------------------------------------------------------------------- make_dataset
def test_make_dataset_fixed_batches_from_a_set_smaller_than_a_batch():
    values = np.array([0, 255, 51], np.uint8)
    images = values[:, None, None, None] * np.ones((1, 8, 8, 1), np.uint8)
    dataset = loading.make_dataset(LoadedImages(images, ["a", "b", "c"]), batch_size=8, seed=4)
    assert tuple(dataset.element_spec.shape) == (8, 8, 8, 1)  # static: the train step traces once
    batches = list(dataset.take(3).as_numpy_iterator())
    expected = {0: -1.0, 255: 1.0, 51: 51 / 127.5 - 1.0}
    for batch in batches:
        assert batch.shape == (8, 8, 8, 1) and batch.dtype == np.float32
        assert batch.min() >= -1.0 and batch.max() <= 1.0
        per_image = batch.reshape(8, -1)
        assert (per_image.min(axis=1) == per_image.max(axis=1)).all()  # each is one whole image
        for value in per_image[:, 0]:
            assert any(abs(value - e) < 1e-6 for e in expected.values())
    # exact ends of the mapping, and the order is the index stream's
    stream = take(loading.index_stream(3, 8, seed=4), 24)
    got = np.concatenate([b.reshape(8, -1)[:, 0] for b in batches])
    want = np.array([expected[int(values[i])] for i in stream], np.float32)
    np.testing.assert_array_equal(got, want)
    assert -1.0 in got and 1.0 in got
    # 8 draws from 3 images: the first batch (one epoch) holds every image, topped up with random ones
    assert set(stream[:3]) == {0, 1, 2}


def test_to_float_exact_mapping():
    out = loading.to_float(np.array([0, 255, 127, 128], np.uint8)).numpy()
    assert out.dtype == np.float32
    assert out[0] == -1.0 and out[1] == 1.0
    np.testing.assert_allclose(out[2:], [127 / 127.5 - 1, 128 / 127.5 - 1], rtol=0, atol=1e-6)


def test_make_dataset_resumes_at_a_later_step():
    images = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8) * 50
    loaded = LoadedImages(images, [])  # 2 steps per epoch
    from_start = list(loading.make_dataset(loaded, 4, seed=9).take(3).as_numpy_iterator())
    resumed = list(loading.make_dataset(loaded, 4, seed=9, start_epoch=0, start_step=1).take(2).as_numpy_iterator())
    np.testing.assert_array_equal(resumed[0], from_start[1])
    np.testing.assert_array_equal(resumed[1], from_start[2])


def test_make_dataset_labels_are_one_hot_and_aligned():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=13)
    images = (labels * 20).astype(np.uint8)[:, None, None, None] * np.ones((1, 6, 6, 1), np.uint8)
    dataset = loading.make_dataset(LoadedImages(images, [], labels=labels), batch_size=5, seed=1, y_dim=10)
    image_spec, label_spec = dataset.element_spec
    assert tuple(image_spec.shape) == (5, 6, 6, 1) and tuple(label_spec.shape) == (5, 10)
    seen = set()
    for batch_images, batch_labels in dataset.take(6).as_numpy_iterator():
        assert batch_labels.dtype == np.float32
        assert set(np.unique(batch_labels).tolist()) <= {0.0, 1.0}
        np.testing.assert_array_equal(batch_labels.sum(axis=1), np.ones(5))
        pixel = np.rint((batch_images[:, 0, 0, 0] + 1.0) * 127.5).astype(int)
        np.testing.assert_array_equal(pixel, batch_labels.argmax(axis=1) * 20)
        seen.update(batch_labels.argmax(axis=1).tolist())
    assert len(seen) > 3


def test_make_dataset_with_y_dim_needs_labels():
    with pytest.raises(DataError, match="labels"):
        loading.make_dataset(LoadedImages(np.zeros((3, 4, 4, 1), np.uint8), []), 2, seed=0, y_dim=10)


# ---------------------------------------------------------------------------------------------- load_training_data
def _folder(path, count, value=0, suffix=".jpg"):
    for k in range(count):
        save(path / f"{k}{suffix}", gray(value + k, (20, 14)))
    return path


def test_load_training_data_from_a_folder_path(tmp_path):
    folder = _folder(tmp_path / "faces", 3)
    save(folder / "ignored.png", gray(0))  # not *.jpg
    config = Config(dataset=str(folder), data_dir=str(tmp_path / "elsewhere"), output_height=16).resolved()
    loaded = load_training_data(config)
    assert loaded.images.shape == (3, 16, 16, 1)
    assert loaded.paths == [str(folder / f"{k}.jpg") for k in range(3)]


def test_load_training_data_name_under_data_dir_wins_over_cwd(tmp_path, monkeypatch):
    _folder(tmp_path / "data" / "faces", 2, suffix=".png")
    _folder(tmp_path / "faces", 4, suffix=".png")  # ./faces, relative to the working folder
    monkeypatch.chdir(tmp_path)
    config = Config(dataset="faces", data_dir=str(tmp_path / "data"), input_fname_pattern="*.png",
                    output_height=8).resolved()
    loaded = load_training_data(config)
    assert len(loaded) == 2
    assert all(p.startswith(str(tmp_path / "data" / "faces")) for p in loaded.paths)
    # a bare name that is not under data_dir but is a folder here is used as a path
    config = Config(dataset="faces", data_dir=str(tmp_path / "nothing"), input_fname_pattern="*.png",
                    output_height=8).resolved()
    assert len(load_training_data(config)) == 4


def test_load_training_data_missing_dataset_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = Config(dataset="ghosts", data_dir=str(tmp_path / "data"), output_height=8).resolved()
    with pytest.raises(DataError) as info:
        load_training_data(config)
    assert str(tmp_path / "data" / "ghosts") in str(info.value)


def test_load_training_data_applies_crop_size_c_dim_and_train_size(tmp_path):
    folder = tmp_path / "set"
    array = np.zeros((30, 30), np.uint8)
    array[10:20, 10:20] = 255
    for k in range(5):
        save(folder / f"{k}.png", Image.fromarray(array))
    config = Config(dataset=str(folder), input_fname_pattern="*.png", crop=True, input_height=10, output_height=8,
                    output_width=12, c_dim=3, train_size=3, seed=7).resolved()
    loaded = load_training_data(config)
    assert loaded.images.shape == (3, 8, 12, 3)
    assert (loaded.images == 255).all()
    expected = loading.subset(LoadedImages(np.zeros((5, 1, 1, 1)), [str(folder / f"{k}.png") for k in range(5)]),
                              3, seed=7).paths
    assert loaded.paths == expected


@pytest.mark.parametrize("size", [64, 32])
def test_load_training_data_builtin_set(size):
    loaded = load_training_data(Config(dataset=None, output_height=size).resolved())
    assert loaded.images.shape == (169, size, size, 3)
    assert loaded.images.dtype == np.uint8
    assert loaded.skipped == []
    assert all(p.endswith(".png") for p in loaded.paths)
    assert loaded.images.min() < 50 and loaded.images.max() == 255  # real pictures, not blank


def test_crop_larger_than_the_image_is_a_named_skip(tmp_path):
    small, large = str(tmp_path / "small.png"), str(tmp_path / "large.png")
    Image.new("RGB", (20, 20), (255, 0, 0)).save(small)
    Image.new("RGB", (40, 40), (255, 0, 0)).save(large)
    loaded = loading.load_images([small, large], ImageSpec(16, 16, crop=True, input_height=30, input_width=30))
    assert loaded.paths == [large]
    assert loaded.skipped[0][0] == small and "smaller than the 30x30 crop" in loaded.skipped[0][1]


def test_rgb_png_with_a_transparent_key_colour_is_composited_onto_white(tmp_path):
    path = str(tmp_path / "keyed.png")
    Image.new("RGB", (8, 8), (10, 200, 30)).save(path, transparency=(10, 200, 30))
    assert (loading.load_images([path], ImageSpec(8, 8)).images == 255).all()


# ---------------------------------------------------------------------------------------------- streaming
def test_over_the_cache_limit_the_data_streams_in_the_cached_order(tmp_path, caplog):
    """A data set bigger than --cache_limit is left on disk; its batches equal the cached ones, resume included."""
    from conftest import write_images

    folder = tmp_path / "pics"
    write_images(folder, 9, size=(20, 12))
    (folder / "broken.png").write_bytes(b"not an image")
    caplog.set_level(logging.INFO)
    base = dict(dataset=str(folder), input_fname_pattern="*.png", output_height=16, seed=4)
    cached = load_training_data(Config(**base).resolved())
    streamed = load_training_data(Config(**base, cache_limit=0).resolved())
    assert isinstance(cached, LoadedImages) and isinstance(streamed, loading.StreamedImages)
    assert "streaming them from disk" in caplog.text
    assert streamed.paths == cached.paths and streamed.c_dim == cached.c_dim == 3
    assert [os.path.basename(p) for p, _ in streamed.skipped] == ["broken.png"]  # skipped and named, as cached
    for start_epoch, start_step in ((0, 0), (2, 1)):
        a = loading.make_dataset(cached, 4, seed=7, start_epoch=start_epoch, start_step=start_step)
        b = loading.make_dataset(streamed, 4, seed=7, start_epoch=start_epoch, start_step=start_step)
        for x, y in zip(a.take(6), b.take(6)):
            np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_cache_limit_decides_by_the_decoded_size(tmp_path):
    from conftest import write_images

    write_images(tmp_path / "pics", 3)
    config = Config(dataset=str(tmp_path / "pics"), input_fname_pattern="*.png", output_height=512)
    # 3 x 512 x 512 x 3 bytes = 2.25 MB: cached under a 3 MB limit, streamed under 2 MB
    assert isinstance(load_training_data(dataclasses.replace(config, cache_limit=3).resolved()), LoadedImages)
    assert isinstance(load_training_data(dataclasses.replace(config, cache_limit=2).resolved()), loading.StreamedImages)
    # the autoencoder needs them in memory: refused before anything is decoded, with the limit that would do
    with pytest.raises(ConfigError, match="at least 3 \\(MB\\)") as error:
        load_training_data(dataclasses.replace(config, cache_limit=2, dedupe=0.1).resolved())
    assert error.value.field == "cache_limit"


@pytest.mark.slow
def test_a_file_that_breaks_while_streaming_is_named(tmp_path, monkeypatch):
    import tensorflow as tf
    from conftest import write_images

    paths = write_images(tmp_path / "pics", 4)
    streamed = loading.probe_images(paths, ImageSpec(16, 16))
    for path in paths:
        open(path, "wb").close()  # emptied after the check
    with pytest.raises(tf.errors.OpError, match="could no longer be read while streaming"):
        next(iter(loading.make_dataset(streamed, 2, seed=0)))

    # through train(): a DataError naming the file and the checkpoint to resume from, not TensorFlow's stack
    from conftest import tiny_config
    from dcgan_tf.training import loop

    write_images(tmp_path / "run", 8)
    config = tiny_config(tmp_path, tmp_path / "run", cache_limit=0, epoch=2)
    probe = loading.probe_images

    def probe_then_break(paths, *args, **kwargs):
        streamed = probe(paths, *args, **kwargs)
        open(paths[5], "wb").close()
        return streamed

    monkeypatch.setattr(loading, "probe_images", probe_then_break)
    with pytest.raises(DataError, match=r"img_005.png could no longer be read while streaming.*last checkpoint"):
        loop.train(config)
