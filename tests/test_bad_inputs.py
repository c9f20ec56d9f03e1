"""Every odd or broken file in a training folder is decoded correctly or skipped by name; loading goes on."""

import io
import logging
import os

import numpy as np
import pytest
from PIL import Image

from dcgan_tf.data.loading import DataError, ImageSpec, find_image_files, load_images

SPEC = ImageSpec(16, 16)


def rgb(width, height, value=(200, 30, 90)):
    return Image.new("RGB", (width, height), value)


def jpeg_bytes(image, **save_args):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **save_args)
    return buffer.getvalue()


def make_folder(folder):
    """One file per case; returns {case: path} and the cases expected to be skipped."""
    os.makedirs(folder, exist_ok=True)
    path = lambda name: os.path.join(folder, name)  # noqa: E731
    cases = {}

    cases["zero_byte"] = path("zero.jpg")
    open(cases["zero_byte"], "wb").close()
    cases["truncated_jpeg"] = path("truncated.jpg")
    whole = jpeg_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)))
    open(cases["truncated_jpeg"], "wb").write(whole[: len(whole) // 2])
    cases["text_as_png"] = path("notes.png")
    open(cases["text_as_png"], "w").write("this is not a picture\n")
    cases["one_pixel"] = path("dot.png")
    rgb(1, 1).save(cases["one_pixel"])
    cases["very_wide"] = path("wide.png")
    rgb(2000, 10).save(cases["very_wide"])
    cases["gray16"] = path("gray16.png")
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(cases["gray16"])
    cases["palette_transparent"] = path("palette.png")
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.save(cases["palette_transparent"], transparency=1)
    cases["cmyk_jpeg"] = path("cmyk.jpg")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cases["cmyk_jpeg"])
    cases["rgba"] = path("rgba.png")
    Image.new("RGBA", (8, 8), (0, 0, 255, 0)).save(cases["rgba"])
    cases["animated_gif"] = path("anim.gif")
    frames = [rgb(8, 8, (255, 0, 0)).convert("P"), rgb(8, 8, (0, 255, 0)).convert("P")]
    frames[0].save(cases["animated_gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    cases["exif_rotated"] = path("rotated.jpg")
    wide = Image.new("RGB", (20, 10), (0, 0, 0))
    wide.paste((255, 255, 255), (0, 0, 10, 10))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    open(cases["exif_rotated"], "wb").write(jpeg_bytes(wide, exif=exif, quality=95))
    cases["non_ascii_name"] = path("мышь_😀.png")
    rgb(8, 8).save(cases["non_ascii_name"])
    cases["symlink_loop"] = path("loop.png")
    os.symlink(cases["symlink_loop"], cases["symlink_loop"])
    os.makedirs(path("sub"))
    os.symlink("..", path("sub/up"))  # a folder link loop
    cases["bomb"] = path("bomb.png")
    rgb(200, 200).save(cases["bomb"])  # over the limit the test sets
    skipped = {"zero_byte", "truncated_jpeg", "text_as_png", "symlink_loop", "bomb"}
    return cases, skipped


@pytest.fixture
def odd_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30000)  # the 200x200 "bomb" is over it, 2000x10 is not
    return make_folder(str(tmp_path / "odd"))


def test_every_odd_file_is_decoded_or_skipped_by_name(odd_folder, caplog):
    cases, expected_skips = odd_folder
    files = find_image_files(os.path.dirname(cases["rgba"]), "**/*.*")
    assert sorted(files) == sorted(cases.values())  # the folder loop is walked once; every file is listed once
    with caplog.at_level(logging.INFO, logger="dcgan_tf.data.loading"):
        loaded = load_images(files, SPEC)
    skipped = {path for path, _ in loaded.skipped}
    assert skipped == {cases[name] for name in expected_skips}
    for name in expected_skips:
        assert cases[name] in caplog.text, name  # named in the log
    reasons = dict(loaded.skipped)
    assert "decompression-bomb limit" in reasons[cases["bomb"]]
    assert "truncated" in reasons[cases["truncated_jpeg"]]
    assert loaded.images.shape == (len(cases) - len(expected_skips), 16, 16, 3)
    assert any("loaded 9 images" in r.message and "skipped 5" in r.message for r in caplog.records)

    image = {path: array for path, array in zip(loaded.paths, loaded.images)}
    assert np.all(image[cases["gray16"]] == 40000 * 255 // 65535)  # scaled, not clipped to 255
    assert np.all(image[cases["palette_transparent"]] == 255)  # transparent index composited onto white
    assert np.all(image[cases["rgba"]] == 255)  # alpha 0 -> white
    cmyk = image[cases["cmyk_jpeg"]].reshape(-1, 3).mean(0)
    assert cmyk[0] > 200 and cmyk[1] < 60 and cmyk[2] < 60  # CMYK (0, 255, 255, 0) is red
    gif = image[cases["animated_gif"]].reshape(-1, 3).mean(0)
    assert gif[0] > 200 and gif[1] < 60  # first frame (red), not the second (green)
    rotated = image[cases["exif_rotated"]].mean(axis=(1, 2))
    assert rotated[:8].mean() > 200 and rotated[8:].mean() < 60  # upright: the white half is now on top
    assert image[cases["non_ascii_name"]].reshape(-1, 3).mean(0)[0] > 150


def test_a_folder_of_only_bad_files_fails_with_one_clear_message(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.jpg").write_text("nope")
    with pytest.raises(DataError, match=r"none of the 2 files could be read as an image \(first: .*a\.jpg"):
        load_images(find_image_files(str(folder), "*.jpg"), SPEC)


def test_folder_links_are_followed_once(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    rgb(4, 4).save(real / "x.png")
    top = tmp_path / "top"
    top.mkdir()
    os.symlink(real, top / "linked")
    os.symlink(top, real / "back")  # top/linked/back -> top: a loop through two folders
    files = find_image_files(str(top), "**/*.png")
    assert files == [str(top / "linked" / "x.png")]
