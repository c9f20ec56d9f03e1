"""--matching_aware (GAN-CLS, Reed et al. 2016): wrong labels drawn from the other classes, keyed like z (on one
device and on replicas alike); D's loss r + (f_wrong + f_fake) / 2 against hand-computed values; its column in
losses.csv; its run name and its flag's validation; exact resume."""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import make_mnist, real_batch, small_model
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.core import model as gan
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.training import callbacks
from dcgan_tf.training.loop import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def labelled(count, classes):
    """One-hot labels [count, classes] of 0, 1, ..., classes - 1, 0, 1, ..."""
    return tf.one_hot(np.arange(count) % classes, classes)


@pytest.mark.parametrize("classes", [2, 3, 10])
def test_wrong_labels_are_the_other_classes_uniformly_and_keyed_by_seed_step_and_draw(classes):
    model = small_model(y_dim=classes, matching_aware=True, g_advantage=2)
    labels = labelled(60, classes)
    truth = np.arange(60) % classes
    counts = np.zeros((classes, classes), int)
    draws = {}
    for step in range(100):
        model.step.assign(step)
        for draw in range(2):
            wrong = model.wrong_labels(labels, draw).numpy()
            assert wrong.shape == (60, classes) and np.all(wrong.sum(axis=1) == 1) and set(wrong.ravel()) == {0, 1}
            chosen = wrong.argmax(axis=1)
            np.add.at(counts, (truth, chosen), 1)
            draws[step, draw] = chosen
    assert np.all(np.diag(counts) == 0)  # never the true label
    expected = 100 * 2 * 60 / classes / (classes - 1)  # per (true, wrong) pair
    others = counts[~np.eye(classes, dtype=bool)]
    assert np.all(np.abs(others - expected) < 0.35 * expected), counts  # 4+ standard deviations at 10 classes
    if classes > 2:  # with two classes the other one is the only choice
        assert not np.array_equal(draws[5, 0], draws[5, 1]) and not np.array_equal(draws[5, 0], draws[6, 0])
        other_seed = small_model(y_dim=classes, matching_aware=True, seed=6)
        other_seed.step.assign(5)
        assert not np.array_equal(other_seed.wrong_labels(labels, 0).numpy().argmax(axis=1), draws[5, 0])
    again = small_model(y_dim=classes, matching_aware=True, g_advantage=2)  # same seed, a fresh model
    again.step.assign(7)
    np.testing.assert_array_equal(again.wrong_labels(labels, 1).numpy().argmax(axis=1), draws[7, 1])


REPLICA_PROBE = """
import json, sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.config import Config
config = Config(dataset="mnist", output_height=16, z_dim=4, gf_dim=4, df_dim=4, gfc_dim=8, dfc_dim=8, c_dim=1,
                matching_aware=True, seed=3).resolved().validate()
labels = tf.one_hot(np.arange(8) % 10, 10)
one = build_dcgan(config)
one.step.assign(4)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
two = build_dcgan(config, strategy)
two.step.assign(4)
halves = strategy.experimental_distribute_values_from_function(
    lambda context: labels[4 * context.replica_id_in_sync_group:4 * (context.replica_id_in_sync_group + 1)])
parts = strategy.experimental_local_results(strategy.run(lambda y: two.wrong_labels(y, 1), args=(halves,)))
print(json.dumps({"one": one.wrong_labels(labels, 1).numpy().argmax(1).tolist(),
                  "two": np.concatenate([p.numpy() for p in parts]).argmax(1).tolist()}))
"""


@pytest.mark.slow
def test_replicas_draw_the_wrong_labels_one_device_draws_on_the_whole_batch():
    """Under a MirroredStrategy of 2 replicas each takes its rows of the global draw, as with z."""
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", REPLICA_PROBE], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    drawn = json.loads(result.stdout.strip().splitlines()[-1])
    assert drawn["one"] == drawn["two"] and len(drawn["one"]) == 8


def softplus(x):
    return np.logaddexp(0.0, x)


# D's real term r and fake term f, in numpy: bce r = BCE(logits, 1) = softplus(-x), f = BCE(logits, 0) = softplus(x)
TERMS = {"bce": (lambda x: softplus(-x).mean(), lambda x: softplus(x).mean()),
         "hinge": (lambda x: np.maximum(0, 1 - x).mean(), lambda x: np.maximum(0, 1 + x).mean()),
         "wgan_gp": (lambda x: -x.mean(), lambda x: x.mean())}


@pytest.mark.parametrize("loss", ["bce", "hinge", "wgan_gp"])
def test_d_loss_is_the_real_term_plus_half_the_wrong_and_fake_terms(loss):
    options = {"d_batchnorm": False} if loss == "wgan_gp" else {}
    model = small_model(y_dim=3, matching_aware=True, loss=loss, **options)
    real, fake = real_batch(6, channels=1, seed=0), real_batch(6, channels=1, seed=1)  # a fixed fake batch
    labels = labelled(6, 3)
    wrong = model.wrong_labels(labels, draw=0)
    assert not np.any(wrong.numpy().argmax(1) == labels.numpy().argmax(1))

    def logits(images, y):  # D as the update sees it (training mode), before the update
        return model.discriminate(images, y, training=True).numpy().ravel().astype(np.float64)

    real_term, fake_term = TERMS[loss]
    r, f_wrong = real_term(logits(real, labels)), fake_term(logits(real, wrong))
    f_fake = fake_term(logits(fake, labels))
    values = model.discriminator_update(real, labels, draw=0, fake=fake)
    penalty = 10.0 * float(values["gradient_penalty"]) if loss == "wgan_gp" else 0.0
    assert float(values["d_loss_real"]) == pytest.approx(r, abs=1e-5)
    assert float(values["d_loss_wrong"]) == pytest.approx(f_wrong, abs=1e-5)
    assert float(values["d_loss_fake"]) == pytest.approx(f_fake, abs=1e-5)
    assert float(values["d_loss"]) - penalty == pytest.approx(r + (f_wrong + f_fake) / 2, abs=1e-5)
    assert set(values) == set(model.d_update_names)


def test_without_the_option_nothing_changes():
    plain = small_model(y_dim=3)
    assert "d_loss_wrong" not in plain.metric_names and "d_loss_wrong" not in plain.d_update_names
    values = plain.discriminator_update(real_batch(4, channels=1), labelled(4, 3))
    assert "d_loss_wrong" not in values
    assert float(values["d_loss"]) == pytest.approx(float(values["d_loss_real"]) + float(values["d_loss_fake"]))
    with pytest.raises(ValueError, match="y_dim >= 2"):
        gan.DCGAN(plain.generator, plain.discriminator, 8, y_dim=1, matching_aware=True)


def loss_columns(model, tmp_path):
    """The header LossCSV writes for `model`."""
    path = str(tmp_path / "losses.csv")
    logger = callbacks.LossCSV(path)
    logger.set_model(model)
    logger.on_train_begin()
    logger.handle.close()
    with open(path, newline="") as handle:
        return next(csv.reader(handle))


def mnist_config(tmp_path, **overrides):
    values = dict(dataset="mnist", data_dir=str(tmp_path / "data"), output_height=16, batch_size=8, train_size=16,
                  epoch=2, z_dim=4, gf_dim=4, df_dim=4, gfc_dim=16, dfc_dim=16, g_advantage=1, verbose=0,
                  sample_freq=100, ckpt_freq=100, checkpoint_dir=str(tmp_path / "ck"), sample_dir=str(tmp_path / "s"),
                  seed=3, matching_aware=True)
    values.update(overrides)
    return Config(**values)


def read_rows(config):
    """losses.csv's header and rows without the steps' wall time (`seconds`), which no two runs share."""
    with open(os.path.join(config.checkpoint_path, "losses.csv"), newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, [{k: v for k, v in row.items() if k != "seconds"} for row in reader]


@pytest.mark.slow
def test_a_conditional_run_logs_d_loss_wrong_and_resumes_exactly(tmp_path):
    """16 of the MNIST-like digits at batch 8: 2 steps an epoch. 2 steps, then 2 more, equal 4 straight."""
    make_mnist(tmp_path / "a" / "data")
    make_mnist(tmp_path / "b" / "data")
    straight = train(mnist_config(tmp_path / "a")).config
    train(mnist_config(tmp_path / "b", epoch=1))
    resumed = train(mnist_config(tmp_path / "b")).config
    (columns, a), (_, b) = read_rows(straight), read_rows(resumed)
    assert columns == ["step", "epoch", *gan.METRIC_NAMES, "d_loss_wrong", "data", "seconds"]
    assert [row["step"] for row in a] == ["1", "2", "3", "4"] and a == b
    assert all(float(row["d_loss_wrong"]) > 0 for row in a)
    for row in a:  # the step's mean over its one D update
        total = float(row["d_loss_real"]) + (float(row["d_loss_wrong"]) + float(row["d_loss_fake"])) / 2
        assert float(row["d_loss"]) == pytest.approx(total, rel=1e-5)
    assert "_ma_" in straight.name and resumed.name == straight.name
    # the same run without the option: its own folder, and losses.csv's columns as before
    plain = dataclasses.replace(straight, matching_aware=False)
    assert plain.name == straight.name.replace("_ma_", "_")
    columns = loss_columns(build_dcgan(dataclasses.replace(plain, c_dim=1)), tmp_path)
    assert columns == ["step", "epoch", *gan.METRIC_NAMES, "data", "seconds"]


def test_the_run_name_changes_only_with_the_option():
    base = Config(dataset="mnist")
    assert base.default_run_name() == "mnist_b64_64x64_z100_ga2"  # as before the option existed
    assert Config(dataset="mnist", matching_aware=True).default_run_name() == "mnist_b64_64x64_z100_ga2_ma"
    assert base.model_differences(dataclasses.replace(base, matching_aware=True)) == {"matching_aware": (False, True)}


@pytest.mark.parametrize("values", [
    {},  # the built-in set: no labels
    {"dataset": "mice"},
    {"dataset": "mnist", "conditional": False},
    {"dataset": "mnist", "y_dim": 1},  # one class: no other label to draw
])
def test_matching_aware_needs_a_conditional_run_with_two_classes(values):
    with pytest.raises(ConfigError) as error:
        Config(matching_aware=True, **values).validate()
    assert error.value.field == "matching_aware"
    Config(**values).validate()  # fine without it
