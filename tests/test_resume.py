"""Resume you can trust: what a checkpoint holds decides what a resumed run continues with, never a file written
ahead of it; a run whose checkpoints cannot be restored stops and touches nothing; a seed is a run of its own."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import csv_steps, poison_discriminator, restore_fresh, tiny_config
from dcgan_tf.core import model as gan
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.runs import checkpoints, folders
from dcgan_tf.training import callbacks, loop
from dcgan_tf.training.loop import train


def folder_state(folder):
    """{file name: bytes} of every file in a run folder, to tell that nothing changed."""
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name))}


@pytest.mark.slow
def test_a_learning_rate_change_survives_a_death_before_the_next_checkpoint(tmp_path, image_folder, monkeypatch,
                                                                            first_run):
    """config.json is written with the new rate before any checkpoint holds it; the process dies; the same command
    again must still train at the new rate (before: config.json equalled the command, so the old rate won)."""
    first_run()  # ckpt-3 at the default rate 2e-4

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # dies after config.json was written, before the first checkpoint

    with monkeypatch.context() as patch:
        patch.setattr(loop, "_fit_with_rollbacks", killed)
        with pytest.raises(KeyboardInterrupt):
            train(tiny_config(tmp_path, image_folder, epoch=2, learning_rate=0.001))
    config = tiny_config(tmp_path, image_folder, epoch=2, learning_rate=0.001)
    assert json.load(open(os.path.join(config.resolved().checkpoint_path, "config.json")))["learning_rate"] == 0.001
    result = train(config)
    assert result.step == 6
    model, _ = restore_fresh(result.config)
    assert np.isclose(float(model.g_optimizer.learning_rate), 0.001)
    assert np.isclose(float(model.d_optimizer.learning_rate), 0.001)


@pytest.mark.slow
def test_halved_rates_stay_on_resume_until_the_command_changes_them(tmp_path, image_folder, monkeypatch):
    poison_discriminator(monkeypatch, from_step=3, once=True)
    train(tiny_config(tmp_path, image_folder, epoch=2, nan_policy="rollback"))  # one rollback: 1e-4 in force
    monkeypatch.undo()
    result = train(tiny_config(tmp_path, image_folder, epoch=3, nan_policy="rollback"))  # the same rate asked
    model, _ = restore_fresh(result.config)
    assert np.isclose(float(model.g_optimizer.learning_rate), 0.0001)
    result = train(tiny_config(tmp_path, image_folder, epoch=4, learning_rate=0.0003))  # an explicit change
    model, _ = restore_fresh(result.config)
    assert np.isclose(float(model.g_optimizer.learning_rate), 0.0003)


@pytest.mark.slow
def test_a_run_whose_checkpoints_all_fail_stops_and_touches_nothing(tmp_path, image_folder, first_run):
    config = first_run(max_to_keep=3)  # ckpt-2, ckpt-3
    folder = config.checkpoint_path
    for name in os.listdir(folder):
        if ".data-" in name:
            with open(os.path.join(folder, name), "r+b") as handle:
                handle.truncate(10)
    before = folder_state(folder)
    with pytest.raises(checkpoints.CheckpointError) as raised:
        train(tiny_config(tmp_path, image_folder, epoch=2, max_to_keep=3, learning_rate=0.001))
    message = str(raised.value)
    assert "ckpt-2" in message and "ckpt-3" in message and "Nothing was changed" in message
    after = folder_state(folder)
    after.pop("run.lock", None), before.pop("run.lock", None)  # the lock file names the latest holder
    assert after == before  # config.json, losses.csv and both checkpoints as they were
    assert csv_steps(config) == [1, 2, 3]


@pytest.mark.slow
def test_another_seed_or_subset_is_another_run(tmp_path, image_folder, first_run):
    first = first_run()  # seed 3
    other = tiny_config(tmp_path, image_folder, seed=4).resolved()
    assert other.checkpoint_path != first.checkpoint_path  # a replicate, not a continuation
    for change, saved, now in (({"seed": 4}, 3, 4), ({"train_size": 5}, None, 5)):
        with pytest.raises(folders.RunError, match=f"{list(change)[0]}: saved {saved}, now {now}"):
            train(tiny_config(tmp_path, image_folder, run_name=first.name, **change))
    assert json.load(open(os.path.join(first.checkpoint_path, "config.json")))["seed"] == 3


def fp16_model(config):
    """The run's model with fp16's dynamic loss scaling around both Adams, as build_dcgan makes it on a GPU."""
    model = build_dcgan(config)
    model.compile(d_optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.0002, beta_1=0.5)),
                  g_optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.0002, beta_1=0.5)))
    return model


def test_the_fp16_loss_scale_is_saved_and_precision_may_still_switch(tmp_path, image_folder):
    config = tiny_config(tmp_path, image_folder, c_dim=3).resolved()
    saved = fp16_model(config)
    saved.g_optimizer.dynamic_scale.assign(1024.0)
    saved.g_optimizer.step_counter.assign(7)
    saved.d_optimizer.dynamic_scale.assign(256.0)
    folder = str(tmp_path / "fp16")
    checkpoints.make_manager(checkpoints.make_checkpoint(saved), folder, 1).save(checkpoint_number=1)
    assert {"g_loss_scale", "d_loss_scale"} <= checkpoints.saved_entries(os.path.join(folder, "ckpt-1"))

    resumed = fp16_model(config)
    assert checkpoints.restore_latest(checkpoints.make_manager(checkpoints.make_checkpoint(resumed), folder, 1))
    assert float(resumed.g_optimizer.dynamic_scale) == 1024.0 and int(resumed.g_optimizer.step_counter) == 7
    assert float(resumed.d_optimizer.dynamic_scale) == 256.0

    fp32 = build_dcgan(config)  # fp16 -> fp32: the scale is left unused
    assert checkpoints.restore_latest(checkpoints.make_manager(checkpoints.make_checkpoint(fp32), folder, 1))
    folder32 = str(tmp_path / "fp32")
    checkpoints.make_manager(checkpoints.make_checkpoint(fp32), folder32, 1).save(checkpoint_number=1)
    switched = fp16_model(config)  # fp32 -> fp16: no scale saved, it starts at 2^15
    assert checkpoints.restore_latest(checkpoints.make_manager(checkpoints.make_checkpoint(switched), folder32, 1))
    assert float(switched.g_optimizer.dynamic_scale) == 2.0 ** 15


@pytest.mark.slow
def test_nan_weights_after_the_last_update_stop_the_run(tmp_path, image_folder, monkeypatch):
    """The last step's losses are finite but its G update wrote NaN: no final checkpoint, so the run must not end
    as if it had finished (before: exit 0, and the last checkpoint silently older than the last step)."""
    original = gan.DCGAN.generator_update

    def poisoned(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        kernel = self.generator.trainable_variables[0]
        kernel.assign(tf.where(self.step >= 2, kernel * np.nan, kernel))  # the run's last step (its third)
        return loss

    monkeypatch.setattr(gan.DCGAN, "generator_update", poisoned)
    result = train(tiny_config(tmp_path, image_folder))
    assert result.stopped_by == "nan" and result.nan_step == 3 and result.nan_values == ["weights"]
    assert os.path.basename(result.last_checkpoint) == "ckpt-2"


def test_nan_in_d_batch_norm_statistics_does_not_block_checkpoints(tmp_path, image_folder):
    """D always runs in training mode, so its moving statistics are never used; G's make the samples."""
    model = build_dcgan(tiny_config(tmp_path, image_folder, c_dim=3).resolved())
    assert callbacks.weights_finite(model)
    d_statistic = next(v for v in model.discriminator.non_trainable_variables if "moving_mean" in v.path)
    d_statistic.assign(d_statistic * np.nan)
    assert callbacks.weights_finite(model)
    g_statistic = next(v for v in model.generator.non_trainable_variables if "moving_mean" in v.path)
    g_statistic.assign(g_statistic * np.nan)
    assert not callbacks.weights_finite(model)


@pytest.mark.slow
def test_a_relative_checkpoint_dir_resumes_with_another_grid_size(tmp_path, image_folder, monkeypatch, caplog):
    """The command line's default folders are relative: the saved grid z's shape must still be read (a bigger grid
    keeps the saved z's and draws more), not every checkpoint reported unreadable."""
    monkeypatch.chdir(tmp_path)
    relative = dict(checkpoint_dir="checkpoints", sample_dir="samples")
    train(tiny_config(tmp_path, image_folder, **relative))
    caplog.set_level("WARNING")
    result = train(tiny_config(tmp_path, image_folder, epoch=2, grid_rows=3, grid_cols=4, **relative))
    assert result.step == 6 and "cannot read" not in caplog.text and "cannot restore" not in caplog.text
