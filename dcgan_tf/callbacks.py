"""Training monitors as Keras callbacks: epoch counter, sample grids, checkpoints, loss CSV, TensorBoard.

Every callback numbers its output by the model's global `step`, so a resumed run continues the numbering.
"""

from __future__ import annotations

import csv
import logging
import os

import keras
import tensorflow as tf

from dcgan_tf.gan import METRIC_NAMES
from dcgan_tf.visualize import save_grid

log = logging.getLogger(__name__)


def _step(model) -> int:
    return int(model.step.numpy())


class EpochCounter(keras.callbacks.Callback):
    """Keep `model.epoch` = finished epochs, so checkpoints carry it and resume continues it.

    Advanced on the epoch's last batch, before the later callbacks run, so a checkpoint saved at that step
    already counts the epoch as finished. Put it first in the callback list.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 >= self.params["steps"]:
            self.model.epoch.assign(self.epoch + 1)


class SampleGrids(keras.callbacks.Callback):
    """Every `every` steps and at the end: `<directory>/train_<step:08d>.png`, a grid of G(fixed z)."""

    def __init__(self, sample_z, directory: str, rows: int, cols: int, every: int, labels=None):
        super().__init__()
        self.sample_z, self.labels = sample_z, labels
        self.directory, self.rows, self.cols, self.every = directory, rows, cols, every
        self.last_saved = None

    def save(self, step: int) -> str:
        images = self.model.generate(self.sample_z, self.labels, training=False)
        path = save_grid(images.numpy(), self.rows, self.cols, os.path.join(self.directory, f"train_{step:08d}.png"))
        self.last_saved = step
        return path

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if step % self.every == 0:
            self.save(step)

    def on_train_end(self, logs=None):
        step = _step(self.model)
        if self.last_saved != step:
            self.save(step)


class Checkpoints(keras.callbacks.Callback):
    """Save through a CheckpointManager every `every` steps and at the end of training (numbered by step)."""

    def __init__(self, manager: tf.train.CheckpointManager, every: int):
        super().__init__()
        self.manager, self.every = manager, every
        self.last_saved = None

    def save(self, step: int) -> str:
        path = self.manager.save(checkpoint_number=step)
        self.last_saved = step
        log.info("saved checkpoint %s", path)
        return path

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if step % self.every == 0:
            self.save(step)

    def on_train_end(self, logs=None):
        step = _step(self.model)
        if self.last_saved != step:
            self.save(step)


class LossCSV(keras.callbacks.Callback):
    """One row per step: step, epoch, and every loss/metric value of that step.

    On resume, rows past the restored step (written after the last checkpoint, then lost) are dropped first, so
    the file never holds a step twice.
    """

    COLUMNS = ("step", "epoch") + METRIC_NAMES

    def __init__(self, path: str, resume_step: int = 0):
        super().__init__()
        self.path, self.resume_step = path, resume_step
        self.handle = self.writer = None
        self.epoch = 0

    def on_train_begin(self, logs=None):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        rows = []
        if os.path.isfile(self.path):
            with open(self.path, newline="", encoding="utf-8") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= self.resume_step]
        self.handle = open(self.path, "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, fieldnames=self.COLUMNS, extrasaction="ignore")
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.resume_step = float("inf")  # a second fit() in the same run appends

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        row = {name: float(logs[name]) for name in METRIC_NAMES if name in logs}
        self.writer.writerow({"step": _step(self.model), "epoch": self.epoch, **row})

    def on_epoch_end(self, epoch, logs=None):
        self.handle.flush()

    def on_train_end(self, logs=None):
        self.handle.close()


class LossTensorBoard(keras.callbacks.Callback):
    """Per-step scalars (`train/<metric>`) for TensorBoard, under the global step."""

    def __init__(self, log_dir: str):
        super().__init__()
        self.log_dir = log_dir
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        with self.writer.as_default(step=step):
            for name in METRIC_NAMES:
                if name in logs:
                    tf.summary.scalar(f"train/{name}", float(logs[name]))

    def on_epoch_end(self, epoch, logs=None):
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()
