"""The TensorFlow side of the metrics: feature extractors, the Inception weights, the real-feature cache, and the
label classifier of conditional runs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan_tf.metrics import features, label_accuracy
from dcgan_tf.metrics.features import MissingWeightsError


def random_images(seed, count=6, size=12, channels=3):
    return np.random.default_rng(seed).uniform(-1, 1, (count, size, size, channels)).astype(np.float32)


# ---------------------------------------------------------------------------------------- the stand-in extractor
def test_smoke_features_are_set_by_the_seed():
    images = random_images(0, count=7)
    first = features.SmokeFeatures(seed=1, dim=16)(images)
    assert first.shape == (7, 16) and first.dtype == np.float64
    np.testing.assert_array_equal(features.SmokeFeatures(seed=1, dim=16)(images), first)
    assert not np.allclose(features.SmokeFeatures(seed=2, dim=16)(images), first)
    assert features.SmokeFeatures(seed=1, dim=16).key != features.SmokeFeatures(seed=2, dim=16).key


def test_extraction_in_batches_pads_the_last_and_reads_uint8_and_grey():
    extractor = features.SmokeFeatures(seed=0, dim=8, batch_size=3)
    images = random_images(1, count=7)
    np.testing.assert_allclose(extractor(images), features.SmokeFeatures(seed=0, dim=8)(images), atol=1e-6)
    pixels = np.random.default_rng(2).integers(0, 256, (4, 10, 10, 1), dtype=np.uint8)
    grey = extractor(pixels)
    assert grey.shape == (4, 8)
    np.testing.assert_allclose(grey, extractor(np.repeat(pixels.astype(np.float32) / 127.5 - 1, 3, axis=-1)),
                               atol=1e-6)
    with pytest.raises(ValueError, match="1 or 3"):
        extractor(np.zeros((2, 8, 8, 4), np.float32))


def test_real_features_are_cached_until_an_image_changes(tmp_path):
    calls = []
    tiny = features.SmokeFeatures(seed=0, dim=8)

    def counting(images):
        calls.append(len(images))
        return tiny(images)

    images, cache = random_images(3), str(tmp_path / "real_features.npz")
    first = features.cached_real_features(counting, images, cache, "tiny")
    np.testing.assert_array_equal(features.cached_real_features(counting, images, cache, "tiny"), first)
    assert calls == [6]
    changed = images.copy()
    changed[4, 0, 0, 0] = -changed[4, 0, 0, 0]
    features.cached_real_features(counting, changed, cache, "tiny")
    features.cached_real_features(counting, changed, cache, "other extractor")
    assert calls == [6, 6, 6]
    tiny_features = features.cached_real_features(tiny, changed, cache)  # its own key
    assert tiny_features.shape == (6, 8) and calls == [6, 6, 6]


# ---------------------------------------------------------------------------------------------- Inception weights
@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(features.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    return home


def test_a_missing_weights_file_is_named_before_any_work(tmp_path):
    missing = str(tmp_path / "nowhere.h5")
    with pytest.raises(MissingWeightsError, match=r"--inception_weights .*nowhere\.h5"):
        features.check_inception_weights(missing)
    with pytest.raises(MissingWeightsError, match="--inception_weights"):
        features.InceptionFeatures(weights_path=missing)
    assert not features.inception_weights_available(missing)
    features.check_inception_weights(None)  # no path: Keras' cache or a download, the caller's choice


def test_weights_come_from_the_keras_cache_without_a_download(empty_keras_home, monkeypatch):
    assert not features.inception_weights_available(None)
    cached = empty_keras_home / "models" / features.INCEPTION_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: pytest.fail("downloaded"))
    assert features.inception_weights_available(None)
    assert features.inception_weights_file(None) == str(cached)


def test_a_failed_download_says_where_the_file_goes(empty_keras_home, monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://...: None -- [Errno -3]\nTemporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(MissingWeightsError) as raised:
        features.inception_weights_file(None)
    message = str(raised.value)
    assert "\n" not in message
    assert "--inception_weights" in message and features.INCEPTION_WEIGHTS_FILE in message
    assert str(empty_keras_home / "models") in message


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """A randomly initialised notop InceptionV3 and its weights saved as Keras 3 .weights.h5."""
    model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None, input_shape=(299, 299, 3))
    path = str(tmp_path_factory.mktemp("inception") / "random.weights.h5")
    model.save_weights(path)
    return model, path


@pytest.mark.slow
def test_inception_features_load_saved_weights(random_inception):
    model, path = random_inception
    extractor = features.InceptionFeatures(weights_path=path, batch_size=50)
    images = random_images(4, count=2, size=16)
    found = extractor(images)
    assert found.shape == (2, 2048) and found.dtype == np.float64
    expected = model(tf.image.resize(images, (299, 299)), training=False).numpy()
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-7)
    assert np.abs(expected).max() > 0 and extractor.key.startswith("inception_v3-")


def test_inception_features_read_keras_legacy_download_format(random_inception, tmp_path):
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    import h5py

    model, _ = random_inception
    path = str(tmp_path / features.INCEPTION_WEIGHTS_FILE)  # the format keras.applications downloads
    with h5py.File(path, "w") as handle:
        legacy.save_weights_to_hdf5_group(handle, model)
    loaded = features.InceptionFeatures(weights_path=path).model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(loaded, model.get_weights()))


def test_an_unloadable_weights_file_is_a_missing_weights_error(tmp_path):
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(MissingWeightsError, match=r"junk\.weights\.h5 holds no InceptionV3.*--inception_weights"):
        features.InceptionFeatures(weights_path=str(junk))


# ------------------------------------------------------------------------------------------- the label classifier
def quadrant_images(seed, per_class=40):
    """3 classes of 8x8 grey images, told apart by which quadrant is bright (top-left, top-right, bottom-left)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, -0.4, (3 * per_class, 8, 8, 1)).astype(np.float32)
    labels = np.repeat(np.arange(3), per_class)
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[index, row * 4:row * 4 + 4, col * 4:col * 4 + 4] += 1.2
    order = rng.permutation(len(labels))
    return images[order], labels[order]


def test_label_classifier_reads_the_quadrants(tmp_path, monkeypatch):
    images, labels = quadrant_images(0)
    trained = []
    train = label_accuracy.train_label_classifier

    def counting_train(*args, **kwargs):
        trained.append(1)
        return train(*args, **kwargs)

    monkeypatch.setattr(label_accuracy, "train_label_classifier", counting_train)
    cache_dir = str(tmp_path / "classifier")
    model, held_out = label_accuracy.load_or_train_classifier(cache_dir, images, labels, 3, seed=0, epochs=4,
                                                                   batch_size=16)
    assert held_out >= 0.9
    found = label_accuracy.label_accuracy(model, images, labels, 3)
    assert found["overall"] > 0.95 and len(found["per_label"]) == 3 and min(found["per_label"]) > 0.9
    shuffled = np.random.default_rng(1).permutation(labels)
    assert label_accuracy.label_accuracy(model, images, shuffled, 3)["overall"] < 0.6
    assert label_accuracy.label_accuracy(model, images[labels < 2], labels[labels < 2], 3)["per_label"][2] is None

    again, cached_accuracy = label_accuracy.load_or_train_classifier(cache_dir, images, labels, 3, seed=0)
    assert trained == [1] and cached_accuracy == held_out
    np.testing.assert_allclose(again.predict(images[:5], verbose=0), model.predict(images[:5], verbose=0), atol=1e-6)
    label_accuracy.load_or_train_classifier(cache_dir, images, shuffled, 3, seed=0, epochs=1)
    assert trained == [1, 1]


def test_a_small_set_still_gets_enough_steps_to_learn_its_classes():
    """300 images at batch 128 are 3 steps an epoch: 3 epochs alone are 9 Adam steps (0.63-0.83 held out on these
    noisy quadrants), MIN_STEPS read them all."""
    rng = np.random.default_rng(2)
    labels = rng.permutation(np.repeat(np.arange(3), 100))
    images = rng.uniform(-1, 1, (300, 16, 16, 1)).astype(np.float32)
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[index, row * 8:row * 8 + 8, col * 8:col * 8 + 8] += 0.3
    images = np.clip(images, -1, 1)
    few, _ = label_accuracy.train_label_classifier(images, labels, 3, seed=0, min_steps=0)
    model, enough = label_accuracy.train_label_classifier(images, labels, 3, seed=0)
    assert int(few.optimizer.iterations) == 9 and int(model.optimizer.iterations) == label_accuracy.MIN_STEPS
    assert enough >= 0.95


def test_labels_must_fit_the_classes():
    images, labels = quadrant_images(0, per_class=2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        label_accuracy.train_label_classifier(images, labels, 2, seed=0)
    with pytest.raises(ValueError, match="do not match"):
        label_accuracy.train_label_classifier(images, labels[:-1], 3, seed=0)


def test_every_value_names_the_network_that_measured_it():
    from dcgan_tf.metrics import feature_caption
    from dcgan_tf.metrics.evaluate import describe
    smoke = features.SmokeFeatures(seed=0, dim=8)
    assert "NOT a quality measure" in feature_caption(smoke.key)
    assert "NOT a quality measure" in feature_caption("tiny_conv-seed0-dim64")  # rows written before the rename
    assert feature_caption("fid_inception-0123456789ab") == "FID Inception"
    assert "bfloat16" in feature_caption("fid_inception_bf16-0123456789ab")
    assert "not the FID Inception" in feature_caption("inception_v3-0123")
    row = {"step": 5, "kid": 0.1, "kid_std": 0.01, "samples": 8, "real": 10, "seconds": 1.0, "features": smoke.key}
    assert "(smoke features: NOT a quality measure, 8 samples vs 10 real" in describe(row)


def test_runs_saved_with_the_former_network_names_still_load():
    from dcgan_tf.config import Config
    assert Config.from_values({"metrics_features": "tiny"}).metrics_features == "smoke"
    assert Config.from_values({"metrics_features": "inception"}).metrics_features == "keras_inception"
    assert Config().metrics_features == "fid_inception"
