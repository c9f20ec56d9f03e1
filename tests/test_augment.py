"""DiffAugment: each policy does what it says, is differentiable and keyed, p = 0 is the identity; a run with
--augment trains, and resumes exactly."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import read_csv, tiny_config
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.core import augment
from dcgan_tf.training.loop import train

KEY = tf.constant([7, 11], tf.int64)


def batch(count=6, size=16, channels=3, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (count, size, size, channels)), tf.float32)


@pytest.mark.parametrize("policy", augment.AUGMENT_POLICIES)
def test_each_policy_keeps_the_shape_follows_its_key_and_passes_gradients(policy):
    images = batch()
    once = augment.augment(images, (policy,), KEY)
    assert once.shape == images.shape and once.dtype == images.dtype
    np.testing.assert_array_equal(once, augment.augment(images, (policy,), KEY))  # the same key, the same images
    assert not np.array_equal(once, augment.augment(images, (policy,), KEY + 1))
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(augment.augment(images, (policy,), KEY) ** 2)
    gradient = tape.gradient(total, images)
    assert gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0


def test_translation_moves_a_pixel_by_at_most_an_eighth_and_fills_with_zeros():
    images = np.zeros((40, 16, 16, 1), np.float32)
    images[:, 8, 8, 0] = 1.0
    moved = augment.translation(tf.constant(images), KEY).numpy()
    where = [np.argwhere(image[..., 0] == 1.0) for image in moved]
    assert all(len(found) == 1 for found in where)  # never shifted out: 8 +- 2 stays inside
    shifts = np.array([found[0] - (8, 8) for found in where])
    assert np.abs(shifts).max() == 2 and len({tuple(s) for s in shifts}) > 5  # up to 16 / 8 = 2, and varied
    assert set(np.unique(moved)) == {0.0, 1.0}
    ones = augment.translation(tf.ones((40, 16, 16, 1)), KEY).numpy()
    assert ones.min() == 0.0 and np.all((ones == 0) | (ones == 1))  # uncovered rows and columns are zero


def test_cutout_zeroes_one_square_of_half_the_side():
    out = augment.cutout(tf.ones((50, 16, 16, 3)), KEY).numpy()
    for image in out:
        zero = np.argwhere(image[..., 0] == 0)
        assert np.all(image[..., 0] == image[..., 2])  # every channel alike
        rows, cols = zero[:, 0], zero[:, 1]
        assert rows.max() - rows.min() < 8 and cols.max() - cols.min() < 8  # one square, at most 8 x 8
        assert len(zero) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert {int((image[..., 0] == 0).sum()) for image in out} >= {64}  # whole squares where inside the image


def test_color_changes_each_image_by_its_own_factors():
    images = batch(8)
    out = augment.color(images, KEY).numpy()
    assert not np.allclose(out, images) and np.all(np.isfinite(out))
    shift = (out - images.numpy()).mean(axis=(1, 2, 3))
    assert len(np.unique(np.round(shift, 4))) == 8


def test_p_zero_is_the_identity_and_p_half_augments_some_images():
    images = batch(40)
    np.testing.assert_array_equal(augment.augment(images, augment.AUGMENT_POLICIES, KEY, p=0.0), images)
    half = augment.augment(images, ("cutout",), KEY, p=0.5).numpy()
    untouched = [np.array_equal(a, b) for a, b in zip(half, images.numpy())]
    assert 5 < sum(untouched) < 35
    # ADA's p is a variable: in a graph, p = 0 is the identity too, and any other p augments as the float would
    ada_p = tf.Variable(0.0)
    through = tf.function(lambda x: augment.augment(x, augment.AUGMENT_POLICIES, KEY, p=ada_p))
    np.testing.assert_array_equal(through(images), images)
    ada_p.assign(0.5)
    np.testing.assert_allclose(through(images), augment.augment(images, augment.AUGMENT_POLICIES, KEY, p=0.5))


def test_the_augment_flags_name_the_run_and_are_checked():
    assert Config(augment="all").augment_policies == ("color", "translation", "cutout")
    assert Config(augment="cutout,color").default_run_name().endswith("_aug-color-cutout")
    assert Config(augment="translation", augment_p=0.5).default_run_name().endswith("_aug-translation_augp0.5")
    base = Config(augment="color,translation")
    assert base.model_differences(Config(augment="translation,color")) == {}
    for values, field in (({"augment": "colour"}, "augment"), ({"augment": "color", "augment_p": 0}, "augment_p"),
                          ({"augment_p": 0.5}, "augment_p")):
        with pytest.raises(ConfigError) as raised:
            Config(**values).validate()
        assert raised.value.field == field


@pytest.mark.slow
def test_an_augmented_run_trains_and_resumes_exactly(tmp_path, image_folder):
    """Augmentations keyed by the step: a run stopped and resumed gives the uninterrupted run's losses."""
    straight = train(tiny_config(tmp_path / "a", image_folder, epoch=2, augment="all")).config
    train(tiny_config(tmp_path / "b", image_folder, epoch=1, augment="all"))
    resumed = train(tiny_config(tmp_path / "b", image_folder, epoch=2, augment="all")).config
    plain = train(tiny_config(tmp_path / "c", image_folder, epoch=1)).config
    a, b, c = read_csv(straight), read_csv(resumed), read_csv(plain)
    assert [row["step"] for row in b] == [str(step) for step in range(1, 7)]
    for x, y in zip(a, b):
        assert x["d_loss"] == y["d_loss"] and x["g_loss"] == y["g_loss"]
    assert a[0]["d_loss"] != c[0]["d_loss"]  # D saw augmented images
