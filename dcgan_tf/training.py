"""train(config): load the data, build or resume the run, and fit the DCGAN with its monitoring callbacks."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import tempfile
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf import callbacks as cb
from dcgan_tf import checkpoints, data, distribution, preprocessing, runs
from dcgan_tf.config import MNIST, Config
from dcgan_tf.gan import DCGAN, sample_z
from dcgan_tf.mnist import load_mnist
from dcgan_tf.networks import build_discriminator, build_generator

log = logging.getLogger(__name__)

LOSS_CSV = "losses.csv"
TENSORBOARD_DIR = "logs"
MAX_ROLLBACKS = 3


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
    nan_step: int | None = None  # the step whose losses went NaN/Inf
    last_checkpoint: str | None = None
    rollbacks: int = 0
    duplicates: list = dataclasses.field(default_factory=list)  # (dropped, kept, distance) under config.dedupe
    sources: list = dataclasses.field(default_factory=list)  # (first epoch, data source) of each stretch trained


def load_training_data(config: Config) -> data.LoadedImages | data.StreamedImages:
    """The run's images (uint8, at the output size) from the built-in set, MNIST, or a folder: decoded into memory,
    or, when they would take more than config.cache_limit MB, checked and left on disk to stream (MNIST: memory)."""
    config = config.resolved()
    spec = data.ImageSpec(config.output_height, config.output_width, config.crop, config.input_height,
                          config.input_width)
    dataset, data_dir = os.path.expanduser(config.dataset or ""), os.path.expanduser(config.data_dir)
    if dataset == MNIST:
        loaded = data.subset(load_mnist(data_dir), config.train_size, config.seed)
        return data.resize(loaded, config.output_height, config.output_width)
    if not dataset:
        directory, pattern = data.builtin_dataset_dir(), "*.png"
    elif os.path.isdir(dataset) and (os.sep in dataset or not os.path.isdir(os.path.join(data_dir, dataset))):
        directory, pattern = dataset, config.input_fname_pattern  # a folder path
    else:
        directory, pattern = os.path.join(data_dir, dataset), config.input_fname_pattern
    # --train_size picks its subset before decoding; files skipped as unreadable are not replaced
    paths = data.subset_paths(data.find_image_files(directory, pattern), config.train_size, config.seed)
    needed = data.cache_bytes(len(paths), spec, config.c_dim)
    if needed > config.cache_limit * 2**20:
        if config.uses_autoencoder:  # say so before decoding anything
            raise preprocessing.needs_memory(needed)
        if config.y_dim:
            raise data.DataError("a conditional model needs labels, and this data set has none")
        log.info("%d images need about %d MB decoded, over --cache_limit %d MB: streaming them from disk",
                 len(paths), needed // 2**20, config.cache_limit)
        return data.probe_images(paths, spec, c_dim=config.c_dim)
    return data.load_images(paths, spec, c_dim=config.c_dim)


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16() -> bool | None:
    """Whether this CPU has bfloat16 arithmetic (AVX512-BF16 or AMX-BF16); None where /proc/cpuinfo is missing."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return None
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def _warn_if_bf16_is_emulated(config: Config) -> None:
    if precision_policy(config.mixed_precision) == "mixed_bfloat16" and cpu_has_bf16() is False:
        log.warning("--mixed_precision: this CPU has no bfloat16 instructions (%s), so TensorFlow emulates bf16 and "
                    "training runs several times slower than float32 (8x measured on an AVX2 CPU); leave "
                    "--mixed_precision off here", " or ".join(BF16_CPU_FLAGS))


def precision_policy(mixed: bool) -> str:
    """Keras dtype policy: float32, or mixed precision: mixed_float16 on a GPU, mixed_bfloat16 on a CPU."""
    if not mixed:
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Layers built inside take this dtype policy; Keras' global policy is restored afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_dcgan(config: Config, strategy: tf.distribute.Strategy | None = None) -> DCGAN:
    """The DCGAN a (resolved, c_dim-known) config describes, compiled with one Adam per network.

    Seeds Keras' global RNG with config.seed first, so the same seed gives the same initial weights. With
    config.mixed_precision the layers compute in bf16 (CPU) or fp16 (GPU, with dynamic loss scaling) while weights,
    batch-norm statistics, logits and losses stay float32. With a multi-replica `strategy` the model is built in its
    scope, and batch norm takes its statistics over the global batch (synchronised), as on one device.
    """
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        with strategy.scope():
            return _build_dcgan(config, sync_batchnorm=True)
    return _build_dcgan(config, sync_batchnorm=False)


def _build_dcgan(config: Config, sync_batchnorm: bool) -> DCGAN:
    keras.utils.set_random_seed(config.seed)
    policy = precision_policy(config.mixed_precision)
    with dtype_policy(policy):
        generator = build_generator(config.output_height, config.output_width, config.c_dim, config.z_dim,
                                    config.gf_dim, y_dim=config.y_dim, gfc_dim=config.gfc_dim,
                                    sync_batchnorm=sync_batchnorm)
        discriminator = build_discriminator(config.output_height, config.output_width, config.c_dim,
                                            config.df_dim, y_dim=config.y_dim, dfc_dim=config.dfc_dim,
                                            conv_layers=config.d_layers, batchnorm=config.d_batchnorm,
                                            sync_batchnorm=sync_batchnorm)
    model = DCGAN(generator, discriminator, config.z_dim, config.z_dist, config.g_advantage, config.y_dim,
                  seed=config.seed, d_steps=config.d_steps)
    d_learning_rate = config.d_learning_rate or config.learning_rate
    d_optimizer = keras.optimizers.Adam(d_learning_rate, beta_1=config.beta1)
    g_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
    if policy == "mixed_float16":  # fp16 gradients underflow without loss scaling; bf16 has fp32's range
        d_optimizer = keras.optimizers.LossScaleOptimizer(d_optimizer)
        g_optimizer = keras.optimizers.LossScaleOptimizer(g_optimizer)
    model.compile(d_optimizer=d_optimizer, g_optimizer=g_optimizer, jit_compile=config.jit_compile)
    return model


def grid_inputs(config: Config, seed: int, bank=None):
    """z [rows*cols, z_dim] from the training distribution, and one-hot labels (one row per class) or None.

    With `bank` (a saved z [M, z_dim]), its first rows are used and any more are drawn with `seed`.
    """
    count = config.grid_rows * config.grid_cols
    if bank is None:
        z = sample_z((count, config.z_dim), config.z_dist, seed)
    else:
        z = tf.convert_to_tensor(bank)[:count]
        if count > z.shape[0]:
            z = tf.concat([z, sample_z((count - z.shape[0], config.z_dim), config.z_dist, seed + 1)], axis=0)
    labels = None
    if config.conditional:
        labels = tf.one_hot(np.arange(count) // config.grid_cols % config.y_dim, config.y_dim)
    return z, labels


def train(config: Config) -> TrainResult:
    """Train (or resume) the run that `config` names until `config.epoch` epochs are done.

    Under `--strategy multiworker` every worker calls this; the chief writes the run's outputs, the others only
    their own checkpoints (into a temporary folder that is removed at the end), as tf.distribute requires.
    """
    config = config.resolved().validate()
    strategy = distribution.make_strategy(config.strategy)  # first: multiworker must precede other TensorFlow work
    distribution.check_batch_split(config.batch_size, strategy)
    if distribution.is_chief(strategy):
        return _train(config, strategy, scratch=None)
    with tempfile.TemporaryDirectory(prefix="dcgan_tf_worker_") as scratch:
        log.info("%s: the chief writes the run's outputs; this worker checkpoints into %s",
                 distribution.worker_name(strategy), scratch)
        return _train(config, strategy, scratch)


def _train(config: Config, strategy: tf.distribute.Strategy, scratch: str | None) -> TrainResult:
    """train() on this process; `scratch`: a non-chief worker's folder for the writes the chief alone keeps."""
    chief = scratch is None
    saved = runs.load_saved_config(config)
    if saved is not None:
        runs.check_resumable(config, saved)  # fails before the data is read

    images = load_training_data(config)
    config = dataclasses.replace(config, c_dim=images.c_dim).validate()
    if saved is not None:
        runs.check_resumable(config, saved)  # now with the data's channel count known
    distribution.barrier(strategy)  # every worker has read the saved config before the chief replaces it
    if chief:
        runs.save_config(config)
    prepared = preprocessing.preprocess(config, images, picture_dirs=[config.sample_path] if chief else [],
                                        report_dir=config.checkpoint_path if chief else None,
                                        train_missing=not distribution.is_multiworker(strategy))
    if config.swap_epoch is not None and config.swap_epoch >= config.epoch:
        log.warning("--swap_epoch %d is not before --epoch %d: this run trains on the reconstructions only",
                    config.swap_epoch, config.epoch)

    _warn_if_bf16_is_emulated(config)
    model = build_dcgan(config, strategy)
    # The training grids' fixed z is saved with the run; a resumed run with another grid size uses its first rows.
    bank_shape = checkpoints.saved_shape(config.checkpoint_path, "sample_z")
    bank = tf.Variable(sample_z(bank_shape or (config.grid_rows * config.grid_cols, config.z_dim), config.z_dist,
                                config.seed), trainable=False, name="sample_z")
    checkpoint = checkpoints.make_checkpoint(model, bank)
    manager = checkpoints.make_manager(checkpoint, config.checkpoint_path, config.max_to_keep)
    if checkpoints.restore_latest(manager):  # every worker resumes from the chief's checkpoints
        log.info("resuming run %s at step %d, epoch %d", config.name, int(model.step.numpy()),
                 int(model.epoch.numpy()))
        if saved is not None and saved.learning_rate != config.learning_rate:  # an explicit change wins
            model.g_optimizer.learning_rate.assign(config.learning_rate)
            model.d_optimizer.learning_rate.assign(config.d_learning_rate or config.learning_rate)
            log.info("learning rate changed from %g to %g", saved.learning_rate, config.learning_rate)
    else:
        log.info("starting run %s", config.name)
    if not chief:  # saving may read variables collectively, so every worker saves; only the chief's are kept
        manager = checkpoints.make_manager(checkpoint, scratch, config.max_to_keep)
    grid_z, grid_labels = grid_inputs(config, config.seed, bank)

    per_epoch = data.steps_per_epoch(len(prepared.originals), config.batch_size)
    stopper = cb.GracefulStop(strategy if distribution.is_multiworker(strategy) else None)
    guard = cb.NonFiniteGuard()
    csv_log = cb.LossCSV(os.path.join(config.checkpoint_path if chief else scratch, LOSS_CSV),
                         resume_step=int(model.step.numpy()))
    grids = cb.SampleGrids(grid_z, config.sample_path, config.grid_rows, config.grid_cols, config.sample_freq,
                           grid_labels, keep=config.keep_samples, keep_every=config.keep_every,
                           min_free_mb=config.min_free_mb)
    callbacks = [  # order matters: the guard and counter run before anything saves
        cb.EpochCounter(),
        guard,
        csv_log,
        *([cb.LossTensorBoard(os.path.join(config.checkpoint_path, TENSORBOARD_DIR)), grids] if chief else []),
        cb.Checkpoints(manager, config.ckpt_freq),
        stopper,
    ]
    history: dict = {}
    result = TrainResult(config, 0, 0, len(prepared.originals), images.skipped, history,
                         duplicates=prepared.duplicates)
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
            csv_log.source = source_name  # a non-chief worker's CSV stays in its scratch folder
            _fit(model, source, callbacks, config, epoch, end, per_epoch - done_in_epoch, history)
            epoch, done_in_epoch = end, 0
        if not guard.tripped:
            break
        result.nan_step = guard.tripped[0]
        guard.tripped = None
        if config.nan_policy != "rollback" or result.rollbacks >= MAX_ROLLBACKS \
                or not checkpoints.restore_latest(manager if chief else checkpoints.make_manager(
                    checkpoint, config.checkpoint_path, config.max_to_keep)):  # all roll back to the chief's
            result.stopped_by = "nan"
            break
        result.rollbacks += 1  # back to the last good checkpoint, with halved learning rates
        for optimizer in (model.g_optimizer, model.d_optimizer):
            optimizer.learning_rate.assign(optimizer.learning_rate * 0.5)
        csv_log.resume_step = int(model.step.numpy())
        log.warning("rolled back to step %d with learning rates halved to %.3g (rollback %d of %d)",
                    int(model.step.numpy()), float(model.g_optimizer.learning_rate), result.rollbacks, MAX_ROLLBACKS)
    if result.stopped_by is None and stopper.signal_name:
        result.stopped_by = stopper.signal_name
    if int(model.epoch.numpy()) >= config.epoch and result.stopped_by is None and not history:
        log.info("run %s already finished %d epochs; raise --epoch to train further", config.name, config.epoch)

    if chief and not grids.disk_full:  # low disk: no more pictures of any kind
        _write_plots(config)
    result.step, result.epoch = int(model.step.numpy()), int(model.epoch.numpy())
    # a non-chief worker's own checkpoints go with its scratch folder; the chief's are the run's
    result.last_checkpoint = manager.latest_checkpoint if chief else tf.train.latest_checkpoint(config.checkpoint_path)
    log.info("%d images used, %d files skipped; run folders: %s (%s), %s (%s)", len(prepared.originals),
             len(images.skipped),
             os.path.abspath(config.checkpoint_path), _size(config.checkpoint_path),
             os.path.abspath(config.sample_path), _size(config.sample_path))
    return result


def _write_plots(config: Config) -> None:
    """plot_losses.png and plot_loss_ratio.png into the sample folder; a failure only warns."""
    if not os.path.isfile(os.path.join(config.checkpoint_path, LOSS_CSV)):
        return
    try:
        from dcgan_tf import plots  # here: matplotlib loads only when a run ends

        log.info("wrote %s", ", ".join(plots.plot_run(config.checkpoint_path, config.sample_path)))
    except Exception as error:  # noqa: BLE001 - a plot must never cost the run its result
        log.warning("no loss plots for %s: %s", config.name, error)


def _size(folder: str) -> str:
    """The total size of the files under `folder`, for humans."""
    total = sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)
    for unit in ("B", "KB", "MB", "GB"):
        if total < 1024 or unit == "GB":
            return f"{total:.0f} {unit}" if unit == "B" else f"{total:.1f} {unit}"
        total /= 1024
    return ""


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


def _position(model: DCGAN, per_epoch: int) -> tuple[int, int]:
    """(epoch to run next, steps of it already done) from the restored counters.

    An epoch found longer than the data allows now (the data set shrank) counts as finished.
    """
    epoch, done = int(model.epoch.numpy()), int(model.step.numpy()) - int(model.epoch_start_step.numpy())
    if done >= per_epoch:
        model.epoch_start_step.assign(model.step)
        return epoch + 1, 0
    return epoch, max(0, done)


def _fit(model, images, callbacks, config, initial_epoch, epochs, steps, history):
    """fit() over a data stream that starts right after the model's current step (the exact data order)."""
    done_in_epoch = int(model.step.numpy()) - int(model.epoch_start_step.numpy())
    dataset = distribution.shard_by_data(data.make_dataset(
        images, config.batch_size, config.seed, start_epoch=initial_epoch, start_step=max(0, done_in_epoch),
        y_dim=config.y_dim))
    try:
        result = model.fit(dataset, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                           callbacks=callbacks, verbose=config.verbose, shuffle=False)
    except tf.errors.OpError as error:  # a streamed file that broke: name it, not TensorFlow's stack
        found = re.search(r"(\S.*could no longer be read while streaming.*?resume)", str(error))
        if not found:
            raise
        last = tf.train.latest_checkpoint(config.checkpoint_path) or "none yet"
        raise data.DataError(f"{found.group(1)} from the last checkpoint ({last})") from None
    for name, values in result.history.items():
        history.setdefault(name, []).extend(values)
