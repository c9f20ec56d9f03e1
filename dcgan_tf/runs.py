"""Run folders: `<checkpoint_dir>/<run>/config.json` records a run; a saved run refuses a changed model."""

from __future__ import annotations

import os

from dcgan_tf.config import Config

CONFIG_FILE = "config.json"


class RunError(ValueError):
    """A run cannot be resumed or opened as asked (changed model, no such run, no checkpoint)."""


def config_file(config: Config) -> str:
    return os.path.join(config.checkpoint_path, CONFIG_FILE)


def list_runs(checkpoint_dir: str) -> list[str]:
    """Names of the runs under checkpoint_dir (folders holding a config.json), sorted."""
    if not os.path.isdir(checkpoint_dir):
        return []
    return sorted(name for name in os.listdir(checkpoint_dir)
                  if os.path.isfile(os.path.join(checkpoint_dir, name, CONFIG_FILE)))


def load_saved_config(config: Config) -> Config | None:
    """The config saved in this config's run folder, or None for a new run."""
    path = config_file(config)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return Config.from_json(handle.read())


def check_resumable(config: Config, saved: Config) -> None:
    """Raise RunError listing the model-changing settings in which `config` differs from the saved run."""
    differences = saved.model_differences(config)
    if differences:
        listed = "; ".join(f"{name}: saved {old!r}, now {new!r}" for name, (old, new) in differences.items())
        raise RunError(
            f"run {config.name!r} in {os.path.abspath(config.checkpoint_path)} was made with different model settings "
            f"({listed}). Use the saved values to resume it, or pass --run_name NEW_NAME to start a new run."
        )


def save_config(config: Config) -> str:
    """Write config.json into the run folder (atomically: a killed write keeps the old file)."""
    path = config_file(config)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(config.to_json())
    os.replace(temporary, path)
    return path


def open_saved_run(config: Config) -> Config:
    """The saved config of an existing run, for test mode and visualisation; RunError listing the runs otherwise.

    Settings that do not change the model (seed, grid size, folders) are taken from `config`.
    """
    saved = load_saved_config(config)
    if saved is None:
        runs = list_runs(config.checkpoint_dir)
        listing = ", ".join(runs) if runs else "none"
        raise RunError(f"no run {config.name!r} in {os.path.abspath(config.checkpoint_dir)} "
                       f"(train it first with --train; runs there: {listing})")
    keep_from_command = {"seed": config.seed, "grid_rows": config.grid_rows, "grid_cols": config.grid_cols,
                         "checkpoint_dir": config.checkpoint_dir, "sample_dir": config.sample_dir,
                         "run_name": config.name, "verbose": config.verbose}
    values = {**{k: getattr(saved, k) for k in saved.__dataclass_fields__}, **keep_from_command}
    return Config(**values).resolved()
