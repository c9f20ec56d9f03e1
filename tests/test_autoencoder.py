"""Autoencoder preprocessing: the model learns, weights and reconstructions are cached and invalidated correctly,
the GAN swaps data at the right epoch (also across a resume), dedupe drops copies and keeps distinct images."""

import csv
import dataclasses
import os

import numpy as np
import pytest
from PIL import Image

from conftest import ae_config, smooth_images, tiny_config
from dcgan_tf import files
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.data import datasets
from dcgan_tf.preprocess import pictures, preprocessing
from dcgan_tf.preprocess import autoencoder as ae
from dcgan_tf.training import loop
from dcgan_tf.training.loop import train


def write_smooth_folder(folder, count, seed=0, copies=()):
    """smooth_images as PNG files img_000.png...; `copies` (i, j) also writes img_i again as copy_of_<j>.png."""
    os.makedirs(folder, exist_ok=True)
    images = smooth_images(count, seed=seed)
    for i, image in enumerate(images):
        Image.fromarray(image).save(os.path.join(folder, f"img_{i:03d}.png"))
    for i, name in copies:
        Image.fromarray(images[i]).save(os.path.join(folder, f"{name}.png"))
    return str(folder)


def test_model_shapes_stages_and_output_range():
    assert [ae.conv_stages(s, s) for s in (64, 32, 28, 16, 8)] == [4, 3, 2, 2, 1]
    assert ae.conv_stages(64, 48) == 3  # 48 -> 24 -> 12 -> 6; one more would make it 3 (< 4)
    config = Config(ae_code_dim=12, seed=1)
    model = ae.build_autoencoder(config, (16, 16, 3))
    codes, reconstructions = ae.encode_and_reconstruct(model, smooth_images(5))
    assert codes.shape == (5, 12) and codes.dtype == np.float32
    assert reconstructions.shape == (5, 16, 16, 3) and reconstructions.dtype == np.uint8
    output = model(np.zeros((2, 16, 16, 3), np.float32) + 5.0).numpy()
    assert output.min() >= -1.0 and output.max() <= 1.0  # tanh


def test_training_reduces_reconstruction_error():
    images = smooth_images(32)
    config = Config(ae_code_dim=16, ae_epochs=25, batch_size=8, seed=2, verbose=0)
    model = ae.build_autoencoder(config, images.shape[1:])

    def error():
        _, reconstructions = ae.encode_and_reconstruct(model, images)
        return float(np.mean(((reconstructions.astype(float) - images) / 127.5) ** 2))

    before = error()
    losses = ae.fit_autoencoder(model, images, config)
    after = error()
    assert len(losses) == 25 and losses[-1] < losses[0]
    assert after < 0.4 * before, (before, after)


@pytest.mark.slow
def test_weights_and_reconstructions_are_cached_and_invalidated(tmp_path, caplog):
    images = smooth_images(12)
    config = ae_config(tmp_path, tmp_path / "pics", c_dim=3)
    first = ae.autoencode(config, images)
    assert first.trained_now and not first.cache_reused and len(first.losses) == 2
    folder = os.path.join(config.checkpoint_dir, config.autoencoder_name)
    assert sorted(os.listdir(folder)) == ["autoencoder.json", "autoencoder.weights.h5", "reconstructions.npz",
                                          "run.lock"]  # the lock of its one writer

    again = ae.autoencode(config, images)  # same images, same settings: nothing is recomputed
    assert not again.trained_now and again.cache_reused
    np.testing.assert_array_equal(again.reconstructions, first.reconstructions)
    np.testing.assert_array_equal(again.codes, first.codes)

    changed = images.copy()
    changed[3] = 255 - changed[3]  # one image altered: the autoencoder retrains, the cache is rebuilt
    third = ae.autoencode(config, changed)
    assert third.trained_now and not third.cache_reused

    # A weights file that is not the one recorded (replaced, or written by a run killed before it recorded it) is
    # never trusted: the autoencoder trains again and the reconstructions follow.
    model = ae.build_autoencoder(dataclasses.replace(config, seed=99), images.shape[1:])
    model.save_weights(os.path.join(folder, ae.WEIGHTS_FILE))
    fourth = ae.autoencode(config, changed)
    assert fourth.trained_now and not fourth.cache_reused
    np.testing.assert_array_equal(fourth.reconstructions, third.reconstructions)  # same seed, same training
    with open(os.path.join(folder, ae.WEIGHTS_FILE), "wb") as handle:
        handle.write(b"damaged")
    info = files.read_json(os.path.join(folder, ae.INFO_FILE))
    info["weights"] = files.file_digest(os.path.join(folder, ae.WEIGHTS_FILE))  # recorded, but unloadable
    files.write_json(os.path.join(folder, ae.INFO_FILE), info)
    assert ae.autoencode(config, changed).trained_now

    # A torn cache file is recomputed with a warning, not a crash.
    with open(os.path.join(folder, ae.CACHE_FILE), "wb") as handle:
        handle.write(b"PK\x03\x04 torn")
    caplog.set_level("WARNING")
    fifth = ae.autoencode(config, changed)
    assert not fifth.cache_reused and "unreadable reconstruction cache" in caplog.text
    np.testing.assert_array_equal(fifth.reconstructions, fourth.reconstructions)


def test_settings_name_the_autoencoder_folder_and_the_run():
    base = Config(dataset="data/mice", preprocess="autoencoder")
    assert base.autoencoder_name == "mice_64x64_ae128_e30_lr0.001"
    assert Config(dataset="mice", ae_code_dim=32, seed=4).autoencoder_name == "mice_64x64_ae32_e30_lr0.001_s4"
    assert base.name.endswith("_ae128")
    assert Config(dataset="mice", preprocess="autoencoder", swap_epoch=5, dedupe=0.05).name.endswith(
        "_ae128_swap5_dedupe0.05")
    assert base.model_differences(dataclasses.replace(base, ae_epochs=60)) == {"ae_epochs": (30, 60)}
    assert dataclasses.replace(base, ae_epochs=60, ae_learning_rate=0.0005).name.endswith("_ae128_e60_aelr0.0005")
    assert Config(dataset="mice", dedupe=0.1).name.endswith("_ae128_dedupe0.1")  # dedupe alone uses it too
    plain = Config(dataset="mice")
    assert plain.model_differences(dataclasses.replace(plain, ae_epochs=60)) == {}  # unused: no difference


@pytest.mark.parametrize("overrides, field", [
    (dict(swap_epoch=3), "swap_epoch"),  # no preprocessing: nothing to swap from
    (dict(preprocess="autoencoder", swap_epoch=0), "swap_epoch"),
    (dict(preprocess="pca"), "preprocess"),
    (dict(ae_epochs=0), "ae_epochs"),
    (dict(ae_code_dim=0), "ae_code_dim"),
    (dict(ae_learning_rate=0.0), "ae_learning_rate"),
    (dict(dedupe=0.0), "dedupe"),
])
def test_bad_autoencoder_settings_name_the_flag(overrides, field):
    with pytest.raises(ConfigError) as error:
        Config(**overrides).validate()
    assert error.value.field == field


def test_near_duplicates_finds_copies_and_keeps_distinct_codes():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(20, 8)).astype(np.float32)
    codes = np.concatenate([codes, codes[[3]], codes[[7]] + 1e-4, codes[[3]]])  # 20: copy of 3, 21: ~7, 22: of 3
    found = ae.near_duplicates(codes, 0.05, block=7)  # small blocks: the block edges are crossed
    assert [(i, j) for i, j, _ in found] == [(20, 3), (21, 7), (22, 3)]
    assert all(distance < 0.01 for _, _, distance in found)
    assert ae.near_duplicates(codes[:20], 0.05) == []  # distinct codes all stay

    # Mostly copies: the copies are exactly 0 apart, the scale comes from the distinct codes, every copy goes.
    many = np.concatenate([np.repeat(codes[[0]], 8, axis=0), codes[1:3]]) * 37.0
    assert [i for i, _, _ in ae.near_duplicates(many, 0.05)] == list(range(1, 8))
    assert [i for i, _, _ in ae.near_duplicates(np.repeat(codes[[4]], 5, axis=0), 0.05)] == [1, 2, 3, 4]

    # A chain a - b - c with a, c apart: b goes (near a), c stays, since only kept images count.
    chain = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [50.0, 0.0], [0.0, 50.0], [50.0, 50.0]])
    assert [(i, j) for i, j, _ in ae.near_duplicates(chain, 1.5 / 50)] == [(1, 0)]


@pytest.mark.slow
def test_dedupe_drops_copied_files_names_them_and_trains_on_the_rest(tmp_path, caplog):
    folder = write_smooth_folder(tmp_path / "pics", 10, copies=[(2, "copy_of_2"), (5, "again_5")])
    caplog.set_level("INFO")
    config = tiny_config(tmp_path, folder, dedupe=0.05, ae_epochs=3, ae_code_dim=16)
    result = train(config)
    pairs = sorted((os.path.basename(d), os.path.basename(k)) for d, k, _ in result.duplicates)
    # of each group, the file found first (in name order) is kept
    assert pairs == [("img_002.png", "copy_of_2.png"), ("img_005.png", "again_5.png")]
    assert result.num_images == 10
    dropped = [d for d, _ in pairs]
    assert "dropped 2 of 12 images as near-duplicates" in caplog.text
    with open(os.path.join(result.config.checkpoint_path, "duplicates.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(os.path.basename(row["dropped"]) for row in rows) == dropped
    # dedupe alone trains on the originals
    assert result.sources == [(0, "originals")]


def csv_sources(config):
    with open(os.path.join(config.checkpoint_path, "losses.csv"), newline="") as handle:
        return [(int(row["epoch"]), row["data"]) for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_swap_feeds_reconstructions_then_originals(tmp_path, monkeypatch):
    folder = write_smooth_folder(tmp_path / "pics", 8)  # batch 4: 2 steps per epoch
    seen = []  # (first epoch, the image array) of every dataset the GAN is fed
    make_dataset = loop.loading.make_dataset
    monkeypatch.setattr(loop.loading, "make_dataset",
                        lambda data, *a, **k: seen.append((k["start_epoch"], data.images)) or make_dataset(data, *a, **k))
    result = train(ae_config(tmp_path, folder, swap_epoch=2, epoch=3))
    config = result.config
    with np.load(os.path.join(config.checkpoint_dir, config.autoencoder_name, ae.CACHE_FILE)) as cache:
        reconstructions = cache["reconstructions"]
    originals = datasets.load_training_data(config).images
    assert not np.array_equal(reconstructions, originals)
    assert result.sources == [(0, "reconstructions"), (2, "originals")]
    assert [epoch for epoch, _ in seen] == [0, 2]
    np.testing.assert_array_equal(seen[0][1], reconstructions)
    np.testing.assert_array_equal(seen[1][1], originals)
    assert csv_sources(config) == [(0, "reconstructions")] * 2 + [(1, "reconstructions")] * 2 + [(2, "originals")] * 2


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_on_that_epochs_data(tmp_path, monkeypatch):
    """Killed at step 1 (mid epoch 0, reconstructions) and at step 3 (mid epoch 1, originals), with swap_epoch 1."""
    from dcgan_tf.training import callbacks as cb

    folder = write_smooth_folder(tmp_path / "pics", 8)  # batch 4: 2 steps per epoch
    config = ae_config(tmp_path, folder, swap_epoch=1, epoch=3, ckpt_freq=1)
    original = cb.Checkpoints.save
    kill_at = [1, 3]

    def save_then_die(self, step):
        path = original(self, step)
        if kill_at and step == kill_at[0]:
            kill_at.pop(0)
            raise Interrupt()
        return path

    monkeypatch.setattr(cb.Checkpoints, "save", save_then_die)
    with pytest.raises(Interrupt):
        train(config)
    with pytest.raises(Interrupt):
        train(config)  # finishes epoch 0 on reconstructions, dies in epoch 1
    result = train(config)
    assert result.sources == [(1, "originals")] and result.step == 6
    assert csv_sources(result.config) == [(0, "reconstructions")] * 2 + [(1, "originals")] * 2 + [
        (2, "originals")] * 2


@pytest.mark.slow
def test_standalone_mode_writes_pictures_and_pngs_and_a_gan_run_reuses_it(tmp_path):
    folder = write_smooth_folder(tmp_path / "pics", 9)
    config = tiny_config(tmp_path, folder, ae_epochs=2, ae_code_dim=16)  # no --preprocess: implied
    result = preprocessing.train_autoencoder(config)
    out = os.path.join(config.sample_dir, config.autoencoder_name)
    assert result.autoencoded.trained_now
    assert sorted(os.listdir(out)) == [pictures.CODES_PNG, pictures.RECONSTRUCTIONS_PNG, "reconstructions"]
    exported = sorted(os.listdir(os.path.join(out, "reconstructions")))
    assert exported == [f"img_{i:03d}.png" for i in range(9)]
    with Image.open(os.path.join(out, "reconstructions", "img_004.png")) as image:
        np.testing.assert_array_equal(np.asarray(image), result.reconstructions.images[4])

    run = train(dataclasses.replace(config, preprocess="autoencoder"))
    assert run.sources == [(0, "reconstructions")]
    sample_files = os.listdir(run.config.sample_path)
    assert pictures.RECONSTRUCTIONS_PNG in sample_files and pictures.CODES_PNG in sample_files
    info = files.read_json(os.path.join(config.checkpoint_dir, config.autoencoder_name, ae.INFO_FILE))
    assert info["num_images"] == 9  # trained once, by the standalone mode


def test_reconstruction_picture_puts_originals_over_reconstructions(tmp_path):
    originals = smooth_images(3, size=8)
    reconstructions = 255 - originals
    path = pictures.reconstruction_pairs(originals, reconstructions, str(tmp_path / "pairs.png"), cols=4)
    picture = np.asarray(Image.open(path))
    assert picture.shape == (2 * 8 + 2, 4 * 8 + 3 * 2, 3)  # one pair of rows, 4 columns, 2-pixel padding
    np.testing.assert_array_equal(picture[:8, 10:18], originals[1])
    np.testing.assert_array_equal(picture[10:18, 10:18], reconstructions[1])
    assert (picture[:8, 30:] == 255).all()  # the unused 4th column is white


def test_pca_finds_the_main_direction_and_draws_thumbnails(tmp_path):
    rng = np.random.default_rng(1)
    t = rng.normal(size=50)
    codes = np.outer(t, [3.0, 4.0, 0.0]) + rng.normal(scale=0.01, size=(50, 3))
    positions, share = pictures.pca_2d(codes)
    assert share[0] > 0.99 and abs(abs(np.corrcoef(positions[:, 0], t)[0, 1]) - 1) < 1e-3
    path = pictures.code_scatter(codes, smooth_images(50, size=8), str(tmp_path / "codes.png"))
    with Image.open(path) as image:
        assert image.size == (1000, 1000)
        assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 50  # thumbnails drawn


def test_the_autoencoder_refuses_streamed_data_and_says_how_much_memory_it_needs(tmp_path):
    from dcgan_tf.data.loading import ImageSpec, StreamedImages

    streamed = StreamedImages([f"img_{i}.png" for i in range(1000)], ImageSpec(64, 64), 3)
    with pytest.raises(ConfigError) as error:
        preprocessing.preprocess(Config(preprocess="autoencoder"), streamed)
    assert error.value.field == "cache_limit" and "at least 12 (MB)" in error.value.message
