"""Use a trained run: rebuild its model from config.json, load the newest checkpoint, write sample grids."""

from __future__ import annotations

import os

from dcgan_tf.config import Config
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.core.model import DCGAN
from dcgan_tf.images import save_grid
from dcgan_tf.latent import FRESH_SEED_OFFSET, grid_inputs
from dcgan_tf.runs import checkpoints, folders


def load_trained(config: Config) -> tuple[Config, DCGAN, int]:
    """(saved config, model with the newest checkpoint's weights (or the best one's, under --checkpoint best), its
    step) for the run `config` names.

    RunError when the run or its checkpoint does not exist.
    """
    saved = folders.open_saved_run(config)
    model = build_dcgan(saved)
    folder = folders.checkpoint_folder(saved)  # --checkpoint best: the one --keep_best kept
    if checkpoints.restore_for_reading(model, folder) is None:
        hint = "train it with --keep_best" if saved.checkpoint == "best" else "train it with --train"
        raise folders.RunError(f"run {saved.name!r} has no checkpoint in {os.path.abspath(folder)} ({hint})")
    return saved, model, model.steps_done


def initial_model(saved: Config) -> DCGAN:
    """The run's model with the weights it started from, before any training: built with the seed its config.json
    holds (build_dcgan seeds Keras with it), which a command naming the run with --run_name need not repeat."""
    import dataclasses

    stored = folders.load_saved_config(saved)
    return build_dcgan(dataclasses.replace(saved, seed=stored.seed) if stored else saved)


def write_test_grid(config: Config) -> str:
    """Test mode: a grid of fresh samples (z from the training distribution, seeded by `config.seed`, not the
    training grids' z) -> `<sample_dir>/<run>/test_<step:08d>.png`."""
    saved, model, step = load_trained(config)
    z, labels = grid_inputs(saved, saved.seed + FRESH_SEED_OFFSET)  # apart from the training grids' fixed z
    images = model.generate(z, labels, training=False).numpy()
    return save_grid(images, saved.grid_rows, saved.grid_cols, os.path.join(saved.sample_path, f"test_{step:08d}.png"))
