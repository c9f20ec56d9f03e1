"""dcgan_tf.latent: z distributions, sweeps, slerp / lerp paths and group arithmetic on z."""

import math

import numpy as np
import pytest

from dcgan_tf import latent
from dcgan_tf.config import Z_DISTRIBUTIONS


def test_every_configurable_z_distribution_can_be_drawn_and_swept():
    assert set(latent.Z_DISTRIBUTIONS) == set(Z_DISTRIBUTIONS)
    for name in Z_DISTRIBUTIONS:
        z = np.asarray(latent.sample_z((500, 3), name, 0))
        low, high = latent.sweep_range(name)
        assert z.shape == (500, 3) and low < z.mean() < high
        if not latent.Z_DISTRIBUTIONS[name].normal:
            assert low <= z.min() and z.max() <= high  # a uniform draw stays inside its support


def test_sweep_z_varies_exactly_one_dimension():
    base = np.array([0.3, -0.2, 0.9, 0.1], np.float32)
    values = latent.sweep_values("uniform_signed", 5)
    np.testing.assert_allclose(values, [-1, -0.5, 0, 0.5, 1])
    batch = latent.sweep_z(base, 2, values)
    assert batch.shape == (5, 4)
    np.testing.assert_array_equal(batch[:, 2], values)
    np.testing.assert_array_equal(np.delete(batch, 2, axis=1), np.tile(np.delete(base, 2), (5, 1)))
    assert base[2] == np.float32(0.9)  # the base is not changed


def test_sweep_ranges_follow_the_z_distribution():
    assert (latent.sweep_values("uniform_unsigned", 3) == [0, 0.5, 1]).all()
    assert (latent.sweep_values("normal01", 3) == [-2, 0, 2]).all()


def test_slerp_endpoints_and_norms():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    t = np.linspace(0, 1, 11)
    path = latent.slerp(a, b, t)
    assert path.shape == (11, 50)
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-9)  # unit vectors stay on the sphere
    assert np.linalg.norm(latent.lerp(a, b, 0.5)) < 0.8  # the straight line cuts inside
    np.testing.assert_allclose(latent.slerp(a, b, 0.3), path[3])  # scalar t -> one vector
    # unequal norms: every point's norm lies between the ends' norms
    for _ in range(200):
        a, b = rng.uniform(-1, 1, 8), rng.uniform(-1, 1, 8) * rng.uniform(0.2, 3)
        norms = np.linalg.norm(latent.slerp(a, b, t), axis=1)
        low, high = sorted([np.linalg.norm(a), np.linalg.norm(b)])
        assert low - 1e-9 <= norms.min() and norms.max() <= high + 1e-9
    # parallel vectors and zero vectors: the straight line
    np.testing.assert_allclose(latent.slerp(a, 2 * a, 0.5), 1.5 * a)
    np.testing.assert_allclose(latent.slerp(np.zeros(8), b, 0.5), b / 2)


def test_interpolation_path():
    z0, z1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    path = latent.interpolation_path(z0, z1, 5, "slerp")
    assert path.shape == (5, 2) and path.dtype == np.float32
    np.testing.assert_allclose(path[[0, -1]], [z0, z1], atol=1e-7)
    np.testing.assert_allclose(path[2], [math.sqrt(0.5)] * 2, atol=1e-6)
    np.testing.assert_allclose(latent.interpolation_path(z0, z1, 3, "linear")[1], [0.5, 0.5])
    with pytest.raises(ValueError, match="slerp, linear"):
        latent.interpolation_path(z0, z1, 3, "cubic")


def test_combine_groups_uses_the_group_means():
    bank = np.random.default_rng(1).uniform(-1, 1, (10, 6)).astype(np.float32)
    groups = [(1, [0, 1, 2]), (-1, [3, 4]), (1, [9])]  # "0,1,2 - 3,4 + 9"
    expected = bank[[0, 1, 2]].mean(0) - bank[[3, 4]].mean(0) + bank[9]
    np.testing.assert_allclose(latent.combine_groups(bank, groups), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="sample 10 is not on the numbered grid.*0-9"):
        latent.combine_groups(bank, [(1, [10])])


def test_parse_arithmetic():
    assert latent.parse_arithmetic("3,17,22 - 5,9,40 + 1,2,8") == [(1, [3, 17, 22]), (-1, [5, 9, 40]), (1, [1, 2, 8])]
    assert latent.parse_arithmetic(" -4 + 0, 1 ") == [(-1, [4]), (1, [0, 1])]
    assert latent.parse_arithmetic("7") == [(1, [7])]


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("   ", "empty"), ("1,2 -", "empty group"), ("1 + - 2", "empty group"), ("+", "empty group"),
    ("1,,2", "'1,,2'.*not a group of sample indices"), ("1,x - 2", "'1,x'"), ("1 2", "'1 2'"),
    ("1.5 + 2", "'1.5'"),
])
def test_parse_arithmetic_errors_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message) as info:
        latent.parse_arithmetic(text)
    assert info.value.field == "arith"
    assert "3,17,22 - 5,9,40 + 1,2,8" in str(info.value)  # with an example
