"""dcgan_tf.analysis.visualize: option names, sweep dimensions and arithmetic parsing, and every
option of visualize() on a tiny trained run (16x16 RGB, z_dim 4) and a tiny conditional MNIST-like run (28x28, 10
digits): the files, their pixel sizes, GIF frame counts, and the z's and labels each option asks the model for.

The tiny runs' generators barely moved from their N(0, 0.02) start, so every image would be the same grey and a
GIF's frames identical; `spread_weights` gives the loaded generator wider weights so frames differ.
"""

import math
import os

import numpy as np
import pytest
from PIL import Image

from conftest import gif_info, make_mnist, png_size, tiny_config, write_images
from dcgan_tf.analysis import visualize as vis
from dcgan_tf.analysis.visualize import VisualizeOptions, visualize
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.images import save_image
from dcgan_tf.runs.folders import RunError
from dcgan_tf.runs.trained import load_trained
from dcgan_tf.training.loop import train

FPS = 10  # 100 ms a frame, a whole number of the GIF's hundredths


# ---------------------------------------------------------------------------------------------- helpers
class Recorder:
    """Stands in for the model: passes generate() on and records every (z, labels) asked for."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __getattr__(self, name):  # the rest of the model (its discriminator) as it is
        return getattr(self.model, name)

    def generate(self, z, labels=None, training=False):
        self.calls.append((np.asarray(z), None if labels is None else np.asarray(labels)))
        return self.model.generate(z, labels, training=training)


def spread_weights(model, seed=0):
    """Generator kernels ~ N(0, 1/fan) instead of N(0, 0.02): outputs that vary visibly with z."""
    rng = np.random.default_rng(seed)
    for variable in model.generator.weights:
        if len(variable.shape) >= 2:
            fan = int(np.prod(variable.shape[:-1]))
            variable.assign(rng.normal(0, 1 / math.sqrt(fan), variable.shape).astype("float32"))


def draw(run, **options):
    """visualize() on the already-loaded run, recording the model's inputs: (paths, recorder)."""
    config, (saved, model, step) = run
    recorder = Recorder(model)
    paths = visualize(config, VisualizeOptions(fps=FPS, **options), (saved, recorder, step))
    return paths, recorder


def assert_gif(path, size, frames):
    assert os.path.isfile(path) and path.endswith(".gif")
    assert gif_info(path) == (size, frames, frames * 1000 // FPS)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(config, (saved, model, step)) of a 2-step run on 8 random 16x16 RGB images; grids 2x3, z_dim 4, seed 3."""
    tmp = tmp_path_factory.mktemp("run")
    write_images(tmp / "pics", 8)
    config = tiny_config(tmp, tmp / "pics", z_dim=4, sample_freq=1)
    train(config)
    saved, model, step = load_trained(config)
    spread_weights(model)
    return config, (saved, model, step)


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """A conditional run (y_dim 10, 28x28 grayscale) on 17 fake MNIST digits; grids 10x3."""

    tmp = tmp_path_factory.mktemp("mnist")
    make_mnist(tmp / "data")
    config = Config(dataset="mnist", data_dir=str(tmp / "data"), output_height=28, batch_size=8, epoch=1, z_dim=4,
                    gf_dim=4, df_dim=4, gfc_dim=16, dfc_dim=16, grid_cols=3, verbose=0, sample_freq=100,
                    checkpoint_dir=str(tmp / "ck"), sample_dir=str(tmp / "s")).resolved()
    train(config)
    saved, model, step = load_trained(config)
    spread_weights(model)
    return config, (saved, model, step)


# ---------------------------------------------------------------------------------------------- option names
def test_numbers_and_names_map_to_the_same_option():
    for number, name in enumerate(["grid", "sweep", "random_sweep_gif", "sweep_gif", "merged_gif"]):
        assert vis.option_name(number) == vis.option_name(str(number)) == vis.option_name(name) == name
        assert vis.option_name(name.upper()) == name
        assert VisualizeOptions(option=number) == VisualizeOptions(option=name)
    for name in ("interpolate", "arithmetic", "progress"):
        assert vis.option_name(name) == name
    assert vis.option_name("merged-gif") == "merged_gif"


@pytest.mark.parametrize("bad", [5, "-1", "7", "sweeps", ""])
def test_unknown_option_lists_the_choices(bad):
    with pytest.raises(ValueError) as info:
        vis.option_name(bad)
    assert info.value.field == "visualize_option"
    for choice in ("0 grid", "1 sweep", "2 random_sweep_gif", "3 sweep_gif", "4 merged_gif", "interpolate",
                   "arithmetic", "progress"):
        assert choice in str(info.value)


@pytest.mark.parametrize("options, flag", [
    (dict(option="nope"), "visualize_option"), (dict(steps=1), "visualize_steps"), (dict(walks=1), "walks"),
    (dict(num_samples=0), "num_samples"), (dict(interpolation="cubic"), "interpolation"), (dict(fps=0), "fps"),
    (dict(label=-1), "label"), (dict(arith="1,2 +"), "arith"), (dict(dims="3-1"), "sweep_dims"),
    (dict(dims=0), "sweep_dims"), (dict(max_frames=1), "max_frames"),
])
def test_bad_options_name_their_flag(options, flag):
    with pytest.raises(ConfigError) as info:
        VisualizeOptions(**options)
    assert info.value.field == flag


# ---------------------------------------------------------------------------------------------- pure z helpers


def test_parse_and_select_dims():
    assert vis.parse_dims("all") == "all" and vis.parse_dims("12") == 12
    assert vis.parse_dims("0-3,7") == (0, 1, 2, 3, 7) and vis.parse_dims("7,") == (7,)
    for bad in ("x", "0", "3-1", ","):
        with pytest.raises(ConfigError, match="sweep_dims"):
            vis.parse_dims(bad)
    assert vis.select_dims(None, 100, "sweep") == list(range(vis.DEFAULT_SWEEP_DIMS))
    assert vis.select_dims(None, 100, "merged_gif") == list(range(100))
    assert vis.select_dims(None, 100, "merged_gif", rows=10) == list(range(vis.DEFAULT_SWEEP_DIMS))
    assert vis.select_dims(50, 4, "sweep_gif") == [0, 1, 2, 3]
    picked = vis.select_dims(5, 100, "random_sweep_gif", seed=3)
    assert len(set(picked)) == 5 and picked == vis.select_dims(5, 100, "random_sweep_gif", seed=3)
    assert picked != list(range(5))
    with pytest.raises(ConfigError, match="dimension 4 is out of range.*0-3"):
        vis.select_dims((1, 4), 4, "sweep")


# ---------------------------------------------------------------------------------------------- files


# ---------------------------------------------------------------------------------------------- on a run
@pytest.mark.slow
def test_grid_option_sizes_and_individual_pngs(run):
    paths, recorder = draw(run, option=0)
    assert len(paths) == 1 and os.path.basename(paths[0]) == "visualize_grid_00000002.png"
    assert png_size(paths[0]) == (3 * 16, 2 * 16)
    paths, recorder = draw(run, option="grid", num_samples=7, save_individual=True)
    assert png_size(paths[0]) == (3 * 16, 3 * 16)  # 7 samples in rows of 3
    assert len(paths) == 8 and all(png_size(p) == (16, 16) for p in paths[1:])
    assert os.path.basename(paths[-1]) == "sample_0006.png"
    assert recorder.calls[0][0].shape == (7, 4) and np.abs(recorder.calls[0][0]).max() <= 1
    with pytest.raises(ConfigError, match="7 samples do not fit a 2x3 grid"):
        draw(run, num_samples=7, grid_rows=2)


def test_visualize_loads_the_run_itself(run):
    config, _ = run
    paths = visualize(config, VisualizeOptions(option="grid", grid_cols=2))
    assert png_size(paths[0]) == (2 * 16, 2 * 16)


def test_sweep_grids_vary_one_dimension_per_row(run):
    paths, recorder = draw(run, option=1, steps=5)
    assert [os.path.basename(p) for p in paths] == [f"sweep_dim{d:03d}_00000002.png" for d in range(4)]
    assert all(png_size(p) == (5 * 16, 2 * 16) for p in paths)  # a row per base z, a column per value
    values = vis.sweep_values("uniform_signed", 5)
    for dim, (z, _) in enumerate(recorder.calls):
        rows = z.reshape(2, 5, 4)
        for row in rows:
            np.testing.assert_array_equal(row[:, dim], values)
            others = np.delete(row, dim, axis=1)
            assert (others == others[0]).all()
        assert not np.allclose(rows[0], rows[1])  # two different bases


def test_sweep_gifs(run):
    paths, recorder = draw(run, option=3, steps=5, dims="1,3")
    assert [os.path.basename(p) for p in paths] == ["sweep_dim001_00000002.gif", "sweep_dim003_00000002.gif"]
    for path in paths:
        assert_gif(path, (16, 16), 2 * 5 - 2)  # forward and back
    z = recorder.calls[0][0]
    assert (np.delete(z, 1, axis=1) == 0).all()  # from z = 0

    paths, recorder = draw(run, option="random_sweep_gif", steps=4, dims=2)
    assert len(paths) == 2 and all(os.path.basename(p).startswith("random_sweep_dim") for p in paths)
    for path, (z, _) in zip(paths, recorder.calls):
        assert_gif(path, (16, 16), 6)
        dim = int(os.path.basename(path)[16:19])
        np.testing.assert_allclose(z[:, dim], [-1, -1 / 3, 1 / 3, 1], rtol=1e-6)
        small = np.delete(z, dim, axis=1)
        assert (small == small[0]).all() and 0 < np.abs(small).max() <= 0.2


def test_merged_gif_holds_every_dimension(run):
    paths, recorder = draw(run, option=4, steps=4)
    assert [os.path.basename(p) for p in paths] == ["merged_sweep_00000002.gif"]
    assert_gif(paths[0], (2 * 16, 2 * 16), 6)  # 4 dimensions in a 2x2 frame
    z = recorder.calls[0][0].reshape(4, 4, 4)  # [value, dimension, z]
    for dim in range(4):
        np.testing.assert_allclose(z[:, dim, dim], vis.sweep_values("uniform_signed", 4))


def test_interpolate_walks_a_closed_tour(run):
    paths, recorder = draw(run, option="interpolate", walks=3, steps=4)
    png, gif = paths
    assert os.path.basename(png) == "interpolate_slerp_00000002.png"
    assert png_size(png) == (4 * 16, 3 * 16)  # one row per walk
    assert_gif(gif, (16, 16), 3 * 3)  # 3 walks of 3 new points each
    walks = recorder.calls[0][0].reshape(3, 4, 4)
    for i in range(3):
        np.testing.assert_allclose(walks[i, -1], walks[(i + 1) % 3, 0], atol=1e-6)
    np.testing.assert_allclose(recorder.calls[1][0], np.concatenate(walks[:, :-1]), atol=1e-6)
    paths, _ = draw(run, option="interpolate", interpolation="linear", walks=2, steps=3)
    assert os.path.basename(paths[0]) == "interpolate_linear_00000002.png" and png_size(paths[0]) == (48, 32)


def test_arithmetic_numbered_grid_then_group_means(run):
    paths, recorder = draw(run, option="arithmetic")
    assert [os.path.basename(p) for p in paths] == ["arithmetic_numbered_00000002.png"]
    assert png_size(paths[0]) == (3 * 64 + 2 * 2, 2 * 64 + 2)
    bank = recorder.calls[0][0]

    paths, recorder = draw(run, option="arithmetic", arith="0,1 - 2 + 3,4,5")
    numbered, figure = paths
    assert os.path.basename(figure) == "arithmetic_00000002.png"
    # rows: 3 groups + the results; columns: the sign, then max(3 samples + gap + mean, result + 8 variants)
    assert png_size(figure) == (10 * 64 + 9 * 2, 4 * 64 + 3 * 2)
    np.testing.assert_array_equal(recorder.calls[0][0], bank)  # the same samples as the numbered grid
    z = recorder.calls[1][0]
    assert z.shape == (3 + 1 + 8, 4)
    np.testing.assert_allclose(z[:3], [bank[[0, 1]].mean(0), bank[2], bank[3:6].mean(0)], rtol=1e-6)
    result = bank[[0, 1]].mean(0) - bank[2] + bank[3:6].mean(0)
    np.testing.assert_allclose(z[3], result, rtol=1e-5, atol=1e-6)
    noise = z[4:] - result
    assert np.abs(noise).max() <= 0.25 + 1e-6 and np.abs(noise).max() > 0.05
    with pytest.raises(ConfigError, match="sample 6 is not on the numbered grid"):
        draw(run, option="arithmetic", arith="6 - 1")


def test_numbered_grid_is_arithmetics_numbered_grid(run):
    """grid --numbered: the grid's samples (its z) enlarged and numbered: the picture forget's boxes are drawn on, the
    same as arithmetic's numbered grid."""
    paths, recorder = draw(run, option="grid", numbered=True)
    assert [os.path.basename(p) for p in paths] == ["visualize_grid_numbered_00000002.png"]
    plain, plain_recorder = draw(run, option="grid")
    numbered, arithmetic_recorder = draw(run, option="arithmetic")
    np.testing.assert_array_equal(recorder.calls[0][0], plain_recorder.calls[0][0])
    np.testing.assert_array_equal(recorder.calls[0][0], arithmetic_recorder.calls[0][0])
    with Image.open(paths[0]) as mine, Image.open(numbered[0]) as theirs:
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    with pytest.raises(ConfigError, match="numbered: numbers the grid"):
        draw(run, option="sweep", numbered=True)


def test_progress_from_the_training_grids(run, tmp_path):
    config, _ = run
    paths = draw(run, option="progress")[0]
    assert [os.path.basename(p) for p in paths] == ["progress.gif", "progress_sheet.png"]
    size, frames, duration = gif_info(paths[0])
    assert size == (3 * 16, 2 * 16) and duration == 2 * 100  # grids of steps 1 and 2 (near-identical, may merge)

    folder = tmp_path / "samples"
    rng = np.random.default_rng(0)
    for step, shape in ((10, (32, 48, 3)), (20, (32, 48, 3)), (30, (48, 48, 3)), (40, (32, 48, 3))):
        save_image(rng.integers(0, 256, shape, dtype=np.uint8), str(folder / f"train_{step:08d}.png"))
    (folder / "test_00000040.png").write_bytes(b"not a training grid")
    gif, sheet = vis.write_progress(str(folder), fps=FPS)
    assert_gif(gif, (48, 48), 4)  # padded to the largest grid
    assert png_size(sheet) == (2 * 48 + 2, 2 * (48 + vis.CAPTION_HEIGHT) + 2)
    gif, _ = vis.write_progress(str(folder), fps=FPS, max_frames=3)
    assert gif_info(gif)[1] == 3  # steps 10, 30 (nearest the middle), 40

    with pytest.raises(RunError, match="no training grids"):
        vis.write_progress(str(tmp_path / "empty"))


def test_label_needs_a_conditional_run(run):
    with pytest.raises(ConfigError, match="not conditional") as info:
        draw(run, label=3)
    assert info.value.field == "label"


# ---------------------------------------------------------------------------------------------- conditional run
@pytest.mark.slow
def test_conditional_grids_have_one_row_per_digit(mnist_run):
    paths, recorder = draw(mnist_run, option="grid")
    assert png_size(paths[0]) == (3 * 28, 10 * 28)
    np.testing.assert_array_equal(recorder.calls[0][1].argmax(1), np.arange(30) // 3)
    paths, recorder = draw(mnist_run, option="sweep", dims="0,", steps=3)
    assert png_size(paths[0]) == (3 * 28, 10 * 28)
    np.testing.assert_array_equal(recorder.calls[0][1].argmax(1), np.arange(30) // 3)

    paths, recorder = draw(mnist_run, option="grid", label=7)
    assert os.path.basename(paths[0]) == "visualize_grid_label7_00000003.png"
    assert (recorder.calls[0][1].argmax(1) == 7).all() and recorder.calls[0][1].sum() == 30
    with pytest.raises(ConfigError, match="0-9"):
        draw(mnist_run, label=10)


def test_conditional_gifs_show_every_digit(mnist_run):
    paths, recorder = draw(mnist_run, option="sweep_gif", dims="2,", steps=3)
    assert_gif(paths[0], (10 * 28, 28), 4)  # the ten digits side by side
    np.testing.assert_array_equal(recorder.calls[0][1].argmax(1), np.tile(np.arange(10), 3))

    paths, _ = draw(mnist_run, option="merged_gif", dims=2, steps=3)
    assert_gif(paths[0], (2 * 28, 10 * 28), 4)  # a row per digit, a column per dimension

    paths, _ = draw(mnist_run, option="merged_gif", dims=2, steps=3, label=5)
    assert os.path.basename(paths[0]) == "merged_sweep_label5_00000003.gif"
    assert_gif(paths[0], (2 * 28, 28), 4)

    paths, recorder = draw(mnist_run, option="arithmetic", num_samples=6, arith="0 - 1 + 5")
    assert png_size(paths[0]) == (3 * 84 + 2 * 2, 2 * 84 + 2)  # 28 px -> x3
    assert (recorder.calls[1][1].argmax(1) == 0).all()  # means and results drawn with sample 0's digit


# ------------------------------------------------------------------------------- D's features and projected z
def test_d_features_draws_trained_above_untrained_d(run):
    from dcgan_tf.analysis.d_features import picture_size

    paths, _ = draw(run, option="d_features", filters=3, top=4)
    assert [os.path.basename(p) for p in paths] == ["d_features_00000002.png"]
    height, width = picture_size(16, 16, filters=3, top=4)
    assert png_size(paths[0]) == (width, height)


def test_d_features_refuses_a_conditional_run(mnist_run):
    with pytest.raises(ConfigError, match="d_features reads an unconditional D") as error:
        draw(mnist_run, option="d_features")
    assert error.value.field == "visualize_option"


def save_z(path, z, z_dist="uniform_signed"):
    np.savez(path, z=np.asarray(z, np.float32), z_dist=np.array(z_dist), label=np.array(-1))
    return str(path)


def test_interpolate_tours_the_z_files_in_order(run, tmp_path):
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
    files = [save_z(tmp_path / "a.npz", points[:1]), save_z(tmp_path / "b.npz", points[1:])]  # a bank of two
    paths, recorder = draw(run, option="interpolate", steps=4, z_files=files)
    assert png_size(paths[0]) == (4 * 16, 3 * 16)  # one walk per file z, closed
    walks = recorder.calls[0][0].reshape(3, 4, 4)
    np.testing.assert_allclose(walks[:, 0], points, atol=1e-6)  # each walk starts at a projected z
    np.testing.assert_allclose(walks[2, -1], points[0], atol=1e-6)


def test_arithmetic_numbers_the_z_files(run, tmp_path):
    points = np.random.default_rng(1).uniform(-1, 1, (4, 4)).astype(np.float32)
    files = [save_z(tmp_path / "bank.npz", points)]
    paths, recorder = draw(run, option="arithmetic", arith="0 - 1 + 2", z_files=files)
    np.testing.assert_array_equal(recorder.calls[0][0], points)
    np.testing.assert_allclose(recorder.calls[1][0][3], points[0] - points[1] + points[2], rtol=1e-5, atol=1e-6)
    assert len(paths) == 2


def test_a_conditional_run_draws_z_files_with_their_label(mnist_run, tmp_path):
    points = np.random.default_rng(2).uniform(-1, 1, (2, 4)).astype(np.float32)
    sevens = []
    for i in range(2):
        path = tmp_path / f"seven{i}.npz"
        np.savez(path, z=points[i:i + 1], z_dist=np.array("uniform_signed"), label=np.array(7))
        sevens.append(str(path))
    paths, recorder = draw(mnist_run, option="interpolate", steps=3, z_files=sevens)
    assert all(np.argmax(labels, axis=1).tolist() == [7] * len(labels) for _, labels in recorder.calls)
    unlabelled = save_z(tmp_path / "none.npz", points[:1])
    with pytest.raises(ConfigError, match="must share one label 0-9 .they hold none, 7") as error:
        draw(mnist_run, option="interpolate", z_files=sevens + [unlabelled])
    assert error.value.field == "z_files"
    _, recorder = draw(mnist_run, option="interpolate", steps=3, z_files=sevens + [unlabelled], label=2)
    assert np.argmax(recorder.calls[0][1], axis=1).tolist() == [2] * 9


def test_z_files_are_checked(run, tmp_path):
    with pytest.raises(ConfigError, match="not a file") as error:
        VisualizeOptions(option="interpolate", z_files=[str(tmp_path / "none.npz")])
    assert error.value.field == "z_files"
    with pytest.raises(ConfigError, match="--visualize_option grid draws its own"):
        VisualizeOptions(option="grid", z_files=[save_z(tmp_path / "a.npz", np.zeros((1, 4)))])
    wrong = save_z(tmp_path / "wide.npz", np.zeros((2, 9)))
    with pytest.raises(ConfigError, match="wide.npz") as error:
        draw(run, option="interpolate", z_files=[wrong])
    assert error.value.field == "z_files"
    other = save_z(tmp_path / "normal.npz", np.zeros((2, 4)), z_dist="normal01")
    with pytest.raises(ConfigError, match="normal.npz"):
        draw(run, option="interpolate", z_files=[other])
    one = save_z(tmp_path / "one.npz", np.zeros((1, 4)))
    with pytest.raises(ConfigError, match="at least two z"):
        draw(run, option="interpolate", z_files=[one])
