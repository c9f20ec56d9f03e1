"""Checkpoints: G, D, both optimizers, the step and epoch counters (which key the z draws) and the fixed sample z."""

from __future__ import annotations

import logging

import tensorflow as tf

from dcgan_tf.gan import DCGAN

log = logging.getLogger(__name__)


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
    """The shape of the top-level checkpoint value `name` in the newest checkpoint under directory, or None."""
    path = tf.train.latest_checkpoint(directory)
    if path is None:
        return None
    shapes = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    shape = shapes.get(f"{name}/.ATTRIBUTES/VARIABLE_VALUE")
    return tuple(shape) if shape is not None else None


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
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError, OSError) as error:
            log.error("cannot restore %s (%s: %s); trying an older checkpoint", path, type(error).__name__,
                      str(error).splitlines()[0][:200])
            continue
        status.expect_partial()  # the checkpoint's own save_counter, and in generator_only mode the rest
        log.info("restored %s", path)
        return path
    return None
