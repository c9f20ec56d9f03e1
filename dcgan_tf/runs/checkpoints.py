"""Checkpoints: G, D, both optimizers, the step and epoch counters (which key the z draws), the fixed sample z, and
the state of the small-data options (the EMA generator, ADA's augmentation probability)."""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import weakref

import tensorflow as tf

from dcgan_tf.core.model import DCGAN

log = logging.getLogger(__name__)

UNFINISHED_SAVE = re.compile(r"^ckpt-\d+_temp")  # TensorFlow writes a checkpoint's shards here, then moves them


# Entries a checkpoint may lack and still restore: older checkpoints have no asked learning rates, and a run that
# switches --mixed_precision on resume finds no loss-scale state (fp32 -> fp16) or leaves it unused (fp16 -> fp32).
OPTIONAL_ENTRIES = ("learning_rates", "g_loss_scale", "d_loss_scale")


class CheckpointError(RuntimeError):
    """A run has checkpoints and none of them can be restored: the run must stop, and nothing may be overwritten."""


def make_checkpoint(model: DCGAN, sample_z: tf.Variable | None = None,
                    learning_rates: tf.Variable | None = None) -> tf.train.Checkpoint:
    """Everything a resumed run needs to continue exactly where it stopped.

    `sample_z` (the fixed z of the training grids) is left out when only the model is wanted. `learning_rates`
    holds the rates the command asked for ([G, D]) as of this checkpoint, so a resumed run tells an explicit change
    of --learning_rate from the halved rates of a rollback. An fp16 run's dynamic loss scale (scale and the count of
    good steps since it last grew) is saved too, so a resume or rollback does not restart it at 2^15.
    """
    tracked = dict(
        generator=model.generator,
        discriminator=model.discriminator,
        # the Adam inside a loss-scale wrapper (fp16), so runs switch --mixed_precision on resume
        g_optimizer=getattr(model.g_optimizer, "inner_optimizer", model.g_optimizer),
        d_optimizer=getattr(model.d_optimizer, "inner_optimizer", model.d_optimizer),
        step=model.step,
        epoch=model.epoch,
        epoch_start_step=model.epoch_start_step,
    )
    if model.ema_decay is not None:  # --ema: the moving average is what samples
        tracked["ema_generator"] = list(model.ema_weights)
    if model.ada_target is not None:  # --ada_target: p and what it gathered since it last moved
        ada = model.augmentation
        tracked["ada"] = tf.train.Checkpoint(p=ada.probability, signs=ada.signs, updates=ada.updates)
    if sample_z is not None:
        tracked["sample_z"] = sample_z
    if learning_rates is not None:
        tracked["learning_rates"] = learning_rates
    for name, optimizer in (("g_loss_scale", model.g_optimizer), ("d_loss_scale", model.d_optimizer)):
        if hasattr(optimizer, "inner_optimizer"):
            tracked[name] = tf.train.Checkpoint(scale=optimizer.dynamic_scale, good_steps=optimizer.step_counter)
    checkpoint = tf.train.Checkpoint(**tracked)
    _ENTRIES[checkpoint] = tracked
    return checkpoint


_ENTRIES = weakref.WeakKeyDictionary()  # checkpoint -> its top-level entries, to restore a subset of them


def saved_entries(path: str) -> set[str]:
    """The top-level entries (generator, sample_z, learning_rates, ...) a checkpoint holds; reads its .index."""
    return {key.split("/")[0] for key in tf.train.load_checkpoint(path).get_variable_to_shape_map()}


def _restoring(checkpoint: tf.train.Checkpoint, path: str) -> tf.train.Checkpoint:
    """`checkpoint`, less the optional entries the checkpoint at `path` does not hold (those keep their values)."""
    tracked = _ENTRIES.get(checkpoint)
    if tracked is None:
        return checkpoint
    missing = set(OPTIONAL_ENTRIES) & set(tracked) - saved_entries(path)
    if not missing:
        return checkpoint
    log.info("%s holds no %s; %s", os.path.basename(path), ", ".join(sorted(missing)),
             "those start from this run's settings")
    return tf.train.Checkpoint(**{name: value for name, value in tracked.items() if name not in missing})


def saved_shape(directory: str, name: str) -> tuple | None:
    """The shape of the top-level checkpoint value `name` in the newest readable checkpoint under directory, or None.

    A checkpoint whose files cannot be read (say, a truncated `.index`) is skipped for the one before, as
    restore_latest does, so a damaged newest checkpoint never stops the run before its fallback.
    """
    state = tf.train.get_checkpoint_state(directory)  # its paths already joined to `directory`
    for path in reversed(list(state.all_model_checkpoint_paths) if state else []):
        try:
            shapes = tf.train.load_checkpoint(path).get_variable_to_shape_map()
        except (tf.errors.OpError, RuntimeError, ValueError, OSError) as error:
            log.warning("cannot read %s (%s: %s); trying an older checkpoint", path, type(error).__name__,
                        str(error).splitlines()[0][:200] if str(error) else "")
            continue
        shape = shapes.get(f"{name}/.ATTRIBUTES/VARIABLE_VALUE")
        return tuple(shape) if shape is not None else None
    return None


def make_manager(checkpoint: tf.train.Checkpoint, directory: str, max_to_keep: int) -> tf.train.CheckpointManager:
    """Numbered by step (`ckpt-<step>`); the newest `max_to_keep` are kept."""
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep, checkpoint_name="ckpt")


def restore_latest(manager: tf.train.CheckpointManager, generator_only: bool = False,
                   failures: list | None = None) -> str | None:
    """Restore the newest readable checkpoint into the tracked objects; return its path, or None when there is none.

    TensorFlow writes a checkpoint's files first and then points the `checkpoint` state file at them, so a write
    that was killed never becomes "latest". A checkpoint whose files were damaged later is skipped (logged) for the
    next older one; `failures` (a list) receives (path, reason) for each one skipped. Training checks that every
    saved value found its variable; `generator_only` (test mode, visualisation) lets the rest of the checkpoint go
    unused.
    """
    for path in reversed(manager.checkpoints):
        try:
            status = _restoring(manager.checkpoint, path).restore(path)
            if not generator_only:
                status.assert_existing_objects_matched()
        except (tf.errors.OpError, RuntimeError, ValueError, AssertionError, IndexError, KeyError, OSError) as error:
            reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200] if str(error).strip() else ''}"
            log.error("cannot restore %s (%s); trying an older checkpoint", path, reason)
            if failures is not None:
                failures.append((path, reason))
            continue
        status.expect_partial()  # the checkpoint's own save_counter, and in generator_only mode the rest
        log.info("restored %s", path)
        return path
    return None


def unrestorable(directory: str, failures: list) -> CheckpointError:
    """The error for a run none of whose checkpoints restores: each checkpoint and why, and that nothing changed."""
    listed = "; ".join(f"{os.path.basename(path)}: {reason}" for path, reason in failures) or "none listed"
    return CheckpointError(
        f"run {os.path.abspath(directory)} has checkpoints, and none of them can be restored ({listed}). Nothing was "
        f"changed: its checkpoints, config.json and losses.csv are as they were. If the cause can be fixed (a file "
        f"permission, a disk, the TensorFlow version that wrote them) run the same command again; to start the run "
        f"over, move that folder away (or pass another --run_name)")


def restore_for_reading(model: DCGAN, directory: str, attempts: int = 5) -> str | None:
    """Restore the newest checkpoint in `directory` into `model` for a reader (test mode, visualisation), G only.

    A reader may run beside the training process, whose next save deletes the checkpoint the reader just listed
    (--max_to_keep): when every listed checkpoint fails and the run has a newer one since, list again and retry,
    with a fresh Checkpoint object (a failed restore leaves deferred reads of the vanished files on the old one).
    """
    for _ in range(attempts):
        manager = make_manager(make_checkpoint(model), directory, max_to_keep=1)
        listed = manager.latest_checkpoint
        path = restore_latest(manager, generator_only=True)
        if path is not None or tf.train.latest_checkpoint(directory) in (None, listed):
            return path
        log.info("the run saved a newer checkpoint while it was read; reading that one")
    return None

def latest_step(directory: str) -> int | None:
    """The training step of the newest checkpoint in `directory`, read from its files (no model is built); None
    when there is none."""
    path = tf.train.latest_checkpoint(directory)
    if path is None:
        return None
    return int(tf.train.load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE"))


def checkpoint_size(path: str | None) -> int:
    """Bytes the checkpoint at `path` (a prefix like .../ckpt-200) takes on disk; 0 for None."""
    if not path:
        return 0
    return sum(os.path.getsize(name) for name in glob.glob(glob.escape(path) + ".*") if os.path.isfile(name))


def remove_unfinished_saves(directory: str) -> list[str]:
    """Delete what killed or failed saves left in a run folder (`ckpt-<step>_temp*` folders); returns them.

    Only for the process that holds the run: a save in progress has such a folder too.
    """
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if UNFINISHED_SAVE.match(name) and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed %d unfinished checkpoint save(s) left by an earlier process: %s", len(removed),
                 ", ".join(os.path.basename(path) for path in removed))
    return removed
