"""Conditional runs on labelled folders: classes from sub-folders (or INDEX.csv), their errors, labels into G and D
(the projection discriminator), grids with a row per class, --label by name, export's class names, exact resume."""

import csv
import dataclasses
import json
import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from conftest import png_size, write_images
from dcgan_tf.analysis.visualize import VisualizeOptions, visualize
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.data.labelled import labelled_folder_classes
from dcgan_tf.runs.resolve import resolve
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.data import datasets
from dcgan_tf.data.loading import DataError
from dcgan_tf.training.loop import train

CLASSES = ("cats", "dogs", "owls")


def pets(folder, per_class=4):
    """One sub-folder of random 16x16 PNGs per class, each class with its own seed (and mean colour)."""
    for index, name in enumerate(CLASSES):
        write_images(os.path.join(folder, name), per_class, seed=index)
    return str(folder)


def pets_config(tmp_path, **overrides) -> Config:
    values = dict(dataset=str(tmp_path / "pets"), input_fname_pattern="*.png", output_height=16, batch_size=4,
                  epoch=2, z_dim=6, gf_dim=4, df_dim=4, g_advantage=1, sample_freq=100, ckpt_freq=100, verbose=0,
                  checkpoint_dir=str(tmp_path / "ck"), sample_dir=str(tmp_path / "s"), seed=5, conditional=True)
    values.update(overrides)
    return Config(**values)


def test_the_classes_are_the_sorted_sub_folders_and_name_the_run(tmp_path):
    pets(tmp_path / "pets")
    os.makedirs(tmp_path / "pets" / ".hidden")
    config = resolve(pets_config(tmp_path))
    assert config.class_names == CLASSES and config.y_dim == 3 and config.grid_rows == 3
    assert resolve(pets_config(tmp_path).resolved().validate()) == config  # resolved first: still a row per class
    assert config.name.startswith("pets_b4_16x16_cond_") and not config.mnist_nets
    assert not pets_config(tmp_path, conditional=None).resolved().conditional  # folders: unconditional unless asked
    saved = Config.from_json(config.to_json())  # config.json keeps the classes
    assert saved.resolved().class_names == CLASSES and saved.model_differences(config) == {}


def test_an_index_csv_names_the_classes_by_its_categories(tmp_path):
    paths = write_images(tmp_path / "emoji", 6)
    with open(tmp_path / "emoji" / "INDEX.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "category"])
        for i, path in enumerate(paths):
            writer.writerow([os.path.basename(path), ["Flags", "Animals"][i % 2]])
    config = resolve(Config(dataset=str(tmp_path / "emoji"), conditional=True))
    assert config.class_names == ("Animals", "Flags") and config.y_dim == 2


@pytest.mark.parametrize("layout, message", [
    ("builtin", "the built-in set has no labels"),
    ("flat", "one sub-folder of images per class, or an INDEX.csv with columns file, category; .* has neither"),
    ("missing", "has neither \\(no such folder\\)"),
    ("one class", "needs at least two classes; .* has 1: cats"),
])
def test_a_folder_without_classes_fails_naming_the_flag(tmp_path, layout, message):
    if layout == "flat":
        write_images(tmp_path / "pets", 3)
    if layout == "one class":
        write_images(tmp_path / "pets" / "cats", 3)
    values = {} if layout == "builtin" else {"dataset": str(tmp_path / "pets")}
    with pytest.raises(ConfigError, match=message) as info:
        resolve(Config(conditional=True, **values))
    assert info.value.field == "conditional"


def test_images_outside_the_class_folders_are_named(tmp_path):
    pets(tmp_path / "pets")
    write_images(tmp_path / "pets", 2, suffix=".jpg")
    with pytest.raises(DataError, match=r"outside any class folder \(img_000.jpg, img_001.jpg\)"):
        datasets.load_training_data(resolve(pets_config(tmp_path)))


def test_a_class_left_with_too_few_readable_images_is_named_and_bad_files_are_skipped_by_name(tmp_path, caplog):
    pets(tmp_path / "pets", per_class=3)
    for name in ("img_001.png", "img_002.png"):  # owls keeps one readable image
        open(tmp_path / "pets" / "owls" / name, "w").write("not a picture")
    with pytest.raises(DataError, match=r"at least 2 readable images per class.*fewer in: owls \(1\)"):
        datasets.load_training_data(resolve(pets_config(tmp_path)))
    os.remove(tmp_path / "pets" / "owls" / "img_002.png")
    write_images(tmp_path / "pets" / "owls" / "more", 1, seed=9)  # nested folders count for their class
    loaded = datasets.load_training_data(resolve(pets_config(tmp_path)))
    assert np.bincount(loaded.labels).tolist() == [3, 3, 2] and loaded.class_names == list(CLASSES)
    assert [os.path.basename(path) for path, _ in loaded.skipped] == ["img_001.png"]


def test_labels_reach_the_generator_and_the_projection_discriminator(tmp_path):
    pets(tmp_path / "pets")
    config = dataclasses.replace(resolve(pets_config(tmp_path)), c_dim=3, output_height=20, output_width=28)
    model = build_dcgan(config)
    assert [tuple(i.shape) for i in model.generator.inputs] == [(None, 6), (None, 3)]
    assert [tuple(i.shape) for i in model.discriminator.inputs] == [(None, 20, 28, 3), (None, 3)]
    assert {layer.name for layer in model.discriminator.layers} >= {"d_embed_y", "d_projection"}
    for layer in model.discriminator.layers + model.generator.layers:  # weights large enough to tell labels apart
        for weight in layer.trainable_weights:
            weight.assign(np.random.default_rng(0).normal(0, 0.3, weight.shape).astype("float32"))
    z = np.random.default_rng(1).uniform(-1, 1, (2, 6)).astype("float32")
    first, second = np.eye(3, dtype="float32")[[0, 0]], np.eye(3, dtype="float32")[[2, 2]]
    images = np.asarray(model.generate(z, first))
    assert images.shape == (2, 20, 28, 3) and not np.allclose(images, model.generate(z, second))
    assert not np.allclose(model.discriminate(images, first), model.discriminate(images, second))


@pytest.fixture(scope="module")
def trained_pets(tmp_path_factory):
    """A matching-aware run on the three classes: 2 epochs (6 steps) straight, and 1 epoch then resumed."""
    tmp = tmp_path_factory.mktemp("pets")
    runs = {}
    for name, epochs in (("straight", [2]), ("resumed", [1, 2])):
        pets(tmp / name / "pets")
        for epoch in epochs:
            runs[name] = train(pets_config(tmp / name, epoch=epoch, matching_aware=True)).config
    return runs


def rows(config):
    with open(os.path.join(config.checkpoint_path, "losses.csv"), newline="") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_a_conditional_folder_run_resumes_exactly(trained_pets):
    straight, resumed = trained_pets["straight"], trained_pets["resumed"]
    assert straight.class_names == CLASSES and "_cond_" in straight.name and "_ma" in straight.name
    assert len(rows(straight)) == 6 and rows(straight) == rows(resumed)
    assert "d_loss_wrong" in rows(straight)[0]
    saved = json.load(open(os.path.join(straight.checkpoint_path, "config.json")))
    assert saved["class_names"] == list(CLASSES) and saved["y_dim"] == 3


def test_its_grid_has_a_named_row_per_class_and_label_takes_a_name(trained_pets):
    config = trained_pets["straight"]
    command = pets_config(pathlib.Path(config.checkpoint_dir).parent, epoch=2, matching_aware=True)
    grid = visualize(command, VisualizeOptions(option="grid"))[0]
    width, height = png_size(grid)
    assert height == 3 * 64 + 2 * 2  # 3 rows of cells upscaled to 64 pixels, 2-pixel gaps
    assert width > 8 * 64  # the names' column beside 8 columns
    names = np.asarray(Image.open(grid).convert("L"))[:, :40]
    assert (names < 128).any()  # dark text in the names' column
    owls = visualize(command, VisualizeOptions(option="grid", label="owls"))[0]
    assert os.path.basename(owls).startswith("visualize_grid_label2_")
    with pytest.raises(ConfigError, match=r"'cows' is not a class .*\(cats, dogs, owls\)") as info:
        visualize(command, VisualizeOptions(option="grid", label="cows"))
    assert info.value.field == "label"


def test_its_export_names_the_classes(trained_pets):
    from dcgan_tf.serving.export import export_run, load_export

    config = trained_pets["straight"]
    export_run(config, "savedmodel")
    exported = load_export(os.path.join(config.checkpoint_path, "export"))
    assert exported.info["class_names"] == list(CLASSES) and exported.info["y_dim"] == 3
    assert exported.generate(np.zeros((3, 6), "float32"), [0, 1, 2]).shape == (3, 16, 16, 3)


def test_classes_changed_since_the_run_began_stop_its_resume(trained_pets):
    config = trained_pets["resumed"]
    write_images(os.path.join(config.dataset, "bats"), 3)
    with pytest.raises(Exception, match="y_dim|class_names"):  # another class count: another model
        train(pets_config(pathlib.Path(config.checkpoint_dir).parent, epoch=3, matching_aware=True,
                          run_name=config.name))
    with pytest.raises(DataError, match="not the run's: it was made with cats, dogs, owls"):
        datasets.load_training_data(config)
    assert labelled_folder_classes(config.dataset) == ["bats", *CLASSES]


def test_a_number_that_names_one_class_and_indexes_another_is_refused():
    config = Config(dataset="digits", conditional=True, class_names=("1", "2", "3")).resolved()
    assert config.label_index("3") == 2 and config.label_index(0) == 0
    with pytest.raises(ConfigError, match="'1' is ambiguous.*class '1' is index 0, and index 1 is class '2'"):
        config.label_index("1")


def test_an_existing_run_opens_after_its_folder_is_gone(trained_pets, tmp_path):
    import shutil

    config = trained_pets["resumed"]
    moved = tmp_path / "elsewhere"
    shutil.move(config.dataset, moved)
    try:
        command = pets_config(pathlib.Path(config.checkpoint_dir).parent, epoch=2, matching_aware=True)
        resolve(command)  # its config.json names the classes
        grid = visualize(command, VisualizeOptions(option="grid", label="dogs"))[0]
        assert os.path.isfile(grid)
        with pytest.raises(ConfigError, match="has neither"):  # a new run there still needs the folder
            resolve(dataclasses.replace(command, seed=9))
    finally:
        shutil.move(moved, config.dataset)


def test_hidden_folders_inside_a_class_are_left_out_and_the_disk_budget_counts_the_classes(tmp_path):
    from dcgan_tf.sweeps.disk_budget import count_images

    pets(tmp_path / "pets")
    write_images(tmp_path / "pets" / "cats" / ".thumbnails", 5)
    assert count_images(resolve(pets_config(tmp_path))) == 12
    loaded = datasets.load_training_data(resolve(pets_config(tmp_path)))
    assert len(loaded) == 12 and not any(".thumbnails" in path for path in loaded.paths)


def test_evaluations_draw_the_labels_in_the_real_images_proportions(tmp_path):
    from dcgan_tf.data.loading import LoadedImages
    from dcgan_tf.metrics.evaluate import Evaluator

    labels = np.array([0] * 30 + [1] * 6 + [2] * 4)
    images = LoadedImages(np.zeros((40, 16, 16, 3), np.uint8), [], [], labels, list(CLASSES))
    config = pets_config(tmp_path, class_names=CLASSES, metrics_samples=400)
    drawn = Evaluator(config, images, names=()).labels
    assert np.bincount(drawn).tolist() == [300, 60, 40]
    assert not np.array_equal(drawn[:40], np.sort(drawn[:40]))  # a seeded order, not sorted
