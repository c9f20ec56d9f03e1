"""DCGAN training step: which weights each update touches, the G:D ratio, fresh z, finite losses, and learning."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import left_bright_dataset, left_minus_right, real_batch, small_model
from dcgan_tf.config import Config
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.latent import sample_z


def snapshot(variables):
    return [v.numpy().copy() for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def test_discriminator_update_changes_only_discriminator_weights():
    model = small_model()
    g_before = snapshot(model.generator.trainable_variables)
    d_before = snapshot(model.discriminator.trainable_variables)
    model.discriminator_update(real_batch())
    assert not any(changed(g_before, model.generator.trainable_variables))
    assert all(changed(d_before, model.discriminator.trainable_variables))
    assert int(model.d_optimizer.iterations) == 1 and int(model.g_optimizer.iterations) == 0


def test_generator_update_changes_only_generator_weights():
    model = small_model()
    g_before = snapshot(model.generator.trainable_variables)
    d_before = snapshot(model.discriminator.trainable_variables)
    model.generator_update(4)
    assert all(changed(g_before, model.generator.trainable_variables))
    assert not any(changed(d_before, model.discriminator.trainable_variables))
    assert int(model.g_optimizer.iterations) == 1 and int(model.d_optimizer.iterations) == 0


@pytest.mark.slow
@pytest.mark.parametrize("g_advantage", [1, 3])
def test_g_advantage_sets_generator_updates_per_step(g_advantage):
    model = small_model(g_advantage=g_advantage)
    dataset = tf.data.Dataset.from_tensors(real_batch()).repeat()
    history = model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)
    assert int(model.d_optimizer.iterations) == 3
    assert int(model.g_optimizer.iterations) == 3 * g_advantage
    assert int(model.step) == 3
    for name in ("d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake"):
        assert np.isfinite(history.history[name][0]), name
    assert 0 < history.history["d_real"][0] < 1 and 0 < history.history["d_fake"][0] < 1


def test_z_is_keyed_by_step_and_draw_and_fresh_for_every_update_after_the_shared_one():
    model = small_model(g_advantage=3)
    drawn = []
    original = model.sample_z
    model.sample_z = lambda batch_size, draw=0: drawn.append(original(batch_size, draw)) or drawn[-1]
    model.train_step(real_batch())  # eagerly: one D and three G updates
    assert len(drawn) == 3 and int(model.step) == 1  # D and the first G update share one z
    flat = [z.numpy().ravel() for z in drawn]
    assert all(not np.allclose(a, b) for i, a in enumerate(flat) for b in flat[i + 1:])
    # z is keyed by (seed, step, draw): the same key gives the same z, the next step new ones
    model.step.assign(0)
    np.testing.assert_array_equal(original(4, 2).numpy(), drawn[2].numpy())
    model.step.assign(1)
    assert not np.allclose(original(4, 2).numpy(), drawn[2].numpy())
    assert np.abs(drawn[0].numpy()).max() <= 1 and drawn[0].shape == (4, 8)


def test_shared_forward_step_equals_a_d_update_then_g_updates_on_the_same_z():
    fused, separate = small_model(g_advantage=2), small_model(g_advantage=2)  # same seed: same initial weights
    real = real_batch()
    logs = fused.train_step(real)  # eagerly
    d_values = separate.discriminator_update(real, draw=0)
    g_losses = [separate.generator_update(4, draw=0), separate.generator_update(4, draw=1)]
    pairs = [*zip(fused.generator.trainable_variables, separate.generator.trainable_variables),
             *zip(fused.discriminator.weights, separate.discriminator.weights)]  # D's batch-norm statistics too
    for a, b in pairs:
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)
    # G's batch-norm moving averages took that fake batch once instead of twice (they only serve sampling)
    moving = [v for v in fused.generator.non_trainable_variables if "moving_mean" in v.path]
    assert moving and all(np.abs(v.numpy()).max() > 0 for v in moving)
    assert np.isclose(float(logs["d_loss"]), float(d_values["d_loss"]), rtol=1e-6)
    assert np.isclose(float(logs["g_loss"]), float(sum(g_losses)) / 2, rtol=1e-6)
    assert int(fused.g_optimizer.iterations) == 2 and int(fused.d_optimizer.iterations) == 1


def test_train_step_losses_match_definitions():
    model = small_model(g_advantage=1)
    logs = model.train_step(real_batch())
    assert np.isclose(float(logs["d_loss"]), float(logs["d_loss_real"]) + float(logs["d_loss_fake"]), rtol=1e-6)
    # at initialisation D outputs ~0.5 for everything, so each BCE term is ~log 2
    assert abs(float(logs["d_loss_real"]) - np.log(2)) < 0.1 and abs(float(logs["g_loss"]) - np.log(2)) < 0.1


@pytest.mark.slow
def test_conditional_train_step_uses_labels():
    model = small_model(y_dim=10, size=16)
    real = real_batch(channels=1)
    labels = tf.one_hot([0, 1, 2, 3], 10)
    logs = model.fit(tf.data.Dataset.from_tensors((real, labels)).repeat(), steps_per_epoch=2, epochs=1,
                     verbose=0, shuffle=False).history
    assert np.isfinite(logs["g_loss"][0])
    z = np.zeros((2, 8), np.float32)
    a, b = model.generate(z, tf.one_hot([3, 8], 10)).numpy()
    assert not np.allclose(a, b)


@pytest.mark.parametrize("z_dist,low,high", [("uniform_signed", -1, 1), ("uniform_unsigned", 0, 1),
                                             ("normal01", -np.inf, np.inf)])
def test_z_distributions(z_dist, low, high):
    z = sample_z((4000, 4), z_dist, seed=1).numpy()
    assert z.min() >= low and z.max() <= high
    expected_mean = {"uniform_signed": 0.0, "uniform_unsigned": 0.5, "normal01": 0.0}[z_dist]
    assert abs(z.mean() - expected_mean) < 0.05
    if z_dist == "normal01":
        assert abs(z.std() - 1) < 0.05 and z.min() < -2


@pytest.mark.slow
@pytest.mark.parametrize("mixed_precision", [False, True])
def test_generator_learns_the_structure_of_its_data(mixed_precision):
    """An honest learning check (also in mixed precision: bf16 on this CPU): every real image has a bright left half and a dark right half (random contrast
    and offset per image); after training, G's samples have a bright left half too.

    Not a flat colour: carpedm20's D batch-normalises real and fake batches separately, which erases anything
    constant across a batch, so a D with batch norm cannot see (and G cannot learn) a global colour.
    """
    dataset = left_bright_dataset()
    model = small_model(g_advantage=2, seed=3, learning_rate=0.001, mixed_precision=mixed_precision)
    z = sample_z((64, 8), "uniform_signed", seed=2)
    before = left_minus_right(model.generate(z).numpy())
    model.fit(dataset, steps_per_epoch=240, epochs=1, verbose=0, shuffle=False)
    after = left_minus_right(model.generate(z).numpy())
    assert abs(before) < 0.02
    assert after > 0.1, (before, after)  # the data's own difference is ~1.2


@pytest.mark.slow
def test_d_steps_gives_that_many_discriminator_updates_per_step():
    model = small_model(g_advantage=1, d_steps=3)
    model.fit(tf.data.Dataset.from_tensors(real_batch()).repeat(), steps_per_epoch=2, epochs=1, verbose=0,
              shuffle=False)
    assert int(model.d_optimizer.iterations) == 2 * 3 and int(model.g_optimizer.iterations) == 2
    assert int(model.step) == 2


def test_d_learning_rate_reaches_only_the_discriminator_optimizer():
    model = small_model(d_learning_rate=0.0001)
    assert np.isclose(float(model.d_optimizer.learning_rate), 0.0001)
    assert np.isclose(float(model.g_optimizer.learning_rate), 0.0002)


def test_discriminator_balance_settings_build_and_name_the_run():
    config = Config(dataset="art", d_layers=2, d_batchnorm=False, d_learning_rate=0.0001, d_steps=2, c_dim=3,
                    output_height=16, z_dim=8, gf_dim=8, df_dim=8).resolved().validate()
    assert config.name.endswith("_dl2_dnobn_ds2_dlr0.0001")
    model = build_dcgan(config)
    assert len([layer for layer in model.discriminator.layers if type(layer).__name__ == "Conv2D"]) == 2


@pytest.mark.slow
def test_mixed_precision_computes_low_but_keeps_weights_statistics_logits_and_losses_float32():
    model = small_model(mixed_precision=True)  # no GPU here: bf16
    convs = [layer for net in (model.generator, model.discriminator) for layer in net.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert {layer.compute_dtype for layer in convs[:-1]} == {"bfloat16"}
    assert {layer.kernel.dtype for layer in convs} == {"float32"}
    norms = [layer for layer in model.generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.moving_variance.dtype == "float32" for layer in norms)
    assert model.discriminate(real_batch()).dtype == tf.float32 and model.generate(model.sample_z(2)).dtype == tf.float32
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    history = model.fit(tf.data.Dataset.from_tensors(real_batch()).repeat(), steps_per_epoch=3, epochs=1, verbose=0,
                        shuffle=False)
    assert all(np.isfinite(values[-1]) for values in history.history.values())


@pytest.mark.slow
def test_fp16_scales_the_loss_and_checkpoints_stay_interchangeable_with_fp32(monkeypatch, tmp_path):
    """On a GPU mixed precision is fp16 with dynamic loss scaling; forced here on the CPU."""
    from dcgan_tf.core import build
    from dcgan_tf.runs import checkpoints

    monkeypatch.setattr(build, "precision_policy", lambda mixed: "mixed_float16" if mixed else "float32")
    model = small_model(mixed_precision=True)
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(model.g_optimizer.scale_loss(tf.constant(1.0))) > 1.0  # the loss is scaled up before gradients
    model.fit(tf.data.Dataset.from_tensors(real_batch()).repeat(), steps_per_epoch=2, epochs=1, verbose=0,
              shuffle=False)
    # an update whose scaled gradients overflow is skipped and halves the scale (no growth within 2000 steps)
    for optimizer, updates in ((model.g_optimizer, 2 * 2), (model.d_optimizer, 2)):
        skipped = np.log2(optimizer.initial_scale / float(optimizer.dynamic_scale))
        assert skipped == int(skipped) and int(optimizer.iterations) + skipped == updates
    g_applied = int(model.g_optimizer.iterations)
    manager = checkpoints.make_manager(checkpoints.make_checkpoint(model), str(tmp_path), 1)
    manager.save(checkpoint_number=2)

    plain = small_model()  # an fp32 run resuming the fp16 one restores weights and Adam state
    restored = checkpoints.make_manager(checkpoints.make_checkpoint(plain), str(tmp_path), 1)
    assert checkpoints.restore_latest(restored)
    assert int(plain.g_optimizer.iterations) == g_applied and int(plain.step) == 2
    for a, b in zip(model.generator.weights, plain.generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_jit_compile_reaches_the_compiled_model():
    assert small_model(jit_compile=True).jit_compile is True
    assert small_model().jit_compile is False  # not Keras' "auto", which turns XLA on wherever a GPU is seen
