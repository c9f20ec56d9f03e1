"""The linear probe (DCGAN paper section 5): D's pooled conv features, the classifier, the labelled images
(class folders, INDEX.csv, MNIST), the untrained-D baseline, probe.json / metrics.jsonl, and main.py --probe with
its bad inputs.

One tiny run (16x16 RGB, gf/df 8, seed 3, 2 steps) is trained once for the module; tests that write into it work
on a copy of its folders. The initial discriminator weights of that run are recorded while it is built, so the
untrained baseline is compared with the weights the run really started from.
"""

import csv
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main, tiny_config, write_idx, write_images
from dcgan_tf import files
from dcgan_tf.analysis import probe
from dcgan_tf.analysis.plots import plot_metrics, plotted_rows
from dcgan_tf.analysis.probe import C_VALUES, ProbeOptions, fit_linear_probe, labelled_split, validation_split
from dcgan_tf.config import ConfigError
from dcgan_tf.core.networks import build_discriminator
from dcgan_tf.data import mnist
from dcgan_tf.data.loading import DataError, ImageSpec, find_labelled_files, load_labelled_images
from dcgan_tf.metrics.features import (DiscriminatorFeatures, discriminator_conv_activations,
                                       discriminator_feature_model, grid_max_pool, pooled_feature_size)
from dcgan_tf.runs import folders
from dcgan_tf.runs import trained as inference
from dcgan_tf.training import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = "tiny_probe"
SEED = 3
CLASSES = ("apple", "banana", "cherry")
PER_CLASS = 6
SPEC = ImageSpec(16, 16, False, 16, 16)


# ---------------------------------------------------------------------------------------------- helpers
def labelled_folder(folder, per_class=PER_CLASS, classes=CLASSES, seed=10):
    """One sub-folder of distinct random 16x16 PNGs per class (each class its own seed)."""
    for index, name in enumerate(classes):
        write_images(os.path.join(folder, name), per_class, seed=seed + index)
    return str(folder)


def as_set(images):
    return {image.tobytes() for image in images}


def d_weights(model):
    """{variable path: value} of a discriminator or of its feature model (which shares D's conv layers)."""
    return {w.path: np.array(w) for w in model.weights}


def same_weights(part, whole):
    """Every variable of `part` (a feature model's, or a whole D's) is in `whole` with the same value."""
    return bool(part) and all(path in whole and np.array_equal(value, whole[path]) for path, value in part.items())


def main_args(root, *extra):
    """main.py flags naming the module's run under `root` (its data folder, checkpoints and samples)."""
    return ["--dataset", os.path.join(str(root), "data", "faces"), "--input_fname_pattern", "*.png",
            "--output_height", "16", "--batch_size", "4", "--z_dim", "8", "--gf_dim", "8", "--df_dim", "8",
            "--seed", str(SEED), "--run_name", RUN, "--checkpoint_dir", os.path.join(str(root), "checkpoints"),
            "--sample_dir", os.path.join(str(root), "samples"), *extra]


def run_config(root, **overrides):
    values = dict(run_name=RUN, seed=SEED)
    values.update(overrides)
    return tiny_config(root, os.path.join(str(root), "data", "faces"), **values)


class Captured(Exception):
    """Raised by a stand-in run_probe once it has the feature extractors: nothing is fitted or written."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run (8 images, 2 steps) and a labelled folder beside it; the discriminator weights the run
    was built with, recorded before its first step."""
    root = tmp_path_factory.mktemp("probe_run")
    write_images(root / "data" / "faces", 8, seed=1)
    labelled = labelled_folder(root / "labelled")
    initial = []

    original = loop.build_dcgan

    def recording(config, strategy=None):
        model = original(config, strategy)
        initial.append(d_weights(model.discriminator))
        return model

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "build_dcgan", recording)
        result = loop.train(run_config(root))
    assert len(initial) == 1 and result.step == 2
    return dataclasses.make_dataclass("Trained", ["root", "labelled", "initial", "step"])(
        root, labelled, initial[0], result.step)


@pytest.fixture
def run_copy(trained, tmp_path):
    """The trained run's folders copied under tmp_path, for tests that write probe.json and metrics.jsonl."""
    for name in ("checkpoints", "data", "labelled"):
        shutil.copytree(trained.root / name, tmp_path / name)
    return tmp_path


# ------------------------------------------------------------------------------------------- 1. features
def numpy_grid_pool(maps, grid=4):
    """Reference: the max over each cell of np.array_split's near-equal grid, cells row by row, channels inside."""
    rows = np.array_split(np.arange(maps.shape[1]), min(grid, maps.shape[1]))
    cols = np.array_split(np.arange(maps.shape[2]), min(grid, maps.shape[2]))
    cells = [maps[:, r][:, :, c].max(axis=(1, 2)) for r in rows for c in cols]
    return np.stack(cells, axis=1).reshape(len(maps), -1)


def test_pooled_features_have_the_documented_size_and_values():
    keras.utils.set_random_seed(0)
    d = build_discriminator(32, 32, 3, df_dim=8)
    assert len(discriminator_conv_activations(d)) == 4
    size = 8 * 16 + 16 * 16 + 32 * 16 + 64 * 4  # 16x16, 8x8, 4x4 pooled to 4x4; the last map is 2x2 < 4x4
    assert pooled_feature_size(d) == size
    images = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    features = DiscriminatorFeatures(d)(images)
    assert features.shape == (5, size) and features.dtype == np.float64
    maps = discriminator_feature_model(d)([images], training=False)
    np.testing.assert_allclose(features, np.concatenate([numpy_grid_pool(np.asarray(m)) for m in maps], axis=1),
                               rtol=1e-5, atol=1e-6)
    assert pooled_feature_size(d, [3]) == 64 * 4
    last = DiscriminatorFeatures(d, [3])(images)
    assert last.shape == (5, 64 * 4)
    np.testing.assert_allclose(last, features[:, -64 * 4:], rtol=1e-5, atol=1e-6)
    uint8 = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(DiscriminatorFeatures(d)(uint8), DiscriminatorFeatures(d)(uint8 / 127.5 - 1),
                               rtol=1e-5, atol=1e-6)


def test_grid_max_pool_matches_a_numpy_reference():
    maps = np.random.default_rng(2).normal(size=(2, 6, 6, 3)).astype(np.float32)  # cells of 2, 2, 1, 1 rows/cols
    pooled = grid_max_pool(tf.constant(maps)).numpy()
    assert pooled.shape == (2, 16 * 3)
    np.testing.assert_array_equal(pooled, numpy_grid_pool(maps))
    # by hand: the top-left cell is rows 0-1, cols 0-1; the bottom-right is row 5, col 5
    np.testing.assert_array_equal(pooled[:, :3], maps[:, :2, :2].max(axis=(1, 2)))
    np.testing.assert_array_equal(pooled[:, -3:], maps[:, 5, 5])
    small = np.random.default_rng(3).normal(size=(1, 3, 2, 4)).astype(np.float32)  # smaller than the grid
    np.testing.assert_array_equal(grid_max_pool(tf.constant(small)).numpy(), small.reshape(1, -1))


# ----------------------------------------------------------------------------------------- 2. classifier
def toy_features(count, informative, seed):
    """Two classes: labels random; feature 0 = the label's sign (plus a little noise) when `informative`, else
    noise too; 9 further dimensions of noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    x = rng.normal(size=(count, 10))
    if informative:
        x[:, 0] = np.where(labels == 1, 1.0, -1.0) * (1 + rng.uniform(size=count)) + 0.1 * rng.normal(size=count)
    return x, labels


def chosen_c(x, y, seed=0):
    """Reference: the first C (strongest regularisation) of the best validation accuracy on validation_split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    fit, held = validation_split(y, seed)
    scaler = StandardScaler().fit(x[fit])
    scores = [LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x[fit]), y[fit]).score(
        scaler.transform(x[held]), y[held]) for c in C_VALUES]
    return C_VALUES[int(np.argmax(scores))]


def test_a_linear_probe_separates_separable_features_and_not_noise():
    train_x, train_y = toy_features(60, True, 0)
    test_x, test_y = toy_features(400, True, 1)
    found = fit_linear_probe(train_x, train_y, test_x, test_y, seed=0)
    assert found["accuracy"] >= 0.99 and found["error"] == pytest.approx(1 - found["accuracy"])
    assert found["c"] in C_VALUES and found["validation_accuracy"] == 1.0
    assert found["c"] == chosen_c(train_x, train_y)
    train_x, train_y = toy_features(60, False, 2)
    test_x, test_y = toy_features(600, False, 3)
    chance = fit_linear_probe(train_x, train_y, test_x, test_y, seed=0)
    assert 0.35 <= chance["accuracy"] <= 0.65 and chance["c"] in C_VALUES


def test_validation_split_holds_a_fifth_of_each_class_never_a_whole_one():
    labels = np.array([0] * 10 + [1] * 20 + [2] * 7 + [3] * 2 + [4])
    fit, held = validation_split(labels, seed=0)
    assert sorted(np.concatenate([fit, held]).tolist()) == list(range(len(labels)))  # a partition
    counts = {label: int((labels[held] == label).sum()) for label in range(5)}
    assert counts == {0: 2, 1: 4, 2: 1, 3: 1, 4: 0}  # 20%, at least one, none of a class of one
    assert set(labels[fit]) == {0, 1, 2, 3, 4}
    again, other = validation_split(labels, seed=0), validation_split(labels, seed=1)
    assert np.array_equal(again[1], held) and not np.array_equal(other[1], held)


def test_probe_options_name_the_bad_flag():
    for kwargs, field in ((dict(labels_per_class=0), "probe_labels"), (dict(max_test=0), "probe_max_test"),
                          (dict(layers=()), "probe_layers"), (dict(layers=(1, -1)), "probe_layers")):
        with pytest.raises(ConfigError) as error:
            ProbeOptions(**kwargs)
        assert error.value.field == field


# -------------------------------------------------------------------------- 3. the untrained-D baseline
def captured_extractors(config, options, monkeypatch):
    seen = {}

    def stand_in(split, extractors, seed=0):
        seen.update(extractors)
        raise Captured

    monkeypatch.setattr(probe, "run_probe", stand_in)
    with pytest.raises(Captured):
        probe.probe_run(config, options)
    return seen


@pytest.mark.slow
def test_the_untrained_baseline_has_the_runs_initial_weights(trained, monkeypatch):
    from dcgan_tf.core.build import build_dcgan

    config = run_config(trained.root)
    seen = captured_extractors(config, ProbeOptions(trained.labelled, labels_per_class=3), monkeypatch)
    assert list(seen) == ["trained D", "untrained D", "pixels"]
    untrained = d_weights(seen["untrained D"].model)
    saved, model, _ = inference.load_trained(config)
    assert same_weights(untrained, trained.initial)  # the weights the run started from
    assert same_weights(untrained, d_weights(build_dcgan(saved).discriminator))
    assert not same_weights(untrained, d_weights(model.discriminator))  # not the trained D
    assert same_weights(d_weights(seen["trained D"].model), d_weights(model.discriminator))
    other_seed = build_dcgan(dataclasses.replace(saved, seed=SEED + 1)).discriminator
    assert not same_weights(untrained, d_weights(other_seed))  # the check tells seeds apart


def test_the_untrained_baseline_ignores_the_commands_seed(trained, monkeypatch):
    config = run_config(trained.root, seed=1)  # the same run by --run_name; the command's seed is the default
    seen = captured_extractors(config, ProbeOptions(trained.labelled, labels_per_class=3), monkeypatch)
    assert same_weights(d_weights(seen["untrained D"].model), trained.initial)


# ---------------------------------------------------------------------------------- 4. labelled folders
def test_class_folders_give_sorted_classes_and_their_labels(tmp_path):
    for name, count in (("b_dogs", 3), ("a_cats", 2), ("c_owls", 4)):
        write_images(tmp_path / name, count, seed=count)
    paths, labels, classes = find_labelled_files(str(tmp_path))
    assert classes == ["a_cats", "b_dogs", "c_owls"]
    assert labels.tolist() == [0] * 2 + [1] * 3 + [2] * 4
    assert [os.path.basename(os.path.dirname(path)) for path in paths] == [classes[k] for k in labels]
    open(tmp_path / "b_dogs" / "broken.png", "w").write("not a picture")
    loaded = load_labelled_images(str(tmp_path), SPEC)
    assert [os.path.basename(path) for path, _ in loaded.skipped] == ["broken.png"]
    assert len(loaded) == len(loaded.labels) == 9 and loaded.class_names == classes
    assert loaded.labels.tolist() == [0] * 2 + [1] * 3 + [2] * 4  # the broken file's label went with it
    assert all(classes[label] in path for path, label in zip(loaded.paths, loaded.labels))
    assert loaded.images.shape == (9, 16, 16, 3)


def test_images_outside_class_folders_and_a_single_class_fail(tmp_path):
    write_images(tmp_path / "cats", 2)
    with pytest.raises(DataError, match="at least two"):
        find_labelled_files(str(tmp_path))
    write_images(tmp_path / "dogs", 2)
    write_images(tmp_path, 1, suffix=".jpg")  # img_000.jpg loose in the top folder
    with pytest.raises(DataError, match=r"outside any class folder \(img_000\.jpg\)"):
        find_labelled_files(str(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        find_labelled_files(str(tmp_path / "nowhere"))


def write_index(folder, rows, columns=("file", "category")):
    with open(os.path.join(folder, "INDEX.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def test_an_index_csv_names_the_classes_and_missing_files(tmp_path):
    paths = write_images(tmp_path / "all", 5)
    names = [os.path.basename(path) for path in paths]
    write_index(tmp_path / "all", [(names[0], "zebra"), (names[1], "ant"), (names[2], "zebra"), (names[3], ""),
                                   (names[4], "ant")])
    found, labels, classes = find_labelled_files(str(tmp_path / "all"))
    assert classes == ["ant", "zebra"]  # from the category column, sorted; a row without one is left out
    assert [os.path.basename(path) for path in found] == [names[0], names[1], names[2], names[4]]
    assert labels.tolist() == [1, 0, 1, 0]
    assert load_labelled_images(str(tmp_path / "all"), SPEC).labels.tolist() == [1, 0, 1, 0]
    write_index(tmp_path / "all", [(names[0], "zebra"), ("gone.png", "ant")])
    with pytest.raises(DataError, match="gone.png"):
        find_labelled_files(str(tmp_path / "all"))
    write_index(tmp_path / "all", [(names[0], "zebra")], columns=("file", "kind"))
    with pytest.raises(DataError, match="no column category"):
        find_labelled_files(str(tmp_path / "all"))


def folder_config(tmp_path):
    return tiny_config(tmp_path, tmp_path / "unused").resolved()


def test_a_class_too_small_for_the_labels_is_left_out_by_name(tmp_path, caplog):
    labelled_folder(tmp_path / "lab", per_class=4, classes=("big", "large"))
    write_images(tmp_path / "lab" / "tiny", 3, seed=99)
    with caplog.at_level(logging.WARNING, logger="dcgan_tf.analysis.probe"):
        split = labelled_split(folder_config(tmp_path), ProbeOptions(str(tmp_path / "lab"), labels_per_class=3), 0)
    assert split.class_names == ["big", "large"] and list(split.skipped) == ["tiny"]
    assert "3 images" in split.skipped["tiny"] and "4" in split.skipped["tiny"]  # 3 to train on, 1 to test
    assert any("'tiny'" in record.getMessage() for record in caplog.records)
    assert sorted(set(split.train_labels.tolist())) == [0, 1] and sorted(set(split.test_labels.tolist())) == [0, 1]
    with pytest.raises(DataError, match=r"two classes.*big: .*large: .*tiny: "):
        labelled_split(folder_config(tmp_path), ProbeOptions(str(tmp_path / "lab"), labels_per_class=4), 0)


# -------------------------------------------------------------------------------------- 5. the splits
def test_a_folder_split_is_seeded_disjoint_and_capped(tmp_path):
    folder = labelled_folder(tmp_path / "lab", per_class=7)
    config, options = folder_config(tmp_path), ProbeOptions(folder, labels_per_class=3)
    split = labelled_split(config, options, seed=0)
    assert split.class_names == list(CLASSES) and split.skipped == {} and split.source == os.path.abspath(folder)
    assert np.bincount(split.train_labels).tolist() == [3, 3, 3]
    assert np.bincount(split.test_labels).tolist() == [4, 4, 4]
    assert not as_set(split.train_images) & as_set(split.test_images)
    everything = load_labelled_images(folder, SPEC)
    assert as_set(split.train_images) | as_set(split.test_images) == as_set(everything.images)
    by_image = {image.tobytes(): label for image, label in zip(everything.images, everything.labels)}
    assert [by_image[image.tobytes()] for image in split.train_images] == split.train_labels.tolist()
    assert [by_image[image.tobytes()] for image in split.test_images] == split.test_labels.tolist()
    again, other = labelled_split(config, options, seed=0), labelled_split(config, options, seed=1)
    assert np.array_equal(again.train_images, split.train_images)
    assert np.array_equal(again.test_images, split.test_images)
    assert as_set(other.train_images) != as_set(split.train_images)
    capped = labelled_split(config, dataclasses.replace(options, max_test=5), seed=0)
    assert len(capped.test_images) == len(capped.test_labels) == 5
    assert as_set(capped.test_images) <= as_set(split.test_images)
    assert np.array_equal(capped.train_images, split.train_images)


def mnist_part(labels, marker):
    """28x28 digits, each filled with 10 * its label + marker (the part it belongs to)."""
    labels = np.asarray(labels, np.uint8)
    return np.broadcast_to((10 * labels + marker)[:, None, None], (len(labels), 28, 28)).astype(np.uint8), labels


def centre(images):
    return images[:, 8, 8, 0].astype(int)


def test_an_mnist_split_trains_on_the_training_part_and_tests_on_the_test_part(tmp_path):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    train_labels = [0] * 14 + [1] * 2 + [2] * 14  # 30 training digits; "1" has too few for 3 labels
    test_labels = [0] * 7 + [1] * 6 + [2] * 7  # 20 test digits
    for part, labels, marker in (("train", train_labels, 1), ("test", test_labels, 6)):
        images, labels = mnist_part(labels, marker)
        write_idx(folder / mnist.FILES[f"{part}_images"], images)
        write_idx(folder / mnist.FILES[f"{part}_labels"], labels)
    config = tiny_config(tmp_path, "mnist", data_dir=str(tmp_path / "data"), conditional=False).resolved()
    split = labelled_split(config, ProbeOptions(labels_per_class=3), seed=0)
    assert split.source == "mnist" and split.class_names == ["0", "2"]
    assert set(split.skipped) == {"1", "3", "4", "5", "6", "7", "8", "9"} and "2 images" in split.skipped["1"]
    assert split.train_images.shape == (6, 16, 16, 1) and np.bincount(split.train_labels).tolist() == [3, 3]
    assert set(centre(split.train_images) % 10) == {1}  # all from the training part
    assert (centre(split.train_images) // 10).tolist() == [int(split.class_names[k]) for k in split.train_labels]
    assert len(split.test_images) == 14 and set(centre(split.test_images) % 10) == {6}  # the test part's 0s and 2s
    assert (centre(split.test_images) // 10).tolist() == [int(split.class_names[k]) for k in split.test_labels]
    capped = labelled_split(config, ProbeOptions(labels_per_class=3, max_test=4), seed=0)
    assert len(capped.test_images) == 4 and set(centre(capped.test_images) % 10) == {6}



def write_mnist_parts(folder, train_labels, test_labels):
    folder.mkdir(parents=True)
    for part, labels, marker in (("train", train_labels, 1), ("test", test_labels, 6)):
        images, labels = mnist_part(labels, marker)
        write_idx(folder / mnist.FILES[f"{part}_images"], images)
        write_idx(folder / mnist.FILES[f"{part}_labels"], labels)


def test_an_mnist_class_without_test_images_is_left_out_by_name_and_none_left_fails_with_the_counts(tmp_path):
    """Training digits 0-7, test digits 8 and 9 only: no class has both, so the probe fails naming each class and
    its counts, before any feature work (it failed inside the feature extractor on an empty test set)."""
    write_mnist_parts(tmp_path / "data" / "mnist", [d for d in range(8) for _ in range(4)], [8] * 3 + [9] * 3)
    config = tiny_config(tmp_path, "mnist", data_dir=str(tmp_path / "data"), conditional=False).resolved()
    with pytest.raises(DataError) as error:
        labelled_split(config, ProbeOptions(labels_per_class=3), seed=0)
    message = str(error.value)
    assert "at least two classes with 3 training images and a test image each" in message and "has 0" in message
    assert "0: no test images (4 training images)" in message and "7: no test images" in message
    assert "9: 0 images, fewer than the 3 it needs (3 to train on; 3 test images)" in message

    # test digits for 0 and 1 as well: the probe runs over those two, and says which classes it left out and why
    write_mnist_parts(tmp_path / "more" / "mnist", [d for d in range(8) for _ in range(4)], [0, 0, 1, 1, 8, 9])
    config = tiny_config(tmp_path, "mnist", data_dir=str(tmp_path / "more"), conditional=False).resolved()
    split = labelled_split(config, ProbeOptions(labels_per_class=3), seed=0)
    assert split.class_names == ["0", "1"] and len(split.test_labels) == 4
    assert split.skipped["2"] == "no test images (4 training images)" and "fewer than" in split.skipped["8"]

# -------------------------------------------------------------------------------- 6. the run end to end
def probe_entries(root):
    return files.read_json(os.path.join(str(root), "checkpoints", RUN, probe.PROBE_FILE))["probes"]


def probe_rows(root):
    return [row for row in folders.read_metrics(os.path.join(str(root), "checkpoints", RUN))
            if row.get("mode") == "probe"]


@pytest.mark.slow
def test_probe_through_main_writes_the_record_and_a_metrics_line(trained, run_copy):
    labelled = str(run_copy / "labelled")
    result = run_main(*main_args(run_copy, "--probe", "--probe_data", labelled, "--probe_labels", "3"), cwd=run_copy)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ("trained D", "untrained D", "pixels"):
        assert any(line.strip().startswith(name + " ") and len(line.split()) == len(name.split()) + 4 for line in lines)
    folder = os.path.join(str(run_copy), "checkpoints", RUN)
    assert f"wrote {os.path.join(folder, 'probe.json')}" in lines
    assert f"wrote {os.path.join(folder, 'metrics.jsonl')}" in lines
    (entry,) = probe_entries(run_copy)
    assert [r["features"] for r in entry["results"]] == ["trained D", "untrained D", "pixels"]
    dims = {r["features"]: r["dim"] for r in entry["results"]}
    assert dims == {"trained D": 8 * 16 + 16 * 16 + 32 * 4 + 64, "untrained D": 576, "pixels": 16 * 16 * 3}
    assert all(0 <= r["accuracy"] <= 1 and r["c"] in C_VALUES for r in entry["results"])
    assert (entry["labels_per_class"], entry["classes"], entry["class_names"]) == (3, 3, list(CLASSES))
    assert (entry["train_images"], entry["test_images"], entry["step"]) == (9, 9, trained.step)
    assert entry["data"] == os.path.abspath(labelled) and entry["layers"] == "all" and entry["run"] == RUN
    (row,) = probe_rows(run_copy)
    assert row["probe_accuracy_trained_d"] == entry["results"][0]["accuracy"]
    assert {"probe_accuracy_untrained_d", "probe_accuracy_pixels"} <= set(row)
    assert (row["step"], row["probe_labels"], row["probe_classes"]) == (trained.step, 3, 3)

    # the same probe again (in process): the entry replaced, a second metrics line
    config = run_config(run_copy)
    again = probe.probe_run(config, ProbeOptions(labelled, labels_per_class=3))
    (replaced,) = probe_entries(run_copy)
    assert replaced == again and len(probe_rows(run_copy)) == 2
    assert [r["accuracy"] for r in again["results"]] == [r["accuracy"] for r in entry["results"]]  # seeded
    # another label count: a second entry
    probe.probe_run(config, ProbeOptions(labelled, labels_per_class=2))
    assert [e["labels_per_class"] for e in probe_entries(run_copy)] == [3, 2] and len(probe_rows(run_copy)) == 3


def test_a_probe_row_is_no_sample_metric(tmp_path):
    record = {"step": 5, "checkpoint": "latest", "data": "/x", "labels_per_class": 3, "classes": 2,
              "results": [{"features": "trained D", "accuracy": 0.5}]}
    folders.append_metrics(str(tmp_path), probe.metrics_row(record))
    assert plotted_rows(folders.read_metrics(str(tmp_path))) == []
    with pytest.raises(folders.RunError, match="no evaluations"):
        plot_metrics([str(tmp_path)], str(tmp_path / "metrics.png"))
    folders.append_metrics(str(tmp_path), {"step": 6, "kid": 0.1, "kid_std": 0.01})
    assert [row["step"] for row in plotted_rows(folders.read_metrics(str(tmp_path)))] == [6]


def test_write_probe_record_replaces_only_the_same_probe(tmp_path):
    base = {"step": 4, "checkpoint": "latest", "data": "/d", "labels_per_class": 10, "layers": "all", "n": 1}
    probe.write_probe_record(str(tmp_path), base)
    probe.write_probe_record(str(tmp_path), {**base, "layers": [3]})
    probe.write_probe_record(str(tmp_path), {**base, "step": 8})
    probe.write_probe_record(str(tmp_path), {**base, "n": 2})
    found = files.read_json(os.path.join(str(tmp_path), probe.PROBE_FILE))["probes"]
    assert [(e["step"], e["layers"], e["n"]) for e in found] == [(4, [3], 1), (8, "all", 1), (4, "all", 2)]


# ------------------------------------------------------------------------------------------ 7. bad input
# main.main on each command line in one process (TensorFlow loads once): exit code and stderr of each. --tf_log
# keeps main.py from routing fd 2 through its filter process each time.
MAIN_EACH = """
import contextlib, io, json, sys
root, listed = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
sys.argv = ["main.py"]
import main
from absl import flags
found = []
for args in json.load(open(listed)):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["main.py", *args, "--tf_log"])
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            main.main(["main.py"])
        code = 0
    except SystemExit as stop:
        code = stop.code
    found.append({"code": code, "stderr": stderr.getvalue()})
print(json.dumps(found))
"""


@pytest.mark.slow
def test_bad_probe_flags_fail_naming_the_flag(trained, tmp_path):
    root = trained.root
    without = run_main(*main_args(root, "--probe_labels", "3"), cwd=root)  # before TensorFlow loads
    assert without.returncode == 2 and "main.py: error: --probe_labels belongs to --probe: add --probe" in \
        without.stderr
    cases = {"--probe_labels": main_args(root, "--probe", "--probe_data", trained.labelled, "--probe_labels", "0"),
             "--probe_data": main_args(root, "--probe", "--probe_data", "/nonexistent"),
             "--probe_layers": main_args(root, "--probe", "--probe_data", trained.labelled, "--probe_layers", "9"),
             "--probe_max_test": main_args(root, "--probe", "--probe_data", trained.labelled, "--probe_max_test",
                                           "0")}
    (tmp_path / "args.json").write_text(json.dumps(list(cases.values())))
    (tmp_path / "each.py").write_text(MAIN_EACH)
    ran = subprocess.run([sys.executable, str(tmp_path / "each.py"), ROOT, str(tmp_path / "args.json")], cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    for flag, found in zip(cases, json.loads(ran.stdout.splitlines()[-1])):
        assert found["code"] == 2 and found["stderr"].startswith(f"main.py: error: {flag}: "), (flag, found)
    assert "/nonexistent is not a folder" in json.loads(ran.stdout.splitlines()[-1])[1]["stderr"]
    assert not os.path.exists(os.path.join(str(root), "checkpoints", RUN, probe.PROBE_FILE))


def test_bad_probes_of_the_run_raise_config_errors(trained):
    config = run_config(trained.root)
    with pytest.raises(ConfigError) as error:
        probe.probe_run(config, ProbeOptions(trained.labelled, labels_per_class=3, layers=(9,)))
    assert error.value.field == "probe_layers" and "4 conv layers" in error.value.message
    with pytest.raises(ConfigError) as error:
        probe.probe_run(config, ProbeOptions())  # a folder run has no labels of its own
    assert error.value.field == "probe_data" and RUN in error.value.message
    assert not os.path.exists(os.path.join(config.checkpoint_path, probe.PROBE_FILE))


def test_a_conditional_run_is_refused(tmp_path, monkeypatch):
    """A conditional D reads the label: probe_run refuses it before anything else (the trained model stubbed)."""
    saved = tiny_config(tmp_path, "mnist", output_height=28).resolved()
    assert saved.conditional and saved.y_dim == 10
    monkeypatch.setattr(folders, "open_saved_run", lambda config: saved)  # its config.json alone, no weights
    with pytest.raises(ConfigError) as error:
        probe.probe_run(saved, ProbeOptions())
    assert error.value.field == "probe" and "conditional" in error.value.message


@pytest.mark.slow
def test_a_run_with_an_autoencoder_is_probed_on_its_code_too(tmp_path):
    """--preprocess autoencoder: the probe adds the autoencoder's code as a fourth feature set (ae_code_dim long)."""
    write_images(tmp_path / "data" / "faces", 8, seed=1)
    labelled = labelled_folder(tmp_path / "labelled")
    config = run_config(tmp_path, preprocess="autoencoder", ae_code_dim=6, ae_epochs=1)
    loop.train(config)
    record = probe.probe_run(config, ProbeOptions(labelled, labels_per_class=3))
    found = {result["features"]: result for result in record["results"]}
    assert list(found) == ["trained D", "untrained D", "pixels", "autoencoder"]
    assert found["autoencoder"]["dim"] == 6 and 0 <= found["autoencoder"]["accuracy"] <= 1
