"""dcgan_tf.analysis.forget (DCGAN paper section 6.3.1) on a hand-set generator whose filter SQUARE draws a bright
square at a known place: boxes around the square pick that filter and dropping it removes the square; boxes around
nothing in particular give no filter a large weight; bad box files fail naming the row; the grid layout maps boxes
into sample pixels; and the forget option end to end from the command line on the shared tiny trained run.
"""

import csv
import json
import os

import keras
import numpy as np
import pytest

from conftest import png_size, run_main
from dcgan_tf.analysis import forget, forget_boxes
from dcgan_tf.analysis.visualize import VisualizeOptions, visualize
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.core.networks import build_generator
from dcgan_tf.images import GridLayout, numbered_grid

Z_DIM, FILTERS, SQUARE = 4, 4, 2
SIDE = 16  # 4x4 -> g_h1 8x8 -> g_h2 16x16
SQUARE_PIXELS = (4, 8)  # the square spans pixels 4-7 on both axes (feature positions 2-3 of g_h1's 8x8)
COUNT, ROWS, COLS = 8, 2, 4


def square_generator(seed=0) -> keras.Model:
    """z [N, 4] -> [N, 16, 16, 3]: g_h1's filter SQUARE is 2 at feature positions 2-3 (pixels 4-7) and 0 elsewhere,
    and g_h2 paints it bright; the other filters carry z through random weights (a varied, darker background)."""
    z = keras.Input((Z_DIM,), name="z")
    x = keras.layers.Dense(4 * 4 * FILTERS, name="g_h0_lin")(z)
    x = keras.layers.Reshape((4, 4, FILTERS))(x)
    x = keras.layers.Conv2DTranspose(FILTERS, 2, strides=2, padding="same", use_bias=False, name="g_h1")(x)
    x = keras.layers.BatchNormalization(name="g_bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2DTranspose(3, 2, strides=2, padding="same", name="g_h2")(x)
    model = keras.Model(z, keras.layers.Activation("tanh", name="g_out")(x), name="generator")
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 1, (Z_DIM, 4, 4, FILTERS)).astype(np.float32)
    bias = np.zeros((4, 4, FILTERS), np.float32)
    kernel[..., SQUARE] = 0
    bias[..., SQUARE] = -1
    bias[1, 1, SQUARE] = 2  # 4x4 position (1, 1): 8x8 positions 2-3 after g_h1's nearest-neighbour doubling
    model.get_layer("g_h0_lin").set_weights([kernel.reshape(Z_DIM, -1), bias.reshape(-1)])
    model.get_layer("g_h1").set_weights([np.eye(FILTERS, dtype=np.float32)[None, None].repeat(2, 0).repeat(2, 1)])
    model.get_layer("g_bn1").set_weights([np.ones(FILTERS), np.zeros(FILTERS), np.zeros(FILTERS), np.ones(FILTERS)])
    paint = rng.normal(0, 0.3, (2, 2, 3, FILTERS)).astype(np.float32)
    paint[..., SQUARE] = 3
    model.get_layer("g_h2").set_weights([paint, np.full(3, -0.5, np.float32)])
    return model


@pytest.fixture(scope="module")
def generator():
    return square_generator()


@pytest.fixture(scope="module")
def z():
    return np.random.default_rng(1).uniform(-1, 1, (COUNT, Z_DIM)).astype(np.float32)


def layout() -> GridLayout:
    return GridLayout.numbered(COUNT, ROWS, COLS, SIDE, SIDE)


def write_boxes(path, rows, header=True) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(forget_boxes.BOX_COLUMNS)
        writer.writerows(rows)
    return str(path)


def square_box(sample, margin=0.5):
    """The square of `sample` on the numbered grid, `margin` sample pixels wider on each side."""
    low, high = SQUARE_PIXELS
    return [sample, *layout().to_picture(sample, (low - margin, low - margin, high + margin, high + margin))]


# ---------------------------------------------------------------------------------------------- the layout
def test_the_numbered_grid_layout_is_where_numbered_grid_draws():
    grid = layout()
    assert grid.scale == 4 and grid.size == (4 * 64 + 3 * 2, 2 * 64 + 2)
    picture = numbered_grid(np.zeros((COUNT, SIDE, SIDE, 3), np.float32), ROWS, COLS)
    assert picture.shape[1::-1] == grid.size
    assert grid.origin(5) == (66, 66) and grid.cell_at(66 + 40, 66 + 63.5) == 5
    assert grid.cell_at(64.5, 10) is None and grid.cell_at(3 * 66 + 10, 66 + 10) == 7
    assert GridLayout.numbered(7, 2, 4, SIDE, SIDE).cell_at(3 * 66 + 10, 66 + 10) is None  # the empty eighth cell
    assert grid.to_sample(5, (66 + 8, 66 + 16, 66 + 80, 66 + 32)) == (2.0, 4.0, 16.0, 8.0)  # clipped to the cell
    assert grid.to_picture(5, (2, 4, 16, 8)) == (74, 82, 130, 98)


def test_the_layer_split_finds_the_hidden_conv_layers_and_taps_after_their_relu(generator, z):
    assert list(forget.conv_layers(generator)) == ["g_h1"]
    forgetter = forget.Forgetter(generator)
    assert forgetter.layer == "g_h1" and forgetter.shape == (8, 8, FILTERS)
    maps = forgetter.features(z)
    assert maps.shape == (COUNT, 8, 8, FILTERS) and maps.min() >= 0  # after the ReLU
    expected = np.zeros((8, 8))
    expected[2:4, 2:4] = 2
    np.testing.assert_allclose(maps[..., SQUARE], np.broadcast_to(expected, (COUNT, 8, 8)), atol=1e-2)
    np.testing.assert_allclose(forgetter.generate(z), np.asarray(generator(z)), atol=1e-6)
    with pytest.raises(ConfigError, match="g_h9.*g_h1") as error:
        forget.Forgetter(generator, "g_h9")
    assert error.value.field == "forget_layer"
    with pytest.raises(ConfigError, match="filter 4 is not in layer g_h1, which has 4") as error:
        forgetter.generate(z, drop=(4,))
    assert error.value.field == "forget_filters"


@pytest.mark.parametrize("nets, layers, shape", [
    ({}, ["g_h1", "g_h2", "g_h3"], (8, 8, 4)),
    ({"spectral_norm": True}, ["g_h1", "g_h2", "g_h3"], (8, 8, 4)),
    ({"y_dim": 3, "conditioning": "projection"}, ["g_h1", "g_h2", "g_h3"], (8, 8, 4)),
    ({"y_dim": 10, "conditioning": "mnist", "gfc_dim": 16}, ["g_h2"], (8, 8, 8)),
])
def test_the_projects_generators_split_at_their_hidden_conv_layers(nets, layers, shape):
    """The networks' generators (plain, spectrally normalised, conditional: projection and MNIST's) split at every
    conv layer below the image's, by default the second-highest (the paper's), as G computes them."""
    generator = build_generator(16, 16, 3, z_dim=Z_DIM, gf_dim=4, **nets)
    forgetter = forget.Forgetter(generator)
    assert list(forgetter.layers) == layers and forgetter.layer == layers[-1] and forgetter.shape == shape
    z = np.random.default_rng(0).uniform(-1, 1, (5, Z_DIM)).astype(np.float32)
    labels = np.eye(nets["y_dim"], dtype=np.float32)[np.arange(5) % nets["y_dim"]] if "y_dim" in nets else None
    assert forgetter.features(z, labels).shape == (5, *shape)
    inputs = z if labels is None else [z, labels]
    np.testing.assert_allclose(forgetter.generate(z, labels), np.asarray(generator(inputs, training=False)),
                               atol=1e-5)
    dropped = forgetter.generate(z, labels, drop=range(shape[-1]))  # every filter: the images no longer vary with z
    spread = np.ptp(forgetter.generate(z, labels), axis=0).max()
    assert dropped.shape == (5, 16, 16, 3) and np.ptp(dropped, axis=0).max() < spread


def test_the_forget_option_uses_the_sampling_generator(tmp_path):
    """visualize's forget draws with model.sampler (the EMA generator of an --ema run), never G itself; the grid's
    z (the same as grid and arithmetic); the JSON says which generator it was."""
    class Model:
        sampler = square_generator()
        generator = None  # G: must not be used

    config = Config(dataset="squares", output_height=SIDE, z_dim=Z_DIM, grid_cols=COLS, ema=0.999,
                    checkpoint_dir=str(tmp_path / "ck"), sample_dir=str(tmp_path / "s")).resolved()
    boxes = write_boxes(tmp_path / "boxes.csv", [square_box(s) for s in (0, 2, 3, 5, 6)])
    paths = visualize(config, VisualizeOptions(option="forget", num_samples=COUNT, forget_boxes=boxes),
                      (config, Model(), 7))
    assert [os.path.basename(path) for path in paths] == ["forget_00000007.png", "forget_00000007.json"]
    record = json.load(open(paths[1]))
    assert record["generator"] == "EMA" and record["step"] == 7 and SQUARE in record["filters"]
    assert record["samples"] == COUNT and record["change"]["inside"] == 1.0


# ---------------------------------------------------------------------------------------------- fitting
def test_boxes_around_the_square_pick_its_filter_and_dropping_it_removes_the_square(tmp_path, generator, z):
    boxes = forget_boxes.read_boxes(write_boxes(tmp_path / "boxes.csv", [square_box(s) for s in (0, 2, 3, 5, 6)]))
    placed = forget_boxes.place_boxes(boxes, layout())
    assert placed[0] == [(3.5, 3.5, 8.5, 8.5)]
    positive = forget_boxes.position_labels(placed, COUNT, SIDE, SIDE, 8, 8)
    assert positive.sum() == 5 * 4 and positive[0, 2:4, 2:4].all() and not positive[1].any()

    result = forget.Forgetter(generator).forget(z, None, placed, seed=0)
    weights = result.fit.weights
    assert result.fit.filters[0] == SQUARE and weights[SQUARE] > 2 * np.delete(np.abs(weights), SQUARE).max()
    assert SQUARE in result.filters
    low, high = SQUARE_PIXELS
    assert result.before[:, low:high, low:high].min() > 0.9  # the square, bright in every sample
    assert result.after[:, low:high, low:high].mean() < 0  # gone: the background's darker colours
    change = result.change()
    assert change["inside"] == 1.0 and change["outside"] < change["inside"] / 2
    # the same again: seeded and deterministic
    again = forget.Forgetter(generator).forget(z, None, placed, seed=0)
    np.testing.assert_array_equal(again.fit.weights, weights)
    record = result.record(run="square")
    assert record["run"] == "square" and record["layer"] == "g_h1" and record["layer_shape"] == [8, 8, FILTERS]
    assert record["filters"] == list(result.filters) and len(record["weights"]) == FILTERS
    assert record["filter_weights"] == [round(float(weights[index]), 6) for index in result.filters]
    assert record["fit"]["positives"] == 20 and record["fit"]["negatives"] == COUNT * 64 - 20
    assert record["boxes"][0] == {"sample": 0, "box": [3.5, 3.5, 8.5, 8.5]}
    json.dumps(record)  # plain JSON types
    assert "dropped" in forget.describe(record) and "inside the boxes" in forget.describe(record)


def test_boxes_around_nothing_in_particular_give_no_filter_a_large_weight(tmp_path, generator, z):
    rng = np.random.default_rng(1)
    rows = [[sample, *layout().to_picture(sample, (x, y, x + 5, y + 5))]  # 5 pixels a side, anywhere
            for sample in range(COUNT) for x, y in [rng.uniform(0, SIDE - 5, 2)]]
    placed = forget_boxes.place_boxes(forget_boxes.read_boxes(write_boxes(tmp_path / "b.csv", rows)), layout())
    square = forget_boxes.place_boxes(forget_boxes.read_boxes(write_boxes(tmp_path / "s.csv", [square_box(s) for s in (0, 2, 3)])),
                                layout())
    forgetter = forget.Forgetter(generator)
    noise = forgetter.forget(z, None, placed, seed=0).fit
    found = forgetter.forget(z, None, square, seed=0).fit
    assert np.abs(noise.weights).max() < 0.5 < 2 < found.weights[SQUARE]
    assert noise.accuracy < 0.7 < 0.95 < found.accuracy  # balanced: chance is 0.5


def test_filters_given_are_dropped_without_a_fit(generator, z):
    result = forget.Forgetter(generator).forget(z, filters=[SQUARE, SQUARE])
    assert result.fit is None and result.filters == (SQUARE,) and result.mask is None
    low, high = SQUARE_PIXELS
    assert result.before[:, low:high, low:high].min() > 0.9 and result.after[:, low:high, low:high].mean() < 0
    record = result.record()
    assert "weights" not in record and "inside" not in record["change"] and record["change"]["all"] > 0
    assert "as given" in forget.describe(record)
    picture = result.picture(COLS)
    pair = 2 * 64 + forget.PAIR_GAP
    assert picture.shape == (2 * 64 + forget.PAIR_PADDING, 4 * pair + 3 * forget.PAIR_PADDING, 3)


# ---------------------------------------------------------------------------------------------- bad boxes
@pytest.mark.parametrize("rows, message", [
    ([square_box(0), [1, 300, 10, 320, 20]], "row 3: the box 300,10,320,20 reaches outside the grid, which is 262 x "
                                             "130 pixels"),
    ([square_box(0), square_box(1), [8, 10, 10, 20, 20]], "row 4: sample 8 is not on the grid: it numbers 0-7"),
    ([[2, 10, 10, 20, 20]], "row 2: the box's centre is on sample 0, not on sample 2"),
    ([[0, 60, 10, 70, 20]], "row 2: the box's centre is on padding between cells, not on sample 0"),
])
def test_boxes_off_the_grid_fail_naming_the_row(tmp_path, rows, message):
    boxes = forget_boxes.read_boxes(write_boxes(tmp_path / "boxes.csv", rows))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as error:
        forget_boxes.place_boxes(boxes, layout(), "boxes.csv")
    assert error.value.field == "forget_boxes" and str(error.value).startswith("forget_boxes: boxes.csv row")


@pytest.mark.parametrize("text, message", [
    ("sample,x0,y0,x1,y1\n", "holds no boxes"),
    ("\n# nothing yet\n", "holds no boxes"),
    ("0,1,2,3\n", "row 1: want 5 values sample,x0,y0,x1,y1, got 4"),
    ("sample,x0,y0,x1,y1\n0,1,2,3,4\n-1,1,2,3,4\n", "row 3: the sample number must be a whole number"),
    ("0,1,2,3,4\n\n1,a,2,3,4\n", "row 3: the corners must be numbers"),
    ("0,1,2,1,4\n", "row 1: the box 1,2,1,4 is empty"),
    ("0,1,2,nan,4\n", "row 1: the corners must be finite"),
])
def test_bad_box_files_fail_naming_the_row(tmp_path, text, message):
    path = tmp_path / "boxes.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        forget_boxes.read_boxes(str(path))
    assert error.value.field == "forget_boxes" and str(path) in str(error.value)


def test_corners_in_any_order_and_comments_are_read(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("# drawn on visualize_grid_numbered\n0, 20, 30, 10, 5\n\n1,1.5,2,3,4.25\n")
    assert forget_boxes.read_boxes(str(path)) == (forget_boxes.Box(2, 0, 10, 5, 20, 30), forget_boxes.Box(4, 1, 1.5, 2, 3, 4.25))


def test_visualize_options_check_the_forget_flags_before_any_model(tmp_path):
    good = write_boxes(tmp_path / "boxes.csv", [square_box(0)])
    options = VisualizeOptions(option="forget", forget_boxes=good, forget_filters="3, 1", forget_layer="g_h2")
    assert options.forget_filters == (3, 1)
    for values, flag in (({"option": "grid", "forget_boxes": good}, "forget_boxes"),
                         ({"option": "arithmetic", "forget_filters": [1]}, "forget_filters"),
                         ({"option": "forget", "numbered": True, "forget_filters": [1]}, "numbered"),
                         ({"option": "forget"}, "forget_boxes"),
                         ({"option": "forget", "forget_filters": "1,x"}, "forget_filters"),
                         ({"option": "forget", "forget_filters": [1], "forget_layer": " "}, "forget_layer"),
                         ({"option": "forget", "forget_boxes": str(tmp_path / "none.csv")}, "forget_boxes")):
        with pytest.raises(ConfigError) as error:
            VisualizeOptions(**values)
        assert error.value.field == flag, values


# ---------------------------------------------------------------------------------------------- main.py
@pytest.mark.slow
def test_the_forget_option_from_the_command_line(tmp_path, first_run, image_folder):
    """On the shared tiny run (16x16, grid 2x3): the numbered grid to mark, then forget with boxes on it: the
    before/after picture and the JSON beside it, the summary on the console; a box off the grid fails before the
    checkpoint loads, naming the flag and the row."""
    config = first_run()
    flags = ["--dataset", image_folder, "--input_fname_pattern", "*.png", "--output_height", "16", "--batch_size",
             "4", "--z_dim", "8", "--gf_dim", "8", "--df_dim", "8", "--seed", "3", "--grid_rows", "2",
             "--grid_cols", "3", "--checkpoint_dir", config.checkpoint_dir, "--sample_dir", config.sample_dir,
             "--visualize"]
    grid = run_main(*flags, "--visualize_option", "grid", "--numbered", cwd=tmp_path)
    assert grid.returncode == 0, grid.stderr
    numbered = os.path.join(config.sample_path, "visualize_grid_numbered_00000003.png")
    assert png_size(numbered) == GridLayout.numbered(6, 2, 3, 16, 16).size == (3 * 64 + 4, 2 * 64 + 2)
    boxes = write_boxes(tmp_path / "boxes.csv", [[0, 10, 10, 40, 30], [4, 66 + 20, 66 + 20, 66 + 50, 66 + 60]])
    result = run_main(*flags, "--visualize_option", "forget", "--forget_boxes", boxes, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stem = os.path.join(config.sample_path, "forget_00000003")
    assert f"wrote {stem}.png" in result.stdout and f"wrote {stem}.json" in result.stdout
    record = json.load(open(stem + ".json"))
    assert record["layer"] == "g_h3" and record["layer_shape"] == [8, 8, 8] and len(record["weights"]) == 8
    assert record["step"] == 3 and record["samples"] == 6 and record["fit"]["positives"] > 0
    assert [box["sample"] for box in record["boxes"]] == [0, 4]
    assert set(record["change"]) >= {"inside", "outside", "mean_abs_inside", "mean_abs_outside"}
    assert "forget: layer g_h3 (8x8x8)" in result.stderr and "inside the boxes" in result.stderr
    pair = 2 * 64 + forget.PAIR_GAP
    assert png_size(stem + ".png") == (3 * pair + 2 * forget.PAIR_PADDING, 2 * 64 + forget.PAIR_PADDING)
    os.remove(stem + ".json")
    bad = write_boxes(tmp_path / "bad.csv", [[0, 10, 10, 40, 30], [1, 500, 10, 520, 20]])
    failed = run_main(*flags, "--visualize_option", "forget", "--forget_boxes", bad, cwd=tmp_path)
    assert failed.returncode == 2 and "restored" not in failed.stderr
    assert f"main.py: error: --forget_boxes: {bad} row 3: the box 500,10,520,20 reaches outside" in failed.stderr
    dropped = run_main(*flags, "--visualize_option", "forget", "--forget_filters", "0,7", "--forget_layer", "g_h2",
                       cwd=tmp_path)
    assert dropped.returncode == 0, dropped.stderr
    record = json.load(open(stem + ".json"))
    assert record["layer"] == "g_h2" and record["filters"] == [0, 7] and "weights" not in record
