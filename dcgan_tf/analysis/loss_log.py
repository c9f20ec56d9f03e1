"""A run's loss log read as arrays, and the series maths its plots use (smoothing, the log G/D ratio).

Reads `<checkpoint_dir>/<run>/losses.csv` (one row per step, as training writes it). Needs only numpy: no matplotlib.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

from dcgan_tf.runs.folders import LOSS_CSV, RunError

VALUE_COLUMNS = ("d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake", "seconds")
REQUIRED_COLUMNS = ("step", "d_loss", "g_loss")


# ---------------------------------------------------------------------------------------------- reading
@dataclass
class LossLog:
    """A run's loss CSV as arrays [N], sorted by step (one row per step; non-finite values are NaN).

    `data` is the per-row data source ("reconstructions"/"originals") when the CSV has that column, else None;
    `swap_step` is the first step whose source differs from the rows before it (None: no swap).
    `epoch_starts` are the steps at which a new epoch begins (the first epoch excluded).
    """

    path: str
    step: np.ndarray
    epoch: np.ndarray  # -1 where the CSV has no epoch
    d_loss: np.ndarray
    d_loss_real: np.ndarray
    d_loss_fake: np.ndarray
    g_loss: np.ndarray
    d_real: np.ndarray  # mean D(x)
    d_fake: np.ndarray  # mean D(G(z))
    seconds: np.ndarray  # the step's wall time (NaN in logs from before the column existed)
    data: np.ndarray | None
    swap_step: int | None
    swap_from: str | None
    swap_to: str | None
    epoch_starts: np.ndarray

    def __len__(self) -> int:
        return len(self.step)

    @property
    def name(self) -> str:
        """The run folder's name (the CSV's parent folder)."""
        return os.path.basename(os.path.dirname(os.path.abspath(self.path)))

    @property
    def training_seconds(self) -> float | None:
        """The run's training wall time: the sum of its steps' seconds (None when the log has none)."""
        known = self.seconds[np.isfinite(self.seconds)]
        return float(known.sum()) if known.size else None

    @property
    def swap_label(self) -> str | None:
        if self.swap_step is None:
            return None
        return f"data swap at step {self.swap_step} ({self.swap_from} \u2192 {self.swap_to})"


def _to_float(text) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _to_int(text) -> int | None:
    value = _to_float(text)
    return None if math.isnan(value) else int(value)


def read_loss_log(path: str) -> LossLog:
    """Read `losses.csv` (a file, or a run folder holding one); RunError if missing, empty or lacking columns.

    Rows whose step does not parse (a half-written last line) are skipped; a step written twice keeps its last
    row; values that are not finite numbers become NaN.
    """
    if os.path.isdir(path):
        path = os.path.join(path, LOSS_CSV)
    if not os.path.isfile(path):
        raise RunError(f"no loss log {os.path.abspath(path)} (a run writes {LOSS_CSV} into its checkpoint folder "
                       "from its first training step)")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise RunError(f"{os.path.abspath(path)} is not a loss log: no column {', '.join(missing)} "
                           f"(columns: {', '.join(columns) or 'none'})")
        rows = [row for row in reader if _to_int(row.get("step")) is not None]
    if not rows:
        raise RunError(f"{os.path.abspath(path)} has no rows yet (train the run for at least one step)")

    steps = np.array([_to_int(row["step"]) for row in rows], dtype=np.int64)
    order = np.argsort(steps, kind="stable")
    keep = order[np.append(steps[order][1:] != steps[order][:-1], True)]  # the last row of each step
    rows = [rows[i] for i in keep]

    def column(name):
        return np.array([_to_float(row.get(name)) for row in rows], dtype=np.float64)

    epoch = np.array([-1 if (e := _to_int(row.get("epoch"))) is None else e for row in rows], dtype=np.int64)
    data = None
    if "data" in columns:
        data = np.array([(row.get("data") or "").strip() for row in rows], dtype=object)
    log = LossLog(path=path, step=steps[keep], epoch=epoch, data=data, swap_step=None, swap_from=None,
                  swap_to=None, epoch_starts=np.zeros(0, np.int64), **{name: column(name) for name in VALUE_COLUMNS})
    known = (log.epoch[1:] >= 0) & (log.epoch[:-1] >= 0)
    log.epoch_starts = log.step[1:][known & (log.epoch[1:] != log.epoch[:-1])]
    if data is not None:
        log.swap_step, log.swap_from, log.swap_to = _find_swap(log.step, data)
    return log


def _find_swap(steps: np.ndarray, data: np.ndarray):
    """(step, from, to) of the first change of data source, ignoring empty cells; (None, None, None) if none."""
    previous = None
    for step, source in zip(steps, data):
        if not source:
            continue
        if previous is not None and source != previous:
            return int(step), previous, source
        previous = source
    return None, None, None


# ---------------------------------------------------------------------------------------------- maths
def smooth(values, window: int) -> np.ndarray:
    """Trailing moving average: out[i] = mean of the finite values among values[i-window+1 .. i].

    Trailing (causal) rather than centred, so a change at step s (say, the data swap) never shows before s.
    The first window-1 points average what exists so far; NaN where the window holds no finite value.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 (got {window})")
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return values.copy()
    finite = np.isfinite(values)
    kernel = np.ones(min(window, len(values)))
    sums = np.convolve(np.where(finite, values, 0.0), kernel)[: len(values)]
    counts = np.convolve(finite.astype(np.float64), kernel)[: len(values)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def default_window(length: int) -> int:
    """A smoothing window for a log of `length` steps: about 1/25 of it, between 1 and 500."""
    return int(min(500, max(1, round(length / 25))))


def log_ratio(g_loss, d_loss) -> np.ndarray:
    """log(g_loss / d_loss), elementwise; NaN where either loss is zero, negative or not finite."""
    g = np.asarray(g_loss, dtype=np.float64)
    d = np.asarray(d_loss, dtype=np.float64)
    valid = np.isfinite(g) & np.isfinite(d) & (g > 0) & (d > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, np.log(np.where(valid, g, 1.0) / np.where(valid, d, 1.0)), np.nan)


def smooth_log(log: LossLog, values, window: int) -> np.ndarray:
    """smooth(), restarted at the data swap so the smoothed curve does not mix the two data sources."""
    if log.swap_step is None:
        return smooth(values, window)
    cut = int(np.searchsorted(log.step, log.swap_step))
    return np.concatenate([smooth(values[:cut], window), smooth(values[cut:], window)])
