"""Projecting real images into z: the optimisation finds a known z, its restarts and determinism, the files it
writes, and reading them back as z banks."""

import os

import numpy as np
import pytest
from PIL import Image

from conftest import gif_info, png_size, run_main
from dcgan_tf.analysis import projection
from dcgan_tf.config import Config
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.core.model import DCGAN
from dcgan_tf.core.networks import build_discriminator, build_generator
from dcgan_tf.data.loading import DataError, ImageSpec, decode_image
from dcgan_tf.images import to_uint8

Z_DIM = 8
GAIN = 3.0  # He-like kernels this much larger than N(0, 0.02): an untrained G whose images differ clearly with z


def tiny_config(tmp_path, **overrides) -> Config:
    values = dict(dataset=str(tmp_path / "pics"), output_height=16, z_dim=Z_DIM, gf_dim=4, df_dim=4, c_dim=3, seed=1,
                  checkpoint_dir=str(tmp_path / "checkpoints"), sample_dir=str(tmp_path / "samples"))
    values.update(overrides)
    return Config(**values).resolved()


def strengthen(variables, seed=0):
    """Give a generator's kernels He-like weights times GAIN (seeded), so G(z) spans [-1, 1] and depends on z.

    Dense kernels are [in, out]; G's transposed-conv kernels [k, k, out, in].
    """
    rng = np.random.default_rng(seed)
    for variable in variables:
        shape = tuple(variable.shape)
        if len(shape) > 1:
            fan_in = shape[0] if len(shape) == 2 else shape[0] * shape[1] * shape[3]
            variable.assign(rng.normal(0.0, GAIN / np.sqrt(fan_in), shape).astype(np.float32))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    built = build_dcgan(tiny_config(tmp_path_factory.mktemp("run")))
    strengthen(built.generator.trainable_variables)
    return built


def known_targets(model, count=3, seed=5):
    """(z* [count, z_dim] inside U(-0.8, 0.8), G(z*)) with the model's own generator."""
    z = np.random.default_rng(seed).uniform(-0.8, 0.8, (count, Z_DIM)).astype(np.float32)
    return z, np.asarray(model.generate(z))


def pixel_errors(model, z, targets, one_hot=None):
    """Mean squared error of G(z) [N, R, z_dim] (with one-hot labels [N, y_dim]) against targets [N, ...] -> [N, R]."""
    count, restarts = z.shape[:2]
    labels = None if one_hot is None else np.repeat(one_hot, restarts, axis=0)
    images = np.asarray(model.generate(z.reshape(count * restarts, -1), labels))
    images = images.reshape(count, restarts, *targets.shape[1:])
    return np.mean((images - targets[:, None]) ** 2, axis=(2, 3, 4))


# ------------------------------------------------------------------------------------------------ project
def test_projection_finds_a_z_that_remakes_a_generated_image(model):
    _, targets = known_targets(model)
    found = projection.project(model, targets, steps=150, restarts=4, learning_rate=0.05, seed=0)
    start = pixel_errors(model, found.start_z, targets)
    assert start.min() > 0.02  # every start is visibly wrong
    assert found.z.shape == (3, Z_DIM) and found.z.dtype == np.float32 and found.images.shape == targets.shape
    assert np.all(found.pixel_error < 1e-3)
    assert np.all(found.pixel_error < start.min(axis=1) / 100)
    np.testing.assert_allclose(found.pixel_error, np.mean((found.images - targets) ** 2, axis=(1, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(found.images, model.generate(found.z), atol=1e-5)
    # history: step 0, every 150 // 20 = 7 steps, and the last; the winners' images, ending on the result
    steps = [s for s, _ in found.history]
    assert steps == list(range(0, 150, 7)) + [150]
    np.testing.assert_array_equal(found.history[-1][1], found.images)
    winners_start = found.start_z[np.arange(3), found.restart]
    np.testing.assert_allclose(found.history[0][1], model.generate(winners_start), atol=1e-5)


def test_the_same_seed_gives_the_same_z_and_another_seed_other_starts(model):
    _, targets = known_targets(model, count=2)
    first = projection.project(model, targets, steps=15, restarts=2, seed=4, record_every=5)
    again = projection.project(model, targets, steps=15, restarts=2, seed=4, record_every=5)
    np.testing.assert_array_equal(first.z, again.z)
    np.testing.assert_array_equal(first.loss, again.loss)
    assert [s for s, _ in first.history] == [0, 5, 10, 15]
    other = projection.project(model, targets, steps=0, restarts=2, seed=5)
    assert not np.allclose(other.start_z, first.start_z)


def test_the_winner_is_the_restart_of_least_final_loss_each_as_if_run_alone(model):
    _, targets = known_targets(model, count=2, seed=8)
    found = projection.project(model, targets, steps=30, restarts=3, seed=2)
    assert found.restart_losses.shape == (2, 3) and found.start_z.shape == (2, 3, Z_DIM)
    np.testing.assert_array_equal(found.restart, np.argmin(found.restart_losses, axis=1))
    np.testing.assert_array_equal(found.loss, found.restart_losses.min(axis=1))
    for r in range(3):  # one restart at a time, from the same starts: the same final losses
        alone = projection.project(model, targets, steps=30, start_z=found.start_z[:, r:r + 1])
        np.testing.assert_allclose(alone.loss, found.restart_losses[:, r], rtol=1e-3, atol=1e-7)
        for n in np.flatnonzero(found.restart == r):
            np.testing.assert_allclose(alone.z[n], found.z[n], atol=1e-4)


@pytest.mark.parametrize("z_dist, low, high", [("uniform_signed", -1.0, 1.0), ("uniform_unsigned", 0.0, 1.0)])
def test_z_stays_inside_a_uniform_distributions_support(tmp_path, z_dist, low, high):
    model = build_dcgan(tiny_config(tmp_path, z_dist=z_dist))
    strengthen(model.generator.trainable_variables)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], (2, Z_DIM))
    outside = ((low + high) / 2 + 1.5 * (high - low) * signs).astype(np.float32)  # every dimension past an edge
    found = projection.project(model, np.asarray(model.generate(outside)), steps=25, restarts=2, learning_rate=0.2,
                               record_every=25)
    assert found.z.min() >= low and found.z.max() <= high
    assert np.any(np.isclose(found.z, low) | np.isclose(found.z, high))  # it pushed at the edges


def test_targets_must_be_float_images_of_the_generators_shape(model):
    with pytest.raises(ValueError, match="float"):
        projection.project(model, np.zeros((1, 16, 16, 3), np.uint8), steps=1)
    with pytest.raises(ValueError, match=r"\[N, 16, 16, 3\]"):
        projection.project(model, np.zeros((1, 8, 8, 3), np.float32), steps=1)
    with pytest.raises(ValueError, match="steps"):
        projection.project(model, np.zeros((1, 16, 16, 3), np.float32), steps=1, restarts=0)


def test_a_conditional_model_needs_one_label_per_target(model, tmp_path):
    y_dim = 3
    generator = build_generator(16, 16, 1, Z_DIM, gf_dim=4, y_dim=y_dim, gfc_dim=16)
    discriminator = build_discriminator(16, 16, 1, df_dim=4, y_dim=y_dim, dfc_dim=16)
    conditional = DCGAN(generator, discriminator, Z_DIM, y_dim=y_dim, seed=0)
    strengthen(generator.trainable_variables)
    z = np.random.default_rng(1).uniform(-0.8, 0.8, (2, Z_DIM)).astype(np.float32)
    labels = np.array([2, 0])
    one_hot = np.eye(y_dim, dtype=np.float32)[labels]
    targets = np.asarray(conditional.generate(z, one_hot))
    for wrong, match in ((None, "conditional"), ([1], "one per target"), ([0, 3], "0-2"), ([0.5, 1.0], "integer")):
        with pytest.raises(ValueError, match=match):
            projection.project(conditional, targets, wrong, steps=1)
    with pytest.raises(ValueError, match="unconditional"):
        projection.project(model, known_targets(model, 1)[1], labels=[0], steps=1)
    found = projection.project(conditional, targets, labels, steps=60, restarts=2)
    start = pixel_errors(conditional, found.start_z, targets, one_hot)
    assert np.all(found.pixel_error < start.min(axis=1) / 10)
    # the label goes into the .npz and comes back with its z
    path = str(tmp_path / "digit.png")
    Image.fromarray(to_uint8(targets[0])[..., 0]).save(path)
    config = tiny_config(tmp_path, c_dim=1, y_dim=y_dim)
    written = projection.write_projection(config, conditional, 3, [path], labels=2, steps=5, restarts=1)
    z, read_labels = projection.read_z_files(written[1], Z_DIM)
    assert z.shape == (1, Z_DIM) and read_labels == [2]
    with np.load(written[1]) as saved:
        assert int(saved["y_dim"]) == y_dim and int(saved["label"]) == 2


def test_the_ema_generator_is_the_one_projected(tmp_path):
    model = build_dcgan(tiny_config(tmp_path, ema=0.999))
    # strong weights in the EMA copy only: G itself stays at its tiny initial weights
    strengthen([average for average, variable in zip(model.ema_weights, model.generator.variables)
                if variable.trainable])
    z = np.random.default_rng(2).uniform(-0.8, 0.8, (1, Z_DIM)).astype(np.float32)
    target = np.asarray(model.generate(z))  # sampling uses the EMA generator
    assert np.std(target) > 0.1 and np.std(np.asarray(model.generator(z, training=False))) < 0.01
    found = projection.project(model, target, steps=100, restarts=2)
    assert found.pixel_error[0] < 0.01


# ------------------------------------------------------------------------------------------------ files
def test_read_target_decodes_as_training_does_and_names_a_bad_file(tmp_path):
    config = tiny_config(tmp_path)
    path = str(tmp_path / "photo.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), np.uint8)).save(path)
    image = projection.read_target(path, config)
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, decode_image(path, ImageSpec(16, 16), 3))
    assert projection.read_target(path, tiny_config(tmp_path, c_dim=1)).shape == (16, 16, 1)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match="broken.png"):
        projection.read_target(str(broken), config)
    with pytest.raises(DataError, match="missing.png"):
        projection.read_target(str(tmp_path / "missing.png"), config)


def test_write_projection_writes_picture_z_and_gif_that_read_back(model, tmp_path):
    config = tiny_config(tmp_path)
    _, targets = known_targets(model, count=2, seed=11)
    paths = []
    for folder, image in zip(("a", "b"), to_uint8(targets)):  # the same file name twice
        os.makedirs(tmp_path / folder)
        paths.append(str(tmp_path / folder / "face.png"))
        Image.fromarray(image).save(paths[-1])
    written = projection.write_projection(config, model, 42, paths, steps=20, restarts=2, seed=3)
    names = [os.path.basename(p) for p in written]
    assert names == ["project_face.png", "project_face.npz", "project_face.gif",
                     "project_face_2.png", "project_face_2.npz", "project_face_2.gif"]
    assert all(os.path.dirname(p) == config.sample_path and os.path.isfile(p) for p in written)
    width, height = png_size(written[0])
    assert width > 6 * 64 and height > 64  # target, progress frames and result, upscaled, with captions
    (gif_width, _), frames, _ = gif_info(written[2])
    assert gif_width == 2 * 64 + 2 and frames >= 2
    with np.load(written[1]) as saved:
        assert saved["z"].shape == (1, Z_DIM) and saved["z"].dtype == np.float32
        assert str(saved["z_dist"]) == "uniform_signed" and int(saved["z_dim"]) == Z_DIM
        assert int(saved["label"]) == -1 and int(saved["step"]) == 42 and int(saved["y_dim"]) == 0
        assert str(saved["source"]) == os.path.abspath(paths[0]) and float(saved["pixel_error"]) >= 0
    z, labels = projection.read_z_files([written[1], written[4]], Z_DIM, "uniform_signed")
    decoded = np.stack([projection.read_target(p, config) for p in paths]).astype(np.float32) / 127.5 - 1.0
    expected = projection.project(model, decoded, steps=20, restarts=2, seed=3)
    np.testing.assert_array_equal(z, expected.z)
    assert z.dtype == np.float32 and labels == [None, None]


def test_read_z_files_reads_banks_and_names_the_file_it_cannot_use(tmp_path):
    bank = str(tmp_path / "bank.npz")
    np.savez(bank, z=np.ones((3, Z_DIM), np.float64), label=np.array([1, -1, 4]), z_dist=np.array("normal01"))
    z, labels = projection.read_z_files(bank, Z_DIM)
    assert z.shape == (3, Z_DIM) and z.dtype == np.float32 and labels == [1, None, 4]
    with pytest.raises(ValueError, match="bank.npz.*normal01"):
        projection.read_z_files([bank], Z_DIM, "uniform_signed")
    with pytest.raises(ValueError, match=r"bank.npz holds 8-dimensional z, but this run's z_dim is 100"):
        projection.read_z_files([bank], 100)
    keyless = str(tmp_path / "keyless.npz")
    np.savez(keyless, latent=np.zeros((1, Z_DIM)))
    with pytest.raises(ValueError, match="keyless.npz has no 'z'"):
        projection.read_z_files([bank, keyless], Z_DIM)
    with pytest.raises(ValueError, match="nowhere.npz"):
        projection.read_z_files([str(tmp_path / "nowhere.npz")], Z_DIM)
    with pytest.raises(ValueError, match="no z files"):
        projection.read_z_files([], Z_DIM)


# ---------------------------------------------------------------------------------------------- main.py
@pytest.mark.slow
def test_project_and_walk_from_the_command_line(tmp_path):
    """--project on a trained run writes each image's picture, z and GIF; --z_files walks between them; bad
    projection flags fail before any work, naming the flag."""
    from conftest import write_images

    write_images(tmp_path / "pics", 8)
    flags = ["--dataset", "pics", "--data_dir", ".", "--input_fname_pattern", "*.png", "--output_height", "16",
             "--batch_size", "4", "--epoch", "1", "--z_dim", "4", "--gf_dim", "4", "--df_dim", "4", "--verbose", "0"]
    assert run_main(*flags, "--train", cwd=tmp_path).returncode == 0
    images = "pics/img_000.png,pics/img_001.png"
    result = run_main(*flags, "--project", images, "--project_steps", "5", "--project_restarts", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "samples" / "pics_b4_16x16_z4_ga2_gf4_df4"
    for stem in ("img_000", "img_001"):
        for suffix in (".png", ".npz", ".gif"):
            assert f"wrote {os.path.join('samples', folder.name, 'project_' + stem + suffix)}" in result.stdout
    z, _ = projection.read_z_files([str(folder / "project_img_000.npz"), str(folder / "project_img_001.npz")], 4)
    assert z.shape == (2, 4)
    walk = run_main(*flags, "--visualize", "--visualize_option", "interpolate", "--visualize_steps", "3",
                    "--z_files", f"{folder}/project_img_000.npz,{folder}/project_img_001.npz", cwd=tmp_path)
    assert walk.returncode == 0, walk.stderr
    assert png_size(str(folder / "interpolate_slerp_00000002.png")) == (3 * 16, 2 * 16)
    for bad, flag in ((["--project", images, "--project_steps", "0"], "--project_steps"),
                      (["--project", "pics/none.png"], "--project"),
                      (["--project", images, "--label", "1"], "--label"),
                      (["--project_restarts", "2"], "--project_restarts")):
        result = run_main(*flags, *bad, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith(f"main.py: error: {flag}:" if flag != "--project_"
                                                                   "restarts" else "main.py: error: --project_restarts "
                                                                   "belongs to --project"), result.stderr
