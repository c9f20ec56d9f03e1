"""Generator and discriminator as in carpedm20/DCGAN-tensorflow (the DCGAN paper's rules), as Keras models.

Unconditional nets use 4 stride-2 stages and take any side from 16 up: each stage halves it rounding up (28 -> 14,
7, 4, 2, as carpedm20's conv_out_size_same), and G's transposed convs grow it back to those sides. The conditional
nets used for MNIST follow carpedm20's MNIST path, 2 stride-2 stages with the labels concatenated at every layer
(multiples of 4, so 28 works). Conditional nets on labelled folders ("projection") are the 4-stage nets of any size:
G takes the one-hot label with z (and as label maps beside its first feature map), and D is a projection
discriminator, its logit plus the inner product of a label embedding with its last features.
"""

from __future__ import annotations

import functools

import keras
from keras import layers, ops

from dcgan_tf.config import UNCONDITIONAL_STAGES, side_problem, stage_sides

KERNEL = 5
BN_MOMENTUM = 0.9  # carpedm20's batch_norm(momentum=0.9, epsilon=1e-5)
BN_EPSILON = 1e-5


def weight_init():
    """N(0, 0.02), the DCGAN paper's initialisation for every conv and dense kernel."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


CONDITIONINGS = ("mnist", "projection")


def check_conditioning(conditioning: str) -> None:
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)} (got {conditioning!r})")


def check_output_size(height: int, width: int, conditional: bool = False) -> None:
    """Raise ValueError, listing sizes that work, unless every stride-2 stage divides both sides."""
    for side_name, side in (("height", height), ("width", width)):
        problem = side_problem(side_name, side, conditional)
        if problem:
            raise ValueError(problem)


def _spectral(layer: layers.Layer, normalised: bool) -> layers.Layer:
    """`layer` wrapped in Keras' SpectralNormalization (one power iteration per training call) when `normalised`."""
    if not normalised:
        return layer
    # the wrapper computes in its layer's dtype: D's last layer keeps its float32 logits under mixed precision
    return layers.SpectralNormalization(layer, name=f"{layer.name}_sn", dtype=layer.dtype_policy)


def _batch_norm(name: str, synchronized: bool = False) -> layers.BatchNormalization:
    """carpedm20's batch norm; `synchronized`: statistics over the global batch when split across replicas."""
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=synchronized, name=name)


@keras.saving.register_keras_serializable(package="dcgan_tf")  # generator.keras loads once dcgan_tf is imported
class ConcatLabelMaps(layers.Layer):
    """carpedm20's conv_cond_concat: tile one-hot labels [N, Y] over a feature map [N, H, W, C] -> [N, H, W, C+Y]."""

    def call(self, feature_map, labels):
        shape = ops.shape(feature_map)
        label_maps = ops.broadcast_to(labels[:, None, None, :], (shape[0], shape[1], shape[2], ops.shape(labels)[-1]))
        return ops.concatenate([feature_map, ops.cast(label_maps, feature_map.dtype)], axis=-1)

    def compute_output_shape(self, feature_map_shape, labels_shape):
        return (*feature_map_shape[:-1], feature_map_shape[-1] + labels_shape[-1])


def _output_padding(heights: list[int], widths: list[int]) -> tuple[int, int] | None:
    """The output_padding taking a stride-2 "same" transposed conv from side s to 2s - 1 (an odd side) or 2s; None
    where both sides double (Keras' default, the shape multiples of 16 always had)."""
    (h_in, h_out), (w_in, w_out) = heights, widths
    if (h_out, w_out) == (2 * h_in, 2 * w_in):
        return None
    return h_out - 2 * h_in + 1, w_out - 2 * w_in + 1


def build_generator(height: int, width: int, c_dim: int, z_dim: int = 100, gf_dim: int = 64,
                    y_dim: int | None = None, gfc_dim: int = 1024, sync_batchnorm: bool = False,
                    spectral_norm: bool = False, conditioning: str = "mnist") -> keras.Model:
    """z [N, z_dim] (and one-hot y [N, y_dim]) -> images [N, height, width, c_dim] in [-1, 1] (tanh).

    With y_dim, `conditioning` "mnist": carpedm20's 2-stage MNIST nets, y concatenated at every layer; "projection":
    the 4-stage nets of any size, y concatenated to z and as label maps to the first feature map.

    `sync_batchnorm`: batch statistics over all replicas of a distribution strategy (the same maths as one device).
    `spectral_norm`: every dense and (transposed) conv layer spectrally normalised.
    """
    check_conditioning(conditioning)
    mnist_nets = bool(y_dim) and conditioning == "mnist"
    check_output_size(height, width, conditional=mnist_nets)
    bn = functools.partial(_batch_norm, synchronized=sync_batchnorm)
    sn = functools.partial(_spectral, normalised=spectral_norm)
    if mnist_nets:
        return _conditional_generator(height, width, c_dim, z_dim, gf_dim, y_dim, gfc_dim, bn, sn)
    heights, widths = stage_sides(height)[::-1], stage_sides(width)[::-1]  # smallest first
    z = keras.Input((z_dim,), name="z")
    y = keras.Input((y_dim,), name="y") if y_dim else None
    x = layers.Concatenate()([z, y]) if y_dim else z  # projection conditioning: the label enters with z
    x = sn(layers.Dense(heights[0] * widths[0] * gf_dim * 8, use_bias=False, kernel_initializer=weight_init(),
                     name="g_h0_lin"))(x)
    x = layers.Reshape((heights[0], widths[0], gf_dim * 8))(x)
    x = layers.ReLU()(bn("g_bn0")(x))
    if y_dim:  # and as label maps beside the first feature map
        x = ConcatLabelMaps()(x, y)
    for i, filters in enumerate((gf_dim * 4, gf_dim * 2, gf_dim, c_dim), start=1):
        last = i == UNCONDITIONAL_STAGES
        x = sn(layers.Conv2DTranspose(filters, KERNEL, strides=2, padding="same", use_bias=last,
                                      output_padding=_output_padding(heights[i - 1:i + 1], widths[i - 1:i + 1]),
                                      kernel_initializer=weight_init(), name=f"g_h{i}"))(x)
        if not last:
            x = layers.ReLU()(bn(f"g_bn{i}")(x))
    images = layers.Activation("tanh", dtype="float32", name="g_out")(x)
    return keras.Model([z, y] if y_dim else z, images, name="generator")


def _conditional_generator(height, width, c_dim, z_dim, gf_dim, y_dim, gfc_dim, bn, sn) -> keras.Model:
    z = keras.Input((z_dim,), name="z")
    y = keras.Input((y_dim,), name="y")
    h4, w4 = height // 4, width // 4
    x = layers.Concatenate()([z, y])
    x = sn(layers.Dense(gfc_dim, use_bias=False, kernel_initializer=weight_init(), name="g_h0_lin"))(x)
    x = layers.ReLU()(bn("g_bn0")(x))
    x = layers.Concatenate()([x, y])
    x = sn(layers.Dense(gf_dim * 2 * h4 * w4, use_bias=False, kernel_initializer=weight_init(), name="g_h1_lin"))(x)
    x = layers.ReLU()(bn("g_bn1")(x))
    x = layers.Reshape((h4, w4, gf_dim * 2))(x)
    x = ConcatLabelMaps()(x, y)
    x = sn(layers.Conv2DTranspose(gf_dim * 2, KERNEL, strides=2, padding="same", use_bias=False,
                               kernel_initializer=weight_init(), name="g_h2"))(x)
    x = layers.ReLU()(bn("g_bn2")(x))
    x = ConcatLabelMaps()(x, y)
    x = sn(layers.Conv2DTranspose(c_dim, KERNEL, strides=2, padding="same", kernel_initializer=weight_init(),
                                  name="g_h3"))(x)
    images = layers.Activation("tanh", dtype="float32", name="g_out")(x)
    return keras.Model([z, y], images, name="generator")


def build_discriminator(height: int, width: int, c_dim: int, df_dim: int = 64,
                        y_dim: int | None = None, dfc_dim: int = 1024, conv_layers: int = UNCONDITIONAL_STAGES,
                        batchnorm: bool = True, sync_batchnorm: bool = False,
                        spectral_norm: bool = False, conditioning: str = "mnist") -> keras.Model:
    """images [N, height, width, c_dim] in [-1, 1] (and one-hot y) -> real/fake logits [N, 1] (float32).

    `conv_layers` (1-4) stride-2 convs, and `batchnorm` on all but the first: fewer layers and no batch norm make a
    weaker D, for small data sets where it overpowers G. The conditional (MNIST) D keeps carpedm20's 2 convs.
    `spectral_norm`: every conv and dense layer spectrally normalised (SNGAN), which bounds D's Lipschitz constant.
    """
    check_conditioning(conditioning)
    mnist_nets = bool(y_dim) and conditioning == "mnist"
    check_output_size(height, width, conditional=mnist_nets)
    bn = functools.partial(_batch_norm, synchronized=sync_batchnorm)
    sn = functools.partial(_spectral, normalised=spectral_norm)
    if not 1 <= conv_layers <= UNCONDITIONAL_STAGES:
        raise ValueError(f"the discriminator takes 1 to {UNCONDITIONAL_STAGES} conv layers (got {conv_layers})")
    if mnist_nets:
        return _conditional_discriminator(height, width, c_dim, df_dim, y_dim, dfc_dim, batchnorm, bn, sn)
    images = keras.Input((height, width, c_dim), name="images")
    x = images
    for i in range(conv_layers):
        normalised = batchnorm and i > 0
        x = sn(layers.Conv2D(df_dim * 2**i, KERNEL, strides=2, padding="same", use_bias=not normalised,
                          kernel_initializer=weight_init(), name=f"d_h{i}_conv"))(x)
        if normalised:
            x = bn(f"d_bn{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    logits = sn(layers.Dense(1, kernel_initializer=weight_init(), dtype="float32", name="d_out_lin"))(x)
    if not y_dim:
        return keras.Model(images, logits, name="discriminator")
    # the projection discriminator (Miyato & Koyama 2018): + <embed(y), features>, an inner product that asks
    # whether the image's features fit its label; the one-hot label times a matrix is the embedding
    y = keras.Input((y_dim,), name="y")
    embedded = sn(layers.Dense(x.shape[-1], use_bias=False, kernel_initializer=weight_init(), dtype="float32",
                               name="d_embed_y"))(y)
    projection = layers.Dot(axes=1, dtype="float32", name="d_projection")([embedded, x])
    logits = layers.Add(dtype="float32", name="d_out")([logits, projection])
    return keras.Model([images, y], logits, name="discriminator")


def _conditional_discriminator(height, width, c_dim, df_dim, y_dim, dfc_dim, batchnorm, bn, sn) -> keras.Model:
    images = keras.Input((height, width, c_dim), name="images")
    y = keras.Input((y_dim,), name="y")
    x = ConcatLabelMaps()(images, y)
    x = sn(layers.Conv2D(c_dim + y_dim, KERNEL, strides=2, padding="same", kernel_initializer=weight_init(),
                      name="d_h0_conv"))(x)
    x = layers.LeakyReLU(0.2)(x)
    x = ConcatLabelMaps()(x, y)
    x = sn(layers.Conv2D(df_dim + y_dim, KERNEL, strides=2, padding="same", use_bias=not batchnorm,
                      kernel_initializer=weight_init(), name="d_h1_conv"))(x)
    x = layers.LeakyReLU(0.2)(bn("d_bn1")(x) if batchnorm else x)
    x = layers.Flatten()(x)
    x = layers.Concatenate()([x, y])
    x = sn(layers.Dense(dfc_dim, use_bias=not batchnorm, kernel_initializer=weight_init(), name="d_h2_lin"))(x)
    x = layers.LeakyReLU(0.2)(bn("d_bn2")(x) if batchnorm else x)
    x = layers.Concatenate()([x, y])
    logits = sn(layers.Dense(1, kernel_initializer=weight_init(), dtype="float32", name="d_h3_lin"))(x)
    return keras.Model([images, y], logits, name="discriminator")
