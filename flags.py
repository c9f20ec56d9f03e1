"""Every command-line flag of main.py (absl), with carpedm20/DCGAN-tensorflow's names and defaults where they exist.

The run settings' flags are made from `Config`'s fields (their defaults and help live there, once); the flags of the
modes and of --visualize / --compare, which are no run settings, are written out below.
"""

import dataclasses
import types
import typing

from absl import flags

from dcgan_tf.config import Config

_DEFINE_BY_TYPE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float,
                   bool: flags.DEFINE_boolean}


def _flag_type(hint) -> type:
    """str, int, float or bool out of a field's type hint, optional (`int | None`) or not."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return hint


def _define_config_flags() -> None:
    """One flag per Config field with `flag` in its metadata: the field's name, default and help (enum with choices)."""
    hints = typing.get_type_hints(Config)
    for field in dataclasses.fields(Config):
        if not field.metadata["flag"]:
            continue
        if field.metadata["choices"]:
            flags.DEFINE_enum(field.name, field.default, field.metadata["choices"], field.metadata["help"])
        else:
            _DEFINE_BY_TYPE[_flag_type(hints[field.name])](field.name, field.default, field.metadata["help"])


_define_config_flags()

# modes: at most one of them; none is test mode (main.py's MODES)
flags.DEFINE_boolean("train", False, "Train (or resume) the run. Without it: test mode, a sample grid from the "
                     "latest checkpoint.")
flags.DEFINE_boolean("train_autoencoder", False, "Train (or reuse) only the autoencoder: write its pictures and every "
                     "reconstruction as a PNG into <sample_dir>/<autoencoder name>/, and with --dedupe, "
                     "duplicates.csv. Trains no GAN.")
flags.DEFINE_boolean("visualize", False, "Test mode: draw --visualize_option from the latest checkpoint into the "
                     "run's sample folder.")
flags.DEFINE_boolean("evaluate", False, "Measure the run's --checkpoint (latest, or best) with --metrics (unset: "
                     "every metric that applies) and append the values to its metrics.jsonl. Trains nothing.")
flags.DEFINE_boolean("augment_preview", False, "Write <sample_dir>/<run>/augment_preview.png: training images as "
                     "they are (first row) and as --augment makes them for D (the rows below). Trains nothing.")
flags.DEFINE_boolean("small_data", False, "Train with the small-data combination that measured best (README, Small "
                     "data sets): it sets the settings listed there, unless given on the command line.")
flags.DEFINE_boolean("evaluate_all", False, "Like --evaluate, for every checkpoint the run kept, oldest first.")
flags.DEFINE_list("compare", None, "Compare runs: names under --checkpoint_dir or run folders, comma-separated (e.g. "
                  "ga2,ga4,ga50). Writes their log G/D ratios and losses overlaid, and a sheet of their sample grids "
                  "at --compare_steps, into --compare_out. Trains nothing.")
# visualisation (test mode with --visualize)
flags.DEFINE_string("visualize_option", "grid", "With --visualize: what to draw. carpedm20's numbers or names: 0 grid, "
                    "1 sweep, 2 random_sweep_gif, 3 sweep_gif, 4 merged_gif; or interpolate, arithmetic, progress, "
                    "plots (loss and log G/D ratio plots).")
flags.DEFINE_integer("num_samples", None, "grid/arithmetic: number of samples, in rows of --grid_cols (default: "
                     "--grid_rows x --grid_cols).")
flags.DEFINE_boolean("save_individual", False, "grid: also write every sample as its own PNG.")
flags.DEFINE_string("sweep_dims", None, "Sweeps: z dimensions to sweep: N (the first N; N random ones for option 2), "
                    "a list like 0-3,7, or all. Default: 10; merged_gif: all.")
flags.DEFINE_integer("visualize_steps", 10, "Sweeps: values per dimension (grid columns; GIF frames each way). "
                     "interpolate: points per walk (>= 2).")
flags.DEFINE_enum("interpolation", "slerp", ["slerp", "linear"], "interpolate: the path between z's.")
flags.DEFINE_integer("walks", None, "interpolate: random z's on the closed tour, one grid row per walk (>= 2; "
                     "default --grid_rows).")
flags.DEFINE_string("arith", None, "arithmetic: groups of indices from arithmetic_numbered_<step>.png joined by + and "
                    "-, e.g. '3,17,22 - 5,9,40 + 1,2,8'. Unset: write only the numbered grid.")
flags.DEFINE_integer("label", None, "Conditional (MNIST) runs: draw only this digit (default: one row per digit).")
flags.DEFINE_float("fps", 10, "GIF frames per second (at most 100).")
flags.DEFINE_integer("max_frames", 200, "progress: at most this many training grids in progress.gif, evenly spaced.")
# comparison of runs (with --compare)
flags.DEFINE_list("compare_steps", None, "Steps for --compare's grid sheet (e.g. 100,400); each run shows its saved "
                  "grid nearest to each step. Unset: each run's last grid.")
flags.DEFINE_list("compare_labels", None, "Legend and row labels for --compare's runs, in order. Unset: run names.")
flags.DEFINE_string("compare_out", None, "Folder for --compare's figures. Unset: <sample_dir>/compare.")
