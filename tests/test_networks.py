"""Generator and discriminator: shapes for every supported size, refusal for the rest, the DCGAN init."""

import numpy as np
import pytest

from dcgan_tf.core.networks import build_discriminator, build_generator, check_output_size


@pytest.mark.parametrize("height,width", [(16, 16), (32, 32), (48, 48), (64, 64), (32, 48), (96, 64)])
def test_unconditional_shapes(height, width):
    generator = build_generator(height, width, c_dim=3, z_dim=7, gf_dim=4)
    discriminator = build_discriminator(height, width, c_dim=3, df_dim=4)
    images = generator(np.zeros((2, 7), np.float32))
    assert images.shape == (2, height, width, 3)
    assert np.all(np.abs(images.numpy()) <= 1.0)  # tanh range
    assert discriminator(images).shape == (2, 1)


@pytest.mark.parametrize("size", [28, 32, 64])
def test_conditional_shapes(size):
    generator = build_generator(size, size, c_dim=1, z_dim=5, gf_dim=4, y_dim=10, gfc_dim=16)
    discriminator = build_discriminator(size, size, c_dim=1, df_dim=4, y_dim=10, dfc_dim=16)
    z, y = np.zeros((3, 5), np.float32), np.eye(10, dtype=np.float32)[:3]
    images = generator([z, y])
    assert images.shape == (3, size, size, 1)
    assert discriminator([images.numpy(), y]).shape == (3, 1)


def test_labels_reach_the_conditional_generator():
    generator = build_generator(28, 28, c_dim=1, z_dim=5, gf_dim=4, y_dim=10, gfc_dim=16)
    z = np.full((2, 5), 0.3, np.float32)
    y = np.eye(10, dtype=np.float32)[[1, 7]]
    a, b = generator([z, y]).numpy()
    assert not np.allclose(a, b)  # same z, different digit -> different image


@pytest.mark.parametrize("height,width,conditional,message", [
    (12, 28, False, "at least 16"), (28, 8, False, "at least 16"), (30, 30, True, "nearest: 28 or 32"),
])
def test_unsupported_sizes_are_refused_with_sizes_that_work(height, width, conditional, message):
    with pytest.raises(ValueError, match=message):
        check_output_size(height, width, conditional=conditional)
    with pytest.raises(ValueError, match="does not work"):
        build_generator(height, width, c_dim=3, gf_dim=4, y_dim=10 if conditional else None)


@pytest.mark.parametrize("height,width", [(28, 28), (20, 64), (48, 33)])
def test_sides_that_are_not_multiples_of_16_halve_rounding_up_as_in_carpedm20(height, width):
    generator = build_generator(height, width, c_dim=1, z_dim=8, gf_dim=4)
    discriminator = build_discriminator(height, width, c_dim=1, df_dim=4)
    assert generator.output_shape == (None, height, width, 1)
    expected = [(-(-height // 2**k), -(-width // 2**k)) for k in range(1, 5)]  # conv_out_size_same
    convs = [layer for layer in discriminator.layers if layer.name.endswith("_conv")]
    assert [tuple(layer.output.shape[1:3]) for layer in convs] == expected
    deconvs = [generator.get_layer(f"g_h{i}") for i in range(1, 5)]
    assert [tuple(layer.output.shape[1:3]) for layer in deconvs] == expected[::-1][1:] + [(height, width)]
    images = generator(np.zeros((2, 8), np.float32), training=False)
    assert discriminator(images, training=False).shape == (2, 1)


def test_multiples_of_16_keep_the_default_transposed_convs():
    generator = build_generator(32, 48, c_dim=3, z_dim=8, gf_dim=4)
    assert all(generator.get_layer(f"g_h{i}").output_padding is None for i in range(1, 5))


def test_dcgan_weight_init_and_architecture():
    generator = build_generator(64, 64, c_dim=3, z_dim=100, gf_dim=64)
    discriminator = build_discriminator(64, 64, c_dim=3, df_dim=64)
    kernel = generator.get_layer("g_h0_lin").kernel.numpy()
    assert kernel.shape == (100, 4 * 4 * 512)  # dense z -> h/16 x w/16 x 8*gf_dim
    assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.001  # N(0, 0.02)
    transposed = [layer for layer in generator.layers if "Conv2DTranspose" in type(layer).__name__]
    assert [layer.filters for layer in transposed] == [256, 128, 64, 3]
    assert all(layer.kernel_size == (5, 5) and layer.strides == (2, 2) for layer in transposed)
    convs = [layer for layer in discriminator.layers if type(layer).__name__ == "Conv2D"]
    assert [layer.filters for layer in convs] == [64, 128, 256, 512]
    norms = [layer.name for layer in discriminator.layers if "BatchNormalization" in type(layer).__name__]
    assert norms == ["d_bn1", "d_bn2", "d_bn3"]  # BN on all but the first conv


@pytest.mark.parametrize("conv_layers,batchnorm", [(2, False), (2, True), (3, False), (4, True)])
def test_discriminator_depth_and_batchnorm_knobs(conv_layers, batchnorm):
    discriminator = build_discriminator(32, 32, c_dim=3, df_dim=4, conv_layers=conv_layers, batchnorm=batchnorm)
    convs = [layer for layer in discriminator.layers if type(layer).__name__ == "Conv2D"]
    norms = [layer for layer in discriminator.layers if "BatchNormalization" in type(layer).__name__]
    assert [layer.filters for layer in convs] == [4 * 2**i for i in range(conv_layers)]
    assert len(norms) == (conv_layers - 1 if batchnorm else 0)
    assert discriminator(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 1)
    with pytest.raises(ValueError, match="1 to 4 conv layers"):
        build_discriminator(32, 32, c_dim=3, conv_layers=5)


def test_conditional_discriminator_without_batchnorm():
    discriminator = build_discriminator(28, 28, c_dim=1, df_dim=4, y_dim=10, dfc_dim=16, batchnorm=False)
    assert not [layer for layer in discriminator.layers if "BatchNormalization" in type(layer).__name__]


def test_a_width_that_does_not_work_names_the_width_flag():
    from dcgan_tf.config import Config, ConfigError

    with pytest.raises(ConfigError) as error:
        Config(output_height=32, output_width=12).validate()
    assert error.value.field == "output_width" and "output width 12 does not work" in str(error.value)
