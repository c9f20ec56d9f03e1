"""Checkpoints: G, D, both optimizers, the step and epoch counters (which key the z draws) and the fixed sample z."""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil

import tensorflow as tf

from dcgan_tf.gan import DCGAN

log = logging.getLogger(__name__)

UNFINISHED_SAVE = re.compile(r"^ckpt-\d+_temp")  # TensorFlow writes a checkpoint's shards here, then moves them


def make_checkpoint(model: DCGAN, sample_z: tf.Variable | None = None) -> tf.train.Checkpoint:
    """Everything a resumed run needs to continue exactly where it stopped.

    `sample_z` (the fixed z of the training grids) is left out when only the model is wanted.
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
    if sample_z is not None:
        tracked["sample_z"] = sample_z
    return tf.train.Checkpoint(**tracked)


def saved_shape(directory: str, name: str) -> tuple | None:
    """The shape of the top-level checkpoint value `name` in the newest readable checkpoint under directory, or None.

    A checkpoint whose files cannot be read (say, a truncated `.index`) is skipped for the one before, as
    restore_latest does, so a damaged newest checkpoint never stops the run before its fallback.
    """
    state = tf.train.get_checkpoint_state(directory)
    for path in reversed(list(state.all_model_checkpoint_paths) if state else []):
        path = path if os.path.isabs(path) else os.path.join(directory, path)
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


def restore_latest(manager: tf.train.CheckpointManager, generator_only: bool = False) -> str | None:
    """Restore the newest readable checkpoint into the tracked objects; return its path, or None when there is none.

    TensorFlow writes a checkpoint's files first and then points the `checkpoint` state file at them, so a write
    that was killed never becomes "latest". A checkpoint whose files were damaged later is skipped (logged) for the
    next older one. Training checks that every saved value found its variable; `generator_only` (test mode,
    visualisation) lets the rest of the checkpoint go unused.
    """
    for path in reversed(manager.checkpoints):
        try:
            status = manager.checkpoint.restore(path)
            if not generator_only:
                status.assert_existing_objects_matched()
        except (tf.errors.OpError, RuntimeError, ValueError, AssertionError, IndexError, KeyError, OSError) as error:
            log.error("cannot restore %s (%s: %s); trying an older checkpoint", path, type(error).__name__,
                      str(error).splitlines()[0][:200])
            continue
        status.expect_partial()  # the checkpoint's own save_counter, and in generator_only mode the rest
        log.info("restored %s", path)
        return path
    return None


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
