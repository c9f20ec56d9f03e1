"""One writer per run (dcgan_tf.runs.lock, and train() holding it) and a full disk that stops a run cleanly."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from conftest import csv_steps, tiny_config
from dcgan_tf import files
from dcgan_tf.runs import lock as run_lock
from dcgan_tf.runs.lock import RunBusyError, RunFolderGoneError, RunLock
from dcgan_tf.training import callbacks as cb
from dcgan_tf.training.loop import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLD = ("import sys, time; sys.path.insert(0, sys.argv[1]); from dcgan_tf.runs.lock import RunLock; "
        "lock = RunLock(sys.argv[2]).acquire(); print('held', flush=True); time.sleep(120)")


# ---------------------------------------------------------------------------------------------- the lock
def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    folder = str(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, ROOT, folder], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusyError) as info:
            RunLock(folder).acquire()
        assert f"pid {holder.pid} on " in str(info.value) and "one process writes a run at a time" in str(info.value)
        assert info.value.holder["pid"] == holder.pid and "-c" in info.value.holder["command"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunLock(folder) as lock:  # the kernel dropped the dead holder's lock
        assert run_lock.read_holder(folder)["pid"] == os.getpid() and lock.handle is not None
    with RunLock(folder):  # released, and free again
        with RunLock(folder):  # this process may take its own folder again (the autoencoder inside a run)
            pass


def test_a_waiting_writer_gets_the_lock_when_the_holder_ends(tmp_path):
    folder = str(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", HOLD.replace("time.sleep(120)", "time.sleep(2)"), ROOT, folder],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with RunLock(folder, wait=True):
        assert time.monotonic() - started > 0.5  # it waited for the holder
    holder.wait()



def test_a_holder_knows_when_its_folder_was_removed_or_replaced(tmp_path):
    """flock follows the open file, not the path: once the folder is deleted, a second process can lock a new
    run.lock of the same name. The holder can tell (the path no longer names its file) and stops writing."""
    folder = str(tmp_path / "run")
    with RunLock(folder) as lock:
        assert lock.still_held()
        lock.check_still_held()
        shutil.rmtree(folder)
        assert not lock.still_held()
        holder = subprocess.Popen([sys.executable, "-c", HOLD, ROOT, folder], stdout=subprocess.PIPE, text=True)
        try:  # a second process takes the new folder's lock: nothing refuses it
            assert holder.stdout.readline().strip() == "held"
            assert not lock.still_held()
            with pytest.raises(RunFolderGoneError) as gone:
                lock.check_still_held("the checkpoint of step 4")
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
    message = str(gone.value)
    assert f"run folder {folder} was removed or replaced" in message and "before the checkpoint of step 4" in message


def test_a_lock_file_replaced_while_waiting_for_it_is_locked_anew(tmp_path, monkeypatch):
    folder = str(tmp_path / "run")
    os.makedirs(folder)
    original, replaced = RunLock._lock, []

    def replace_first(self, handle):  # another process removes the file and makes a new one as we lock it
        if not replaced:
            os.remove(self.path)
            open(self.path, "w").close()
            replaced.append(True)
        original(self, handle)

    monkeypatch.setattr(RunLock, "_lock", replace_first)
    with RunLock(folder) as lock:
        assert replaced and lock.still_held()  # the lock is on the file that is there, not the removed one


def test_a_run_whose_folder_is_removed_stops_before_its_next_checkpoint_and_writes_nothing(tmp_path, image_folder,
                                                                                           monkeypatch):
    config = tiny_config(tmp_path, image_folder, epoch=2).resolved()  # checkpoints at steps 2, 4 and 6
    original = cb.Checkpoints.save

    def removed_at_4(self, step):
        if step == 4:
            shutil.rmtree(config.checkpoint_path)  # e.g. rm -rf checkpoints/<run> while it trains
        return original(self, step)

    monkeypatch.setattr(cb.Checkpoints, "save", removed_at_4)
    with pytest.raises(RunFolderGoneError, match="before the checkpoint of step 4"):
        train(config)
    assert not os.path.exists(config.checkpoint_path)  # nothing written into a folder another run may now own

def test_training_refuses_a_held_run_before_any_work(tmp_path, image_folder):
    config = tiny_config(tmp_path, image_folder).resolved()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, ROOT, config.checkpoint_path], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusyError, match=f"pid {holder.pid}"):
            train(config)
        assert os.listdir(config.checkpoint_path) == ["run.lock"]  # no config.json, no checkpoint, no CSV
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------------------------------------- a full disk
@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_stops_the_run_and_the_same_call_resumes(tmp_path, image_folder,
                                                                                 monkeypatch):
    config = tiny_config(tmp_path, image_folder, epoch=2)  # 3 steps an epoch; checkpoints at 2, 4, 6
    save = tf.train.CheckpointManager.save

    def full_at_4(self, checkpoint_number=None, **kwargs):
        if checkpoint_number == 4:
            raise tf.errors.ResourceExhaustedError(None, None, f"{self.directory}/ckpt-4_temp/part-00000-of-00001."
                                                               f"data-00000-of-00001: No space left on device")
        return save(self, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_at_4)
    with pytest.raises(files.DiskFullError) as info:
        train(config)
    message = str(info.value)
    assert "the disk is full" in message and "ckpt-4_temp" in message and "MB free in" in message
    assert "last complete checkpoint" in message and "ckpt-2" in message and "same command" in message
    os.makedirs(os.path.join(config.resolved().checkpoint_path, "ckpt-4_temp"))  # what a real failed save leaves

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    result = train(config)
    assert (result.step, result.epoch) == (6, 2)
    assert csv_steps(result.config) == [1, 2, 3, 4, 5, 6]  # resumed from step 2, steps never repeated
    assert not os.path.exists(os.path.join(result.config.checkpoint_path, "ckpt-4_temp"))  # cleared at the start


@pytest.mark.slow
def test_a_full_disk_on_a_sample_grid_stops_the_run_naming_the_file(tmp_path, image_folder, monkeypatch):
    def no_space(images, rows, cols, path):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(cb, "save_grid", no_space)
    with pytest.raises(files.DiskFullError, match=r"could not write .*train_00000004\.png.*at step 4.*ckpt-2\."):
        train(tiny_config(tmp_path, image_folder, epoch=2, sample_freq=4))


@pytest.mark.slow
def test_a_checkpoint_that_may_not_fit_is_warned_of(tmp_path, image_folder, monkeypatch, caplog):
    config = tiny_config(tmp_path, image_folder, epoch=2, min_free_mb=1)
    real_free_mb, run_folder = files.free_mb, config.resolved().checkpoint_path
    monkeypatch.setattr(files, "free_mb", lambda folder: 0.0 if folder == run_folder else real_free_mb(folder))
    caplog.set_level("WARNING")
    train(config)
    assert caplog.text.count("may not fit") == 1  # once, before the save at step 4 (the size of ckpt-2 is known)


@pytest.mark.slow
def test_main_exits_1_with_one_message_on_a_full_disk(tmp_path, image_folder):
    script = (
        "import errno, sys; sys.path.insert(0, sys.argv[1]); sys.argv = ['main.py'] + sys.argv[2:]\n"
        "import main\n"
        "from absl import app\n"
        "from dcgan_tf.training import callbacks\n"
        "def full(*args): raise OSError(errno.ENOSPC, 'No space left on device', args[-1])\n"
        "callbacks.save_grid = full\n"
        "app.run(main.main)\n")
    result = subprocess.run([sys.executable, "-c", script, ROOT, "--train", "--dataset", image_folder,
                             "--input_fname_pattern", "*.png", "--output_height", "16", "--batch_size", "4",
                             "--z_dim", "4", "--gf_dim", "4", "--df_dim", "4", "--epoch", "1", "--sample_freq", "2",
                             "--checkpoint_dir", str(tmp_path / "ck"), "--sample_dir", str(tmp_path / "s"),
                             "--verbose", "0"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 1, result.stderr
    assert "main.py: error: the disk is full: could not write" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------- through main.py
@pytest.mark.slow
def test_two_trainings_of_one_run_and_a_reader_beside_them(tmp_path, image_folder):
    args = [sys.executable, os.path.join(ROOT, "main.py"), "--dataset", image_folder, "--input_fname_pattern",
            "*.png", "--output_height", "16", "--batch_size", "2", "--z_dim", "4", "--gf_dim", "4", "--df_dim", "4",
            "--verbose", "0", "--checkpoint_dir", str(tmp_path / "ck"), "--sample_dir", str(tmp_path / "s"),
            "--run_name", "r", "--ckpt_freq", "2", "--sample_freq", "1000"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen(args + ["--train", "--epoch", "10000"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        run = tmp_path / "ck" / "r"
        deadline = time.monotonic() + 120
        while not (run / "checkpoint").is_file():  # training, with a checkpoint written
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.poll() else ""
            time.sleep(0.2)
        second = subprocess.run(args + ["--train", "--epoch", "10000"], env=env, capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 2
        assert f"is being written by pid {first.pid} on " in second.stderr
        reader = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)  # test mode reads beside it
        assert reader.returncode == 0, reader.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0 and "stopped by SIGTERM" in out, err
    with open(run / "losses.csv") as handle:
        steps = [int(line.split(",")[0]) for line in handle.read().splitlines()[1:]]
    assert steps == list(range(1, len(steps) + 1))  # one trajectory, untouched
    assert json.loads((run / "run.lock").read_text())["pid"] == first.pid
