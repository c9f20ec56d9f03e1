"""Planning a sweep: every combination of some settings, times some seeds, as ordinary runs, recorded in one folder.

`--sweep "g_advantage=2,4,50;d_layers=2,4" --seeds 1,2` plans 12 runs (a cartesian product, then the seeds). Each is
an ordinary run with its own run folder and the usual name (seed included when not 1), trained by its own
`main.py --train` process, so a crash of one cannot take the others down and each resumes as any run does.
`<sample_dir>/sweeps/<name>/sweep.json` holds the grid, the run names, each run's command and how it went;
`logs/<run>.log` each run's console. The same sweep command again skips finished runs and resumes the others.
Running the planned runs is sweeps.runner's job; this module starts no process.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import itertools
import logging
import os
import re
import shlex
import typing

from dcgan_tf import files
from dcgan_tf.config import QUICK_START, Config, ConfigError, with_loss_recipe, with_quick_start
from dcgan_tf.runs import folders as runs
from dcgan_tf.runs.resolve import resolve

log = logging.getLogger(__name__)

SWEEPS_DIR = "sweeps"
SWEEP_FILE = "sweep.json"
LOGS_DIR = "logs"
# Settings a sweep does not vary, and what to use instead (output settings are refused as a kind)
NOT_SWEPT = {"seed": "give the seeds with --seeds", "run_name": "a sweep names each of its runs",
             "epoch": "every run of a sweep trains as long (set --epoch); a longer run continues a finished one"}
# Comma-separated settings: in a sweep value their commas are written as '+' (augment=color+translation,none)
LIST_SETTINGS = ("augment", "spectral_norm")
KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false"}


@dataclasses.dataclass
class SweepRun:
    """One run of a sweep: its swept settings, seed, name, the settings it leaves out, and how it went."""

    name: str
    settings: dict  # swept flag -> this run's value
    seed: int
    args: list  # main.py's flags that train it (without the program)
    epoch: int
    checkpoint_path: str
    sample_path: str
    dropped: dict = dataclasses.field(default_factory=dict)  # fixed setting -> why this run leaves it out
    status: str = "pending"
    returncode: int | None = None
    wall_seconds: float = 0.0  # the sweep's processes' wall time on it, summed over resumes
    log: str = ""  # its console log, relative to the sweep folder

    def command(self, program: typing.Sequence[str] = ("python", "main.py")) -> list[str]:
        return [*program, *self.args]

    @property
    def setting_label(self) -> str:
        """The run's swept settings, e.g. 'g_advantage=4' ('' when only seeds are swept)."""
        return " ".join(f"{k}={format_value(v)}" for k, v in self.settings.items())

    @property
    def label(self) -> str:
        """The run's swept settings and seed, e.g. 'g_advantage=4 seed=2'."""
        return f"{self.setting_label} seed={self.seed}".strip()


@dataclasses.dataclass
class Sweep:
    """A planned sweep: where it lives, its grid and seeds, its runs, and the command that made it."""

    name: str
    folder: str
    grid: dict  # swept flag -> values, in the order given
    seeds: list
    runs: list  # SweepRun
    command: list  # the sweep's own command line
    disk_budget_mb: float | None = None
    budget: dict = dataclasses.field(default_factory=dict)  # what the budget set, and the estimate it rests on
    report_steps: list | None = None

    @property
    def file(self) -> str:
        return os.path.join(self.folder, SWEEP_FILE)

    def to_json(self) -> dict:
        return {"name": self.name, "cwd": os.getcwd(), "grid": self.grid, "seeds": self.seeds, "command": self.command,
                "disk_budget_mb": self.disk_budget_mb, "budget": self.budget, "report_steps": self.report_steps,
                "updated": datetime.datetime.now().isoformat(timespec="seconds"),
                "runs": [dataclasses.asdict(run) for run in self.runs]}

    def save(self) -> str:
        return files.write_json(self.file, self.to_json())


# ------------------------------------------------------------------------------------------ the grid
def format_value(value) -> str:
    """A setting's value as the command line writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return "none" if value is None else str(value)


def _field_type(name: str) -> tuple[type, bool]:
    """(str, int, float or bool; whether None is allowed) of a Config field."""
    hint = typing.get_type_hints(Config)[name]
    args = typing.get_args(hint)
    if type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return inner, True
    return hint, False


def parse_value(name: str, text: str):
    """One sweep value of setting `name`, typed as its Config field (ConfigError naming --sweep otherwise)."""
    kind, optional = _field_type(name)
    text = text.strip()
    lowered = text.lower()
    if name in LIST_SETTINGS:
        return "" if lowered == "none" else text.replace("+", ",")
    if optional and lowered == "none":
        return None
    try:
        if kind is bool:
            if lowered in ("true", "1", "yes", "t", "y"):
                return True
            if lowered in ("false", "0", "no", "f", "n"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise ConfigError("sweep", f"{name}={text}: not {KIND_NAMES[kind]}") from None
    return text


def parse_sweep(text: str) -> dict:
    """'g_advantage=2,4,50;preprocess=none,autoencoder' -> {"g_advantage": [2, 4, 50], "preprocess": [...]}."""
    fields = {field.name: field for field in dataclasses.fields(Config)}
    grid = {}
    for part in (piece.strip() for piece in (text or "").split(";")):
        if not part:
            continue
        name, equals, values = part.partition("=")
        name = name.strip().lstrip("-")
        if not equals or not values.strip():
            raise ConfigError("sweep", f"{part!r}: write setting=value1,value2 (settings separated by ';')")
        field = fields.get(name)
        if field is None or not field.metadata["flag"]:
            raise ConfigError("sweep", f"{name!r} is not a run setting (see --help for the settings)")
        if name in NOT_SWEPT:
            raise ConfigError("sweep", f"{name} is not swept: {NOT_SWEPT[name]}")
        if field.metadata["kind"] == "output":
            raise ConfigError("sweep", f"{name} is an output setting: it changes what is written, not the run; "
                                       "give it once for every run")
        if name in grid:
            raise ConfigError("sweep", f"{name} is given twice")
        parsed = [parse_value(name, value) for value in values.split(",")]
        if len(set(map(format_value, parsed))) != len(parsed):
            raise ConfigError("sweep", f"{name} lists a value twice ({values.strip()})")
        grid[name] = parsed
    return grid


def parse_seeds(values) -> list[int] | None:
    """--seeds as ints (None: unset); ConfigError naming --seeds for anything else."""
    if not values:
        return None
    try:
        seeds = [int(value) for value in values]
    except ValueError:
        raise ConfigError("seeds", f"integers expected (got {','.join(map(str, values))})") from None
    if any(not 0 <= seed < 2**32 for seed in seeds):
        raise ConfigError("seeds", f"each must be in [0, 2**32) (got {','.join(map(str, seeds))})")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", f"a seed is listed twice ({','.join(map(str, seeds))})")
    return seeds


def default_sweep_name(base: Config, grid: dict, seeds: list[int]) -> str:
    """The data set, each swept setting with its values, and the seeds (unless only the default seed 1):
    mice_g_advantage-2-4-50_seeds-0-1. A name over 120 characters is cut, with a hash of the whole."""
    parts = [base.dataset_name]
    for name, values in grid.items():
        parts.append("-".join([name, *(_plain(format_value(v).replace(",", "+")) or "none" for v in values)]))
    if seeds != [Config.seed]:
        parts.append("-".join(["seeds", *map(str, seeds)]))
    name = "_".join(parts)
    if len(name) <= 120:
        return name
    return f"{name[:111]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def args_for(values: dict) -> list[str]:
    """main.py's flags for Config keyword values: every flag setting that differs from Config's default, in the
    order Config declares them, then --train. Without a data set every quick-start setting is written out, as
    main.py fills in the quick start's values for those it is not given."""
    always = set(QUICK_START) if values.get("dataset") is None else set()
    args = []
    for field in dataclasses.fields(Config):
        if not field.metadata["flag"] or field.name not in values:
            continue
        value = values[field.name]
        if value == field.default and type(value) is type(field.default) and field.name not in always:
            continue
        if isinstance(value, bool):
            args.append(f"--{field.name}" if value else f"--no{field.name}")
        elif value is None:
            if field.name == "ema":
                args.append("--ema=0")  # what unsets it on the command line
                continue
            raise ConfigError(field.name, "cannot be unset on the command line in a sweep")  # no flag says None
        else:
            args.append(f"--{field.name}={format_value(value)}")
    return [*args, "--train"]


# Settings that only mean something beside another one: a combination that turns the other one off leaves them out
# (--swap_epoch 20 beside preprocess=none), rather than failing the sweep.
DEPENDS_ON = {"swap_epoch": "preprocess", "augment_p": "augment", "ada_target": "augment", "gp_weight": "loss",
              "r1_every": "r1_gamma"}


def _combination_config(values: dict, swept: set, given: set) -> tuple[Config, dict, dict]:
    """The Config of one combination, leaving out a fixed setting that only means something beside a swept one this
    combination turns off (DEPENDS_ON); any other invalid combination fails: (config, values, dropped)."""
    values, dropped = dict(values), {}
    defaults = {field.name: field.default for field in dataclasses.fields(Config)}
    for _ in range(len(DEPENDS_ON) + 1):
        try:
            return resolve(Config(**values)), values, dropped
        except ConfigError as error:
            name = error.field
            if name not in given or name in dropped or DEPENDS_ON.get(name) not in swept:
                raise
            values, dropped[name] = {**values, name: defaults[name]}, error.message
    raise AssertionError("unreachable")


def _plain(text: str) -> str:
    """A value made fit for a folder name: no separators or glob characters."""
    return re.sub(r"[\\/*?\[\]:\s]+", "+", text)


def plan_sweep(base_values: dict, grid: dict, seeds: list[int] | None = None, given: set | frozenset = frozenset(),
               name: str | None = None, command: list[str] | None = None, disk_budget_mb: float | None = None,
               report_steps: list[int] | None = None, quick_start: bool = False) -> Sweep:
    """Every combination of `grid` (cartesian, in the order given) times `seeds` as a Sweep of runs.

    base_values: Config keyword values of everything else (the command's); `given`: the settings the command set
    explicitly (only those may be left out of a combination that has no use for them; one no combination uses
    is an error). A swept setting that does not name runs (a training setting) is added to the run name.
    quick_start: fill in main.py's quick start (config.QUICK_START) for combinations without a data set, as main.py
    does for one run. disk_budget_mb: thin each run's grids and checkpoints so that the sweep fits
    (disk_budget.fit_budget).
    """
    if base_values.get("run_name"):
        raise ConfigError("run_name", "names one run, and a sweep names each of its runs: name the sweep with "
                                      "--sweep_name")
    base = Config(**base_values)
    seeds = seeds or [base.seed]
    if not grid and len(seeds) < 2:
        raise ConfigError("sweep", "nothing to sweep: give settings (e.g. --sweep 'g_advantage=2,4,50') or "
                                   "several --seeds")
    name = name or default_sweep_name(base, grid, seeds)
    if not name or os.sep in name or name in (".", ".."):
        raise ConfigError("sweep_name", f"must be a plain folder name (got {name!r})")
    swept, planned, used, made = set(grid), [], set(), []
    fixed = set(given) - swept
    for combination in itertools.product(*grid.values()):
        settings = dict(zip(grid, combination))
        for seed in seeds:
            values = {**base_values, **settings, "seed": seed}
            if quick_start:
                values = with_quick_start(values, set(given) | swept)
            values = with_loss_recipe(values, set(given) | swept)
            config, values, dropped = _combination_config(values, swept, fixed)
            used |= fixed - set(dropped)
            unnamed = [k for k in grid if Config.__dataclass_fields__[k].metadata["kind"] != "model"]
            if unnamed:
                suffix = "_".join(f"{k}{_plain(format_value(settings[k]))}" for k in unnamed)
                values["run_name"] = f"{config.default_run_name()}_{suffix}"
                config = dataclasses.replace(config, run_name=values["run_name"]).validate()
            made.append((values, config))
            planned.append(SweepRun(name=config.name, settings=settings, seed=seed, args=args_for(values),
                                    epoch=config.epoch, checkpoint_path=config.checkpoint_path,
                                    sample_path=config.sample_path, dropped=dropped))
    for run in planned:
        for setting, why in run.dropped.items():
            if setting not in used:  # no combination has a use for it: the user's error, as Config says it
                raise ConfigError(setting, why)
    names = [run.name for run in planned]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError("sweep", f"two combinations make the same run ({', '.join(twice)}): their values differ "
                                   f"in nothing the run depends on")
    folder = os.path.join(base.sample_dir, SWEEPS_DIR, name)
    _check_same_runs(folder, name, [run.name for run in planned])
    for config in {(c.dataset, c.data_dir): c for _, c in made}.values():
        _check_data_folder(config)
    budget = {}
    if disk_budget_mb is not None:
        if not disk_budget_mb > 0:
            raise ConfigError("disk_budget_mb", f"must be > 0 (got {disk_budget_mb:g})")
        from dcgan_tf.sweeps.disk_budget import fit_budget

        overrides, budget = fit_budget([config for _, config in made], disk_budget_mb, len(report_steps or [1]))
        for run, (values, _), change in zip(planned, made, overrides):
            run.args = args_for({**values, **change})
            budget.setdefault("settings", {})[run.name] = change
    return Sweep(name=name, folder=folder, grid=grid, seeds=seeds, runs=planned, command=list(command or []),
                 disk_budget_mb=disk_budget_mb, budget=budget, report_steps=report_steps)


def _check_data_folder(config: Config) -> None:
    """ConfigError naming --dataset when a run's data folder does not exist (before any run starts)."""
    folder = config.image_folder()
    if folder and not os.path.isdir(folder):
        raise ConfigError("dataset", f"no data folder {config.dataset!r}: neither a folder nor a folder under "
                                     f"{os.path.abspath(os.path.expanduser(config.data_dir))}")


def _check_same_runs(folder: str, name: str, names: list[str]) -> None:
    """RunError when the folder already holds a sweep of other runs (another grid or other fixed settings)."""
    path = os.path.join(folder, SWEEP_FILE)
    try:
        record = files.read_json_object(path)
    except files.DamagedFileError as error:  # planned again below, and written anew; kept to look at
        log.warning("%s; set aside as %s, and the sweep is planned again", error, files.set_aside(path))
        return
    if not isinstance(record, dict) or not isinstance(record.get("runs"), list):
        return
    saved = [run.get("name") for run in record["runs"] if isinstance(run, dict)]
    if saved != names:
        raise runs.RunError(f"sweep {name!r} in {os.path.abspath(folder)} holds other runs ({', '.join(saved)}); "
                            f"this command plans {', '.join(names)}. Name this one with --sweep_name")


# ------------------------------------------------------------------------------------------ the record
def sweep_folder(name_or_folder: str, sample_dir: str = "samples") -> str:
    """A sweep's folder from its name (under <sample_dir>/sweeps) or its path; RunError listing the sweeps."""
    text = os.path.expanduser(name_or_folder.strip())
    for folder in (text, os.path.join(sample_dir, SWEEPS_DIR, text)):
        if os.path.isfile(os.path.join(folder, SWEEP_FILE)):
            return folder
    root = os.path.join(sample_dir, SWEEPS_DIR)
    known = sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, SWEEP_FILE))) \
        if os.path.isdir(root) else []
    raise runs.RunError(f"no sweep {name_or_folder!r}: neither a folder holding {SWEEP_FILE} nor a sweep under "
                        f"{os.path.abspath(root)} (sweeps there: {', '.join(known) or 'none'})")


def load_sweep(folder: str) -> Sweep:
    """The Sweep recorded in a folder's sweep.json."""
    try:
        record = files.read_json_object(os.path.join(folder, SWEEP_FILE))
    except files.DamagedFileError as error:
        raise runs.RunError(f"{error}. The sweep's runs are untouched: the --sweep command that planned it plans it "
                            f"again (finished runs are skipped, the others resume)") from None
    if not isinstance(record, dict) or "runs" not in record:
        raise runs.RunError(f"{os.path.join(folder, SWEEP_FILE)} is not a sweep record")
    known = {f.name for f in dataclasses.fields(SweepRun)}
    planned = [SweepRun(**{k: v for k, v in run.items() if k in known}) for run in record["runs"]]
    started_in = record.get("cwd")
    for run in planned:  # paths relative to where the sweep was planned, read from another folder (--report)
        for key in ("checkpoint_path", "sample_path"):
            path = getattr(run, key)
            if started_in and not os.path.isabs(path) and not os.path.exists(path) \
                    and os.path.exists(os.path.join(started_in, path)):
                setattr(run, key, os.path.join(started_in, path))
    return Sweep(name=record.get("name") or os.path.basename(os.path.normpath(folder)), folder=folder,
                 grid=record.get("grid", {}), seeds=record.get("seeds", []), runs=planned,
                 command=record.get("command", []), disk_budget_mb=record.get("disk_budget_mb"),
                 budget=record.get("budget") or {}, report_steps=record.get("report_steps"))


def merge_saved(sweep: Sweep) -> Sweep:
    """The planned sweep with what its folder's sweep.json recorded about each run (status, wall time, log);
    RunError when the folder holds a sweep of other runs (another grid or other fixed settings)."""
    if not os.path.isfile(sweep.file):
        return sweep
    _check_same_runs(sweep.folder, sweep.name, [run.name for run in sweep.runs])
    saved = load_sweep(sweep.folder)
    for run, before in zip(sweep.runs, saved.runs):
        run.wall_seconds, run.returncode, run.log = before.wall_seconds, before.returncode, before.log
        changed = sorted(set(run.args) ^ set(before.args))
        if changed and is_finished(run):
            log.warning("run %s finished with other settings than this command gives (%s): it is skipped as "
                        "finished; its config.json says what it used", run.name, " ".join(changed))
        run.status = before.status if before.status in ("finished", "failed") else "stopped" \
            if before.status in ("running", "stopped") else "pending"
    return sweep


def is_finished(run: SweepRun) -> bool:
    """Whether the run has trained all its epochs (its run folder says so)."""
    epoch = runs.finished_epoch(run.checkpoint_path)
    return epoch is not None and epoch >= run.epoch


def print_commands(sweep: Sweep, program: typing.Sequence[str] = ("python", "main.py")) -> list[str]:
    """One shell command per run (for a job scheduler), in the sweep's order."""
    return [shlex.join(run.command(program)) for run in sweep.runs]
