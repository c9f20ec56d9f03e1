"""train(): run folders, sample grids, loss CSV, checkpoints, and resume that continues every counter."""

import io
import json
import os
import re
import types

import numpy as np
import pytest
from PIL import Image

from conftest import make_mnist, read_csv, restore_fresh, tiny_config, write_images
from dcgan_tf.config import Config
from dcgan_tf.runs import folders
from dcgan_tf.runs.trained import load_trained, write_test_grid
from dcgan_tf.training import callbacks as cb
from dcgan_tf.training.loop import train


@pytest.mark.slow
def test_train_writes_run_folder_grids_csv_and_checkpoint(tmp_path, image_folder):
    config = tiny_config(tmp_path, image_folder, epoch=2)  # 10 images, batch 4 -> 3 steps per epoch
    result = train(config)
    config = result.config
    assert (result.step, result.epoch, result.num_images) == (6, 2, 10)
    assert config.name == "pics_b4_16x16_z8_ga2_gf8_df8_s3"  # tiny_config trains with seed 3
    saved = json.load(open(os.path.join(config.checkpoint_path, "config.json")))
    assert saved["c_dim"] == 3 and saved["g_advantage"] == 2 and saved["dataset"] == image_folder
    grids = sorted(os.listdir(config.sample_path))
    assert grids == ["plot_loss_ratio.png", "plot_losses.png",  # written at the end of training
                     "train_00000002.png", "train_00000004.png", "train_00000006.png"]
    grids = grids[2:]
    with Image.open(os.path.join(config.sample_path, grids[0])) as grid:
        assert grid.size == (3 * 16, 2 * 16)  # grid_cols x grid_rows cells, independent of the batch size
    rows = read_csv(config)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [int(r["epoch"]) for r in rows] == [0, 0, 0, 1, 1, 1]
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    assert os.path.basename(restore_fresh(config)[1]) == "ckpt-6"
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(config.checkpoint_path,
                                                                                           "logs")))


def test_g_advantage_runs_do_not_share_a_folder(tmp_path, image_folder):
    names = {tiny_config(tmp_path, image_folder, g_advantage=k).name for k in (2, 4)}
    assert len(names) == 2
    assert tiny_config(tmp_path, image_folder, run_name="mine").name == "mine"


@pytest.mark.slow
def test_resume_continues_weights_optimizers_counters_and_numbering(tmp_path, image_folder, first_run):
    first = first_run(epoch=1)
    _, restored, step = load_trained(first)
    generator_after_first = [w.copy() for w in restored.generator.get_weights()]
    assert step == 3

    # a fresh model restored from the checkpoint holds exactly what was saved, optimizers included
    model, _ = restore_fresh(first)
    assert int(model.step) == 3 and int(model.epoch) == 1
    assert int(model.d_optimizer.iterations) == 3 and int(model.g_optimizer.iterations) == 6
    for a, b in zip(generator_after_first, model.generator.get_weights()):
        np.testing.assert_array_equal(a, b)

    result = train(tiny_config(tmp_path, image_folder, epoch=2))  # the same command with more epochs resumes
    assert (result.step, result.epoch) == (6, 2)
    assert [int(r["step"]) for r in read_csv(result.config)] == [1, 2, 3, 4, 5, 6]
    assert sorted(os.listdir(result.config.sample_path))[-1] == "train_00000006.png"
    _, resumed, _ = load_trained(result.config)
    assert int(resumed.d_optimizer.iterations) == 6  # not reset to 3
    assert int(resumed.g_optimizer.iterations) == 12


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_resume_mid_epoch_continues_the_exact_data_order(tmp_path, image_folder, monkeypatch):
    """A run stopped after the step-4 checkpoint (mid epoch 2) and resumed gives the uninterrupted run's losses."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    straight = train(tiny_config(tmp_path / "a", image_folder, epoch=2)).config

    original = cb.Checkpoints.save

    def save_then_die(self, step):
        path = original(self, step)
        if step == 4:
            raise Interrupt()
        return path

    monkeypatch.setattr(cb.Checkpoints, "save", save_then_die)
    with pytest.raises(Interrupt):
        train(tiny_config(tmp_path / "b", image_folder, epoch=2))
    monkeypatch.setattr(cb.Checkpoints, "save", original)
    # the killed run's CSV holds rows 1..4; resuming drops nothing and duplicates nothing
    result = train(tiny_config(tmp_path / "b", image_folder, epoch=2))
    assert (result.step, result.epoch) == (6, 2)
    resumed_rows, straight_rows = read_csv(result.config), read_csv(straight)
    assert [int(r["step"]) for r in resumed_rows] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(resumed_rows, straight_rows):
        assert a["epoch"] == b["epoch"]
        np.testing.assert_allclose(float(a["d_loss"]), float(b["d_loss"]), rtol=1e-4)
        np.testing.assert_allclose(float(a["g_loss"]), float(b["g_loss"]), rtol=1e-4)


@pytest.mark.slow
def test_rows_after_the_last_checkpoint_are_replaced_on_resume(tmp_path, image_folder):
    config = train(tiny_config(tmp_path, image_folder, epoch=1, ckpt_freq=100)).config
    path = os.path.join(config.checkpoint_path, "losses.csv")
    with open(path, "a") as handle:  # rows of steps that a crash lost (their checkpoint never landed)
        handle.write("4,1,9,9,9,9,0.5,0.5\n5,1,9,9,9,9,0.5,0.5\n")
    train(tiny_config(tmp_path, image_folder, epoch=2, ckpt_freq=100))
    rows = read_csv(config)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert float(rows[3]["d_loss"]) != 9.0


@pytest.mark.slow
def test_resume_refuses_a_changed_model(tmp_path, image_folder):
    train(tiny_config(tmp_path, image_folder, run_name="fixed"))
    with pytest.raises(folders.RunError, match=r"z_dim: saved 8, now 9.*--run_name"):
        train(tiny_config(tmp_path, image_folder, run_name="fixed", z_dim=9))


@pytest.mark.slow
def test_data_set_smaller_than_a_batch_trains(tmp_path):
    folder = tmp_path / "three"
    write_images(folder, 3)
    result = train(tiny_config(tmp_path, folder, batch_size=8, epoch=2))
    assert (result.step, result.epoch, result.num_images) == (2, 2, 3)


@pytest.mark.slow
def test_grayscale_folder_trains_a_one_channel_model(tmp_path):
    folder = tmp_path / "gray"
    write_images(folder, 5, mode="L")
    result = train(tiny_config(tmp_path, folder))
    assert result.config.c_dim == 1
    _, model, _ = load_trained(result.config)
    assert model.generator.output_shape == (None, 16, 16, 1)


@pytest.mark.slow
def test_test_mode_writes_a_grid_and_fails_clearly_without_a_run(tmp_path, image_folder, first_run):
    with pytest.raises(folders.RunError, match="no run .*train it first"):
        write_test_grid(tiny_config(tmp_path, image_folder))
    first_run()
    path = write_test_grid(tiny_config(tmp_path, image_folder, grid_rows=None, grid_cols=4))
    assert os.path.basename(path) == "test_00000003.png"
    with Image.open(path) as grid:
        assert grid.size == (4 * 16, 8 * 16)


@pytest.mark.slow
def test_conditional_run_grid_has_one_row_per_digit(tmp_path):

    make_mnist(tmp_path / "data")  # 12 + 5 digits
    config = Config(dataset="mnist", data_dir=str(tmp_path / "data"), output_height=28, batch_size=8, epoch=1,
                    z_dim=8, gf_dim=4, df_dim=4, gfc_dim=16, dfc_dim=16, grid_cols=3, verbose=0,
                    checkpoint_dir=str(tmp_path / "ck"), sample_dir=str(tmp_path / "s"))
    result = train(config)
    assert result.config.y_dim == 10 and result.config.c_dim == 1 and result.num_images == 17
    with Image.open(os.path.join(result.config.sample_path, "train_00000003.png")) as grid:
        assert grid.size == (3 * 28, 10 * 28)
    assert os.path.isfile(write_test_grid(config))


@pytest.mark.slow
def test_resume_after_the_data_set_shrank_counts_epochs_right(tmp_path):
    folder = tmp_path / "shrinking"
    paths = write_images(folder, 10)
    assert train(tiny_config(tmp_path, folder, epoch=2)).step == 6  # 3 steps per epoch
    for path in paths[4:]:
        os.remove(path)  # 4 images left: 1 step per epoch
    result = train(tiny_config(tmp_path, folder, epoch=4))
    assert (result.step, result.epoch) == (8, 4)  # epochs 3 and 4 ran, none skipped


@pytest.mark.slow
def test_resume_with_another_grid_size_and_learning_rate(tmp_path, image_folder, first_run):
    first = first_run()
    result = train(tiny_config(tmp_path, image_folder, epoch=2, grid_rows=3, grid_cols=4, learning_rate=0.001))
    with Image.open(os.path.join(result.config.sample_path, "train_00000006.png")) as grid:
        assert grid.size == (4 * 16, 3 * 16)
    model, _ = restore_fresh(result.config)
    assert np.isclose(float(model.g_optimizer.learning_rate), 0.001)  # the changed rate took effect
    assert first.learning_rate == 0.0002


@pytest.mark.slow
def test_torn_csv_row_from_a_kill_is_dropped(tmp_path, image_folder, first_run):
    config = first_run()
    path = os.path.join(config.checkpoint_path, "losses.csv")
    with open(path, "a") as handle:
        handle.write("2")  # a row cut short by SIGKILL, without its newline
    train(tiny_config(tmp_path, image_folder, epoch=2))
    assert [int(r["step"]) for r in read_csv(config)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_test_mode_samples_differ_from_the_training_grid(first_run):
    config = first_run()
    test_grid = np.asarray(Image.open(write_test_grid(config)))
    train_grid = np.asarray(Image.open(os.path.join(config.sample_path, "train_00000003.png")))
    assert test_grid.shape == train_grid.shape and not np.array_equal(test_grid, train_grid)


@pytest.mark.slow
def test_dataset_given_as_path_or_with_trailing_slash_is_the_same_run(tmp_path, image_folder, first_run):
    first_run()
    result = train(tiny_config(tmp_path, image_folder + os.sep, epoch=2))
    assert result.step == 6


@pytest.mark.slow
def test_a_streamed_run_trains_exactly_like_a_cached_one(tmp_path, image_folder, caplog):
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    caplog.set_level("INFO")
    cached = train(tiny_config(tmp_path / "a", image_folder, epoch=2)).config
    streamed = train(tiny_config(tmp_path / "b", image_folder, epoch=2, cache_limit=0)).config
    assert "streaming them from disk" in caplog.text
    for a, b in zip(read_csv(cached), read_csv(streamed), strict=True):
        np.testing.assert_allclose(float(a["d_loss"]), float(b["d_loss"]), rtol=1e-5)
        np.testing.assert_allclose(float(a["g_loss"]), float(b["g_loss"]), rtol=1e-5)


def test_one_stop_request_delivered_twice_is_not_a_second_request():
    """A job scheduler may signal every process of a job while a sweep passes its own copy on: the same signal
    again within a second stops after the step, as the first did; later, or another signal, stops at once."""
    import signal as signals
    import time as clock

    from dcgan_tf.training.callbacks import GracefulStop

    stop = GracefulStop()
    stop._handle(signals.SIGTERM, None)
    stop._handle(signals.SIGTERM, None)  # the same request again: no KeyboardInterrupt
    assert stop.signal_name == "SIGTERM"
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signals.SIGINT, None)  # another signal: a second request
    stop.signalled_at = clock.monotonic() - GracefulStop.REPEAT_SECONDS - 0.1
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signals.SIGTERM, None)  # the same one later: a second request


def test_progress_is_plain_lines_in_a_log_file_and_one_bar_in_a_terminal(capsys):
    """stdout a log file (nohup, a scheduler): about 20 plain lines a run, each with the step, ETA and losses, and
    no carriage returns or colour codes (Keras 3 redraws its bar in any POSIX process). A terminal: Keras' bar."""
    out = io.StringIO()
    progress = cb.RunProgress(432, lines=True, out=out)
    model = types.SimpleNamespace(steps_done=100)  # resumed at step 100: 332 steps left
    progress.set_model(model)
    for step in range(101, 433):
        model.steps_done = step
        progress.on_train_batch_end(step, {"d_loss": 1.25, "g_loss": 0.5})
    lines = out.getvalue().splitlines()
    assert 18 <= len(lines) <= 21 and "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    pattern = r"step (\d+)/432 \(\d+%\), \d+s elapsed, ETA \d+s, d_loss 1\.2500, g_loss 0\.5000"
    assert all(re.fullmatch(pattern, line) for line in lines), lines[:3]
    assert lines[-1].startswith("step 432/432 (100%)")

    bar = cb.RunProgress(6)
    bar.set_model(model)
    for step in range(1, 4):
        model.steps_done = step
        bar.on_train_batch_end(step, {"d_loss": 1.0, "g_loss": 2.0})
    live = capsys.readouterr().out
    assert "\r" in live and "1/6" in live  # Keras' bar, redrawn in place (it throttles the redraws)
