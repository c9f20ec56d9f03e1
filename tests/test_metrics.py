"""The feature-space metrics (numpy, no TensorFlow): FID, KID, precision/recall, memorisation, and the registry."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from dcgan_tf import images as pictures
from dcgan_tf import metrics
from dcgan_tf.metrics import distances, fid, kid, memorisation, precision_recall


def gaussian(seed, count=300, dim=8, shift=0.0):
    return np.random.default_rng(seed).normal(size=(count, dim)) + shift


def clusters(seed, per_cluster=60, which=range(5), dim=5):
    """Points around 5 far-apart centres (10 * the unit vectors), `per_cluster` round each centre in `which`.

    k-NN balls cover about 90% of a set's own distribution at these sizes, so "high" means > 0.75."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(dim)[:5]
    return np.concatenate([centres[c] + 0.5 * rng.normal(size=(per_cluster, dim)) for c in which])


# ------------------------------------------------------------------------------------------------- distances
def test_kth_nearest_matches_brute_force_across_blocks(monkeypatch):
    monkeypatch.setattr(distances, "BLOCK_ELEMENTS", 50)  # 50 // 30 = 1 query row per block
    queries, references = gaussian(0, 12, 5), gaussian(1, 30, 5)
    full = cdist(queries, references)
    for k in (1, 3):
        indices, found = distances.kth_nearest(queries, references, k)
        np.testing.assert_array_equal(indices, np.argsort(full, axis=1)[:, k - 1])
        np.testing.assert_allclose(found, np.sort(full, axis=1)[:, k - 1], atol=1e-9)
    own = cdist(references, references) + np.diag(np.full(30, np.inf))
    np.testing.assert_allclose(distances.kth_nearest(references, references, 2, same_set=True)[1],
                               np.sort(own, axis=1)[:, 1], atol=1e-9)


def test_kth_nearest_needs_enough_points_and_feature_sets_must_agree():
    with pytest.raises(ValueError, match="k = 3"):
        distances.kth_nearest(gaussian(0, 3), gaussian(0, 3), 3, same_set=True)
    with pytest.raises(ValueError, match="not the same extractor"):
        fid.fid(gaussian(0, dim=4), gaussian(0, dim=5))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        kid.kid(np.zeros(10), np.zeros(10))


# ------------------------------------------------------------------------------------------------------ FID
def test_fid_of_a_set_with_itself_is_zero():
    features = gaussian(0)
    assert abs(fid.fid(features, features)) < 1e-6


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2.0 * np.sqrt(var1 * var2))
    assert fid.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_with_one_full_covariance_is_the_mean_gap():
    a = np.random.default_rng(2).normal(size=(6, 6))
    sigma = a @ a.T + np.eye(6)
    mu1, mu2 = np.zeros(6), np.arange(6.0)
    assert fid.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(55.0, abs=1e-6)


def test_fid_grows_with_the_shift_between_sets():
    base = gaussian(0)
    near, far = fid.fid(base, gaussian(1, shift=0.5)), fid.fid(base, gaussian(1, shift=2.0))
    assert 0 < near < far
    assert far == pytest.approx(8 * 2.0 ** 2, rel=0.15)  # |mu gap|^2 dominates


def test_frechet_distance_matches_scipys_sqrtm_on_full_covariances():
    from scipy import linalg

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(200, 12)), rng.normal(size=(150, 12)) @ rng.normal(size=(12, 12)) + 0.3
    (mu1, s1), (mu2, s2) = fid.feature_statistics(a), fid.feature_statistics(b)
    reference = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-9)


def test_fewer_vectors_than_dimensions_give_a_real_finite_distance():
    """Singular covariances (a small data set's features): no complex roots, no retry, and 0 for identical sets."""
    rng = np.random.default_rng(6)
    few = rng.normal(size=(20, 64))
    assert fid.fid(few, few) == pytest.approx(0.0, abs=1e-4)  # rounding in the roots of the 44 zero eigenvalues
    assert 0 < fid.fid(few, rng.normal(size=(30, 64)) + 1.0) < np.inf


# ------------------------------------------------------------------------------------------------------ KID
def test_mmd2_unbiased_matches_its_definition():
    x, y = gaussian(0, 5, 3), gaussian(1, 5, 3)

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    pairs = [(i, j) for i in range(5) for j in range(5) if i != j]
    expected = (sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in pairs) / 20
                - 2 * sum(k(x[i], y[j]) for i in range(5) for j in range(5)) / 25)
    assert kid.mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted_ones():
    a, b = gaussian(0, 400, 16), gaussian(1, 400, 16)
    mean, std = kid.kid(a, b, subsets=20, subset_size=200)
    assert abs(mean) < 3 * std and abs(mean) < 0.05
    shifted_mean, shifted_std = kid.kid(a, gaussian(1, 400, 16, shift=0.5), subsets=20, subset_size=200)
    assert shifted_mean > 0.5 and shifted_mean > 10 * shifted_std


def test_kid_follows_its_seed_and_its_subsets_vary_on_a_small_set():
    a, b = gaussian(0, 60), gaussian(1, 80, shift=0.2)
    assert kid.kid(a, b, subsets=5, subset_size=30, seed=4) == kid.kid(a, b, subsets=5, subset_size=30, seed=4)
    assert kid.kid(a, b, subsets=5, subset_size=30, seed=4) != kid.kid(a, b, subsets=5, subset_size=30, seed=5)
    mean, std = kid.kid(a, b[:60], subsets=20, subset_size=1000)  # subsets of 30, half the set: they differ
    assert std > 0 and abs(mean - kid.mmd2_unbiased(a, b[:60])) < 3 * std
    with pytest.raises(ValueError, match="at least 4"):
        kid.kid(a[:3], b)


def test_kid_from_the_precomputed_kernel_equals_subset_by_subset(monkeypatch):
    a, b = gaussian(0, 50), gaussian(1, 70, shift=0.3)
    once = kid.kid(a, b, subsets=6, subset_size=20, seed=2)
    monkeypatch.setattr(kid, "PRECOMPUTED_LIMIT", 0)
    assert kid.kid(a, b, subsets=6, subset_size=20, seed=2) == pytest.approx(once, rel=1e-12)


# ----------------------------------------------------------------------------------------- precision/recall
def test_samples_like_the_data_have_high_precision_and_recall():
    precision, recall = precision_recall.precision_recall(clusters(0), clusters(1))
    assert precision > 0.75 and recall > 0.75


def test_collapsed_samples_have_high_precision_and_low_recall():
    precision, recall = precision_recall.precision_recall(clusters(0), clusters(1, per_cluster=300, which=[0]))
    assert precision > 0.75
    assert recall < 0.3  # one cluster of five covered


def test_samples_far_from_the_data_have_neither():
    assert precision_recall.precision_recall(clusters(0), clusters(1) + 100.0) == (0.0, 0.0)


# ------------------------------------------------------------------------------------------------ memorisation
def test_nearest_training_finds_each_samples_nearest_real_image():
    real = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    indices, found = memorisation.nearest_training(np.array([[9.0, 1.0], [1.0, 1.0], [0.0, 8.0]]), real)
    np.testing.assert_array_equal(indices, [1, 0, 2])
    np.testing.assert_allclose(found, [np.sqrt(2), np.sqrt(2), 2.0])


def test_copies_of_training_images_are_all_copies():
    real = gaussian(0, 50)
    chosen = np.random.default_rng(1).permutation(50)[:20]
    indices, found = memorisation.nearest_training(real[chosen], real)
    np.testing.assert_array_equal(indices, chosen)
    assert found.max() < 1e-6
    report = memorisation.copy_fraction(real[chosen], real)
    assert report["copy_fraction"] == 1.0
    assert report["median_fake_nn"] < 1e-6 < report["median_real_nn"]


def test_distant_samples_are_no_copies_and_a_given_nearest_is_used():
    real, fake = gaussian(0, 50), gaussian(1, 20, shift=50.0)
    report = memorisation.copy_fraction(fake, real)
    assert report["copy_fraction"] == 0.0 and report["median_fake_nn"] > report["median_real_nn"]
    zero = (np.zeros(20, np.int64), np.zeros(20))
    assert memorisation.copy_fraction(fake, real, nearest=zero)["copy_fraction"] == 1.0


def test_nearest_pairs_picture_shows_the_closest_pairs_first():
    rng = np.random.default_rng(0)
    fake = rng.uniform(-1, 1, (20, 6, 5, 3)).astype(np.float32)
    real = rng.integers(0, 256, (30, 6, 5, 3), dtype=np.uint8)
    indices, found = rng.integers(0, 30, 20), rng.uniform(0, 1, 20)
    picture = memorisation.nearest_pairs_picture(fake, real, indices, found, count=16)
    pad = pictures.CELL_PADDING
    assert picture.dtype == np.uint8 and picture.shape == (4 * 6 + 3 * pad, 4 * 10 + 3 * pad, 3)
    closest = np.argmin(found)
    np.testing.assert_array_equal(picture[:6, :5], pictures.to_uint8(fake[closest]))
    np.testing.assert_array_equal(picture[:6, 5:10], real[indices[closest]])
    second = np.argsort(found)[1]
    np.testing.assert_array_equal(picture[:6, 10 + pad:15 + pad], pictures.to_uint8(fake[second]))
    assert memorisation.nearest_pairs_picture(fake[:5], real, indices[:5], found[:5]).shape == (2 * 6 + pad,
                                                                                               3 * 10 + 2 * pad, 3)


# ---------------------------------------------------------------------------------------------- the registry
def test_compute_feature_metrics_gives_flat_keys_for_the_names_asked():
    real, fake = clusters(0), clusters(1)
    found = metrics.compute_feature_metrics(real, fake, metrics.METRIC_NAMES, seed=3, kid_subsets=5,
                                            kid_subset_size=50)
    expected = {key for name in metrics.METRIC_NAMES if metrics.METRICS[name].needs == "features"
                for key in metrics.METRICS[name].keys}
    assert set(found) == expected == {"fid", "kid", "kid_std", "precision", "recall", "copy_fraction",
                                      "median_real_nn", "median_fake_nn"}
    assert found["fid"] == fid.fid(real, fake)
    assert (found["kid"], found["kid_std"]) == kid.kid(real, fake, 5, 50, seed=3)
    assert set(metrics.compute_feature_metrics(real, fake, ["kid"], kid_subsets=2, kid_subset_size=10)) == {
        "kid", "kid_std"}
    assert metrics.compute_feature_metrics(real, fake, ["label_accuracy"]) == {}


def test_metric_names_may_come_as_the_command_line_writes_them():
    assert metrics.check_metric_names("kid, fid") == ("kid", "fid")
    assert metrics.check_metric_names(["label_accuracy"]) == ("label_accuracy",)


def test_unknown_metric_names_are_named():
    with pytest.raises(ValueError, match=r"\['fdi'\].*fid, kid"):
        metrics.compute_feature_metrics(clusters(0), clusters(1), ["fid", "fdi"])


def test_a_registered_metric_is_computed_by_its_function_and_label_accuracy_asks_the_caller(monkeypatch):
    monkeypatch.setattr(metrics, "METRICS", dict(metrics.METRICS))  # registered here only

    @metrics.register_metric("mean_gap", "features", ("mean_gap",))
    def mean_gap(m):
        return {"mean_gap": float(np.abs(m.real.mean(0) - m.fake.mean(0)).sum())}

    real, fake = clusters(0), clusters(1)
    asked = []
    measurement = metrics.Measurement(real.astype(np.float32), fake, seed=1,
                                      read_labels=lambda: asked.append(1) or {"label_accuracy": 0.5})
    assert measurement.real.dtype == np.float64  # the statistics in float64
    found = metrics.compute_metrics(measurement, ["mean_gap", "label_accuracy", "memorisation"])
    assert found["mean_gap"] == pytest.approx(np.abs(real.mean(0) - fake.mean(0)).sum())
    assert found["label_accuracy"] == 0.5 and asked == [1]
    assert found["copy_fraction"] == metrics.memorisation.copy_fraction(fake, real)["copy_fraction"]
    with pytest.raises(ValueError, match="label_accuracy needs a classifier"):
        metrics.compute_metrics(metrics.Measurement(real, fake), ["label_accuracy"])


def test_a_metric_named_twice_is_computed_once(monkeypatch):
    calls = []
    monkeypatch.setattr(metrics, "METRICS", dict(metrics.METRICS))
    metrics.register_metric("counted", "features", ("counted",))(lambda m: calls.append(1) or {"counted": 1.0})
    assert metrics.compute_metrics(metrics.Measurement(clusters(0), clusters(1)), ["counted", "counted"]) == {
        "counted": 1.0}
    assert calls == [1]
