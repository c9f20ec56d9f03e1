"""dcgan_tf.data.mnist: IDX parsing (plain and .gz), train+test concatenation with aligned labels, the errors for broken
or missing files (never downloading: keras.datasets.mnist.load_data is replaced), and MNIST through
datasets.load_training_data.

The IDX files are tiny (12 train + 5 test digits) and written here; digit k is filled with 10 * its label + k % 7,
so every image says which label it must carry.
"""

from __future__ import annotations

import dataclasses
import gzip
import os

import keras
import numpy as np
import pytest

from conftest import TEST, TRAIN, digits, idx_bytes, make_mnist, write_idx
from dcgan_tf.runs.resolve import resolve
from dcgan_tf.config import Config
from dcgan_tf.data import mnist
from dcgan_tf.data.datasets import load_training_data
from dcgan_tf.data.loading import DataError


@pytest.fixture
def no_download(monkeypatch):
    """keras.datasets.mnist.load_data fails as it would offline; record that it was asked."""
    calls = []

    def offline():
        calls.append(True)
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    return calls


# ---------------------------------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_shapes_types_and_values(tmp_path, gz):
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    images = digits(labels)
    image_path = write_idx(tmp_path / "images", images, gz)
    label_path = write_idx(tmp_path / "labels", labels, gz)
    if gz:
        assert open(image_path, "rb").read(2) == b"\x1f\x8b"  # really gzip
    got_images, got_labels = mnist.read_idx(image_path), mnist.read_idx(label_path)
    assert got_images.shape == (5, 28, 28) and got_images.dtype == np.uint8
    assert got_labels.shape == (5,) and got_labels.dtype == np.uint8
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_other_types_are_big_endian(tmp_path, dtype):
    array = np.array([[1, -2, 300 if np.dtype(dtype).itemsize > 1 else 100], [4, 5, -6]], dtype)
    path = write_idx(tmp_path / "x", array)
    got = mnist.read_idx(path)
    assert got.shape == (2, 3)
    assert got.dtype.kind == np.dtype(dtype).kind and got.dtype.itemsize == np.dtype(dtype).itemsize
    np.testing.assert_array_equal(got, array)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x00\x01\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match="not an IDX file") as info:
        mnist.read_idx(str(path))
    assert str(path) in str(info.value)
    short = tmp_path / "short"
    short.write_bytes(b"\x00")
    with pytest.raises(DataError, match="not an IDX file"):
        mnist.read_idx(str(short))


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated_or_padded(tmp_path, gz):
    payload = idx_bytes(digits(np.arange(4, dtype=np.uint8)))
    for name, content in (("cut", payload[:-100]), ("long", payload + b"\x00")):
        path = str(tmp_path / name) + (".gz" if gz else "")
        with (gzip.open if gz else open)(path, "wb") as handle:
            handle.write(content)
        with pytest.raises(DataError, match="truncated or padded") as info:
            mnist.read_idx(path)
        assert path in str(info.value)


@pytest.mark.parametrize("damage", ["cut off", "corrupt", "not gzip"])
def test_read_idx_broken_gzip(tmp_path, damage):
    """A download that stopped half-way, a damaged .gz, a plain file named .gz: DataError naming the file."""
    whole = tmp_path / "whole.gz"
    with gzip.open(whole, "wb") as handle:
        handle.write(idx_bytes(np.random.default_rng(1).integers(0, 255, (20, 28, 28)).astype(np.uint8)))
    raw = whole.read_bytes()
    broken = {"cut off": raw[: len(raw) // 2],
              "corrupt": raw[:20] + bytes(b ^ 0xFF for b in raw[20:-8]) + raw[-8:],
              "not gzip": idx_bytes(np.zeros(3, np.uint8))}[damage]
    path = tmp_path / "broken.gz"
    path.write_bytes(broken)
    with pytest.raises(DataError) as info:
        mnist.read_idx(str(path))
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------- load_mnist
@pytest.mark.parametrize("gz", [False, True, {"train_images": True, "train_labels": False,
                                              "test_images": False, "test_labels": True}])
def test_load_mnist_concatenates_train_and_test(tmp_path, no_download, gz):
    images, labels = make_mnist(tmp_path, gz=gz)
    loaded = mnist.load_mnist(str(tmp_path))
    assert no_download == []  # local files: no download attempted
    assert loaded.images.shape == (TRAIN + TEST, 28, 28, 1) and loaded.images.dtype == np.uint8
    assert loaded.labels.shape == (TRAIN + TEST,) and loaded.labels.dtype == np.int64
    assert loaded.paths == [] and loaded.skipped == []
    assert loaded.c_dim == 1
    np.testing.assert_array_equal(loaded.images[..., 0], images)  # train first, then test
    np.testing.assert_array_equal(loaded.labels, labels)
    # every image carries its own label
    np.testing.assert_array_equal(loaded.images[:, 5, 5, 0] // 10, loaded.labels)


def test_load_mnist_accepts_dotted_file_names(tmp_path, no_download):
    names = {key: stem.replace("-idx", ".idx") for key, stem in mnist.FILES.items()}
    images, labels = make_mnist(tmp_path, gz=True, names=names)
    assert os.path.isfile(tmp_path / "mnist" / "train-images.idx3-ubyte.gz")
    loaded = mnist.load_mnist(str(tmp_path))
    np.testing.assert_array_equal(loaded.labels, labels)
    assert no_download == []


def test_load_mnist_missing_files_without_network(tmp_path, no_download, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as info:
        mnist.load_mnist("data")  # relative: the message gives the absolute folder
    message = str(info.value)
    assert no_download == [True]
    assert os.path.join(os.getcwd(), "data", "mnist") in message
    for stem in mnist.FILES.values():
        assert stem in message
    assert "network is unreachable" in message


def test_load_mnist_some_files_missing_names_those(tmp_path, no_download):
    make_mnist(tmp_path)
    os.remove(tmp_path / "mnist" / mnist.FILES["test_images"])
    os.remove(tmp_path / "mnist" / mnist.FILES["test_labels"])
    with pytest.raises(DataError) as info:
        mnist.load_mnist(str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "mnist") in message
    assert mnist.FILES["test_images"] in message and mnist.FILES["test_labels"] in message
    assert mnist.FILES["train_images"] + "[" not in message  # the present ones are not listed as missing


def test_load_mnist_truncated_file_raises(tmp_path, no_download):
    make_mnist(tmp_path)
    path = tmp_path / "mnist" / mnist.FILES["train_images"]
    path.write_bytes(path.read_bytes()[:-28])
    with pytest.raises(DataError, match="truncated") as info:
        mnist.load_mnist(str(tmp_path))
    assert str(path) in str(info.value)


def test_load_mnist_image_label_count_mismatch(tmp_path, no_download):
    make_mnist(tmp_path)
    write_idx(tmp_path / "mnist" / mnist.FILES["test_labels"], np.zeros(TEST + 1, np.uint8))
    with pytest.raises(DataError, match="disagree"):
        mnist.load_mnist(str(tmp_path))


def test_load_mnist_falls_back_to_keras(tmp_path, monkeypatch):
    train_y, test_y = np.array([1, 2, 3], np.uint8), np.array([9, 8], np.uint8)

    def fake_load_data():
        return (digits(train_y), train_y), (digits(test_y), test_y)

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fake_load_data)
    loaded = mnist.load_mnist(str(tmp_path / "empty"))
    assert loaded.images.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(loaded.labels, [1, 2, 3, 9, 8])
    np.testing.assert_array_equal(loaded.images[:, 5, 5, 0] // 10, loaded.labels)


# ---------------------------------------------------------------------------------------------- through training
def test_load_training_data_mnist_resized_and_aligned(tmp_path, no_download):
    images, labels = make_mnist(tmp_path)
    config = Config(dataset="mnist", data_dir=str(tmp_path), output_height=32).resolved()
    loaded = load_training_data(config)
    assert loaded.images.shape == (TRAIN + TEST, 32, 32, 1) and loaded.images.dtype == np.uint8
    np.testing.assert_array_equal(loaded.labels, labels)
    # flat centres survive the bicubic resize: the pixel value still encodes the label
    np.testing.assert_array_equal(loaded.images[:, 16, 16, 0] // 10, loaded.labels)
    assert config.y_dim == 10


def test_load_training_data_mnist_at_28_is_untouched_and_subset_keeps_labels(tmp_path, no_download):
    images, labels = make_mnist(tmp_path)
    config = Config(dataset="mnist", data_dir=str(tmp_path), output_height=28, train_size=7, seed=3).resolved()
    loaded = load_training_data(config)
    assert loaded.images.shape == (7, 28, 28, 1)
    assert loaded.labels.shape == (7,)
    for image, label in zip(loaded.images, loaded.labels):
        matches = np.flatnonzero((images == image[..., 0]).all(axis=(1, 2)))
        assert len(matches) >= 1 and (labels[matches] == label).all()


# ------------------------------------------------------------------------------------- --conditional=false
def test_mnist_parts_keep_the_training_and_test_sets_apart(tmp_path, no_download):
    images, labels = make_mnist(tmp_path)
    train, test = mnist.load_mnist_parts(str(tmp_path))
    assert (len(train), len(test)) == (TRAIN, TEST)
    np.testing.assert_array_equal(np.concatenate([train.images, test.images])[..., 0], images)
    np.testing.assert_array_equal(test.labels, labels[TRAIN:])
    assert train.class_names == [str(digit) for digit in range(10)]


@pytest.mark.slow
def test_unconditional_mnist_is_its_own_run_on_the_four_stage_nets(tmp_path, no_download):
    from dcgan_tf.config import Config, ConfigError
    from dcgan_tf.core.build import build_dcgan
    from dcgan_tf.training.loop import train

    make_mnist(tmp_path / "data")
    values = dict(dataset="mnist", data_dir=str(tmp_path / "data"), output_height=28, batch_size=8, epoch=1, z_dim=4,
                  gf_dim=4, df_dim=4, verbose=0, sample_freq=100, checkpoint_dir=str(tmp_path / "ck"),
                  sample_dir=str(tmp_path / "s"))
    conditional = Config(**values).validate().resolved()
    unconditional = Config(**values, conditional=False).validate().resolved()
    assert (conditional.conditional, conditional.y_dim) == (True, 10)
    assert (unconditional.conditional, unconditional.y_dim) == (False, None)
    assert unconditional.name == conditional.name.replace("_28x28_", "_28x28_uncond_")
    model = build_dcgan(dataclasses.replace(unconditional, c_dim=1))
    assert len(model.discriminator.inputs) == 1 and model.generator.output_shape == (None, 28, 28, 1)
    result = train(unconditional)
    assert result.step > 0 and result.stopped_by is None
    with pytest.raises(ConfigError) as error:
        Config(dataset="mnist", conditional=False, y_dim=10).validate()
    assert error.value.field == "conditional"
    with pytest.raises(ConfigError, match="reads the classes of a labelled folder") as error:
        resolve(Config(dataset="mice", conditional=True))
    assert error.value.field == "conditional"
