"""train(config): load the data, build or resume the run, and fit the DCGAN with its monitoring callbacks."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf import callbacks as cb
from dcgan_tf import checkpoints, data, runs
from dcgan_tf.config import MNIST, Config
from dcgan_tf.gan import DCGAN, sample_z
from dcgan_tf.mnist import load_mnist
from dcgan_tf.networks import build_discriminator, build_generator

log = logging.getLogger(__name__)

LOSS_CSV = "losses.csv"
TENSORBOARD_DIR = "logs"


@dataclass
class TrainResult:
    """What a finished (or resumed-and-finished) run reached."""

    config: Config
    step: int
    epoch: int
    num_images: int
    skipped: list
    history: dict


def load_training_data(config: Config) -> data.LoadedImages:
    """The run's images (uint8, at the output size) from the built-in set, MNIST, or a folder."""
    config = config.resolved()
    spec = data.ImageSpec(config.output_height, config.output_width, config.crop, config.input_height,
                          config.input_width)
    dataset, data_dir = os.path.expanduser(config.dataset or ""), os.path.expanduser(config.data_dir)
    if dataset == MNIST:
        loaded = data.resize(load_mnist(data_dir), config.output_height, config.output_width)
    else:
        if not dataset:
            directory, pattern = data.builtin_dataset_dir(), "*.png"
        elif os.path.isdir(dataset) and (os.sep in dataset or not os.path.isdir(os.path.join(data_dir, dataset))):
            directory, pattern = dataset, config.input_fname_pattern  # a folder path
        else:
            directory, pattern = os.path.join(data_dir, dataset), config.input_fname_pattern
        loaded = data.load_images(data.find_image_files(directory, pattern), spec, c_dim=config.c_dim)
    return data.subset(loaded, config.train_size, config.seed)


def build_dcgan(config: Config) -> DCGAN:
    """The DCGAN a (resolved, c_dim-known) config describes, compiled with one Adam per network.

    Seeds Keras' global RNG with config.seed first, so the same seed gives the same initial weights.
    """
    keras.utils.set_random_seed(config.seed)
    generator = build_generator(config.output_height, config.output_width, config.c_dim, config.z_dim,
                                config.gf_dim, y_dim=config.y_dim, gfc_dim=config.gfc_dim)
    discriminator = build_discriminator(config.output_height, config.output_width, config.c_dim, config.df_dim,
                                        y_dim=config.y_dim, dfc_dim=config.dfc_dim)
    model = DCGAN(generator, discriminator, config.z_dim, config.z_dist, config.g_advantage, config.y_dim,
                  seed=config.seed)
    model.compile(d_optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1),
                  g_optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1))
    return model


def grid_inputs(config: Config, seed: int):
    """z [rows*cols, z_dim] from the training distribution, and one-hot labels (one row per class) or None."""
    count = config.grid_rows * config.grid_cols
    z = sample_z((count, config.z_dim), config.z_dist, seed)
    labels = None
    if config.conditional:
        labels = tf.one_hot(np.arange(count) // config.grid_cols % config.y_dim, config.y_dim)
    return z, labels


def train(config: Config) -> TrainResult:
    """Train (or resume) the run that `config` names until `config.epoch` epochs are done."""
    config = config.resolved().validate()
    saved = runs.load_saved_config(config)
    if saved is not None:
        runs.check_resumable(config, saved)  # fails before the data is read

    images = load_training_data(config)
    config = dataclasses.replace(config, c_dim=images.c_dim).validate()
    if saved is not None:
        runs.check_resumable(config, saved)  # now with the data's channel count known
    runs.save_config(config)

    model = build_dcgan(config)
    grid_z, grid_labels = grid_inputs(config, config.seed)
    fixed_z = tf.Variable(grid_z, trainable=False, name="sample_z")
    manager = checkpoints.make_manager(checkpoints.make_checkpoint(model, fixed_z), config.checkpoint_path,
                                       config.max_to_keep)
    if checkpoints.restore_latest(manager):
        log.info("resuming run %s at step %d, epoch %d", config.name, int(model.step), int(model.epoch))
    else:
        log.info("starting run %s", config.name)

    per_epoch = data.steps_per_epoch(len(images), config.batch_size)
    step = int(model.step.numpy())
    epoch, done_in_epoch = _position(step, int(model.epoch.numpy()), per_epoch)
    model.epoch.assign(epoch)
    history: dict = {}
    if epoch < config.epoch:
        callbacks = [
            cb.EpochCounter(),
            cb.LossCSV(os.path.join(config.checkpoint_path, LOSS_CSV), resume_step=step),
            cb.LossTensorBoard(os.path.join(config.checkpoint_path, TENSORBOARD_DIR)),
            cb.SampleGrids(fixed_z, config.sample_path, config.grid_rows, config.grid_cols, config.sample_freq,
                           grid_labels),
            cb.Checkpoints(manager, config.ckpt_freq),
        ]
        if done_in_epoch:  # finish the interrupted epoch first, then whole epochs
            _fit(model, images, callbacks, config, epoch, epoch + 1, per_epoch - done_in_epoch, history)
            epoch += 1
        if epoch < config.epoch:
            _fit(model, images, callbacks, config, epoch, config.epoch, per_epoch, history)
    else:
        log.info("run %s already finished %d epochs; raise --epoch to train further", config.name, epoch)

    log.info("%d images used, %d files skipped; run folders: %s, %s", len(images), len(images.skipped),
             os.path.abspath(config.checkpoint_path), os.path.abspath(config.sample_path))
    return TrainResult(config, int(model.step.numpy()), int(model.epoch.numpy()), len(images), images.skipped,
                       history)


def _position(step: int, epoch: int, per_epoch: int) -> tuple[int, int]:
    """(epoch to run next, steps of it already done) from the restored counters."""
    done = max(0, step - epoch * per_epoch)
    return epoch + done // per_epoch, done % per_epoch


def _fit(model, images, callbacks, config, initial_epoch, epochs, steps, history):
    """fit() over a data stream that starts right after the model's current step (the exact data order)."""
    dataset = data.make_dataset(images, config.batch_size, config.seed,
                                start_element=int(model.step.numpy()) * config.batch_size, y_dim=config.y_dim)
    result = model.fit(dataset, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                       callbacks=callbacks, verbose=config.verbose, shuffle=False)
    for name, values in result.history.items():
        history.setdefault(name, []).extend(values)
