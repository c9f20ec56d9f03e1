"""A sweep's disk budget (--disk_budget_mb): what a run will write, estimated before it starts, and the thinning
(--keep_samples / --keep_every, --max_to_keep) that keeps every run of the sweep within its share.

The estimate is an upper bound: checkpoints from the networks' weight count (weights, Adam's two slots, the EMA
copy; one more checkpoint than kept, as a save is written before the oldest is removed), training grids at their
uncompressed size, the loss CSV and TensorBoard's scalars per step, and the loss plots. Shared folders (the
autoencoder's, the metrics cache) are not a run's and are not counted.
"""

from __future__ import annotations

import dataclasses
import math

from dcgan_tf.config import MNIST, Config, ConfigError

MB = 2**20
LOG_BYTES_PER_STEP = 2048  # losses.csv (~250 B) and TensorBoard's per-step scalars (~60 B each), with room
PLOTS_BYTES = MB  # the loss and metric plots written at the end (~0.1 MB each), metrics.jsonl, config.json
SWEEP_FOLDER_BYTES = 2 * MB  # sweep.json, the runs' console logs, the report's text and curves
MNIST_IMAGES = 70_000


@dataclasses.dataclass(frozen=True)
class RunEstimate:
    """What one run writes at most, by part (bytes), for its steps and grids."""

    steps: int
    grids: int
    grid_bytes: int
    checkpoint_bytes: int
    other_pictures_bytes: int = 0  # never thinned: memorisation's nearest-pair pictures, one per evaluation

    def total(self, max_to_keep: int, keep_best: bool, kept_grids: int | None = None) -> int:
        grids = self.grids if kept_grids is None else min(self.grids, kept_grids)
        checkpoints = self.checkpoint_bytes * (max_to_keep + 1 + (1 if keep_best else 0))
        return (checkpoints + grids * self.grid_bytes + self.steps * LOG_BYTES_PER_STEP + PLOTS_BYTES
                + self.other_pictures_bytes)


def count_images(config: Config) -> int:
    """How many images the run trains on, from the file names (nothing decoded)."""
    from dcgan_tf.data import loading
    from dcgan_tf.data.datasets import image_files

    if config.dataset == MNIST:
        count = MNIST_IMAGES
    else:
        try:
            if config.resolved().conditional:  # a labelled folder: every image in its class folders
                count = len(loading.find_labelled_files(config.image_folder())[0])
            else:
                count = len(loading.find_image_files(*image_files(config)))
        except loading.DataError as error:  # before any work, as any bad flag
            raise ConfigError("dataset", str(error)) from None
    return min(count, config.train_size) if config.train_size else count


def checkpoint_bytes(config: Config) -> int:
    """An upper bound on one checkpoint's size: every float32 weight of both networks, Adam's two slots for each
    trainable one, and the EMA copy of G's."""
    from dcgan_tf.core.build import build_dcgan

    import keras

    model = build_dcgan(dataclasses.replace(config, c_dim=config.c_dim or 3, mixed_precision=False))
    count = lambda weights: sum(math.prod(w.shape) for w in weights)  # noqa: E731
    trainable_g = count(model.generator.trainable_weights)
    trainable = trainable_g + count(model.discriminator.trainable_weights)
    every = count(model.generator.weights) + count(model.discriminator.weights)
    total = 4 * (every + 2 * trainable + (count(model.generator.weights) if config.ema else 0))
    keras.backend.clear_session()
    return int(total * 1.05) + 256 * 1024


def estimate_run(config: Config, num_images: int, checkpoint: int) -> RunEstimate:
    from dcgan_tf.data.loading import steps_per_epoch

    c = config.resolved()
    steps = steps_per_epoch(num_images, c.batch_size) * c.epoch
    channels = c.c_dim or 3
    grid = c.grid_rows * c.grid_cols * (c.output_height + 2) * (c.output_width + 2) * channels + 4096
    evaluations = steps // c.metrics_freq + 1 if "memorisation" in c.metric_names else 0
    # a grid every sample_freq steps, one at the end of each fit (the last, a data swap, a resume)
    return RunEstimate(steps=steps, grids=steps // c.sample_freq + 3, grid_bytes=grid, checkpoint_bytes=checkpoint,
                       other_pictures_bytes=evaluations * 2 * grid)


def fit_budget(configs: list[Config], budget_mb: float, report_cells: int = 1) -> tuple[list[dict], dict]:
    """For each run, the settings that keep the sweep within budget_mb ({} where it fits as it is), and a summary
    of the estimate; ConfigError naming --disk_budget_mb when even the thinnest runs would not fit.

    Each run gets the least it needs (one checkpoint, 2 grids, its logs and plots) and an equal part of what is left
    after those and the sweep folder's own files (its report's grids: report_cells per run)."""
    counts, sizes, estimates = {}, {}, []
    for config in configs:
        data_key = (config.dataset, config.data_dir, config.input_fname_pattern, config.train_size,
                    config.resolved().conditional)
        if data_key not in counts:
            counts[data_key] = count_images(config)
        model_key = tuple(getattr(config, name) for name in ("output_height", "output_width", "c_dim", "z_dim",
                                                             "gf_dim", "df_dim", "d_layers", "d_batchnorm", "y_dim",
                                                             "spectral_norm", "ema"))
        if model_key not in sizes:
            sizes[model_key] = checkpoint_bytes(config)
        estimates.append(estimate_run(config, counts[data_key], sizes[model_key]))
    budget = budget_mb * MB
    reserve = SWEEP_FOLDER_BYTES + 3 * sum(e.grid_bytes for e in estimates) * max(1, report_cells)
    least = reserve + sum(e.total(1, c.keep_best is not None, 2) for c, e in zip(configs, estimates))
    if least > budget:
        biggest = max(estimates, key=lambda e: e.total(1, False, 2))
        raise ConfigError("disk_budget_mb", f"{budget_mb:g} MB cannot hold {len(configs)} runs: even with one "
                                            f"checkpoint and 2 grids each they need about {least / MB:.1f} MB (the "
                                            f"largest: a checkpoint of {biggest.checkpoint_bytes / MB:.1f} MB, "
                                            f"{biggest.steps} steps of logs); give at least {math.ceil(least / MB)}")
    spare = (budget - least) / len(configs)
    overrides, notes = [], []
    for config, estimate in zip(configs, estimates):
        keep_best = config.keep_best is not None
        share = estimate.total(1, keep_best, 2) + spare  # its least, and an equal part of what is left
        kept = config.keep_samples + math.ceil(estimate.grids / config.keep_every) + 1 if config.keep_samples \
            else None
        if estimate.total(config.max_to_keep, keep_best, kept) <= share:
            overrides.append({})
            continue
        change = {}
        max_to_keep = config.max_to_keep
        if estimate.total(max_to_keep, keep_best, 0) > share:
            max_to_keep = change["max_to_keep"] = 1
        room = share - estimate.total(max_to_keep, keep_best, 0)
        grids = max(2, int(room // estimate.grid_bytes))  # at least 2: the share holds them (see least)
        if grids < estimate.grids:
            newest = max(1, grids // 2)
            every_kept = grids - newest - 1  # the last grid may be one of neither
            keep_every = math.ceil(estimate.grids / every_kept) if every_kept > 0 else estimate.grids + 1
            change.update(keep_samples=newest, keep_every=max(1, keep_every))
        overrides.append(change)
        notes.append(config.name)
    summary = {"spare_mb_per_run": round(spare / MB, 2), "least_mb": round(least / MB, 2),
               "reserve_mb": round(reserve / MB, 2),
               "estimates_mb": [round(e.total(1, False) / MB, 2) for e in estimates], "thinned": notes}
    return overrides, summary
