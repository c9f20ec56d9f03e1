"""The DCGAN paper's section 6.2 look at what D has learnt: its conv filters' favourite images, and what in them.

write_d_features draws one PNG in two halves, "trained D" above "untrained D". Each half has one row per filter
(the first `filters` filters of one conv layer, the last by default): on the left the `top` training images that
excite the filter most (the largest maximum over space of its activation map, batch norm in inference mode), on the
right the same images' guided-backpropagation maps (Springenberg et al. 2015), which show the pixels that raise that
maximum. Trained filters pick images that share a part or texture and their maps outline it; the untrained D is the
same architecture with the run's initial weights (inference.initial_model rebuilds them: build_dcgan seeds Keras
with the seed in the run's config.json before building), the baseline showing what random filters already respond
to.

Only unconditional discriminators: a conditional D reads labels (MNIST's at every layer), so its filters answer image and
label together.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf.images import CELL_PADDING, MIN_LABELED_CELL, save_image, text_cell, tile, to_uint8, upscale
from dcgan_tf.metrics.features import (as_float_images, discriminator_conv_activations, discriminator_feature_model,
                                       extract_in_batches)

TITLE_HEIGHT = 30  # the "trained D" / "untrained D" title cell above each half, in pixels
HALF_GAP = 8  # white pixels between the two halves
TITLES = ("trained D", "untrained D")
# the layers a guided copy of D's path may hold (D is a chain of these up to each conv layer's LeakyReLU)
CHAIN_LAYERS = (keras.layers.InputLayer, keras.layers.Conv2D, keras.layers.SpectralNormalization,
                keras.layers.BatchNormalization, keras.layers.LeakyReLU)


# ------------------------------------------------------------------------------------------- D's conv layers
def conv_layer_index(discriminator: keras.Model, layer: int = -1) -> int:
    """`layer` (Python-style: -1 the last conv) as D's conv layer index from 0; ValueError for a conditional D or a
    layer that does not exist."""
    if len(discriminator.inputs) > 1:
        raise ValueError("d_features needs an unconditional run: this discriminator is conditional (it reads labels "
                         "with the images), so its filters do not answer to images alone")
    count = len(discriminator_conv_activations(discriminator))
    if not -count <= layer < count:
        raise ValueError(f"conv layer {layer} does not exist: this discriminator has {count} (0-{count - 1}, or "
                         f"-1 for the last)")
    return layer % count


def _feature_model(discriminator: keras.Model, layer: int) -> keras.Model:
    """images -> the activation maps [N, h, w, c] of D's conv layer `layer`."""
    return discriminator_feature_model(discriminator, [conv_layer_index(discriminator, layer)])


def filter_responses(discriminator: keras.Model, images, layer: int = -1, batch_size: int = 256) -> np.ndarray:
    """images [N, H, W, C] float32 in [-1, 1] (or uint8) -> [N, filters] float64: each filter's maximum over space
    of its activation map in conv layer `layer` (batch norm in inference mode), computed `batch_size` at a time."""
    model = _feature_model(discriminator, layer)

    @tf.function
    def forward(batch):
        maps = tf.cast(model([batch], training=False), tf.float32)
        return tf.reduce_max(maps, axis=(1, 2))

    return extract_in_batches(forward, images, batch_size)


def choose_filters(responses: np.ndarray, count: int) -> list[int]:
    """The filters to show: the first `count` (clipped to the number there are), as the issue asks; `responses`
    [N, filters] only gives that number."""
    return list(range(max(0, min(int(count), np.shape(responses)[1]))))


def top_images(responses: np.ndarray, filters, top: int) -> np.ndarray:
    """responses [N, F], filter indices -> [len(filters), min(top, N)] int: for each filter the images with the
    largest responses, largest first (ties: the lower index first)."""
    responses = np.asarray(responses)
    top = min(int(top), len(responses))
    return np.array([np.argsort(-responses[:, f], kind="stable")[:top] for f in filters], dtype=np.int64
                    ).reshape(len(filters), top)


# ---------------------------------------------------------------------------------------- guided backpropagation
def _guided_leaky_relu(slope: float):
    """LeakyReLU(slope) whose gradient is guided: passed only where its input was > 0 and the gradient is > 0."""

    @tf.custom_gradient
    def guided(x):
        def gradient(upstream):
            keep = tf.logical_and(x > 0, upstream > 0)
            return upstream * tf.cast(keep, upstream.dtype)

        return tf.nn.leaky_relu(x, alpha=slope), gradient

    return guided


def _guided_path(discriminator: keras.Model, layer: int):
    """A function images -> conv layer `layer`'s activation maps through D's own layers (its weights, inference
    mode), each LeakyReLU replaced by its guided twin."""
    model = _feature_model(discriminator, layer)
    strange = [f"{type(step).__name__} {step.name}" for step in model.layers if not isinstance(step, CHAIN_LAYERS)]
    if strange:
        raise ValueError(f"guided backpropagation follows a chain of conv, batch norm and LeakyReLU layers; this "
                         f"discriminator also has {', '.join(strange)}")
    steps = [_guided_leaky_relu(float(step.negative_slope)) if isinstance(step, keras.layers.LeakyReLU)
             else (lambda x, step=step: step(x, training=False))
             for step in model.layers if not isinstance(step, keras.layers.InputLayer)]

    def path(images):
        x = images
        for step in steps:
            x = step(x)
        return x

    return path


def guided_backprop(discriminator: keras.Model, images, filter_index: int, layer: int = -1,
                    batch_size: int = 256) -> np.ndarray:
    """images [N, H, W, C] in [-1, 1] (or uint8) -> [N, H, W, C] float32: the guided-backpropagation gradient of
    filter `filter_index`'s maximum over space in conv layer `layer` with respect to each image.

    Guided (Springenberg et al. 2015): through every LeakyReLU the backward pass keeps only gradient where the
    forward input was > 0 and the incoming gradient is > 0, so the map shows what excites the filter.
    """
    path = _guided_path(discriminator, layer)
    images = as_float_images(images)
    parts = []
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start:start + batch_size])
        with tf.GradientTape() as tape:
            tape.watch(batch)
            maps = tf.cast(path(batch), tf.float32)
            # images are independent (inference-mode batch norm): the sum's gradient is each image's own
            target = tf.reduce_sum(tf.reduce_max(maps[..., filter_index], axis=(1, 2)))
        parts.append(tape.gradient(target, batch).numpy())
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros_like(images)


def gradient_picture(maps: np.ndarray) -> np.ndarray:
    """Guided maps [n, H, W, C] of one row -> uint8: map / max |map| over the row * 0.5 + 0.5 (zero is mid grey)."""
    largest = float(np.max(np.abs(maps))) if maps.size else 0.0
    scaled = maps / largest * 0.5 + 0.5 if largest > 0 else np.full_like(maps, 0.5)
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ the picture
def _half(discriminator: keras.Model, images: np.ndarray, pixels: np.ndarray, title: str, filters: int, top: int,
          layer: int) -> np.ndarray:
    """One half of the picture: a title cell above one row per filter, top images then their guided maps."""
    responses = filter_responses(discriminator, images, layer)
    chosen = choose_filters(responses, filters)
    picks = top_images(responses, chosen, top)
    cells = []
    for f, row in zip(chosen, picks):
        maps = guided_backprop(discriminator, images[row], f, layer)
        cells += [upscale(pixels[row]), upscale(gradient_picture(maps))]
    grid = tile(np.concatenate(cells), len(chosen), 2 * picks.shape[1], CELL_PADDING)
    return np.concatenate([text_cell(title, TITLE_HEIGHT, grid.shape[1]), grid])


def write_d_features(trained_discriminator: keras.Model, untrained_discriminator: keras.Model, images, path: str,
                     filters: int = 8, top: int = 8, layer: int = -1) -> str:
    """Write the section 6.2 picture to `path` (parent folders made) and return `path`; images [N, H, W, C] uint8
    (or float32 in [-1, 1]), the run's training images.

    "trained D" above "untrained D", HALF_GAP white pixels between: a TITLE_HEIGHT title, then one row per filter
    (the first `filters` of conv layer `layer`): its `top` most-activating images then their guided maps, every
    cell upscaled (images.upscale) with CELL_PADDING between; picture_size gives its size (filters and top clipped
    to the filters and images there are).
    """
    if int(filters) < 1 or int(top) < 1:
        raise ValueError(f"filters and top must be at least 1 (got {filters} and {top})")
    for discriminator in (trained_discriminator, untrained_discriminator):
        conv_layer_index(discriminator, layer)  # fail before any work
    images = np.asarray(images)
    if images.ndim != 4 or not len(images):
        raise ValueError(f"images must be [N, H, W, C] with N > 0, got {images.shape}")
    pixels = images if images.dtype == np.uint8 else to_uint8(images)
    halves = [_half(d, images, pixels, title, filters, top, layer)
              for d, title in zip((trained_discriminator, untrained_discriminator), TITLES)]
    width = max(h.shape[1] for h in halves)
    gap = np.full((HALF_GAP, width, 3), 255, np.uint8)
    halves = [np.pad(h, ((0, 0), (0, width - h.shape[1]), (0, 0)), constant_values=255) for h in halves]
    return save_image(np.concatenate([halves[0], gap, halves[1]]), path)


def picture_size(image_height: int, image_width: int, filters: int, top: int) -> tuple[int, int]:
    """(height, width) in pixels of write_d_features' picture for images H x W, `filters` rows and `top` images a
    row (both already clipped to what there is)."""
    factor = max(1, math.ceil(MIN_LABELED_CELL / min(image_height, image_width)))  # as images.upscale
    cell_height, cell_width = image_height * factor, image_width * factor
    half_height = TITLE_HEIGHT + filters * cell_height + (filters - 1) * CELL_PADDING
    return 2 * half_height + HALF_GAP, 2 * top * cell_width + (2 * top - 1) * CELL_PADDING
