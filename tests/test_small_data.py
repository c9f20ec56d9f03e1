"""The small-data options: the losses and penalties against hand-computed values, spectral norm, the EMA generator,
ADA's probability, the augment preview, --small_data, exact resume with all of them, and an honest learning check."""

import csv
import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, left_bright_dataset, left_minus_right, real_batch, run_main, small_model, tiny_config, write_images, write_run

from dcgan_tf import train
from dcgan_tf.analysis.augment_preview import PREVIEW_PNG, preview_images, write_augment_preview
from dcgan_tf.config import QUICK_START, SMALL_DATA, Config, ConfigError, with_quick_start, with_small_data
from dcgan_tf.core import augment, losses, penalties
from dcgan_tf.core import ema as moving_average
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.core.networks import BN_MOMENTUM, build_discriminator, build_generator
from dcgan_tf.data.loading import to_float
from dcgan_tf.latent import sample_z
from dcgan_tf.runs import checkpoints
from dcgan_tf.runs.trained import load_trained


class StepLogs(keras.callbacks.Callback):
    """Every step's logs, as floats."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def on_train_batch_end(self, batch, logs=None):
        self.rows.append({name: float(value) for name, value in logs.items()})


def fit_steps(model, steps, count=4):
    logs = StepLogs()
    dataset = tf.data.Dataset.from_tensors(real_batch(count)).repeat()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[logs])
    return logs.rows


def read_csv(config):
    """losses.csv's rows without the steps' wall time (`seconds`), which no two runs share."""
    with open(os.path.join(config.checkpoint_path, "losses.csv"), newline="") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


# ------------------------------------------------------------------------------------------ losses and penalties
def test_each_loss_against_hand_computed_values():
    real, fake = tf.constant([[2.0], [-1.0]]), tf.constant([[0.5], [-3.0]])
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731 - BCE with logits: -log sigmoid(x) = softplus(-x)
    bce = losses.named("bce")
    bce_real, bce_fake = bce.real_term(real), bce.fake_term(fake)
    assert float(bce_real) == pytest.approx((softplus(-2.0) + softplus(1.0)) / 2, rel=1e-5)
    assert float(bce_fake) == pytest.approx((softplus(0.5) + softplus(-3.0)) / 2, rel=1e-5)
    assert float(bce.generator_term(fake)) == pytest.approx((softplus(-0.5) + softplus(3.0)) / 2, rel=1e-5)
    hinge = losses.named("hinge")
    hinge_real, hinge_fake = hinge.real_term(real), hinge.fake_term(fake)
    assert float(hinge_real) == pytest.approx((0.0 + 2.0) / 2)  # relu(1 - 2), relu(1 + 1)
    assert float(hinge_fake) == pytest.approx((1.5 + 0.0) / 2)  # relu(1 + 0.5), relu(1 - 3)
    wgan = losses.named("wgan_gp")
    wgan_real, wgan_fake = wgan.real_term(real), wgan.fake_term(fake)
    assert float(wgan_real) == pytest.approx(-0.5) and float(wgan_fake) == pytest.approx(-1.25)
    for loss in ("hinge", "wgan_gp"):
        assert float(losses.named(loss).generator_term(fake)) == pytest.approx(1.25)
        assert float(losses.named(loss).d_output(real)) == pytest.approx(0.5)  # a raw score, not a probability
        assert not losses.named(loss).probabilities and losses.named(loss).score_gap
    assert float(bce.d_output(real)) == pytest.approx(float(tf.reduce_mean(tf.sigmoid(real))))
    assert bce.probabilities
    with pytest.raises(ValueError, match="wgan"):
        losses.named("wgan")


def test_r1_and_the_gradient_penalty_against_hand_computed_values():
    """A critic x -> sum(x^2) per image has the gradient 2x, so both penalties are known in closed form."""
    def critic(images):
        return tf.reduce_sum(images ** 2, axis=[1, 2, 3])[:, None]

    rng = np.random.default_rng(0)
    real, fake = (rng.uniform(-1, 1, (3, 4, 4, 2)).astype(np.float32) for _ in range(2))
    expected_r1 = np.mean(np.sum((2 * real) ** 2, axis=(1, 2, 3)))
    assert float(penalties.r1_penalty(critic, tf.constant(real))) == pytest.approx(expected_r1, rel=1e-5)
    mix = np.array([0.0, 0.5, 1.0], np.float32)[:, None, None, None]
    between = mix * real + (1 - mix) * fake
    expected_gp = np.mean((np.sqrt(np.sum((2 * between) ** 2, axis=(1, 2, 3))) - 1) ** 2)
    assert float(penalties.gradient_penalty(critic, real, fake, tf.constant(mix))) == pytest.approx(expected_gp, rel=1e-5)


@pytest.mark.slow
def test_the_penalties_are_part_of_d_loss_and_r1_is_lazy():
    """d_loss = real term + fake term + gp_weight x GP (wgan_gp), + r1_gamma / 2 x r1_every x R1 on every
    r1_every-th step (0 between); the penalties are logged."""
    model = small_model(loss="wgan_gp", d_batchnorm=False, gp_weight=5.0, r1_gamma=0.5, r1_every=3)
    rows = fit_steps(model, 4)
    assert [row["r1_penalty"] > 0 for row in rows] == [True, False, False, True]  # steps 0 and 3 (before counting)
    for row in rows:
        expected = row["d_loss_real"] + row["d_loss_fake"] + 5.0 * row["gradient_penalty"] + \
            0.5 / 2 * 3 * row["r1_penalty"]
        assert row["d_loss"] == pytest.approx(expected, rel=1e-4)
        assert row["gradient_penalty"] > 0


# ------------------------------------------------------------------------------------------ spectral norm
def top_singular_value(kernel):
    return float(np.linalg.svd(np.reshape(kernel, (-1, kernel.shape[-1])), compute_uv=False)[0])


@pytest.mark.parametrize("network", ["d", "g"])
def test_spectral_norm_bounds_each_layer(network):
    """After training calls (one power iteration each), each wrapped kernel's largest singular value is 1. Seeded:
    power iteration converges at the rate of the kernel's spectral gap, so 30 calls left one unseeded draw in twelve
    5.2 % off; after 100, at most 1 % in twelve seeds."""
    keras.utils.set_random_seed(7)
    if network == "d":
        net = build_discriminator(16, 16, 3, 8, batchnorm=False, spectral_norm=True)
        inputs = tf.random.uniform((4, 16, 16, 3), -1, 1, seed=1)
    else:
        net = build_generator(16, 16, 3, 8, 8, spectral_norm=True)
        inputs = tf.random.uniform((4, 8), -1, 1, seed=1)
    wrapped = [layer for layer in net.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    assert len(wrapped) == (5 if network == "d" else 5)  # 4 convs + the dense, or the dense + 4 transposed convs
    before = [top_singular_value(layer.layer.kernel.numpy()) for layer in wrapped]
    assert all(abs(value - 1) > 0.2 for value in before)  # N(0, 0.02) weights: far from 1
    for _ in range(100):
        net(inputs, training=True)
    after = [top_singular_value(layer.layer.kernel.numpy()) for layer in wrapped]
    assert after == pytest.approx([1.0] * len(after), abs=0.05)
    assert net(inputs).dtype == tf.float32


# ------------------------------------------------------------------------------------------ EMA
@pytest.mark.slow
def test_ema_follows_its_formula_and_is_what_samples():
    model = small_model(ema=0.9)
    assert all(np.array_equal(a.numpy(), v.numpy()) for a, v in zip(model.ema_weights, model.generator.variables))
    fit_steps(model, 3)
    old = [a.numpy().copy() for a in model.ema_weights]
    fit_steps(model, 1)
    decay = min(0.9, (1 + 4) / (10 + 4))  # the warm-up at step 4
    assert float(model.ema_decay_at(4)) == pytest.approx(decay)
    for previous, average, variable in zip(old, model.ema_weights, model.generator.variables):
        np.testing.assert_allclose(average.numpy(), decay * previous + (1 - decay) * variable.numpy(), rtol=1e-5,
                                   atol=1e-7)
    z = sample_z((6, 8), "uniform_signed", seed=1)
    sampled = model.generate(z).numpy()
    copy = keras.models.clone_model(model.generator)  # the averages, with batch-norm statistics measured on them
    copy.set_weights([a.numpy() for a in model.ema_weights])
    model.measure_statistics(copy)
    np.testing.assert_allclose(sampled, copy(z, training=False).numpy(), atol=1e-6)
    assert not np.allclose(sampled, model.generator(z, training=False).numpy(), atol=1e-4)  # not G's samples


@pytest.mark.slow
def test_measured_statistics_are_the_mean_batch_statistics_of_fixed_z():
    """BigGAN's standing statistics: the first batch norm's moving mean/variance become the mean over
    STATISTICS_BATCHES batches of its input's batch mean/variance (its input has no batch norm before it)."""
    model = small_model(ema=0.9)
    fit_steps(model, 2)
    generator = model.sampler
    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before_first = keras.Model(generator.inputs, norms[0].input)
    means, variances = [], []
    for k in range(moving_average.STATISTICS_BATCHES):
        key = tf.constant([model.seed + moving_average.STATISTICS_SEED_OFFSET, k], tf.int64)
        values = before_first(sample_z((moving_average.STATISTICS_BATCH, model.z_dim), model.z_dist, key)).numpy()
        axes = tuple(range(values.ndim - 1))
        means.append(values.mean(axis=axes))
        variances.append(values.var(axis=axes))
    np.testing.assert_allclose(norms[0].moving_mean.numpy(), np.mean(means, axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(norms[0].moving_variance.numpy(), np.mean(variances, axis=0), rtol=1e-4, atol=1e-6)
    assert all(layer.momentum == BN_MOMENTUM for layer in norms)  # the layers' own momentum is back


@pytest.mark.slow
def test_the_ema_sampler_is_loaded_once_per_step(monkeypatch):
    model = small_model(ema=0.9)
    measured = []
    monkeypatch.setattr(model, "measure_statistics", measured.append)
    z = sample_z((4, 8), "uniform_signed", seed=1)
    first = model.generate(z).numpy()
    np.testing.assert_array_equal(model.generate(z).numpy(), first)
    assert len(measured) == 1  # two samplings, one load
    fit_steps(model, 1)
    model.generate(z)
    assert len(measured) == 2  # a step later: loaded again


# ------------------------------------------------------------------------------------------ ADA
def test_ada_p_moves_up_when_d_is_over_confident_on_reals_and_down_otherwise():
    model = small_model(augment="all", ada_target=0.6)
    assert float(model.augmentation.p) == 0.0
    per_move = augment.ADA_INTERVAL * 32 / augment.ADA_IMAGES

    def steps(real_sign, count):
        values = []
        for _ in range(count):
            model.augmentation.update(tf.constant(real_sign), 32, model.step)
            model.step.assign_add(1)
            values.append(float(model.augmentation.p))
        return values

    moved = steps(0.9, 8)  # sign(D(x)) mostly positive: over-confident -> p rises every ADA_INTERVAL steps
    assert moved == pytest.approx([0, 0, 0, per_move, per_move, per_move, per_move, 2 * per_move])
    assert steps(0.2, 4)[-1] == pytest.approx(per_move)  # under the target: it falls
    assert steps(-1.0, 12)[-1] == 0.0  # and never below 0


@pytest.mark.slow
def test_ada_p_is_logged_applied_and_saved(tmp_path, image_folder, monkeypatch):
    monkeypatch.setattr(augment, "ADA_IMAGES", 40)  # p moves in big steps, so a few steps show it
    config = tiny_config(tmp_path, image_folder, epoch=4, augment="all", ada_target=0.01)
    result = train(config)
    p_column = [float(row["augment_p"]) for row in read_csv(result.config)]
    assert p_column[0] == 0.0 and len(set(p_column)) > 1  # moved
    assert "ada" in checkpoints.saved_entries(result.last_checkpoint)


# ------------------------------------------------------------------------------------------ resume with every option
@pytest.mark.slow
def test_every_small_data_option_on_resumes_exactly(tmp_path, image_folder, monkeypatch):
    """Losses, penalties, ADA's p and the EMA generator's samples of a run stopped and resumed equal those of the
    uninterrupted run."""
    monkeypatch.setattr(augment, "ADA_IMAGES", 40)
    options = dict(augment="all", ada_target=0.01, ema=0.99, spectral_norm="d", loss="wgan_gp", d_batchnorm=False,
                   r1_gamma=0.1, r1_every=2)  # wgan_gp: its mixing draw is keyed too (hinge has no state of its own)
    straight = train(tiny_config(tmp_path / "a", image_folder, epoch=2, **options)).config
    train(tiny_config(tmp_path / "b", image_folder, epoch=1, **options))
    resumed = train(tiny_config(tmp_path / "b", image_folder, epoch=2, **options)).config
    a, b = read_csv(straight), read_csv(resumed)
    assert len(a) == len(b) == 6 and a == b
    assert {"gradient_penalty", "r1_penalty", "augment_p"} <= set(a[0])
    assert {"ema_generator", "ada"} <= checkpoints.saved_entries(tf.train.latest_checkpoint(straight.checkpoint_path))
    z = sample_z((4, 8), "uniform_signed", seed=1)
    samples = [load_trained(config)[1].generate(z).numpy() for config in (straight, resumed)]
    np.testing.assert_array_equal(*samples)


# ------------------------------------------------------------------------------------------ the flags
@pytest.mark.parametrize("values, field", [
    ({"ada_target": 0.6}, "ada_target"),  # needs --augment
    ({"augment": "color", "ada_target": 1.5}, "ada_target"),
    ({"augment": "color", "ada_target": 0.6, "augment_p": 0.5}, "augment_p"),
    ({"ema": 1.0}, "ema"),
    ({"spectral_norm": "e"}, "spectral_norm"),
    ({"loss": "wgan"}, "loss"),
    ({"loss": "wgan_gp"}, "loss"),  # with D's batch norm
    ({"gp_weight": 5.0}, "gp_weight"),  # without wgan_gp
    ({"r1_gamma": -1.0}, "r1_gamma"),
    ({"r1_every": 4}, "r1_every"),  # without r1_gamma
    ({"spectral_norm": "d"}, "spectral_norm"),  # D's batch norm would undo it
    ({"spectral_norm": "g,d"}, "spectral_norm"),
    ({"r1_gamma": 0.1}, "r1_gamma"),  # D's batch norm mixes the images whose own gradients R1 penalises
])
def test_bad_small_data_settings_name_their_flag(values, field):
    with pytest.raises(ConfigError) as error:
        Config(**values).validate()
    assert error.value.field == field


def test_wgan_gp_brings_its_recipe_and_explicit_settings_win():
    from dcgan_tf.config import LOSS_RECIPES, with_loss_recipe

    recipe = with_loss_recipe({"loss": "wgan_gp", "d_batchnorm": False, "d_steps": 1}, given={"d_steps"})
    assert {k: recipe[k] for k in ("g_advantage", "learning_rate", "beta1", "beta2")} == {
        "g_advantage": 1, "learning_rate": 0.0001, "beta1": 0.0, "beta2": 0.9}
    assert recipe["d_steps"] == 1 and LOSS_RECIPES["wgan_gp"]["d_steps"] == 5  # given: it wins
    assert with_loss_recipe({"loss": "hinge", "d_steps": 1}) == {"loss": "hinge", "d_steps": 1}
    model = small_model(**{k: v for k, v in recipe.items()})
    assert float(model.d_optimizer.beta_2) == 0.9 and float(model.g_optimizer.beta_1) == 0.0


def test_small_data_fills_in_its_settings_and_explicit_ones_win():
    config = Config(**with_small_data({})).validate()
    assert {name: getattr(config, name) for name in SMALL_DATA} == SMALL_DATA
    for name, value in SMALL_DATA.items():
        default = getattr(Config(), name)
        assert default != value
        assert getattr(Config(**with_small_data({name: default}, given={name})), name) == default  # given: it wins
        assert getattr(Config(**with_small_data({name: default}, given=set())), name) == value


def test_the_quick_start_fills_in_the_built_in_set_only_and_ema_0_turns_its_ema_off():
    quick = Config(**with_quick_start({})).resolved().validate()
    assert {name: getattr(quick, name) for name in QUICK_START} == QUICK_START
    assert quick.default_run_name() == "twemoji_smileys_b32_32x32_z100_ga2_gf32_df32_ema0.999"
    assert Config(**with_quick_start({"dataset": "mice"})) == Config(dataset="mice")  # any data set: carpedm20's
    off = Config(**with_quick_start({"ema": 0.0}, given={"ema"})).resolved().validate()
    assert off.ema is None and off.default_run_name() == "twemoji_smileys_b32_32x32_z100_ga2_gf32_df32"
    tiny = dict(output_height=16, gf_dim=8, df_dim=8, z_dim=8, c_dim=3)
    assert build_dcgan(Config(ema=0.0, **tiny).resolved()).ema_decay is None
    assert build_dcgan(dataclasses.replace(Config(**tiny).resolved(), ema=0.0)).ema_decay is None  # unresolved 0


def test_augment_preview_shows_the_images_then_their_augmentations(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    grid = preview_images(images, ("translation", "cutout"), rows=4, seed=1)
    assert grid.shape == (12, 16, 16, 3)
    np.testing.assert_array_equal(grid[:3], to_float(images).numpy())
    rows = [grid[i * 3:(i + 1) * 3] for i in range(1, 4)]
    assert all(not np.array_equal(row, grid[:3]) for row in rows)
    assert not np.array_equal(rows[0], rows[1])  # each row its own draw
    folder = tmp_path / "images"
    write_images(folder, 5)
    path = write_augment_preview(tiny_config(tmp_path, folder, augment="cutout"))
    assert os.path.basename(path) == PREVIEW_PNG and os.path.isfile(path)
    with pytest.raises(ConfigError, match="--augment"):
        write_augment_preview(tiny_config(tmp_path, folder))


# ------------------------------------------------------------------------------------------ learning
@pytest.mark.slow
def test_a_small_data_model_learns_the_structure_of_its_data():
    """test_gan's learning check under --small_data's settings: every real image has a bright left half and a dark
    right half; after training, the EMA generator's samples do too."""
    dataset = left_bright_dataset()
    model = small_model(g_advantage=2, seed=3, learning_rate=0.001, **SMALL_DATA)
    z = sample_z((64, 8), "uniform_signed", seed=2)
    before = left_minus_right(model.generate(z).numpy())
    model.fit(dataset, steps_per_epoch=240, epochs=1, verbose=0, shuffle=False)
    after = left_minus_right(model.generate(z).numpy())
    assert abs(before) < 0.02
    assert after > 0.1, (before, after)


@pytest.mark.slow
def test_small_data_and_the_augment_preview_through_main(tmp_path):
    """--small_data names its settings in the run (and an explicit flag wins); --augment_preview trains nothing."""

    write_images(tmp_path / "data" / "faces", 6)
    done = run_main("--dataset", "faces", *TINY, "--small_data", "--augment", "cutout", "--augment_preview",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = Config(**with_small_data({"dataset": "faces", "output_height": 16, "batch_size": 4, "z_dim": 8,
                                         "gf_dim": 8, "df_dim": 8, "augment": "cutout"}, given={"augment"}))
    assert "aug-cutout" in expected.name
    assert os.path.isfile(tmp_path / "samples" / expected.name / PREVIEW_PNG), os.listdir(tmp_path / "samples")
    assert not os.path.exists(tmp_path / "checkpoints")


def test_hinge_and_wgan_runs_plot_the_score_gap_instead_of_the_log_ratio(tmp_path):
    """Their losses may be negative, so log(G/D) says nothing: the run's plots show D's real - fake score gap."""
    from dcgan_tf.analysis import loss_log, plots

    folder = write_run(tmp_path / "checkpoints", "run", 30)
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as handle:
        handle.write(Config(run_name="run", loss="hinge").to_json())
    assert plots.run_loss(folder) == "hinge"
    paths = plots.plot_run(folder, str(tmp_path / "samples"))
    assert [os.path.basename(path) for path in paths] == ["plot_losses.png", plots.SCORE_GAP_PNG]
    log = loss_log.read_loss_log(folder)
    gap = [line for line in plots.score_gap_figure(log, losses.named("hinge")).axes[0].get_lines()
           if line.get_label().startswith("D(x)")][0]
    np.testing.assert_allclose(gap.get_ydata()[:1], (log.d_real - log.d_fake)[:1])
    assert plots.run_loss(str(tmp_path / "nowhere")) == "bce"
