"""The web demo's pictures without a browser: the numbered grid follows its seed, a slider moves one z dimension,
a walk has its frames in the strip and the GIF, arithmetic draws its figure or says what is wrong with the text,
conditional exports draw the chosen label, and `launch` says who can reach it.

The exports are tiny runs (2-3 steps) whose generator kernels are then spread (N(0, 1/fan)), so images vary
visibly with z; `tiny_export` makes each once per session, for test_demo_browser too.
"""

import json
import math
import os
import shutil
import urllib.request

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the web demo needs gradio (pip install gradio)")

from conftest import free_port, gif_info, tiny_export  # noqa: E402
from dcgan_tf import latent  # noqa: E402
from dcgan_tf.images import CELL_PADDING, upscale  # noqa: E402
from dcgan_tf.serving import export  # noqa: E402
from dcgan_tf.serving.demo import app, build_demo, launch  # noqa: E402


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """The 16x16 RGB export, z_dim 8, uniform_signed z."""
    return export.load_export(tiny_export(tmp_path_factory, conditional=False))


@pytest.fixture(scope="module")
def mnist_gen(tmp_path_factory):
    """The conditional export: 28x28 grayscale, labels "0".."9"."""
    return export.load_export(tiny_export(tmp_path_factory, conditional=True))


def side(gen, least):
    """The side of a cell: the image enlarged by the least whole factor reaching `least` pixels."""
    return gen.info["height"] * math.ceil(least / gen.info["height"])


# ------------------------------------------------------------------------------------------------ samples
@pytest.mark.slow
def test_the_grid_shows_the_seeds_samples_numbered(gen):
    cell = side(gen, app.CELL_SIDE)
    picture = app.samples_picture(gen, 5)
    assert picture.dtype == np.uint8
    assert picture.shape == (app.GRID_ROWS * (cell + CELL_PADDING) - CELL_PADDING,
                             app.GRID_COLS * (cell + CELL_PADDING) - CELL_PADDING, 3)
    np.testing.assert_array_equal(picture, app.samples_picture(gen, 5))
    assert (picture != app.samples_picture(gen, 6)).mean() > 0.3
    # the last cell, below its number, is sample 15 of the seed enlarged
    z = np.asarray(latent.sample_z((app.SAMPLE_COUNT, 8), "uniform_signed", 5))
    last = upscale(gen.generate(z[-1:]), app.CELL_SIDE)[0]
    np.testing.assert_array_equal(picture[-cell // 2:, -cell:], last[-cell // 2:])


def test_a_bad_seed_says_so(gen):
    for seed in (-1, 1.5, None):
        with pytest.raises(ValueError, match="seed"):
            app.samples_picture(gen, seed)


# ------------------------------------------------------------------------------------------------ sliders
def test_sliders_start_at_the_samples_z_and_move_one_dimension(gen):
    dims = app.slider_dims(gen)
    assert dims == list(range(8))
    values = app.sample_values(gen, 3, 2, dims)
    np.testing.assert_allclose(values, app.z_bank(gen, 3)[2, :8])
    own = app.slider_picture(gen, 3, 2, values, dims)
    assert own.shape == (side(gen, app.BIG_SIDE),) * 2 + (3,)
    np.testing.assert_array_equal(own, upscale(gen.generate(app.z_bank(gen, 3)[2:3]), app.BIG_SIDE)[0])
    moved = list(values)
    moved[4] = -values[4] if abs(values[4]) > 0.5 else 1.0
    assert (app.slider_picture(gen, 3, 2, moved, dims) != own).mean() > 0.05


def test_chosen_slider_dimensions_must_be_in_z(gen):
    assert app.slider_dims(gen, [7, 1]) == [7, 1]
    with pytest.raises(ValueError, match="0-7"):
        app.slider_dims(gen, [8])
    with pytest.raises(ValueError, match="sample"):
        app.slider_picture(gen, 0, app.SAMPLE_COUNT, [0.0], [0])


def test_normal_z_starts_the_sliders_inside_their_range(gen, monkeypatch):
    monkeypatch.setitem(gen.info, "z_dist", "normal01")
    values = app.sample_values(gen, 0, 0, list(range(8)))
    assert all(-2.0 <= value <= 2.0 for value in values)


# ------------------------------------------------------------------------------------------------ walk
def test_a_walk_has_its_frames_in_the_strip_and_the_gif(gen, tmp_path):
    strip, gif = app.walk(gen, 0, 1, 5, None, str(tmp_path))
    cell = side(gen, app.CELL_SIDE)
    assert strip.shape == (cell, 5 * (cell + CELL_PADDING) - CELL_PADDING, 3)
    big = side(gen, app.BIG_SIDE)
    assert os.path.dirname(gif) == str(tmp_path) and gif.endswith(".gif")
    assert gif_info(gif) == ((big, big), 5, 5 * round(1000 / app.WALK_FPS))
    # it starts at sample 0 of seed 0 and ends at sample 0 of seed 1
    ends = upscale(gen.generate(np.stack([app.z_bank(gen, 0)[0], app.z_bank(gen, 1)[0]])), app.CELL_SIDE)
    np.testing.assert_array_equal(strip[:, :cell], ends[0])
    np.testing.assert_array_equal(strip[:, -cell:], ends[1])
    with pytest.raises(ValueError, match="steps"):
        app.walk(gen, 0, 1, 1, None, str(tmp_path))


# ------------------------------------------------------------------------------------------------ arithmetic
def test_arithmetic_draws_a_row_per_group_and_the_results(gen):
    picture = app.arithmetic_picture(gen, 0, "0 - 1 + 2")
    cell = side(gen, app.CELL_SIDE)
    cols = 1 + max(1 + 2, 1 + app.latent.ARITHMETIC_VARIANTS)  # sign, samples or results, the mean or the exact result
    assert picture.shape == (4 * (cell + CELL_PADDING) - CELL_PADDING, cols * (cell + CELL_PADDING) - CELL_PADDING, 3)
    bank = app.z_bank(gen, 0)
    exact = upscale(gen.generate((bank[0] - bank[1] + bank[2])[None]), app.CELL_SIDE)[0]
    np.testing.assert_array_equal(picture[-cell:, -cell:], exact)
    np.testing.assert_array_equal(picture, app.arithmetic_picture(gen, 0, " 0-1+2 "))


@pytest.mark.parametrize("text, message", [("0,x - 1", "not a group of sample indices"), ("", "empty"),
                                           ("0 -", "empty group"), ("0 - 16", "sample 16 is not on the numbered")])
def test_bad_arithmetic_says_what_is_wrong(gen, text, message):
    with pytest.raises(ValueError, match=message) as error:
        app.arithmetic_picture(gen, 0, text)
    assert not str(error.value).startswith("arith")  # the demo's user typed no --arith


# ------------------------------------------------------------------------------------------------ forgetting
def test_two_clicks_make_a_box_inside_the_first_ones_sample(gen):
    layout = app.forget_layout(gen)
    cell = side(gen, app.CELL_SIDE)
    assert layout.scale * gen.info["height"] == cell and layout.size == (4 * (cell + CELL_PADDING) - CELL_PADDING,) * 2
    text, corner = app.add_corner(gen, "", None, 40, 10)
    assert (text, corner) == ("", (0, 40, 10))
    text, corner = app.add_corner(gen, text, corner, 12.7, 30)  # any corner first: the box holds both pixels
    assert (text, corner) == ("0,12,10,41,31", None)
    right = cell + CELL_PADDING  # sample 1, then a second click past its right edge, on sample 2
    text, corner = app.add_corner(gen, text, app.add_corner(gen, text, None, right + 5, 5)[1], 3 * cell, 20)
    assert text == f"0,12,10,41,31\n1,{right + 5},5,{right + cell},21" and corner is None
    with pytest.raises(ValueError, match="click on a sample"):
        app.add_corner(gen, "", None, cell + 1, 5)  # the padding


def test_boxes_are_outlined_on_the_numbered_samples(gen):
    plain = app.samples_picture(gen, 0)
    boxed = app.boxes_picture(gen, 0, "0,10,10,40,40\nnot a row\n", corner=(1, 150, 20))
    assert boxed.shape == plain.shape
    assert (boxed[10, 10:40] == app.FORGET_BOX_COLOUR).all() and (boxed[39, 10:40] == app.FORGET_BOX_COLOUR).all()
    assert (boxed[20:30, 20:30] == plain[20:30, 20:30]).all()  # inside: the sample
    assert (boxed[12:29, 144:157] == app.FORGET_CORNER_COLOUR).all(axis=-1).any()  # the pending corner


def test_forgetting_finds_filters_draws_before_and_after_and_writes_the_record(gen, tmp_path):
    cell = side(gen, app.CELL_SIDE)
    boxes = f"0,0,0,{cell // 2},{cell // 2}\n5,{cell + 2},{cell + 2},{cell + 2 + cell // 2},{cell + 2 + cell // 2}"
    picture, path, summary = app.forget_picture(gen, 3, boxes, None, None, str(tmp_path))
    pair = 2 * cell + 2
    assert picture.shape == (4 * cell + 3 * 8, 4 * pair + 3 * 8, 3)
    assert os.path.dirname(path) == str(tmp_path) and os.path.basename(path) == "forget_seed3_g_h3.json"
    record = json.load(open(path))
    assert record["layer"] == "g_h3" and record["seed"] == 3 and record["samples"] == app.SAMPLE_COUNT
    assert [box["sample"] for box in record["boxes"]] == [0, 5] and record["boxes"][0]["box"] == [0, 0, 8, 8]
    assert len(record["weights"]) == record["layer_shape"][-1] and "inside" in record["change"]
    assert summary.startswith("forget: layer g_h3") and "inside the boxes" in summary
    _, other, _ = app.forget_picture(gen, 3, boxes, "g_h2", None, str(tmp_path))
    assert json.load(open(other))["layer"] == "g_h2"
    for text, message in (("", "boxes holds no boxes"), ("0,1,2\n", "boxes row 1: want 5 values"),
                          (f"16,0,0,{cell},{cell}", "boxes row 1: sample 16 is not on the grid")):
        with pytest.raises(ValueError, match=message) as error:
            app.forget_picture(gen, 3, text, None, None, str(tmp_path))
        assert not str(error.value).startswith("forget_boxes")  # the demo's user typed no flag


def test_an_export_without_its_keras_file_says_forgetting_needs_it(gen, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(gen.folder, folder)
    os.remove(folder / export.KERAS_FILE)
    bare = export.load_export(str(folder))
    assert gen.has_keras and not bare.has_keras
    with pytest.raises(export.ExportError, match="no generator.keras"):
        bare.forgetter()
    demo = build_demo(bare)
    notes = [block.value for block in demo.blocks.values() if getattr(block, "elem_id", None) == "forget-message"]
    assert len(notes) == 1 and "--export_format keras,savedmodel" in notes[0]


# ------------------------------------------------------------------------------------------------ labels
@pytest.mark.slow
def test_a_conditional_export_draws_the_chosen_label(mnist_gen, tmp_path):
    assert app.label_choices(mnist_gen) == [str(digit) for digit in range(10)]
    assert app.label_index(mnist_gen, "7") == 7 and app.label_index(mnist_gen, None) == 0
    with pytest.raises(ValueError, match="not one of"):
        app.label_index(mnist_gen, "cat")
    threes = app.samples_picture(mnist_gen, 0, "3")
    assert threes.shape[-1] == 3  # grayscale shown as RGB
    assert (threes != app.samples_picture(mnist_gen, 0, "5")).mean() > 0.3
    dims = app.slider_dims(mnist_gen)
    values = app.sample_values(mnist_gen, 0, 0, dims)
    assert (app.slider_picture(mnist_gen, 0, 0, values, dims, "3")
            != app.slider_picture(mnist_gen, 0, 0, values, dims, "5")).any()
    assert app.walk(mnist_gen, 0, 1, 3, "3", str(tmp_path))[1].endswith("_label3.gif")
    assert app.arithmetic_picture(mnist_gen, 0, "0 - 1 + 2", "3").shape[-1] == 3
    _, path, _ = app.forget_picture(mnist_gen, 0, "0,0,0,50,50\n4,10,130,60,180", None, "3", str(tmp_path))
    record = json.load(open(path))  # MNIST's nets: one conv layer below the image's
    assert os.path.basename(path) == "forget_seed0_g_h2_label3.json" and record["layer"] == "g_h2"
    assert record["label"] == 3 and [box["sample"] for box in record["boxes"]] == [0, 4]


def test_the_label_picker_lists_the_class_names_only_when_conditional(gen, mnist_gen):
    def pickers(demo):
        return [block for block in demo.blocks.values() if type(block).__name__ == "Dropdown"]

    picker, = pickers(build_demo(mnist_gen))
    assert picker.visible and [value for _, value in picker.choices] == app.label_choices(mnist_gen)
    assert picker.value == "0"
    hidden, = pickers(build_demo(gen))
    assert not hidden.visible and app.label_choices(gen) == []


def test_the_header_names_the_run_step_data_and_generator(gen):
    header = app.header_markdown(gen.info)
    assert gen.info["run"] in header and f"Step {gen.info['step']}" in header
    assert gen.info["dataset"] in header and "no EMA generator" in header
    assert "the EMA generator" in app.header_markdown({**gen.info, "ema": True})


# ------------------------------------------------------------------------------------------------ launch
def test_launch_serves_this_computer_only_and_says_so(gen):
    lines = []
    port = free_port()
    demo = launch(gen.folder, port=port, block=False, log=lines.append)
    try:
        assert "127.0.0.1" in lines[0] and "only this computer" in lines[0] and "--host 0.0.0.0" in lines[0]
        assert demo.local_url.startswith(f"http://127.0.0.1:{port}")
        with urllib.request.urlopen(demo.local_url, timeout=10) as page:
            assert page.status == 200
    finally:
        demo.close(verbose=False)


def test_any_other_host_is_a_warning():
    line = app.listening_message("0.0.0.0", 7860)
    assert line.startswith("warning:") and "other machines" in line
    assert "only this computer" in app.listening_message("localhost", 7860)


def test_launch_refuses_a_folder_that_is_not_an_export(tmp_path):
    with pytest.raises(export.ExportError, match="not an export"):
        launch(str(tmp_path), block=False)
