"""dcgan_tf command line: `python main.py --train` trains (or resumes) a run; without --train, test mode."""

import logging
import os
import shlex
import sys
import time
import typing

from absl import app
from absl import flags as absl_flags
from absl import logging as absl_logging

import flags  # defines the flags
import stderr_filter
from dcgan_tf.config import Config, ConfigError, with_loss_recipe, with_quick_start, with_small_data
from dcgan_tf.runs.resolve import resolve

FLAGS = absl_flags.FLAGS
CONFIG_FIELDS = list(Config.__dataclass_fields__)


class Mode(typing.NamedTuple):
    """One thing main.py does per command: the flag that picks it, the function that does it, and what it does."""

    flag: str | None  # a boolean or list flag; None: test mode, run when no mode flag is given
    run: typing.Callable[[Config], list[str]]  # returns the paths it wrote
    description: str


def config_values(quick_start: bool = True) -> tuple[dict, set]:
    """Config keyword values from every flag that names a Config field, with the quick start's, --small_data's and
    the --loss's recipe (config.LOSS_RECIPES) filled in where the command line does not give them; and the names the
    command line gives."""
    values = {name: FLAGS[name].value for name in CONFIG_FIELDS if name in FLAGS}
    given = {name for name in values if FLAGS[name].present}
    if quick_start:
        values = with_quick_start(values, given)  # the built-in set's quick start
    if FLAGS.small_data:
        values = with_small_data(values, given)
    return with_loss_recipe(values, given), given  # e.g. wgan_gp's 5 critic steps and Adam (0, 0.9)


def config_from_flags() -> Config:
    """The command line's settings as a validated Config."""
    values, _ = config_values()
    return resolve(Config(**values))


def sweep_from_flags():
    """--sweep / --seeds: every run of the sweep planned and validated (each run's Config), before any work."""
    from dcgan_tf.sweeps import plan

    if FLAGS.seeds and FLAGS["seed"].present:
        raise ConfigError("seeds", "gives the seeds of the sweep's runs: drop --seed")
    if FLAGS.sweep_parallel < 1:
        raise ConfigError("sweep_parallel", f"must be >= 1 (got {FLAGS.sweep_parallel})")
    values, given = config_values(quick_start=False)  # the sweep decides it run by run (a swept --dataset)
    if "verbose" not in given:  # each run's console goes to a log file: a line per epoch, not a progress bar
        values["verbose"] = 2
    return plan.plan_sweep(values, plan.parse_sweep(FLAGS.sweep), plan.parse_seeds(FLAGS.seeds), given,
                           name=FLAGS.sweep_name, command=["python", "main.py", *sys.argv[1:]],
                           disk_budget_mb=FLAGS.disk_budget_mb, report_steps=report_steps(), quick_start=True)


def report_steps() -> list[int] | None:
    try:
        return [int(step) for step in FLAGS.report_steps] if FLAGS.report_steps else None
    except ValueError:
        raise ConfigError("report_steps", f"integers expected (got {','.join(FLAGS.report_steps)})") from None


class ConsoleFormat(logging.Formatter):
    """The project's log lines as plain sentences on the console; warnings and errors say what they are."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"


def quiet_console() -> None:
    """Before TensorFlow loads: no C++ start-up chatter (stderr_filter), plain log lines; --tf_log: all of it."""
    if FLAGS.tf_log:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # what TensorFlow lets this silence, it never prints
    stderr_filter.install()  # the rest
    absl_logging.get_absl_handler().setFormatter(ConsoleFormat())


def fail(message: str) -> None:
    print(f"main.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}: every setting is a --flag (see --help)")
    mode = chosen_mode()
    if mode is SWEEP:  # planning a sweep with a disk budget builds its models: TensorFlow loads
        quiet_console()
    try:
        config = sweep_from_flags() if mode is SWEEP else config_from_flags()
    except ConfigError as error:
        fail(f"--{error.field}: {error.message}")
    except dcgan_tf_errors() as error:  # a sweep folder of other runs
        fail(str(error))
    if mode is not SWEEP:
        quiet_console()
    logging.getLogger("dcgan_tf").setLevel(logging.INFO)

    import dcgan_tf  # after validation: a bad flag fails before any data is read or anything is written

    logging.getLogger("absl").setLevel(logging.WARNING)  # TensorFlow's per-save "Sharding callback" INFO lines

    try:
        for path in mode.run(config):
            print(f"wrote {path}")
    except ConfigError as error:
        fail(f"--{error.field}: {error.message}")
    except (dcgan_tf.DiskFullError, dcgan_tf.CheckpointError, dcgan_tf.RunFolderGoneError) as error:
        print(f"main.py: error: {error}", file=sys.stderr)  # stopped mid-run: exit 1, saying what to do
        sys.exit(1)
    except (dcgan_tf.DataError, dcgan_tf.RunError, dcgan_tf.MissingWeightsError, dcgan_tf.DamagedFileError) as error:
        fail(str(error))
    except OSError as error:  # a full disk outside training (the autoencoder mode, pictures): one line, exit 1
        from dcgan_tf.files import is_disk_full

        if not is_disk_full(error):
            raise
        print(f"main.py: error: the disk is full: {error}. Free some space and run the same command", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, without a final checkpoint
        print("stopped at once; the run resumes from its last checkpoint with the same command", file=sys.stderr)
        sys.exit(130)


def chosen_mode() -> Mode:
    """The mode whose flag was given, or test mode without one; two mode flags fail before any work. --train (or
    --sweep_print) with --sweep or --seeds is the sweep mode."""
    given = [mode for mode in MODES if mode.flag and FLAGS[mode.flag].value]
    if len(given) > 1:
        names = [f"--{mode.flag}" for mode in given]
        count = {2: "two", 3: "three"}.get(len(names), str(len(names)))
        fail(f"{', '.join(names[:-1])} and {names[-1]} are {count} modes: pass one of them")
    for name in ("sweep", "seeds", "report", "sweep_name", "project", "probe_layers", "z_files", "forget_filters"):
        if FLAGS[name].present and not FLAGS[name].value:
            fail(f"--{name}: empty; give a value (see --help)")
    sweeping = FLAGS.sweep is not None or bool(FLAGS.seeds)
    if sweeping and FLAGS.report:
        fail(f"--report writes the report of a sweep that exists: drop --{'sweep' if FLAGS.sweep else 'seeds'}")
    if sweeping:
        if FLAGS.sweep_print and given and given[0].flag != "train":
            fail(f"--sweep_print prints a sweep's commands: drop --{given[0].flag}")
        if FLAGS.train or FLAGS.sweep_print:
            return SWEEP
        fail(f"--{'sweep' if FLAGS.sweep is not None else 'seeds'} trains a sweep of runs: add --train (or "
             f"--sweep_print to print their commands)")
    for mode, names in flags.MODE_FLAGS.items():  # one table: which flags belong to which mode
        for name in names:
            if FLAGS[name].present and (mode == "sweep" or not FLAGS[mode].value):
                fail(f"--{name} belongs to a sweep: add --sweep (or --seeds)" if mode == "sweep" else
                     f"--{name} belongs to --{mode}: add --{mode}")
    if FLAGS.project:  # before TensorFlow loads
        for name in ("project_steps", "project_restarts"):
            if FLAGS[name].value < 1:
                fail(f"--{name}: must be >= 1 (got {FLAGS[name].value})")
        if FLAGS.project_feature_weight < 0:
            fail(f"--project_feature_weight: must be >= 0 (got {FLAGS.project_feature_weight})")
        missing = [path for path in FLAGS.project if not os.path.isfile(path)]
        if missing:
            fail(f"--project: not a file: {', '.join(missing)}")
    if FLAGS.demo:  # before TensorFlow loads
        check_demo_flags()
    if FLAGS["report_steps"].present and not FLAGS.report:
        fail("--report_steps chooses the grids of a sweep's report: add --sweep (or --seeds), or --report")
    return given[0] if given else next(mode for mode in MODES if mode.flag is None)


def check_demo_flags() -> None:
    """--demo's flags, and Gradio, checked before any work: a wrong one fails naming it."""
    import importlib.util
    import socket

    if importlib.util.find_spec("gradio") is None:
        fail("--demo: the web demo needs Gradio: pip install -e '.[demo]'")
    if FLAGS.demo_from is not None and not os.path.isfile(os.path.join(FLAGS.demo_from, "export.json")):
        fail(f"--demo_from: {FLAGS.demo_from} is not an export folder (no export.json; write one with --export)")
    if not 1 <= FLAGS.port <= 65535:
        fail(f"--port: must be 1-65535 (got {FLAGS.port})")
    try:
        with socket.socket(socket.AF_INET6 if ":" in FLAGS.host else socket.AF_INET) as probe:
            probe.bind((FLAGS.host, FLAGS.port))
    except socket.gaierror as error:
        fail(f"--host: {FLAGS.host} is no address of this computer ({error.strerror or error})")
    except OSError as error:
        fail(f"--port: cannot listen on {FLAGS.host}:{FLAGS.port} ({error.strerror or error}); pick another --port "
             f"(or --host)")


def dcgan_tf_errors() -> tuple:
    from dcgan_tf.data.loading import DataError
    from dcgan_tf.runs.folders import RunError

    return RunError, DataError


def train(config: Config) -> list[str]:
    """--train: train (or resume) the run, then a block on how it ended, where its files are, and what next."""
    import dcgan_tf

    started = time.monotonic()
    result = dcgan_tf.train(config)
    report_training(result)
    if not result.stopped_by:
        print(end_of_run(result, time.monotonic() - started, sys.argv[1:]))
    return []


def train_sweep(sweep) -> list[str]:
    """--train --sweep (or --seeds): every unfinished run of the sweep, then its report; --sweep_print: only the
    runs' commands (and sweep.json, for --report)."""
    from dcgan_tf.runs import lock as run_lock

    with run_lock.holding(sweep.folder, what="sweep"):  # one process writes a sweep's record at a time
        return _train_sweep(sweep)


def _train_sweep(sweep) -> list[str]:
    from dcgan_tf.sweeps import plan, runner

    sweep = plan.merge_saved(sweep)
    for line in sorted({f"--{name} is left out of the runs with {run.setting_label}: {why}"
                        for run in sweep.runs for name, why in run.dropped.items()}):
        print(line, file=sys.stderr if FLAGS.sweep_print else sys.stdout)
    if FLAGS.sweep_print:  # stdout: the commands alone, one per line, for a job scheduler to run
        sweep.save()
        print("\n".join(plan.print_commands(sweep, ["python", sys.argv[0]])))
        print(f"wrote {sweep.file}", file=sys.stderr)
        return []
    print(f"sweep {sweep.name}: {len(sweep.runs)} runs, {FLAGS.sweep_parallel} at a time; {sweep.folder}")
    outcome = runner.run_and_report(sweep, [sys.executable, os.path.abspath(sys.argv[0])],
                                    parallel=FLAGS.sweep_parallel)
    if outcome.stopped_by:
        print(f"sweep {sweep.name} stopped by {outcome.stopped_by}: the running runs saved a checkpoint; the same "
              f"command resumes the sweep. Report so far: {outcome.written[-1]}", file=sys.stderr)
        sys.exit(130)
    print(f"sweep {sweep.name}: {len(outcome.finished)} of {len(sweep.runs)} runs finished; report: "
          f"{outcome.report_html}")
    if outcome.unfinished:
        for path in outcome.written:
            print(f"wrote {path}")
        problems = outcome.unfinished_lines()
        print(f"main.py: error: {len(problems)} run(s) did not finish: {'; '.join(problems)}. The same command "
              f"resumes them.", file=sys.stderr)
        sys.exit(1)
    return outcome.written


def write_report(config: Config) -> list[str]:
    """--report: (re)write a sweep's report from what its runs hold now."""
    from dcgan_tf.sweeps import plan, report

    return report.write_report(plan.sweep_folder(FLAGS.report, config.sample_dir), report_steps())


def run_test_mode(config: Config) -> list[str]:
    """No mode flag (test mode): a sample grid from the run's latest checkpoint."""
    import dcgan_tf

    return [dcgan_tf.write_test_grid(config)]


def visualize(config: Config) -> list[str]:
    """--visualize: the chosen picture of the run's latest checkpoint (or its loss plots)."""
    from dcgan_tf.analysis.visualize import VisualizeOptions, option_name
    from dcgan_tf.analysis.visualize import visualize as draw

    options = VisualizeOptions(
        option=option_name(FLAGS.visualize_option), num_samples=FLAGS.num_samples, grid_rows=FLAGS.grid_rows,
        save_individual=FLAGS.save_individual, dims=FLAGS.sweep_dims, steps=FLAGS.visualize_steps,
        interpolation=FLAGS.interpolation, walks=FLAGS.walks, arith=FLAGS.arith, label=FLAGS.label, fps=FLAGS.fps,
        max_frames=FLAGS.max_frames, z_files=FLAGS.z_files, filters=FLAGS.d_filters, top=FLAGS.d_top,
        numbered=FLAGS.numbered, forget_boxes=FLAGS.forget_boxes, forget_layer=FLAGS.forget_layer,
        forget_filters=FLAGS.forget_filters)
    return draw(config, options)


def probe(config: Config) -> list[str]:
    """--probe: the linear probe of the run's D features against its untrained D, pixels (and autoencoder)."""
    from dcgan_tf.analysis.probe import PROBE_FILE, ProbeOptions, describe, probe_run
    from dcgan_tf.runs import folders

    try:
        layers = tuple(int(layer) for layer in FLAGS.probe_layers) if FLAGS.probe_layers else None
    except ValueError:
        raise ConfigError("probe_layers", f"integers expected (got {','.join(FLAGS.probe_layers)})") from None
    if FLAGS.probe_data and not os.path.isdir(os.path.expanduser(FLAGS.probe_data)):
        raise ConfigError("probe_data", f"{FLAGS.probe_data} is not a folder")
    record = probe_run(config, ProbeOptions(FLAGS.probe_data, FLAGS.probe_labels, layers, FLAGS.probe_max_test))
    print(describe(record))
    folder = os.path.join(config.checkpoint_dir, record["run"])
    return [os.path.join(folder, PROBE_FILE), folders.metrics_file(folder)]


def project(config: Config) -> list[str]:
    """--project: each image's z (G(z) matching it), with its picture, .npz and GIF."""
    from dcgan_tf.analysis.projection import write_projection
    from dcgan_tf.runs import folders
    from dcgan_tf.runs.trained import load_trained

    saved = folders.open_saved_run(config)  # its settings, before its weights load
    if saved.conditional and FLAGS.label is None:
        raise ConfigError("label", f"run {saved.name!r} is conditional: give the images' class with --label")
    label = None if FLAGS.label is None else saved.label_index(FLAGS.label)  # an index or a class name
    saved, model, step = load_trained(config)
    return write_projection(saved, model, step, FLAGS.project, labels=label, steps=FLAGS.project_steps,
                            restarts=FLAGS.project_restarts, feature_weight=FLAGS.project_feature_weight,
                            fps=FLAGS.fps)


def export(config: Config) -> list[str]:
    """--export: the run's sampling generator as files other programs load, and export.json."""
    from dcgan_tf.serving.export import describe, export_run, parse_formats, read_info

    paths = export_run(config, parse_formats(FLAGS.export_format))
    print(describe(read_info(os.path.dirname(paths[0]))))
    return paths


def parse_demo_dims():
    """--demo_dims read as visualize's --sweep_dims: "all", a count, or a tuple of dimensions."""
    from dcgan_tf.analysis.visualize import parse_dims

    try:
        return parse_dims(FLAGS.demo_dims)
    except ConfigError as error:
        raise ConfigError("demo_dims", error.message) from None


def demo_dims(dims, z_dim: int) -> list[int]:
    """parse_demo_dims' value as the z dimensions that get a slider (each < z_dim; a count: the first N)."""
    if dims == "all" or isinstance(dims, int):
        return list(range(z_dim if dims == "all" else min(dims, z_dim)))
    wrong = [dim for dim in dims if dim >= z_dim]
    if wrong:
        raise ConfigError("demo_dims", f"dimension {wrong[0]} is out of range: this generator's z has {z_dim} "
                                       f"dimensions, 0-{z_dim - 1}")
    return list(dims)


def demo(config: Config) -> list[str]:
    """--demo: the local web app on --host:--port, from the run's export (written first when missing or older
    than the newest checkpoint) or --demo_from's; until Ctrl-C."""
    from dcgan_tf.runs import folders
    from dcgan_tf.serving import export
    from dcgan_tf.serving.demo import app

    print(app.listening_message(FLAGS.host, FLAGS.port))  # the first line: where it listens, who can reach it
    dims = parse_demo_dims()
    try:
        if FLAGS.demo_from:
            folder = FLAGS.demo_from
            dims = demo_dims(dims, export.read_info(folder)["z_dim"])
        else:
            saved = folders.open_saved_run(config)
            folder = export.export_folder(saved)
            dims = demo_dims(dims, saved.z_dim)  # before any export
            written = export.export_if_stale(config, saved)
            if written:
                print(f"exported step {export.read_info(folder)['step']} first: {', '.join(written)}")
        app.launch(folder, host=FLAGS.host, port=FLAGS.port, dims=dims, block=True, log=print, announce=False)
    except KeyboardInterrupt:  # before it served
        print("demo stopped")
    return []


def compare(config: Config) -> list[str]:
    """--compare: loss/ratio curves of several runs overlaid, and their sample grids side by side."""
    from dcgan_tf.analysis.compare import write_comparison
    from dcgan_tf.runs.folders import resolve_run

    try:
        steps = [int(step) for step in FLAGS.compare_steps] if FLAGS.compare_steps else None
    except ValueError:
        raise ConfigError("compare_steps", f"integers expected (got {','.join(FLAGS.compare_steps)})") from None
    if FLAGS.compare_labels and len(FLAGS.compare_labels) != len(FLAGS.compare):
        raise ConfigError("compare_labels", f"{len(FLAGS.compare_labels)} labels for {len(FLAGS.compare)} runs")
    found = [resolve_run(run, config.checkpoint_dir, config.sample_dir) for run in FLAGS.compare]
    out = FLAGS.compare_out or os.path.join(config.sample_dir, "compare")
    return write_comparison(found, out, steps, FLAGS.compare_labels or None)


def evaluate(config: Config, every_checkpoint: bool = False) -> list[str]:
    """--evaluate / --evaluate_all: measure the run's checkpoint(s); one line per evaluation."""
    from dcgan_tf.metrics.evaluate import describe, evaluate_run
    from dcgan_tf.runs.folders import metrics_file

    rows = evaluate_run(config, every_checkpoint=every_checkpoint)
    for row in rows:
        print(f"{row['checkpoint']}: {describe(row)}")
    return [metrics_file(os.path.join(config.checkpoint_dir, config.name))]


def evaluate_all(config: Config) -> list[str]:
    return evaluate(config, every_checkpoint=True)


def augment_preview(config: Config) -> list[str]:
    """--augment_preview: training images and their augmentations as D sees them."""
    from dcgan_tf.analysis.augment_preview import write_augment_preview

    return [write_augment_preview(config)]


def train_autoencoder(config: Config) -> list[str]:
    """--train_autoencoder: the preprocessing alone (the autoencoder, its pictures and reconstructions)."""
    from dcgan_tf.preprocess.preprocessing import train_autoencoder as run

    result = run(config)
    loss = result.autoencoded.final_loss
    if loss is not None:
        print(f"autoencoder mean squared error after training: {loss:.4f} (images in [-1, 1])")
    if result.duplicates:
        print(f"{len(result.duplicates)} near-duplicate images dropped")
    return result.written


def report_training(result) -> None:
    """How a run that did not finish ended: one line (a NaN: on stderr, and exit 1). end_of_run reports the rest."""
    where = f"{result.config.name} at step {result.step}, epoch {result.epoch}"
    if result.stopped_by == "nan":
        what = "weights" if result.nan_values == ["weights"] else "loss"
        print(f"main.py: error: training diverged (NaN/Inf {what} at step {result.nan_step}) in {where}; no "
              f"checkpoint was written after it (last good: {result.last_checkpoint}). Retry with --nan_policy "
              f"rollback or a lower --learning_rate.", file=sys.stderr)
        sys.exit(1)
    if result.stopped_by:
        print(f"stopped by {result.stopped_by}: {where}, checkpoint saved; run the same command to resume")


# Every mode of main.py: a command gives at most one mode flag; with none, test mode (the last row) runs.
MODES = (
    Mode("augment_preview", augment_preview, "write training images as --augment shows them to D"),
    Mode("compare", compare, "overlay the losses, G/D ratios and metrics of several runs; their grids side by side"),
    Mode("evaluate", evaluate, "measure the run's latest (or best) checkpoint with --metrics"),
    Mode("evaluate_all", evaluate_all, "measure every checkpoint the run kept with --metrics"),
    Mode("train_autoencoder", train_autoencoder, "train (or reuse) only the autoencoder; write its reconstructions"),
    Mode("train", train, "train (or resume) the run"),
    Mode("visualize", visualize, "draw --visualize_option from the run's latest checkpoint"),
    Mode("probe", probe, "linear probe: classify labelled images from D's features (vs untrained D, pixels)"),
    Mode("project", project, "find the z of real images (G(z) matching them), for walks and arithmetic"),
    Mode("export", export, "write the generator as .keras, SavedModel (and tflite, onnx) files with export.json"),
    Mode("demo", demo, "serve a local web demo of the generator: samples, z sliders, walks, arithmetic"),
    Mode("report", write_report, "(re)write a sweep's report (report.md, report.html) from what its runs hold"),
    Mode(None, run_test_mode, "test mode: a sample grid from the run's latest checkpoint"),
)


SWEEP = Mode("sweep", train_sweep, "train every run of --sweep x --seeds, then write the sweep's report")


def end_of_run(result, seconds: float, argv: list[str]) -> str:
    """Where the run's grids, plots, losses and checkpoints are, and the next commands to try (the same flags, so
    they find the same run)."""
    from dcgan_tf.runs import folders

    config = result.config
    grids = folders.list_training_grids(config.sample_path)
    plots = sorted(os.path.join(config.sample_path, name) for name in os.listdir(config.sample_path)
                   if name.startswith("plot_") and name.endswith(".png")) if os.path.isdir(config.sample_path) else []
    lines = [f"trained {config.name} at step {result.step}, epoch {result.epoch} in {seconds / 60:.1f} minutes"]
    if grids:
        count = f"{len(grids)} grid{'s' if len(grids) > 1 else ''}"
        lines.append(f"  latest grid  {grids[max(grids)]}  ({count} in {config.sample_path})")
    if plots:
        lines.append(f"  plots        {', '.join(plots)}")
    csv = os.path.join(config.checkpoint_path, folders.LOSS_CSV)
    if os.path.isfile(csv):
        lines.append(f"  losses       {csv}")
    if result.last_checkpoint:
        lines.append(f"  checkpoint   {result.last_checkpoint}")
    same = shlex.join(["python", "main.py", *[arg for arg in argv if arg not in ("--train", "--train=true")]])
    logs = os.path.join(config.checkpoint_path, folders.TENSORBOARD_DIR)
    lines += ["next:",
              "  # a fresh grid from the checkpoint (test mode)", f"  {same}",
              "  # walks through z, one row per walk", f"  {same} --visualize --visualize_option interpolate",
              "  # measure the samples (docs/measuring.md)", f"  {same} --evaluate --metrics kid,fid",
              "  # the loss curves", f"  tensorboard --logdir {logs}"]
    return "\n".join(lines)


HELP_ARGS = ("--help", "-h", "-?", "--helpshort")

if __name__ == "__main__":
    if any(arg in HELP_ARGS for arg in sys.argv[1:]):  # the project's flags, grouped; --helpfull: absl's listing
        print(f"{__doc__}\n\n{flags.grouped_help()}")
        sys.exit(0)
    app.run(main)
