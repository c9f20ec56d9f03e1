"""train(config): load the data, build or resume the run, and fit the DCGAN with its monitoring callbacks.

The stages, each a function below: read the data (`_load_data`), build the model and restore the newest checkpoint
(`_build_or_restore`), save the config and preprocess (`_prepare_data`), make the callbacks (`_make_monitors`), fit
epoch by epoch with rollbacks on a NaN (`_fit_with_rollbacks`), and finish (`_finish`: plots, the result, the log
line). Nothing in the run folder is written before the checkpoint is restored, so a run that cannot resume stops
with its history as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
from dataclasses import dataclass

import tensorflow as tf

from dcgan_tf import files
from dcgan_tf.config import Config, effective_ema_decay
from dcgan_tf.core import distribution, losses
from dcgan_tf.core.build import build_dcgan, warn_if_bf16_is_emulated
from dcgan_tf.core.model import DCGAN
from dcgan_tf.data import loading
from dcgan_tf.data.datasets import load_training_data
from dcgan_tf.latent import grid_inputs, sample_z
from dcgan_tf.metrics import evaluate
from dcgan_tf.preprocess import preprocessing
from dcgan_tf.runs import checkpoints, folders
from dcgan_tf.runs import lock as run_lock
from dcgan_tf.runs.resolve import resolve
from dcgan_tf.training import callbacks as cb

log = logging.getLogger(__name__)

MAX_ROLLBACKS = 3
# --verbose 1 shows one progress bar for the whole run when an epoch has fewer steps than this (Keras: one per epoch)
RUN_BAR_EPOCH_STEPS = 100


@dataclass
class TrainResult:
    """What a finished (or resumed-and-finished) run reached."""

    config: Config
    step: int
    epoch: int
    num_images: int
    skipped: list
    history: dict
    stopped_by: str | None = None  # a signal name (SIGINT, SIGTERM), "nan", or None when the run finished
    nan_step: int | None = None  # the step whose losses (or, after its update, weights) went NaN/Inf
    nan_values: list = dataclasses.field(default_factory=list)  # which: loss names, or ["weights"]
    last_checkpoint: str | None = None
    rollbacks: int = 0
    duplicates: list = dataclasses.field(default_factory=list)  # (dropped, kept, distance) under config.dedupe
    sources: list = dataclasses.field(default_factory=list)  # (first epoch, data source) of each stretch trained


@dataclass
class _Session:
    """One process's share of a run: where it writes, and what it restored or built."""

    config: Config
    strategy: tf.distribute.Strategy
    scratch: str | None  # a non-chief worker's folder for the writes the chief alone keeps; None on the chief
    saved: Config | None = None  # the run's config.json as it was before this process started
    model: DCGAN | None = None
    checkpoint: tf.train.Checkpoint | None = None
    manager: tf.train.CheckpointManager | None = None
    grid_z: tf.Variable | None = None  # the training grids' fixed z, saved with the run
    evaluations: evaluate.EvaluateEvery | None = None  # --metrics while training (the chief's)
    learning_rates: tf.Variable | None = None  # [G, D] rates the command asked for, saved with each checkpoint
    lock: run_lock.RunLock | None = None  # the chief's hold on the run folder, checked before each checkpoint

    @property
    def chief(self) -> bool:
        return self.scratch is None

    @property
    def log_dir(self) -> str:
        """Where this process writes its loss CSV: the run folder on the chief, the scratch folder elsewhere."""
        return self.config.checkpoint_path if self.chief else self.scratch


@dataclass
class _Monitors:
    """The callbacks of every fit(), and the ones the loop asks how fit() ended."""

    callbacks: list
    stopper: cb.GracefulStop
    guard: cb.NonFiniteGuard
    csv_log: cb.LossCSV
    grids: cb.SampleGrids
    progress: cb.RunProgress | None  # one bar for the whole run, or None
    fit_verbose: int  # fit()'s own display: --verbose, or 0 under the run's bar


def train(config: Config) -> TrainResult:
    """Train (or resume) the run that `config` names until `config.epoch` epochs are done.

    Under `--strategy multiworker` every worker calls this; the chief writes the run's outputs, the others only
    their own checkpoints (into a temporary folder that is removed at the end), as tf.distribute requires.
    The writing process holds the run's lock throughout (RunBusyError at once if another process holds it), and a
    full disk stops the run with a DiskFullError saying where it can resume.
    """
    config = resolve(config)
    evaluate.check_before_work(config, config.metric_names)  # the Inception weights, before any other work
    strategy = distribution.make_strategy(config.strategy)  # first: multiworker must precede other TensorFlow work
    distribution.check_batch_split(config.batch_size, strategy)
    if distribution.is_chief(strategy):
        with run_lock.holding(config.checkpoint_path) as lock:  # one writer per run, before any work
            checkpoints.remove_unfinished_saves(config.checkpoint_path)
            return _train(_Session(config, strategy, scratch=None, lock=lock))
    with tempfile.TemporaryDirectory(prefix="dcgan_tf_worker_") as scratch:
        log.info("%s: the chief writes the run's outputs; this worker checkpoints into %s",
                 distribution.worker_name(strategy), scratch)
        return _train(_Session(config, strategy, scratch))


def _train(session: _Session) -> TrainResult:
    """train() on this process."""
    try:
        images = _load_data(session)
        _build_or_restore(session)
        prepared = _prepare_data(session, images)
        monitors = _make_monitors(session, prepared)
        result = TrainResult(session.config, 0, 0, len(prepared.originals), images.skipped, {},
                             duplicates=prepared.duplicates)
        _fit_with_rollbacks(session, prepared, monitors, result)
        return _finish(session, monitors, result, len(images.skipped))
    except Exception as error:
        if not files.is_disk_full(error):
            raise
        raise _disk_full(session, error) from None


def _disk_full(session: _Session, error: Exception) -> files.DiskFullError:
    """The one message for a write that found the disk full: what, where, how much is free, where to resume."""
    config = session.config
    if isinstance(error, OSError) and error.filename:
        what = f"could not write {error.filename} ({error.strerror})"
    else:
        what = f"could not write ({str(error).strip().splitlines()[-1][:300]})"
    free = "; ".join(f"{mb:.0f} MB free in {os.path.abspath(folder)}"
                     for folder, mb in files.free_space([config.checkpoint_path, config.sample_path]))
    step = f" at step {session.model.steps_done}" if session.model is not None else ""
    last = tf.train.latest_checkpoint(config.checkpoint_path)
    resume = (f"its last complete checkpoint is {last}. Free some space (or lower --max_to_keep, or set "
              f"--keep_samples) and run the same command: it resumes from that checkpoint" if last else
              "no checkpoint was written yet. Free some space and run the same command: it starts the run again")
    return files.DiskFullError(f"the disk is full: {what}; {free}. The run stopped{step}; {resume}")


# ------------------------------------------------------------------------------------------ stage 1: the data
def _load_data(session: _Session):
    """Check the run may resume and load its images, writing nothing. Sets session.config's c_dim from the data."""
    config = session.config
    saved = folders.load_saved_config(config)
    if saved is not None:
        folders.check_resumable(config, saved)  # fails before the data is read
    images = load_training_data(config)
    config = session.config = dataclasses.replace(config, c_dim=images.c_dim).validate()
    if saved is not None:
        folders.check_resumable(config, saved)  # now with the data's channel count known
    session.saved = saved
    return images


# ------------------------------------------------------------------------------------------ stage 2: the model
def _build_or_restore(session: _Session) -> None:
    """Build the model and its checkpoint, and restore the newest checkpoint of the run if there is one.

    A run with checkpoints none of which restores stops here with a CheckpointError, before anything is written.
    """
    config = session.config
    warn_if_bf16_is_emulated(config)
    model = session.model = build_dcgan(config, session.strategy)
    # The training grids' fixed z is saved with the run; a resumed run with another grid size uses its first rows.
    bank_shape = checkpoints.saved_shape(config.checkpoint_path, "sample_z")
    session.grid_z = tf.Variable(sample_z(bank_shape or (config.grid_rows * config.grid_cols, config.z_dim),
                                          config.z_dist, config.seed), trainable=False, name="sample_z")
    session.learning_rates = tf.Variable(asked_learning_rates(config), dtype=tf.float64, trainable=False,
                                         name="learning_rates")
    session.checkpoint = checkpoints.make_checkpoint(model, session.grid_z, session.learning_rates)
    session.manager = checkpoints.make_manager(session.checkpoint, config.checkpoint_path, config.max_to_keep)
    failures = []
    restored = checkpoints.restore_latest(session.manager, failures=failures)  # every worker: the chief's
    if restored:
        log.info("resuming run %s at step %d, epoch %d", config.name, model.steps_done, model.epochs_done)
        _apply_asked_learning_rates(session, restored)
    elif session.manager.checkpoints:  # never start over on top of a history that failed to load
        raise checkpoints.unrestorable(config.checkpoint_path, failures)
    else:
        log.info("starting run %s", config.name)
    if not session.chief:  # saving may read variables collectively, so every worker saves; only the chief's are kept
        session.manager = checkpoints.make_manager(session.checkpoint, session.scratch, config.max_to_keep)


def asked_learning_rates(config: Config) -> tuple[float, float]:
    """(G, D) Adam learning rates the settings ask for."""
    return config.learning_rate, config.d_learning_rate or config.learning_rate


def _apply_asked_learning_rates(session: _Session, restored: str) -> None:
    """An explicit --learning_rate change on resume replaces the restored rate of that network; otherwise the
    restored rate stays in force (halved by rollbacks, perhaps).

    What was asked before comes from the checkpoint itself, never from config.json, which may have been written by a
    process that died before its first checkpoint. (Checkpoints from before the rates were saved in them fall back
    to config.json.)
    """
    config, model = session.config, session.model
    asked = asked_learning_rates(config)
    if "learning_rates" in checkpoints.saved_entries(restored):
        before = tuple(float(rate) for rate in session.learning_rates.numpy())
    else:
        before = asked_learning_rates(session.saved) if session.saved is not None else asked
    for network, optimizer, old, new in zip(("G", "D"), (model.g_optimizer, model.d_optimizer), before, asked):
        if old != new:
            optimizer.learning_rate.assign(new)
            log.info("%s learning rate changed from %g to %g", network, old, new)
    session.learning_rates.assign(asked)


# ------------------------------------------------------------------------------------------ stage 3: config, data
def _prepare_data(session: _Session, images):
    """Save the run's config and preprocess its images; a Preprocessed."""
    config, strategy = session.config, session.strategy
    distribution.barrier(strategy)  # every worker has read the saved config before the chief replaces it
    if session.chief:
        folders.save_config(config)
    prepared = preprocessing.preprocess(config, images, picture_dirs=[config.sample_path] if session.chief else [],
                                        report_dir=config.checkpoint_path if session.chief else None,
                                        train_missing=not distribution.is_multiworker(strategy))
    if config.swap_epoch is not None and config.swap_epoch >= config.epoch:
        log.warning("--swap_epoch %d is not before --epoch %d: this run trains on the reconstructions only",
                    config.swap_epoch, config.epoch)
    return prepared


# ------------------------------------------------------------------------------------------ stage 4: the callbacks
def _make_monitors(session: _Session, prepared) -> _Monitors:
    config, model, chief = session.config, session.model, session.chief
    grid_z, grid_labels = grid_inputs(config, config.seed, session.grid_z)
    stopper = cb.GracefulStop(session.strategy if distribution.is_multiworker(session.strategy) else None)
    guard = cb.NonFiniteGuard()
    csv_log = cb.LossCSV(os.path.join(session.log_dir, folders.LOSS_CSV), resume_step=model.steps_done)
    grids = cb.SampleGrids(grid_z, config.sample_path, config.grid_rows, config.grid_cols, config.sample_freq,
                           grid_labels, keep=config.keep_samples, keep_every=config.keep_every,
                           min_free_mb=config.min_free_mb)
    callbacks = [  # order matters: the guard and counter run before anything saves
        cb.EpochCounter(),
        guard,
        csv_log,
        *([cb.LossTensorBoard(os.path.join(config.checkpoint_path, folders.TENSORBOARD_DIR)), grids] if chief else []),
        cb.Checkpoints(session.manager, config.ckpt_freq, min_free_mb=config.min_free_mb, guard=guard,
                       before_save=_lock_check(session)),
        *([_evaluations(session, prepared)] if chief and config.metric_names else []),
        stopper,
    ]
    # --verbose 1: Keras' bar per epoch, or one bar for the run when epochs are too short for it to say anything;
    # plain lines when stdout is a log file (Keras 3 redraws its bar there too: every POSIX process looks interactive)
    per_epoch = loading.steps_per_epoch(len(prepared.originals), config.batch_size)
    terminal = files.stdout_is_terminal()
    progress = cb.RunProgress(config.epoch * per_epoch, lines=not terminal) \
        if chief and config.verbose == 1 and (per_epoch < RUN_BAR_EPOCH_STEPS or not terminal) else None
    if progress:
        callbacks.insert(-1, progress)
    return _Monitors(callbacks, stopper, guard, csv_log, grids, progress, 0 if progress else config.verbose)


def _lock_check(session: _Session):
    """before_save for the checkpoints: stop if the run folder this process locked was removed or replaced."""
    if session.lock is None:
        return None
    return lambda step: session.lock.check_still_held(f"the checkpoint of step {step}")


def _evaluations(session: _Session, prepared) -> evaluate.EvaluateEvery:
    """--metrics: evaluations every --metrics_freq steps against the original images (after dedupe), and the best
    checkpoint under --keep_best; metrics.jsonl continues from the restored step."""
    config, step = session.config, session.model.steps_done
    evaluator = evaluate.Evaluator(config, prepared.originals)
    best = evaluate.BestCheckpoint(session.checkpoint, config.checkpoint_path, config.keep_best) \
        if config.keep_best else None
    session.evaluations = evaluate.EvaluateEvery(evaluator, config.metrics_freq, config.checkpoint_path,
                                                 config.sample_path, resume_step=step, best=best)
    return session.evaluations


# ------------------------------------------------------------------------------------------ stage 5: fit
def _fit_with_rollbacks(session: _Session, prepared, monitors: _Monitors, result: TrainResult) -> None:
    """Fit until config.epoch epochs are done, a signal stops the run, or a NaN does (after any rollbacks)."""
    config, model = session.config, session.model
    per_epoch = loading.steps_per_epoch(len(prepared.originals), config.batch_size)
    stopper, guard = monitors.stopper, monitors.guard
    while True:
        epoch, done_in_epoch = _position(model, per_epoch)
        model.epoch.assign(epoch)
        if epoch >= config.epoch:
            break
        # An interrupted epoch is finished first; then whole epochs, split where the data source swaps.
        while epoch < config.epoch and not (stopper.signal_name or guard.tripped):
            source_name, source = prepared.source(epoch, config.swap_epoch)
            end = epoch + 1 if done_in_epoch else _segment_end(epoch, config)
            _log_source(result, epoch, source_name, config)
            monitors.csv_log.source = source_name  # a non-chief worker's CSV stays in its scratch folder
            _fit(model, source, monitors, config, epoch, end, per_epoch - done_in_epoch, result.history)
            epoch, done_in_epoch = end, 0
        if not guard.tripped:
            break
        result.nan_step, result.nan_values = guard.tripped
        guard.tripped = None
        if not _roll_back(session, result):
            result.stopped_by = "nan"
            break
        monitors.csv_log.resume_step = model.steps_done
        if session.evaluations is not None:
            session.evaluations.resume_step = model.steps_done
    if result.stopped_by is None and stopper.signal_name:
        result.stopped_by = stopper.signal_name


def _roll_back(session: _Session, result: TrainResult) -> bool:
    """Under --nan_policy rollback (at most MAX_ROLLBACKS times): back to the last good checkpoint with the learning
    rates in force halved. False when the run must stop instead."""
    config, model = session.config, session.model
    if config.nan_policy != "rollback" or result.rollbacks >= MAX_ROLLBACKS:
        return False
    manager = session.manager if session.chief else checkpoints.make_manager(  # all roll back to the chief's
        session.checkpoint, config.checkpoint_path, config.max_to_keep)
    # Halve the rates in force now, not the checkpoint's: rolled back twice to one checkpoint, the second run of
    # those steps must not replay the first at the same rate (rollback k trains at the base rate x 0.5^k).
    in_force = [float(optimizer.learning_rate) for optimizer in (model.g_optimizer, model.d_optimizer)]
    if not checkpoints.restore_latest(manager):
        return False
    result.rollbacks += 1
    for optimizer, rate in zip((model.g_optimizer, model.d_optimizer), in_force):
        optimizer.learning_rate.assign(rate * 0.5)
    session.learning_rates.assign(asked_learning_rates(config))  # the command's, not the checkpoint's
    log.warning("rolled back to step %d with learning rates halved to %.3g (rollback %d of %d)",
                model.steps_done, float(model.g_optimizer.learning_rate), result.rollbacks, MAX_ROLLBACKS)
    return True


def _position(model: DCGAN, per_epoch: int) -> tuple[int, int]:
    """(epoch to run next, steps of it already done) from the restored counters.

    An epoch found longer than the data allows now (the data set shrank) counts as finished.
    """
    epoch, done = model.epochs_done, model.steps_into_epoch
    if done >= per_epoch:
        model.epoch_start_step.assign(model.step)
        return epoch + 1, 0
    return epoch, max(0, done)


def _segment_end(epoch: int, config: Config) -> int:
    """The epoch where a stretch on one data source ends: the swap, or the end of training."""
    if config.preprocess == "autoencoder" and config.swap_epoch is not None and epoch < config.swap_epoch:
        return min(config.swap_epoch, config.epoch)
    return config.epoch


def _log_source(result: TrainResult, epoch: int, source: str, config: Config) -> None:
    """Log which images train from `epoch` on, saying so loudly at the swap; remember it in the result."""
    if result.sources and result.sources[-1][1] == source:
        return
    if result.sources and source == preprocessing.RECONSTRUCTIONS:
        log.info("epoch %d: back on the reconstructions after a rollback to before --swap_epoch %d", epoch,
                 config.swap_epoch)
    elif result.sources:
        log.info("epoch %d: swapped the training data from %s to %s (--swap_epoch %d)", epoch,
                 result.sources[-1][1], source, config.swap_epoch)
    elif config.preprocess == "autoencoder":
        swap = "" if config.swap_epoch is None else (
            f", swapped to them at epoch {config.swap_epoch}" if source == preprocessing.ORIGINALS
            else f" until epoch {config.swap_epoch}")
        log.info("epoch %d: training on the autoencoder's %s%s", epoch, source if source != "originals"
                 else "input images (originals)", swap)
    result.sources.append((epoch, source))


def _fit(model, images, monitors: _Monitors, config, initial_epoch, epochs, steps, history):
    """fit() over a data stream that starts right after the model's current step (the exact data order)."""
    done_in_epoch = model.steps_into_epoch
    dataset = distribution.shard_by_data(loading.make_dataset(
        images, config.batch_size, config.seed, start_epoch=initial_epoch, start_step=max(0, done_in_epoch),
        y_dim=config.y_dim))
    try:
        result = model.fit(dataset, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                           callbacks=monitors.callbacks, verbose=monitors.fit_verbose, shuffle=False)
    except tf.errors.OpError as error:  # a streamed file that broke: name it, not TensorFlow's stack
        found = re.search(r"(\S.*could no longer be read while streaming.*?resume)", str(error))
        if not found:
            raise
        last = tf.train.latest_checkpoint(config.checkpoint_path) or "none yet"
        raise loading.DataError(f"{found.group(1)} from the last checkpoint ({last})") from None
    for name, values in result.history.items():
        history.setdefault(name, []).extend(values)


# ------------------------------------------------------------------------------------------ stage 6: finish
def _finish(session: _Session, monitors: _Monitors, result: TrainResult, skipped: int) -> TrainResult:
    """Plots, the counters reached, the last checkpoint, and one log line on what the run used and where it is."""
    config, model = session.config, session.model
    if monitors.progress:
        monitors.progress.close()
    if model.epochs_done >= config.epoch and result.stopped_by is None and not result.history:
        log.info("run %s already finished %d epochs; raise --epoch to train further", config.name, config.epoch)
    if session.chief and not monitors.grids.disk_full:  # low disk: no more pictures of any kind
        _write_plots(config)
    result.step, result.epoch = model.steps_done, model.epochs_done
    if session.chief and result.stopped_by is None and model.epochs_done >= config.epoch:
        folders.mark_finished(config.checkpoint_path, model.steps_done, model.epochs_done)  # a sweep skips it
    # a non-chief worker's own checkpoints go with its scratch folder; the chief's are the run's
    result.last_checkpoint = (session.manager.latest_checkpoint if session.chief
                              else tf.train.latest_checkpoint(config.checkpoint_path))
    if model.ema_decay is not None and model.steps_done:
        log.info("EMA generator at step %d: decay %.4f (--ema %g after its warm-up, min(decay, (1 + step) / "
                 "(10 + step))): its average spans about the last %d steps", model.steps_done,
                 effective_ema_decay(model.ema_decay, model.steps_done), model.ema_decay,
                 round(1 / (1 - effective_ema_decay(model.ema_decay, model.steps_done))))
    log.info("%d images used, %d files skipped; run folders: %s (%s), %s (%s)", result.num_images, skipped,
             os.path.abspath(config.checkpoint_path), _size(config.checkpoint_path),
             os.path.abspath(config.sample_path), _size(config.sample_path))
    return result


def _write_plots(config: Config) -> None:
    """plot_losses.png and plot_loss_ratio.png into the sample folder; a failure only warns."""
    if not os.path.isfile(os.path.join(config.checkpoint_path, folders.LOSS_CSV)):
        return
    try:
        from dcgan_tf.analysis import plots  # here: matplotlib loads only when a run ends

        log.info("wrote %s", ", ".join(plots.plot_run(config.checkpoint_path, config.sample_path,
                                                              loss=losses.named(config.loss))))
    except Exception as error:  # noqa: BLE001 - a plot must never cost the run its result
        log.warning("no loss plots for %s: %s", config.name, error)


def _size(folder: str) -> str:
    """The total size of the files under `folder`, for humans."""
    total = folders.folder_bytes(folder)
    for unit in ("B", "KB", "MB", "GB"):
        if total < 1024 or unit == "GB":
            return f"{total:.0f} {unit}" if unit == "B" else f"{total:.1f} {unit}"
        total /= 1024
    return ""
