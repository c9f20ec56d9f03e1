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
flags.DEFINE_boolean("small_data", False, "Train with the small-data combination that measured best (docs/"
                     "small_data.md): it sets the settings listed there, unless given on the command line.")
flags.DEFINE_boolean("evaluate_all", False, "Like --evaluate, for every checkpoint the run kept, oldest first.")
flags.DEFINE_list("compare", None, "Compare runs: names under --checkpoint_dir or run folders, comma-separated (e.g. "
                  "ga2,ga4,ga50). Writes their log G/D ratios and losses overlaid, and a sheet of their sample grids "
                  "at --compare_steps, into --compare_out. Trains nothing.")
flags.DEFINE_boolean("probe", False, "Linear probe (DCGAN paper section 5): classify labelled real images from the "
                     "run's D features, its untrained D's, pixels and (if any) its autoencoder's code, with "
                     "--probe_labels labelled images per class; writes probe.json and a metrics.jsonl line. Trains "
                     "nothing.")
flags.DEFINE_list("project", None, "Project real images into z: image files, comma-separated. For each, the z whose "
                  "G(z) matches it (Adam on z from --project_restarts starts; pixel and D-feature loss), written "
                  "to the run's sample folder as project_<name>.png, .npz (its z, for --z_files) and .gif.")
flags.DEFINE_boolean("export", False, "Write <checkpoint_dir>/<run>/export/: the generator that samples (the EMA one "
                     "with --ema) as --export_format files and export.json (z size and distribution, labels, image "
                     "size, step). Replaces an earlier export. Trains nothing.")
flags.DEFINE_boolean("demo", False, "Serve a local web demo of the run's generator (pip install -e '.[demo]'): "
                     "samples, z sliders, walks, vector arithmetic. Exports the run first when its export is missing "
                     "or older than its newest checkpoint; --demo_from serves an export folder instead. Ctrl-C stops.")
# the linear probe (with --probe)
flags.DEFINE_string("probe_data", None, "--probe: a labelled folder (one sub-folder per class, or INDEX.csv with "
                    "file and category columns). Unset: MNIST's labels (MNIST runs: its training set to learn from, "
                    "its test set to test on).")
flags.DEFINE_integer("probe_labels", 100, "--probe: labelled training images per class (a seeded choice; the rest of "
                     "the folder is the test set). Classes with too few images are left out, by name.")
flags.DEFINE_list("probe_layers", None, "--probe: D's conv layers to read, counted from 0 (e.g. 2,3). Unset: all.")
flags.DEFINE_integer("probe_max_test", None, "--probe: test on at most this many images (a seeded subset). Unset: "
                     "all.")
# export and the web demo (with --export, --demo)
flags.DEFINE_list("export_format", ["keras", "savedmodel"], "--export: keras (generator.keras, for "
                  "keras.saving.load_model), savedmodel (a TensorFlow SavedModel: z -> uint8 images, no need of this "
                  "package), tflite (generator.tflite), onnx (generator.onnx; pip install -e '.[onnx]').")
flags.DEFINE_string("demo_from", None, "--demo: serve this export folder (from --export) instead of a run's.")
flags.DEFINE_string("host", "127.0.0.1", "--demo: the address it listens on. 127.0.0.1: this computer only; 0.0.0.0 "
                    "opens it to every network the computer is on.")
flags.DEFINE_integer("port", 7860, "--demo: the port it listens on.")
flags.DEFINE_string("demo_dims", "8", "--demo: the z dimensions that get a slider: a count (the first N) or a list "
                    "with ranges (0-3,7).")
# projection into z (with --project)
flags.DEFINE_integer("project_steps", 300, "--project: Adam steps on z.")
flags.DEFINE_integer("project_restarts", 4, "--project: starting z per image; the best one's result is kept.")
flags.DEFINE_float("project_feature_weight", 0.1, "--project: weight of D's feature distance beside the pixel "
                   "distance (0: pixels alone).")
# visualisation (test mode with --visualize)
flags.DEFINE_string("visualize_option", "grid", "With --visualize: what to draw. carpedm20's numbers or names: 0 grid, "
                    "1 sweep, 2 random_sweep_gif, 3 sweep_gif, 4 merged_gif; or interpolate, arithmetic, progress, "
                    "plots (loss and log G/D ratio plots), d_features (D's filters: top images, guided "
                    "backpropagation), forget (drop the G filters that draw what --forget_boxes mark; "
                    "docs/forgetting.md).")
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
flags.DEFINE_string("label", None, "Conditional runs: draw only this class, by index or name (default: one row per "
                    "class). --project: the images' class.")
flags.DEFINE_float("fps", 10, "GIF frames per second (at most 100).")
flags.DEFINE_list("z_files", None, "interpolate/arithmetic: start from these z files (.npz from --project) instead "
                  "of random z: the walk tours them in order; arithmetic numbers them in order.")
flags.DEFINE_integer("d_filters", 8, "d_features: the first N filters of D's last conv layer, a row each.")
flags.DEFINE_integer("d_top", 8, "d_features: the training images that activate each filter most, per row.")
flags.DEFINE_boolean("numbered", False, "grid: enlarge and number the samples, as arithmetic's numbered grid: "
                     "visualize_grid_numbered_<step>.png, the picture --forget_boxes are drawn on.")
flags.DEFINE_string("forget_boxes", None, "forget: a CSV of boxes on the numbered grid (--visualize_option grid "
                    "--numbered, the same --num_samples, --grid_cols, --seed and --label), one row per box: "
                    "sample,x0,y0,x1,y1 in that picture's pixels. Samples without a box count as negatives.")
flags.DEFINE_string("forget_layer", None, "forget: the generator's conv layer whose filters are fitted and dropped "
                    "(g_h1, g_h2, g_h3; MNIST's nets: g_h2). Unset: the second-highest, as the DCGAN paper.")
flags.DEFINE_list("forget_filters", None, "forget: drop these filters of --forget_layer as given, no fit (e.g. 3,17); "
                  "with --forget_boxes the boxes only measure the change.")
flags.DEFINE_integer("max_frames", 200, "progress: at most this many training grids in progress.gif, evenly spaced.")
# comparison of runs (with --compare)
flags.DEFINE_list("compare_steps", None, "Steps for --compare's grid sheet (e.g. 100,400); each run shows its saved "
                  "grid nearest to each step. Unset: each run's last grid.")
flags.DEFINE_list("compare_labels", None, "Legend and row labels for --compare's runs, in order. Unset: run names.")
flags.DEFINE_string("compare_out", None, "Folder for --compare's figures. Unset: <sample_dir>/compare.")
# sweeps (with --train) and their reports
flags.DEFINE_string("sweep", None, "Train every combination of these settings as its own run: 'flag=v1,v2;flag2=v3,v4' "
                    "(a cartesian product; in augment and spectral_norm values write '+' for ','), times --seeds. "
                    "Each run is an ordinary run (own folder, resumable); samples/sweeps/<name>/ holds sweep.json, "
                    "the runs' logs and the report. The same command again skips finished runs and resumes the "
                    "rest.")
flags.DEFINE_list("seeds", None, "Train each setting (each --sweep combination) once per seed, e.g. 0,1. Alone: "
                  "replicates of one setting, as a sweep.")
flags.DEFINE_integer("sweep_parallel", 1, "Runs of a sweep trained at once: one per GPU where there are GPUs, else "
                     "the CPU's threads split between them.")
flags.DEFINE_boolean("sweep_print", False, "Print one main.py command per run of the sweep (for a job scheduler) and "
                     "write its sweep.json, instead of training; --report collects the results later.")
flags.DEFINE_string("sweep_name", None, "The sweep's folder name under <sample_dir>/sweeps. Unset: the data set, "
                    "the swept settings and the seeds.")
flags.DEFINE_float("disk_budget_mb", None, "Keep the sweep (its runs' folders and its own) within this many MB: "
                   "runs that would not fit keep fewer grids (--keep_samples / --keep_every) and one checkpoint "
                   "(--max_to_keep 1); fails before any work when even that cannot fit.")
flags.DEFINE_string("report", None, "(Re)write the report of a sweep (its name under <sample_dir>/sweeps, or its "
                    "folder) from what its runs hold now: report.md and a self-contained report.html. Trains "
                    "nothing.")
flags.DEFINE_list("report_steps", None, "Steps at which the report shows each run's grid side by side (the nearest "
                  "saved one), e.g. 100,400. Unset: each run's last grid.")
flags.DEFINE_boolean("tf_log", False, "Show TensorFlow's own log on the console (its C++ start-up notices and "
                     "warnings, which main.py otherwise leaves out) in TensorFlow's format.")

# Which flags belong to which mode: main.py fails, naming the flag, when one is given without its mode (a sweep's
# without --sweep or --seeds), and --help shows them in their mode's group below.
MODE_FLAGS = {
    "probe": ("probe_data", "probe_labels", "probe_layers", "probe_max_test"),
    "project": ("project_steps", "project_restarts", "project_feature_weight"),
    "export": ("export_format",),
    "demo": ("demo_from", "host", "port", "demo_dims"),
    "compare": ("compare_steps", "compare_labels", "compare_out"),
    "sweep": ("sweep_parallel", "sweep_print", "sweep_name", "disk_budget_mb"),
}
MODE_FLAG_NAMES = ("train", "train_autoencoder", "visualize", "evaluate", "evaluate_all", "augment_preview", "compare",
                   "report", "probe", "project", "export", "demo")

# --help: every flag above in one of these groups, in this order (tests/test_cli.py checks that none is missing)
HELP_GROUPS = (
    ("modes (at most one; none: test mode, a sample grid from the latest checkpoint)", MODE_FLAG_NAMES),
    ("data", ("dataset", "data_dir", "input_fname_pattern", "input_height", "input_width", "crop", "output_height",
              "output_width", "train_size", "cache_limit")),
    ("model", ("conditional", "matching_aware", "z_dim", "z_dist", "gf_dim", "df_dim", "seed")),
    ("balance of generator and discriminator", ("g_advantage", "d_layers", "d_batchnorm", "d_steps",
                                                "d_learning_rate")),
    ("small-data training (docs/small_data.md)", ("small_data", "augment", "augment_p", "ada_target", "ema",
                                                  "spectral_norm", "loss", "gp_weight", "r1_gamma", "r1_every")),
    ("autoencoder preprocessing", ("preprocess", "ae_code_dim", "ae_epochs", "ae_learning_rate", "swap_epoch",
                                   "dedupe")),
    ("training", ("epoch", "batch_size", "learning_rate", "beta1", "beta2", "mixed_precision", "jit_compile", "strategy",
                  "nan_policy")),
    ("outputs", ("checkpoint_dir", "sample_dir", "run_name", "sample_freq", "ckpt_freq", "max_to_keep",
                 "keep_samples", "keep_every", "min_free_mb", "grid_rows", "grid_cols", "verbose", "tf_log")),
    ("quality metrics (docs/measuring.md)", ("metrics", "metrics_freq", "metrics_samples", "metrics_features",
                                             "fid_weights", "inception_weights", "keep_best", "checkpoint")),
    ("--visualize", ("visualize_option", "num_samples", "save_individual", "sweep_dims", "visualize_steps",
                     "interpolation", "walks", "arith", "label", "fps", "max_frames", "z_files", "d_filters",
                     "d_top", "numbered", "forget_boxes", "forget_layer", "forget_filters")),
    ("looking inside the networks (docs/visualize.md)", MODE_FLAGS["probe"] + MODE_FLAGS["project"]),
    ("export and web demo (docs/serving.md)", MODE_FLAGS["export"] + MODE_FLAGS["demo"]),
    ("--compare", MODE_FLAGS["compare"]),
    ("sweeps (docs/sweeps.md)", ("sweep", "seeds") + MODE_FLAGS["sweep"] + ("report_steps",)),
)


def grouped_help(width: int = 100) -> str:
    """main.py --help: the project's flags by group, each with its default and help."""
    import textwrap

    lines = []
    for title, names in HELP_GROUPS:
        lines.append(f"{title}:")
        for name in names:
            flag = flags.FLAGS[name]
            if flag.boolean:
                head = f"  --[no]{name} (default: {str(flag.default).lower()})"
            else:
                shown = ("unset" if flag.default is None else
                         flag.default_as_str if isinstance(flag.default, str) else ",".join(map(str, flag.default))
                         if isinstance(flag.default, list) else str(flag.default))
                head = f"  --{name} (default: {shown})"
            choices = getattr(flag.parser, "enum_values", None)
            text = flag.help.split(">: ", 1)[-1] if choices else flag.help  # absl's "<a|b>: " prefix
            text += f" One of: {', '.join(choices)}." if choices else ""
            lines.append(head)
            lines += textwrap.wrap(text, width, initial_indent="      ", subsequent_indent="      ")
        lines.append("")
    lines.append("Every flag of the process, absl's and TensorFlow's included: --helpfull.")
    return "\n".join(lines)
