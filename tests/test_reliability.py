"""Runs lose nothing: NaN guard and rollback, Ctrl-C/SIGTERM, SIGKILL at any moment, damaged checkpoints, disk."""

import logging
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import csv_steps, poison_discriminator, restore_fresh, tiny_config, write_images
from dcgan_tf.training.loop import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_nan_stops_the_run_and_never_reaches_a_checkpoint(tmp_path, image_folder, monkeypatch):
    poison_discriminator(monkeypatch, from_step=3, once=False)
    result = train(tiny_config(tmp_path, image_folder, epoch=3))
    assert result.stopped_by == "nan" and result.nan_step == 4
    assert os.path.basename(result.last_checkpoint) == "ckpt-2"  # step 4's checkpoint was refused
    assert not any(name.startswith("ckpt-4") for name in os.listdir(result.config.checkpoint_path))


@pytest.mark.slow
def test_nan_rollback_restores_halves_the_learning_rate_and_finishes(tmp_path, image_folder, monkeypatch):
    poison_discriminator(monkeypatch, from_step=3, once=True)
    result = train(tiny_config(tmp_path, image_folder, epoch=2, nan_policy="rollback"))
    assert result.stopped_by is None and result.rollbacks == 1 and result.nan_step == 4
    assert (result.step, result.epoch) == (6, 2)
    assert csv_steps(result.config) == [1, 2, 3, 4, 5, 6]  # the NaN step's row was replaced

    model, _ = restore_fresh(result.config)
    assert np.isclose(float(model.d_optimizer.learning_rate), 0.0001)  # halved, and saved so resume keeps it


@pytest.mark.slow
def test_rollbacks_to_one_checkpoint_compound_the_halving(tmp_path, image_folder, monkeypatch, caplog):
    """NaN again before the next checkpoint: rollback k trains at the base rate x 0.5^k, not base / 2 each time."""
    poison_discriminator(monkeypatch, from_step=3, once=False)
    caplog.set_level("WARNING")
    result = train(tiny_config(tmp_path, image_folder, epoch=2, nan_policy="rollback"))
    assert result.stopped_by == "nan" and result.rollbacks == 3
    halved = [line.split("halved to ")[1].split(" ")[0] for line in caplog.text.splitlines() if "halved to" in line]
    assert halved == ["0.0001", "5e-05", "2.5e-05"]


@pytest.mark.slow
def test_keep_samples_prunes_old_grids(tmp_path, image_folder):
    result = train(tiny_config(tmp_path, image_folder, epoch=3, sample_freq=1, keep_samples=2, keep_every=4))
    grids = sorted(name for name in os.listdir(result.config.sample_path) if name.startswith("train_"))
    assert grids == ["train_00000004.png", "train_00000008.png", "train_00000009.png"]  # newest 2 + every 4th


@pytest.mark.slow
def test_low_disk_stops_samples_but_not_checkpoints(tmp_path, image_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="dcgan_tf"):
        result = train(tiny_config(tmp_path, image_folder, min_free_mb=10**12))
    assert not os.path.exists(result.config.sample_path) or not os.listdir(result.config.sample_path)
    assert os.path.basename(result.last_checkpoint) == "ckpt-3"
    assert caplog.text.count("no more sample grids") == 1


@pytest.mark.slow
def test_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, image_folder, first_run):
    config = first_run(max_to_keep=3)  # ckpt-2, ckpt-3
    folder = config.checkpoint_path
    data_file = [n for n in os.listdir(folder) if n.startswith("ckpt-3.data")][0]
    with open(os.path.join(folder, data_file), "r+b") as handle:
        handle.truncate(10)  # damaged after it was written
    open(os.path.join(folder, "ckpt-9.index"), "wb").write(b"half a write")  # a killed write: never in the state
    result = train(tiny_config(tmp_path, image_folder, epoch=2, max_to_keep=3))
    assert (result.step, result.epoch) == (6, 2)  # resumed from step 2, re-ran step 3, finished epoch 2
    assert csv_steps(result.config) == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_a_truncated_newest_index_falls_back_too(tmp_path, image_folder, first_run):
    """The .index (read first, for the saved grid z's shape) damaged, not only the data: still the one before."""
    config = first_run(max_to_keep=3)  # ckpt-2, ckpt-3
    with open(os.path.join(config.checkpoint_path, "ckpt-3.index"), "r+b") as handle:
        handle.truncate(100)
    result = train(tiny_config(tmp_path, image_folder, epoch=2, max_to_keep=3))
    assert (result.step, result.epoch) == (6, 2)
    assert csv_steps(result.config) == [1, 2, 3, 4, 5, 6]


def test_library_never_unpickles():
    # every module of the package and its subpackages but metrics/torch_files.py, the reader of PyTorch's files,
    # whose unpickler refuses any global but tensors, storages and containers (tests/test_fid_inception.py)
    package = os.path.join(ROOT, "dcgan_tf")
    paths = [os.path.join(folder, name) for folder, _, names in os.walk(package) for name in names
             if name.endswith(".py")]
    paths = [path for path in paths if os.path.relpath(path, package) != os.path.join("metrics", "torch_files.py")]
    assert len(paths) > 40  # the walk found the package
    source = "".join(open(path).read() for path in paths)
    assert not re.search(r"\bimport pickle|allow_pickle\s*=\s*True|safe_mode\s*=\s*False|\bdill\b", source)


# ---------------------------------------------------------------------------------------------- processes
def start(folder, run_dir, *extra):
    args = [sys.executable, os.path.join(ROOT, "main.py"), "--train", "--dataset", str(folder),
            "--input_fname_pattern", "*.png", "--output_height", "16", "--batch_size", "2", "--z_dim", "4",
            "--gf_dim", "4", "--df_dim", "4", "--verbose", "0", "--checkpoint_dir", str(run_dir / "ck"),
            "--sample_dir", str(run_dir / "s"), "--run_name", "r", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def wait_for_step(run_dir, step, process, timeout=120):
    """Block until the run's loss CSV reaches `step` (training is under way)."""
    path = run_dir / "ck" / "r" / "losses.csv"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and any(line.split(",")[0] == str(step) for line in path.read_text().splitlines()):
            return
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    raise AssertionError(f"step {step} not reached")


@pytest.mark.slow
def test_sigterm_stops_after_the_step_with_a_checkpoint_and_resumes(tmp_path):
    folder = tmp_path / "pics"
    write_images(folder, 8)
    process = start(folder, tmp_path, "--epoch", "200", "--ckpt_freq", "1000", "--sample_freq", "1000")
    wait_for_step(tmp_path, 3, process)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    stopped = int(re.search(r"stopped by SIGTERM: r at step (\d+)", output).group(1))
    assert stopped >= 3 and "run the same command to resume" in output
    assert os.path.exists(tmp_path / "ck" / "r" / f"ckpt-{stopped}.index")  # written at the stop
    assert os.path.exists(tmp_path / "s" / "r" / f"train_{stopped:08d}.png")
    resumed = start(folder, tmp_path, "--epoch", "1", "--ckpt_freq", "1000", "--sample_freq", "1000")
    output, _ = resumed.communicate(timeout=120)
    assert f"at step {stopped}" in output  # nothing lost, nothing re-run


@pytest.mark.slow
def test_sigkill_at_any_moment_resumes_from_the_last_complete_checkpoint(tmp_path):
    folder = tmp_path / "pics"
    write_images(folder, 6)  # 3 steps per epoch
    args = ("--epoch", "6", "--ckpt_freq", "1", "--sample_freq", "2")
    resumed_at = []
    for kill_at in (2, 5, 9):  # early, mid epoch, late; with ckpt_freq 1 a kill often lands inside a save
        process = start(folder, tmp_path, *args)
        wait_for_step(tmp_path, kill_at, process)
        process.kill()
        output, _ = process.communicate(timeout=60)
        found = re.search(r"resuming run r at step (\d+)", output)
        resumed_at.append(int(found.group(1)) if found else 0)
    final = start(folder, tmp_path, *args)
    output, _ = final.communicate(timeout=180)
    assert final.returncode == 0, output
    resumed_at.append(int(re.search(r"resuming run r at step (\d+)", output).group(1)))
    assert resumed_at == sorted(resumed_at) and resumed_at[-1] >= 8  # the step counter never went backwards
    assert "trained r at step 18, epoch 6" in output
    steps = csv_steps(type("C", (), {"checkpoint_path": str(tmp_path / "ck" / "r")}))
    assert steps == list(range(1, 19))  # every step once, in order
