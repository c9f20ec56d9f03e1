"""The section 6.2 look at D's features: filter responses, the top images, guided backpropagation, the picture."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dcgan_tf.analysis import d_features
from dcgan_tf.core.networks import build_discriminator
from dcgan_tf.images import CELL_PADDING, upscale
from dcgan_tf.metrics.features import discriminator_feature_model


def tiny_d(seed=0, height=16, width=16, channels=3, **kwargs):
    keras.utils.set_random_seed(seed)
    return build_discriminator(height, width, channels, df_dim=4, **kwargs)


def random_images(seed, count=6, height=16, width=16, channels=3):
    return np.random.default_rng(seed).uniform(-1, 1, (count, height, width, channels)).astype(np.float32)


# ------------------------------------------------------------------------------------ responses and top images
def test_responses_are_each_filters_spatial_maximum_in_batches_and_from_uint8():
    d, images = tiny_d(), random_images(0, count=7)
    responses = d_features.filter_responses(d, images)
    assert responses.shape == (7, 32)  # df_dim 4: the last of 4 convs has 4 * 8 filters
    maps = discriminator_feature_model(d, [3])([images], training=False).numpy()
    np.testing.assert_allclose(responses, maps.max(axis=(1, 2)), atol=1e-6)
    np.testing.assert_allclose(d_features.filter_responses(d, images, batch_size=3), responses, atol=1e-6)
    first = d_features.filter_responses(d, images, layer=0)
    assert first.shape == (7, 4)
    np.testing.assert_allclose(d_features.filter_responses(d, images, layer=-4), first)
    pixels = np.random.default_rng(1).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(d_features.filter_responses(d, pixels),
                               d_features.filter_responses(d, pixels.astype(np.float32) / 127.5 - 1), atol=1e-6)
    with pytest.raises(ValueError, match="conv layer 4 does not exist"):
        d_features.filter_responses(d, images, layer=4)


def test_top_images_are_the_largest_responses_largest_first():
    responses = d_features.filter_responses(tiny_d(1), random_images(2, count=12))
    filters = [0, 5, 31]
    picks = d_features.top_images(responses, filters, 4)
    assert picks.shape == (3, 4) and picks.dtype == np.int64
    for row, f in zip(picks, filters):
        brute = sorted(range(12), key=lambda i: (-responses[i, f], i))[:4]
        assert list(row) == brute
        assert responses[row, f].min() >= np.delete(responses[:, f], row).max()
    ties = np.array([[1.0], [3.0], [2.0], [3.0], [1.0]])
    assert d_features.top_images(ties, [0], 5).tolist() == [[1, 3, 2, 0, 4]]
    assert d_features.top_images(ties, [0], 9).shape == (1, 5)  # no more than the images there are
    assert d_features.choose_filters(responses, 8) == list(range(8))
    assert d_features.choose_filters(responses, 100) == list(range(32))


def test_a_filter_tuned_to_green_ranks_the_greenest_image_first():
    d = tiny_d(conv_layers=1)
    conv = d.get_layer("d_h0_conv")
    kernel = np.zeros(conv.kernel.shape, np.float32)
    kernel[:, :, 1, 2] = 1.0  # filter 2 sums the green of its 5 x 5 patch
    conv.kernel.assign(kernel)
    conv.bias.assign(np.zeros(conv.bias.shape, np.float32))
    rng = np.random.default_rng(3)
    green = rng.permutation(np.linspace(-0.9, 0.9, 9)).astype(np.float32)
    images = rng.uniform(-1, 1, (9, 16, 16, 3)).astype(np.float32)
    images[..., 1] = green[:, None, None]
    responses = d_features.filter_responses(d, images)
    picks = d_features.top_images(responses, [2], 9)[0]
    assert picks[0] == np.argmax(green)
    assert list(picks) == list(np.argsort(-green))


# ------------------------------------------------------------------------------------------ guided backpropagation
def test_guided_backprop_passes_nothing_back_through_a_negative_activation():
    """One conv: a filter that is negative everywhere has plain gradient 0.2 x its kernel but no guided one; one
    positive everywhere gets exactly the plain gradient."""
    d = tiny_d(conv_layers=1)
    conv = d.get_layer("d_h0_conv")
    conv.bias.assign(np.array([-100.0, 100.0, 0.0, 0.0], np.float32))
    images = random_images(4, count=3)
    x = tf.constant(images)
    model = discriminator_feature_model(d, [0])
    plain = []
    for f in (0, 1):
        with tf.GradientTape() as tape:
            tape.watch(x)
            target = tf.reduce_sum(tf.reduce_max(model([x], training=False)[..., f], axis=(1, 2)))
        plain.append(tape.gradient(target, x).numpy())
    negative = d_features.guided_backprop(d, images, 0)
    assert negative.shape == images.shape and negative.dtype == np.float32
    assert np.abs(plain[0]).max() > 0 and not negative.any()
    np.testing.assert_allclose(d_features.guided_backprop(d, images, 1), plain[1], atol=1e-7)


def test_guided_backprop_follows_the_guided_rule_through_two_layers():
    """By hand, layer by layer: at each LeakyReLU keep the gradient where its input and the gradient are > 0."""
    d = tiny_d(5, conv_layers=2)
    bn = d.get_layer("d_bn1")
    rng = np.random.default_rng(6)
    bn.moving_mean.assign(rng.normal(0, 0.05, 8).astype(np.float32))
    bn.moving_variance.assign(rng.uniform(0.01, 0.05, 8).astype(np.float32))
    conv0, conv1 = d.get_layer("d_h0_conv"), d.get_layer("d_h1_conv")
    images = random_images(7, count=4)
    x = tf.constant(images)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z1 = conv0(x)
        a1 = tf.nn.leaky_relu(z1, 0.2)
        z2 = bn(conv1(a1), training=False)
        a2 = tf.nn.leaky_relu(z2, 0.2)
        f = int(np.argmax(a2.numpy().max(axis=(0, 1, 2))))  # a filter with a positive maximum
        target = tf.reduce_sum(tf.reduce_max(a2[..., f], axis=(1, 2)))
    plain = tape.gradient(target, x).numpy()
    g_a2 = tape.gradient(target, a2)
    g_z2 = g_a2 * tf.cast((z2 > 0) & (g_a2 > 0), tf.float32)
    g_a1 = tape.gradient(z2, a1, output_gradients=g_z2)
    assert (g_a1.numpy() < 0).any() and (z1.numpy() < 0).any()  # the rule has something to drop
    g_z1 = g_a1 * tf.cast((z1 > 0) & (g_a1 > 0), tf.float32)
    by_hand = tape.gradient(z1, x, output_gradients=g_z1).numpy()
    guided = d_features.guided_backprop(d, images, f, layer=1, batch_size=3)
    assert guided.shape == images.shape
    assert np.abs(by_hand).max() > 0
    np.testing.assert_allclose(guided, by_hand, atol=1e-6)
    assert not np.allclose(guided, plain, atol=1e-4)
    np.testing.assert_allclose(d_features.guided_backprop(d, images, f, layer=-1), guided, atol=1e-6)


def test_gradient_pictures_scale_by_the_rows_largest_magnitude():
    maps = np.array([[[[-2.0]]], [[[1.0]]], [[[0.0]]]], np.float32)
    assert d_features.gradient_picture(maps).ravel().tolist() == [0, 191, 128]
    assert d_features.gradient_picture(np.zeros((2, 3, 3, 1), np.float32)).ravel().tolist() == [128] * 18


# ---------------------------------------------------------------------------------------------------- the picture
def test_the_picture_shows_trained_above_untrained_at_its_documented_size(tmp_path):
    trained, untrained = tiny_d(8), tiny_d(9)
    pixels = np.random.default_rng(10).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    path = str(tmp_path / "pictures" / "d_features.png")
    assert d_features.write_d_features(trained, untrained, pixels, path, filters=3, top=4) == path
    picture = np.asarray(Image.open(path).convert("RGB"))
    cell = 64  # 16 x 16 images upscaled 4 times
    half = d_features.TITLE_HEIGHT + 3 * cell + 2 * CELL_PADDING
    assert picture.shape[:2] == (2 * half + d_features.HALF_GAP, 8 * cell + 7 * CELL_PADDING)
    assert picture.shape[:2] == d_features.picture_size(16, 16, 3, 4)
    for d, top in ((trained, 0), (untrained, half + d_features.HALF_GAP)):
        assert (picture[top:top + d_features.TITLE_HEIGHT] < 128).any()  # its title
        first = d_features.top_images(d_features.filter_responses(d, pixels), [0], 1)[0, 0]
        row = top + d_features.TITLE_HEIGHT
        np.testing.assert_array_equal(picture[row:row + cell, :cell], upscale(pixels[first:first + 1])[0])
    assert (picture[half:half + d_features.HALF_GAP] == 255).all()


def test_the_picture_clips_filters_and_top_and_takes_grey_float_images(tmp_path):
    trained, untrained = tiny_d(11, 16, 32, 1, conv_layers=1), tiny_d(12, 16, 32, 1, conv_layers=1)
    images = random_images(13, count=5, height=16, width=32, channels=1)
    path = d_features.write_d_features(trained, untrained, images, str(tmp_path / "grey.png"), filters=10, top=20)
    height, width = Image.open(path).size[::-1]
    assert (height, width) == d_features.picture_size(16, 32, 4, 5)  # 4 filters, 5 images
    assert (height, width) == (2 * (d_features.TITLE_HEIGHT + 4 * 64 + 3 * CELL_PADDING) + d_features.HALF_GAP,
                               10 * 128 + 9 * CELL_PADDING)


def test_a_conditional_discriminator_is_refused(tmp_path):
    conditional = tiny_d(height=28, width=28, channels=1, y_dim=10)
    images = random_images(14, count=2, height=28, width=28, channels=1)
    with pytest.raises(ValueError, match="unconditional run"):
        d_features.write_d_features(conditional, conditional, images, str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="unconditional run"):
        d_features.filter_responses(conditional, images)
    with pytest.raises(ValueError, match="unconditional run"):
        d_features.guided_backprop(conditional, images, 0)
    assert not (tmp_path / "x.png").exists()
