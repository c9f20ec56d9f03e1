"""Training monitors as Keras callbacks: epoch counter, sample grids, checkpoints, loss CSV, TensorBoard.

Every callback numbers its output by the model's global `step`, so a resumed run continues the numbering.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import signal
import sys
import threading
import time

import keras
import tensorflow as tf

from dcgan_tf import files
from dcgan_tf.core.model import METRIC_NAMES
from dcgan_tf.images import save_grid
from dcgan_tf.runs import checkpoints
from dcgan_tf.runs.folders import list_training_grids, training_grid_name

log = logging.getLogger(__name__)


def weights_finite(model) -> bool:
    """True when every float variable that training or sampling uses is finite (nothing NaN/Inf to save).

    That is all of G (its batch-norm statistics make the samples), D's trainable weights, and both optimizers' state.
    D's batch-norm moving statistics are left out: D always runs in training mode, so they are never used, and a
    NaN there must not block every later checkpoint while training goes on.
    """
    variables = (model.generator.variables + model.discriminator.trainable_variables + model.g_optimizer.variables
                 + model.d_optimizer.variables + list(model.ema_weights))
    return all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in variables if keras.backend.is_float_dtype(v.dtype))


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
            self.model.epoch_start_step.assign(self.model.step)


class EveryNSteps(keras.callbacks.Callback):
    """Call `save(step)` every `every` steps and once more at the end of training (unless that step has one)."""

    def __init__(self, every: int):
        super().__init__()
        self.every = every
        self.last_saved = None

    def save(self, step: int):
        raise NotImplementedError

    def on_train_batch_end(self, batch, logs=None):
        step = self.model.steps_done
        if step % self.every == 0:
            self.save(step)

    def on_train_end(self, logs=None):
        step = self.model.steps_done
        if self.last_saved != step:
            self.save(step)


class SampleGrids(EveryNSteps):
    """Every `every` steps and at the end: `<directory>/train_<step:08d>.png`, a grid of G(fixed z).

    keep: keep only the newest `keep` grids plus every `keep_every`-th one (0 keeps all). Below `min_free_mb` of
    free disk it warns once and writes no more grids, leaving the space to checkpoints.
    """

    def __init__(self, sample_z, directory: str, rows: int, cols: int, every: int, labels=None, keep: int = 0,
                 keep_every: int = 10, min_free_mb: float = 0):
        super().__init__(every)
        self.sample_z, self.labels = sample_z, labels
        self.directory, self.rows, self.cols = directory, rows, cols
        self.keep, self.keep_every, self.min_free_mb = keep, keep_every, min_free_mb
        self.disk_full = False

    def save(self, step: int) -> str | None:
        if not self._disk_has_room() or not weights_finite(self.model):  # no grids of a diverged model
            return None
        images = self.model.generate(self.sample_z, self.labels, training=False)
        path = save_grid(images.numpy(), self.rows, self.cols, os.path.join(self.directory, training_grid_name(step)))
        self.last_saved = step
        if self.keep:
            self._prune()
        return path

    def _disk_has_room(self) -> bool:
        if self.disk_full or not self.min_free_mb:
            return not self.disk_full
        free_mb = files.free_mb(self.directory)
        if free_mb < self.min_free_mb:
            self.disk_full = True
            log.warning("only %.0f MB free on the disk of %s (under %s MB): no more sample grids; checkpoints go on",
                        free_mb, self.directory, self.min_free_mb)
        return not self.disk_full

    def _prune(self):
        grids = list_training_grids(self.directory)
        newest = set(list(grids)[-self.keep:])
        for step, path in grids.items():
            if step not in newest and (step // self.every) % self.keep_every:
                os.remove(path)


class Checkpoints(EveryNSteps):
    """Save through a CheckpointManager every `every` steps and at the end of training (numbered by step).

    Weights holding NaN/Inf are never saved: the save is refused and, with a `guard`, the run is stopped as for a
    NaN loss (the losses of the last update can be finite while the weights it wrote are not). With `min_free_mb`
    > 0, warns (once, until there is room again) before a save that would not fit on the disk, judged by the size
    of the last checkpoint.
    """

    def __init__(self, manager: tf.train.CheckpointManager, every: int, min_free_mb: float = 0,
                 guard: "NonFiniteGuard | None" = None, before_save=None):
        super().__init__(every)
        self.manager = manager
        self.before_save = before_save  # before_save(step): raises to stop the run without saving (its folder gone)
        self.min_free_mb = min_free_mb
        self.guard = guard
        self.warned = False

    def save(self, step: int) -> str | None:
        if not weights_finite(self.model):  # never write a NaN checkpoint over a good one
            log.error("not saving a checkpoint at step %d: the model holds NaN/Inf values", step)
            if self.guard is not None:
                self.guard.trip(step, ["weights"])
                self.model.stop_training = True
            return None
        if self.before_save is not None:
            self.before_save(step)
        if self.min_free_mb:
            self._warn_if_it_may_not_fit(step)
        path = self.manager.save(checkpoint_number=step)
        self.last_saved = step
        log.info("saved checkpoint %s", path)
        return path

    def _warn_if_it_may_not_fit(self, step: int) -> None:
        last = self.manager.latest_checkpoint
        needed_mb = checkpoints.checkpoint_size(last) / 2**20
        free = files.free_mb(self.manager.directory)
        fits = free >= needed_mb
        if not fits and not self.warned:
            log.warning("the checkpoint at step %d may not fit: %.0f MB free in %s, and the last one (%s) took "
                        "%.1f MB; free some space, or the run stops at this save (and resumes from %s)", step, free,
                        os.path.abspath(self.manager.directory), os.path.basename(last), needed_mb,
                        os.path.basename(last))
        self.warned = not fits


class LossCSV(keras.callbacks.Callback):
    """One row per step: step, epoch, every loss/metric value of that step (the model's `metric_names`: the losses,
    then any penalty and ADA's p), the data it trained on (`source`, set by the trainer before each fit) and the
    step's wall time in `seconds` (since the previous step of this process, so their sum is the run's training
    time: grids, checkpoints and evaluations included, process start-up and data loading not), flushed as it is
    written.

    On resume, rows past the restored step (written after the last checkpoint, then lost) and a row torn by a
    kill are dropped first, through a temporary file, so the log never holds a step twice and is never lost.
    """

    REQUIRED = ("step", "epoch") + METRIC_NAMES

    def __init__(self, path: str, resume_step: int = 0, source: str = "originals"):
        super().__init__()
        self.path, self.resume_step, self.source = path, resume_step, source
        self.handle = self.writer = None
        self.epoch = 0

    def _kept_rows(self) -> list[dict]:
        if not os.path.isfile(self.path):
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        return [row for row in rows if None not in row.values() and all(row.get(c) for c in self.REQUIRED)
                and row["step"].isdigit() and int(row["step"]) <= self.resume_step]

    def on_train_begin(self, logs=None):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self.names = tuple(self.model.metric_names)
        self.columns = ("step", "epoch") + self.names + ("data", "seconds")
        if self.resume_step is not None:
            kept = self._kept_rows()
            with files.replacing(self.path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)
            self.resume_step = None  # a later fit() of the same run appends, unless a rollback sets it again
        self.handle = open(self.path, "a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, fieldnames=self.columns, extrasaction="ignore")
        self.last_time = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        row = {name: float(logs[name]) for name in self.names if name in logs}
        now = time.monotonic()
        self.writer.writerow({"step": self.model.steps_done, "epoch": self.epoch, **row, "data": self.source,
                              "seconds": f"{now - self.last_time:.4f}"})
        self.last_time = now
        self.handle.flush()  # a checkpoint may follow: its rows must be on disk first

    def on_train_end(self, logs=None):
        self.handle.close()


class RunProgress(keras.callbacks.Callback):
    """One progress bar (Keras' Progbar) over the whole run: steps done of the total, elapsed time, ETA, and the
    last step's d_loss and g_loss. For runs whose epochs are a few steps long, where a bar per epoch says nothing.

    With `lines` (stdout is a log file, not a terminal: Keras would still redraw its bar with carriage returns and
    colour codes) it prints a plain line every `LINES`-th of the run and at its last step instead.

    A resumed run's bar counts the steps left from where it resumed (the log says the step it resumed at), so the
    ETA is measured on this command's steps only. Fit may be called several times (data swap, rollback): one bar.
    """

    SHOWN = ("d_loss", "g_loss")
    LINES = 20  # lines per run when stdout is not a terminal

    def __init__(self, total_steps: int, lines: bool = False, out=None):
        super().__init__()
        self.total_steps = total_steps
        self.lines, self.out = lines, out
        self.start = self.bar = self.started = None
        self.shown = 0

    def on_train_batch_end(self, batch, logs=None):
        values = [(name, float(logs[name])) for name in self.SHOWN if logs and name in logs]
        if self.lines:
            self._line(self.model.steps_done, values)
            return
        if self.bar is None:
            self.start = self.model.steps_done - 1
            self.bar = keras.utils.Progbar(max(1, self.total_steps - self.start), stateful_metrics=self.SHOWN)
        self.shown = max(0, self.model.steps_done - self.start)
        self.bar.update(self.shown, values)

    def _line(self, step: int, values) -> None:
        if self.start is None:
            self.start, self.started = step - 1, time.monotonic()
        every = max(1, -(-(self.total_steps - self.start) // self.LINES))
        if (step - self.start) % every and step < self.total_steps:
            return
        elapsed = time.monotonic() - self.started
        done, left = step - self.start, max(0, self.total_steps - step)
        eta = elapsed / done * left if done else 0.0
        losses = ", ".join(f"{name} {value:.4f}" for name, value in values)
        print(f"step {step}/{self.total_steps} ({100 * step // max(1, self.total_steps)}%), "
              f"{_duration(elapsed)} elapsed, ETA {_duration(eta)}" + (f", {losses}" if losses else ""),
              file=self.out or sys.stdout, flush=True)

    def close(self) -> None:
        """End the bar's line if the run stopped before the bar was full (a signal, a NaN)."""
        if self.bar is not None and self.shown < self.bar.target:
            print(flush=True)


def _duration(seconds: float) -> str:
    """'42s', '3m05s', '2h07m'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class LossTensorBoard(keras.callbacks.Callback):
    """Per-step scalars (`train/<metric>`) for TensorBoard, under the global step."""

    def __init__(self, log_dir: str):
        super().__init__()
        self.log_dir = log_dir
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_train_batch_end(self, batch, logs=None):
        step = self.model.steps_done
        with self.writer.as_default(step=step):
            for name in self.model.metric_names:
                if name in logs:
                    tf.summary.scalar(f"train/{name}", float(logs[name]))

    def on_epoch_end(self, epoch, logs=None):
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


class NonFiniteGuard(keras.callbacks.Callback):
    """Stop fit() at the first step whose losses are NaN/Inf; `tripped` holds (step, names) for the caller.

    The caller decides what follows (stop the run, or roll back to the last checkpoint); Checkpoints refuses to
    save non-finite weights either way.
    """

    def __init__(self):
        super().__init__()
        self.tripped = None

    def on_train_batch_end(self, batch, logs=None):
        bad = [name for name, value in (logs or {}).items() if not math.isfinite(float(value))]
        if bad:
            self.trip(self.model.steps_done, bad)
            log.error("non-finite %s at step %d", ", ".join(bad), self.tripped[0])
            self.model.stop_training = True

    def trip(self, step: int, names: list) -> None:
        """Record that `names` (losses, or "weights") went NaN/Inf at `step`; the first trip of a fit() counts."""
        if self.tripped is None:
            self.tripped = (step, names)


class GracefulStop(keras.callbacks.Callback):
    """Ctrl-C / SIGTERM: finish the current step, then stop fit(); the end-of-training callbacks then write a
    checkpoint and a grid. A second signal stops at once (KeyboardInterrupt). `signal_name` says what stopped it."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    # The same signal again within this many seconds is one request delivered twice (a job scheduler signalling
    # every process of a job while a sweep passes its own copy on), not a second request.
    REPEAT_SECONDS = 1.0

    def __init__(self, strategy: tf.distribute.Strategy | None = None):
        """`strategy`: a multiworker strategy, whose workers must all stop after the same step: each step they
        agree whether any of them was signalled (else the others would wait in the next step forever)."""
        super().__init__()
        self.signal_name = None
        self.first_signal, self.signalled_at = None, 0.0
        self.previous = {}
        self.strategy = strategy

    @tf.function  # traced once: an eager collective would be re-planned (and logged) every step
    def _signalled_workers(self, signalled):
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(lambda: signalled), axis=None)

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            self.previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}

    def _handle(self, number, frame):
        if self.signal_name is not None:
            if number == self.first_signal and time.monotonic() - self.signalled_at < self.REPEAT_SECONDS:
                return
            raise KeyboardInterrupt
        self.first_signal, self.signalled_at = number, time.monotonic()
        self.signal_name = signal.Signals(number).name
        log.warning("%s: stopping after this step, with a checkpoint (send it again to stop at once)",
                    self.signal_name)

    def on_train_batch_end(self, batch, logs=None):
        if self.strategy is not None:
            anywhere = self._signalled_workers(tf.constant(int(self.signal_name is not None)))
            if int(anywhere) and self.signal_name is None:
                self.signal_name = "a signal to another worker"
                log.warning("another worker was stopped: stopping after this step, with a checkpoint")
        if self.signal_name is not None:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}
