"""Run folders and the names of the files in them; finding a run by name or folder; a saved run refuses a changed
model.

`<checkpoint_dir>/<run>/` holds config.json, the checkpoints, losses.csv, metrics.jsonl, best/ (--keep_best) and
TensorBoard logs; `<sample_dir>/<run>/` holds the pictures, among them the training grids `train_<step:08d>.png`.
`<checkpoint_dir>/metrics_cache/` holds what the metrics compute once per data set (real-image features, the label
classifier).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass

from dcgan_tf import files
from dcgan_tf.config import Config

CONFIG_FILE = "config.json"
LOSS_CSV = "losses.csv"
TENSORBOARD_DIR = "logs"
METRICS_JSONL = "metrics.jsonl"
BEST_DIR = "best"
METRICS_CACHE_DIR = "metrics_cache"
FINISHED_FILE = "finished.json"  # written when a run has trained all its epochs: {"step", "epoch"}
TRAIN_GRID = re.compile(r"^train_(\d+)\.png$")

log = logging.getLogger(__name__)


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
    """The config saved in this config's run folder, or None for a new run; RunError naming the file, saying how to
    recover the run, when it is damaged (nothing is changed)."""
    path = config_file(config)
    try:
        values = files.read_json_object(path)
        if values is None:
            return None
        return Config.from_values(values)
    except (files.DamagedFileError, TypeError) as error:
        raise RunError(damaged_config_message(config, path, error)) from None


def damaged_config_message(config: Config, path: str, error: Exception) -> str:
    """What to do about a damaged config.json: the run's settings are also in its name and its weights' shapes."""
    steps = [re.match(r"^ckpt-(\d+)\.index$", name) for name in os.listdir(config.checkpoint_path)]
    newest = max((int(match.group(1)) for match in steps if match), default=None)
    found = f"its newest checkpoint, ckpt-{newest}" if newest is not None else "its checkpoints (it has none yet)"
    fault = error if isinstance(error, files.DamagedFileError) else f"{path} is damaged: {error}"
    return (f"{fault}. It holds the run's settings, so nothing was done and nothing in {config.checkpoint_path} "
            f"was changed. To recover the run, move the file aside (mv {path} {path}.damaged) and run the command "
            f"that trained it, with --train: the run's name ({config.name}) says most of its settings, config.json "
            f"is written again and training resumes from {found}; if a model setting differs, no checkpoint "
            f"restores and the run stops before writing anything")


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
    return files.write_text(config_file(config), config.to_json())


# Output settings a reader of a run (test mode, --visualize, --evaluate) takes from its own command.
READER_SETTINGS = ("metrics", "metrics_samples", "metrics_features", "fid_weights", "inception_weights",
                   "checkpoint")


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
                         "run_name": config.name, "verbose": config.verbose,
                         **{name: getattr(config, name) for name in READER_SETTINGS}}
    values = {**{k: getattr(saved, k) for k in saved.__dataclass_fields__}, **keep_from_command}
    return Config(**values).resolved()


def checkpoint_folder(config: Config) -> str:
    """The folder a reader restores from: the run folder, or its best/ under --checkpoint best."""
    if config.checkpoint == "best":
        return os.path.join(config.checkpoint_path, BEST_DIR)
    return config.checkpoint_path


# ------------------------------------------------------------------------------------------ metrics.jsonl
def metrics_file(checkpoint_path: str) -> str:
    return os.path.join(checkpoint_path, METRICS_JSONL)


def read_metrics(checkpoint_path: str) -> list[dict]:
    """The evaluations in a run's metrics.jsonl, in file order ([] when there is none); a line torn by a kill (or
    not a JSON object with a step) is skipped."""
    try:
        with open(metrics_file(checkpoint_path), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    return [row for row in map(_metrics_row, lines) if row is not None]


def _metrics_row(line: str) -> dict | None:
    """One metrics.jsonl line as its row; None when it is torn or not an evaluation (a JSON object with a step)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None


def keep_metrics_until(checkpoint_path: str, step: int) -> list[dict]:
    """Rewrite metrics.jsonl without the evaluations after `step` (made after the checkpoint a run resumed from; the
    resumed run repeats them), atomically; the rows kept. Torn or invalid lines (a kill mid-write, a hand edit) are
    set aside, appended to metrics.jsonl.torn, and said."""
    path = metrics_file(checkpoint_path)
    if os.path.isfile(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            torn = [line for line in handle.read().splitlines() if line.strip() and _metrics_row(line) is None]
        if torn:
            with open(path + ".torn", "a", encoding="utf-8") as handle:
                handle.write("".join(line + "\n" for line in torn))
            log.warning("%s: %d torn or invalid line(s) set aside in %s.torn; the complete lines are kept", path,
                        len(torn), path)
    rows = [row for row in read_metrics(checkpoint_path) if row["step"] <= step]
    if os.path.isfile(path):
        files.write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
    return rows


def append_metrics(checkpoint_path: str, row: dict) -> None:
    """One evaluation as one JSON line at the end of metrics.jsonl, flushed."""
    os.makedirs(checkpoint_path, exist_ok=True)
    path = metrics_file(checkpoint_path)
    with open(path, "a+b") as handle:  # after a line torn without its newline, the new row starts a line of its own
        torn = False
        if handle.seek(0, os.SEEK_END) > 0:
            handle.seek(-1, os.SEEK_END)
            torn = handle.read(1) != b"\n"
        handle.write((("\n" if torn else "") + json.dumps(row) + "\n").encode("utf-8"))
        handle.flush()


# ------------------------------------------------------------------------------------------ finished runs
def mark_finished(checkpoint_path: str, step: int, epoch: int) -> str:
    """Record that the run trained `epoch` epochs (its --epoch) in `step` steps, so a sweep can skip it."""
    return files.write_json(os.path.join(checkpoint_path, FINISHED_FILE), {"step": step, "epoch": epoch})


def finished_epoch(checkpoint_path: str) -> int | None:
    """The epochs a run had finished when it last ended all of them (None: it never did, or the record is torn).
    A run resumed to a higher --epoch is finished only once this reaches it."""
    try:
        record = files.read_json_object(os.path.join(checkpoint_path, FINISHED_FILE))
    except files.DamagedFileError as error:
        log.warning("%s; the run counts as not finished (a sweep resumes it, which ends at once and rewrites it)",
                    error)
        return None
    epoch = record.get("epoch") if record else None
    return epoch if isinstance(epoch, int) else None


def folder_bytes(folder: str) -> int:
    """The total size of the files under `folder` (0 when it does not exist)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:  # removed since it was listed (a rotated checkpoint, a pruned grid)
                pass
    return total


# ------------------------------------------------------------------------------------------ training grids
def training_grid_name(step: int) -> str:
    """The file name of the training grid written at `step`."""
    return f"train_{step:08d}.png"


def list_training_grids(sample_path: str) -> dict[int, str]:
    """{step: path} of the training grids `train_<step>.png` in a sample folder, by step ({} if none)."""
    if not os.path.isdir(sample_path):
        return {}
    found = {int(m.group(1)): os.path.join(sample_path, name)
             for name in os.listdir(sample_path) if (m := TRAIN_GRID.match(name))}
    return dict(sorted(found.items()))


# ------------------------------------------------------------------------------------------ finding a run
@dataclass(frozen=True)
class RunPaths:
    """Where one run's files are: its checkpoint folder (config.json, losses.csv) and its sample folder."""

    name: str
    checkpoint_path: str
    sample_path: str


def resolve_run(name_or_folder: str, checkpoint_dir: str = "checkpoints", sample_dir: str = "samples") -> RunPaths:
    """A run name under checkpoint_dir, or a run's checkpoint folder path; RunError listing the runs otherwise.

    The sample folder is `<sample_dir>/<name>`; for a folder path, the sample folder its config.json names is
    tried first, then `<sample_dir>/<name>`, then the folder itself if it holds sample grids.
    """
    text = os.path.expanduser(name_or_folder.strip())
    by_name = os.path.join(checkpoint_dir, text)
    if text and os.sep not in text and _is_run_folder(by_name):
        return RunPaths(text, by_name, os.path.join(sample_dir, text))
    if _is_run_folder(text):
        name = os.path.basename(os.path.normpath(text))
        candidates = []
        config_path = os.path.join(text, CONFIG_FILE)
        if os.path.isfile(config_path):
            try:
                with open(config_path, encoding="utf-8") as handle:
                    saved = Config.from_json(handle.read())
                candidates.append(os.path.join(saved.sample_dir, name))
            except (ValueError, TypeError):
                pass  # an unreadable config only loses the hint
        candidates += [os.path.join(sample_dir, name), text]
        sample_path = next((c for c in candidates if list_training_grids(c)), os.path.join(sample_dir, name))
        return RunPaths(name, text, sample_path)
    available = list_runs(checkpoint_dir)
    raise RunError(f"no run {name_or_folder!r}: not a run under {os.path.abspath(checkpoint_dir)} nor a run folder "
                   f"(one holding {CONFIG_FILE} or {LOSS_CSV}); runs there: {', '.join(available) or 'none'}")


def _is_run_folder(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, name)) for name in (CONFIG_FILE, LOSS_CSV))
