"""Plots of a run's loss log (PNG, matplotlib's Agg canvas) and side-by-side comparisons of runs.

Reads what training writes: `<checkpoint_dir>/<run>/losses.csv` (one row per step) and the sample grids
`<sample_dir>/<run>/train_<step:08d>.png`. Needs no model: only numpy, matplotlib (Agg) and Pillow.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from dcgan_tf import files
from dcgan_tf.config import Config
from dcgan_tf.images import font, text_size
from dcgan_tf.metrics import feature_caption
from dcgan_tf.runs.folders import CONFIG_FILE, LOSS_CSV, RunError, RunPaths, list_training_grids, read_metrics

LOSSES_PNG = "plot_losses.png"
RATIO_PNG = "plot_loss_ratio.png"
SCORE_GAP_PNG = "plot_score_gap.png"  # instead of the ratio, under the hinge and wgan_gp losses
METRICS_PNG = "plot_metrics.png"
# metrics.jsonl values drawn, each in its own panel, in this order (those a run has)
METRIC_PANELS = (("kid", "KID (lower is better)"), ("fid", "FID (lower is better)"), ("precision", "precision"),
                 ("recall", "recall"), ("copy_fraction", "copy fraction (memorisation)"),
                 ("label_accuracy", "label accuracy"))
VALUE_COLUMNS = ("d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake", "seconds")
REQUIRED_COLUMNS = ("step", "d_loss", "g_loss")
# D loss sums the real and fake terms, so at D(x) = D(G(z)) = 1/2 it is 2 log 2 while G loss is log 2.
EQUILIBRIUM_LOG_RATIO = -math.log(2.0)
MAX_EPOCH_LINES = 40
MAX_DRAWN_POINTS = 2000  # a longer curve is drawn as its per-bin min/max envelope (same look, fast to render)


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


def _smooth_log(log: LossLog, values, window: int) -> np.ndarray:
    """smooth(), restarted at the data swap so the smoothed curve does not mix the two data sources."""
    if log.swap_step is None:
        return smooth(values, window)
    cut = int(np.searchsorted(log.step, log.swap_step))
    return np.concatenate([smooth(values[:cut], window), smooth(values[cut:], window)])


# ---------------------------------------------------------------------------------------------- figures
def _legend(ax) -> None:
    """The legend right of the plot, where it never hides a curve (and costs no search for a free spot)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0)


def _figure(rows: int, height: float) -> tuple[Figure, np.ndarray]:
    figure = Figure(figsize=(12, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return figure, axes


def save_figure(figure: Figure, path: str, dpi: int = 100) -> str:
    """Write a figure as PNG (replacing the file atomically, so a viewer never reads half of it)."""
    with files.replacing(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return path


def _mark_epochs(ax, log: LossLog) -> None:
    """Thin grey lines at epoch starts (at most MAX_EPOCH_LINES: every k-th epoch when there are more)."""
    starts = log.epoch_starts
    if not len(starts):
        return
    every = math.ceil(len(starts) / MAX_EPOCH_LINES)
    label = "epoch start" if every == 1 else f"epoch start (1 in {every} drawn)"
    for i, step in enumerate(starts[every - 1:: every]):
        ax.axvline(step, color="0.75", linewidth=0.6, zorder=0, label=label if i == 0 else None)


def _mark_swap(ax, log: LossLog, color="crimson", label=True) -> None:
    if log.swap_step is not None:
        ax.axvline(log.swap_step, color=color, linestyle="--", linewidth=1.4,
                   label=log.swap_label if label else None)


def _mark_equilibrium(ax, label: str) -> None:
    """A faint line at -log 2 (the log ratio where D(x) = D(G(z)) = 1/2), if it lies in the plotted range."""
    low, high = ax.get_ylim()
    if low <= EQUILIBRIUM_LOG_RATIO <= high:
        ax.axhline(EQUILIBRIUM_LOG_RATIO, color="0.5", linestyle=":", linewidth=1.0, label=label)


def _robust_ylim(ax, raw: list, smoothed: list) -> None:
    """Y limits from the 0.5-99.5 percentiles of the raw values, widened to every smoothed value.

    One exploding step then does not flatten the rest of the curve, while the smoothed trend stays whole.
    """
    raw = np.concatenate([np.asarray(r, np.float64) for r in raw])
    raw = raw[np.isfinite(raw)]
    if not len(raw):
        return
    low, high = np.percentile(raw, [0.5, 99.5])
    for s in smoothed:
        s = np.asarray(s, np.float64)
        s = s[np.isfinite(s)]
        if len(s):
            low, high = min(low, s.min()), max(high, s.max())
    pad = (high - low) * 0.05 or 0.5
    ax.set_ylim(low - pad, high + pad)


def thin_for_drawing(x, y, max_points: int = MAX_DRAWN_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) cut to about max_points: each of max_points/2 bins keeps its min and max, in step order.

    At figure resolution this looks like the full curve (every spike stays) and renders in a fraction of the time.
    A bin with no finite value keeps one NaN, so gaps stay gaps.
    """
    x, y = np.asarray(x), np.asarray(y, dtype=np.float64)
    if len(x) <= max_points:
        return x, y
    size = math.ceil(len(x) / (max_points // 2))
    bins = math.ceil(len(x) / size)
    padded = np.concatenate([y, np.full(bins * size - len(y), np.nan)]).reshape(bins, size)
    finite = np.isfinite(padded)
    low = np.argmin(np.where(finite, padded, np.inf), axis=1)
    high = np.argmax(np.where(finite, padded, -np.inf), axis=1)
    start = np.arange(bins) * size
    keep = np.stack([start + np.minimum(low, high), start + np.maximum(low, high)], axis=1)
    keep[~finite.any(axis=1)] = start[~finite.any(axis=1), None]
    keep = keep.ravel()
    keep = keep[np.append(True, keep[1:] != keep[:-1])]
    return x[keep], y[keep]


def _curve(ax, x, y, **style):
    ax.plot(*thin_for_drawing(x, y), **style)


def _raw_and_smooth(ax, log: LossLog, values, window: int, color: str, label: str) -> np.ndarray:
    smoothed = _smooth_log(log, values, window)
    _curve(ax, log.step, values, color=color, alpha=0.25, linewidth=0.7)
    _curve(ax, log.step, smoothed, color=color, linewidth=1.6, label=f"{label} (mean of {window})")
    return smoothed


def losses_figure(log: LossLog, window: int | None = None, title: str | None = None, loss: str = "bce") -> Figure:
    """D and G loss (raw, faint, and smoothed) over steps; D(x) and D(G(z)) below (probabilities under the bce
    loss, raw scores under hinge and wgan_gp); epochs and the swap marked."""
    window = window or default_window(len(log))
    figure, (top, bottom) = _figure(2, 7.5)
    smoothed = [_raw_and_smooth(top, log, log.d_loss, window, "C0", "D loss"),
                _raw_and_smooth(top, log, log.g_loss, window, "C1", "G loss")]
    _robust_ylim(top, [log.d_loss, log.g_loss], smoothed)
    top.set_ylabel("loss")
    top.set_title(title or f"{log.name}: losses ({len(log)} steps)")
    _raw_and_smooth(bottom, log, log.d_real, window, "C2", "D(x)")
    _raw_and_smooth(bottom, log, log.d_fake, window, "C3", "D(G(z))")
    if loss == "bce":
        bottom.axhline(0.5, color="0.4", linestyle=":", linewidth=1.0, label="0.5")
        bottom.set_ylim(-0.03, 1.03)
        bottom.set_ylabel("mean D output")
    else:
        _robust_ylim(bottom, [log.d_real, log.d_fake], [])
        bottom.set_ylabel(f"mean D score ({loss}: raw, no probability)")
    bottom.set_xlabel("step (one D update each)")
    for ax in (top, bottom):
        _mark_epochs(ax, log)
        _mark_swap(ax, log)
        _legend(ax)
    return figure


def loss_ratio_figure(log: LossLog, window: int | None = None, title: str | None = None) -> Figure:
    """log(G loss / D loss) over steps, raw and smoothed, with the ideal 0 drawn; epochs and the swap marked.

    A faint line also shows -log 2, where D(x) = D(G(z)) = 1/2 (D loss adds its real and fake terms).
    """
    window = window or default_window(len(log))
    ratio = log_ratio(log.g_loss, log.d_loss)
    figure, (ax,) = _figure(1, 4.5)
    smoothed = _raw_and_smooth(ax, log, ratio, window, "C4", "log(G/D)")
    ax.axhline(0.0, color="black", linewidth=1.2, label="ideal (G loss = D loss)")
    _robust_ylim(ax, [ratio, [0.0]], [smoothed])
    _mark_equilibrium(ax, "\u2212log 2: D(x) = D(G(z)) = \u00bd")
    _mark_epochs(ax, log)
    _mark_swap(ax, log)
    ax.set_ylabel("log(G loss / D loss)")
    ax.set_xlabel("step (one D update each)")
    ax.set_title(title or f"{log.name}: log G/D loss ratio")
    _legend(ax)
    return figure


def score_gap_figure(log: LossLog, loss: str, window: int | None = None, title: str | None = None) -> Figure:
    """D's mean score on real minus fake images over steps: what stands in for the log G/D ratio under the hinge and
    wgan_gp losses, whose losses may be negative (under wgan_gp it is the critic's estimate of the Wasserstein
    distance between the real and generated images; under hinge, the margin D keeps between them). Near 0: D
    cannot tell them apart; growing: D wins."""
    window = window or default_window(len(log))
    gap = log.d_real - log.d_fake
    figure, (ax,) = _figure(1, 4.5)
    smoothed = _raw_and_smooth(ax, log, gap, window, "C4", "D(x) − D(G(z))")
    ax.axhline(0.0, color="black", linewidth=1.2, label="0: D cannot tell them apart")
    _robust_ylim(ax, [gap, [0.0]], [smoothed])
    _mark_epochs(ax, log)
    _mark_swap(ax, log)
    ax.set_ylabel("mean D score, real − fake")
    ax.set_xlabel("step (one D update each)")
    what = "the critic's Wasserstein estimate" if loss == "wgan_gp" else "D's margin"
    ax.set_title(title or f"{log.name}: score gap ({loss} loss: {what})")
    _legend(ax)
    return figure


def plot_losses(log: LossLog, path: str, window: int | None = None, loss: str = "bce") -> str:
    """losses_figure written as a PNG at `path`."""
    return save_figure(losses_figure(log, window, loss=loss), path)


def plot_loss_ratio(log: LossLog, path: str, window: int | None = None) -> str:
    """loss_ratio_figure written as a PNG at `path`."""
    return save_figure(loss_ratio_figure(log, window), path)


def run_loss(checkpoint_path: str) -> str:
    """The --loss a run trained with, from its config.json ("bce" when it has none, or none readable)."""
    try:
        with open(os.path.join(checkpoint_path, CONFIG_FILE), encoding="utf-8") as handle:
            return Config.from_json(handle.read()).loss
    except (OSError, ValueError, TypeError):
        return Config.loss


def plot_run(checkpoint_path: str, sample_path: str, window: int | None = None, loss: str | None = None) -> list[str]:
    """Read `<checkpoint_path>/losses.csv`; write plot_losses.png and plot_loss_ratio.png into sample_path (under
    the hinge and wgan_gp losses plot_score_gap.png instead of the ratio), and plot_metrics.png when the run has
    evaluations (metrics.jsonl). `loss`: the run's (unset: its config.json's)."""
    loss = loss or run_loss(checkpoint_path)
    log = read_loss_log(os.path.join(checkpoint_path, LOSS_CSV))
    written = [plot_losses(log, os.path.join(sample_path, LOSSES_PNG), window, loss=loss)]
    if loss == "bce":
        written.append(plot_loss_ratio(log, os.path.join(sample_path, RATIO_PNG), window))
    else:
        written.append(save_figure(score_gap_figure(log, loss, window), os.path.join(sample_path, SCORE_GAP_PNG)))
    if plotted_rows(read_metrics(checkpoint_path)):
        written.append(plot_metrics([checkpoint_path], os.path.join(sample_path, METRICS_PNG)))
    return written


def _metric_series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one metric over a run's evaluations; a step evaluated twice keeps its last value."""
    found = {row["step"]: float(row[key]) for row in rows if isinstance(row.get(key), (int, float))}
    steps = np.array(sorted(found), dtype=np.int64)
    return steps, np.array([found[step] for step in steps], dtype=np.float64)


def plotted_rows(rows: list[dict]) -> list[dict]:
    """A run's evaluations to draw: training's (else --evaluate's), measured with the feature network of its latest,
    so values of different networks never share a line. Linear probes (mode "probe") are no sample metrics."""
    rows = [row for row in rows if row.get("mode") != "probe"]
    chosen = [row for row in rows if row.get("mode", "train") == "train"] or rows
    latest = chosen[-1].get("features") if chosen else None
    return [row for row in chosen if row.get("features") == latest]


def plot_metrics(runs, out_path: str, labels=None) -> str:
    """Each metric the runs have (KID with its ± std band), one panel each, against the step; one line per run
    (training's evaluations, else --evaluate's; see plotted_rows).

    runs: run checkpoint folders or RunPaths. RunError when none of them has metrics.jsonl rows.
    """
    folders = [run.checkpoint_path if isinstance(run, RunPaths) else os.fspath(run) for run in runs]
    rows = [plotted_rows(read_metrics(folder)) for folder in folders]
    names = _labels(folders, labels, lambda folder: os.path.basename(os.path.normpath(folder)))
    panels = [(key, title) for key, title in METRIC_PANELS if any(_metric_series(r, key)[0].size for r in rows)]
    if not panels:
        raise RunError(f"no evaluations in {', '.join(folders)}: train with --metrics, or run --evaluate")
    figure, axes = _figure(len(panels), 2.6 * len(panels) + 0.6)
    for ax, (key, title) in zip(axes, panels):
        for index, (run_rows, name) in enumerate(zip(rows, names)):
            steps, values = _metric_series(run_rows, key)
            if not steps.size:
                continue
            color = f"C{index % 10}"
            ax.plot(steps, values, marker="o", markersize=3, color=color, linewidth=1.4, label=name)
            if key == "kid":
                _, spread = _metric_series(run_rows, "kid_std")
                if spread.size == values.size:
                    ax.fill_between(steps, values - spread, values + spread, color=color, alpha=0.2, linewidth=0)
        ax.set_ylabel(title)
        _legend(ax)
    captions = sorted({feature_caption(r[-1].get("features")) for r in rows if r and r[-1].get("features")})
    measured = f"\n{'; '.join(captions)}" if captions else ""
    axes[0].set_title(("sample quality (metrics.jsonl)" if len(rows) == 1 else f"{len(rows)} runs' sample quality")
                      + measured)
    axes[-1].set_xlabel("step (one D update each)")
    return save_figure(figure, out_path)


# ---------------------------------------------------------------------------------------------- runs
def _as_log(run) -> LossLog:
    if isinstance(run, LossLog):
        return run
    if isinstance(run, RunPaths):
        return read_loss_log(run.checkpoint_path)
    return read_loss_log(os.fspath(run))


def _labels(items, labels, default) -> list[str]:
    if labels is None:
        return [default(item) for item in items]
    labels = list(labels)
    if len(labels) != len(items):
        raise ValueError(f"{len(labels)} labels for {len(items)} runs")
    return labels


def compare_runs(runs, out_path: str, labels=None, window: int | None = None) -> str:
    """One figure overlaying runs' smoothed log G/D ratios, D losses and G losses against the step.

    runs: RunPaths, LossLogs, run folders or CSV paths, of any lengths. One smoothing window serves every run
    (default: from the shortest run); each run's data swap is a dashed line in its colour.
    """
    logs = [_as_log(run) for run in runs]
    if not logs:
        raise ValueError("compare_runs needs at least one run")
    labels = [log.name for log in logs] if labels is None else _labels(logs, labels, None)
    window = window or default_window(min(len(log) for log in logs))
    figure, (ratio_ax, d_ax, g_ax) = _figure(3, 9.5)
    curves = {"ratio": [], "d": [], "g": []}
    for index, (log, label) in enumerate(zip(logs, labels)):
        color = f"C{index % 10}"
        for key, ax, values in (("ratio", ratio_ax, log_ratio(log.g_loss, log.d_loss)),
                                ("d", d_ax, log.d_loss), ("g", g_ax, log.g_loss)):
            smoothed = _smooth_log(log, values, window)
            curves[key].append(smoothed)
            _curve(ax, log.step, smoothed, color=color, linewidth=1.4,
                    label=f"{label} ({len(log)} steps)" if key == "ratio" else None)
            if log.swap_step is not None:
                ax.axvline(log.swap_step, color=color, linestyle="--", linewidth=1.0,
                           label=f"{label}: data swap at {log.swap_step}" if key == "ratio" else None)
    ratio_ax.axhline(0.0, color="black", linewidth=1.0, label="ideal (G loss = D loss)")
    for key, ax, ylabel in (("ratio", ratio_ax, "log(G loss / D loss)"), ("d", d_ax, "D loss"),
                            ("g", g_ax, "G loss")):
        _robust_ylim(ax, curves[key] + ([[0.0]] if key == "ratio" else []), curves[key])
        ax.set_ylabel(ylabel)
    _mark_equilibrium(ratio_ax, "\u2212log 2: D(x) = D(G(z)) = \u00bd")
    ratio_ax.set_title(f"{len(logs)} runs compared (trailing mean of {window} steps)")
    _legend(ratio_ax)
    g_ax.set_xlabel("step (one D update each)")
    return save_figure(figure, out_path)


# ---------------------------------------------------------------------------------------------- grids
def nearest_grid(grids: dict[int, str], step: int) -> tuple[int, str]:
    """(step, path) of the saved grid nearest to `step`; a tie goes to the earlier grid."""
    if not grids:
        raise ValueError("no sample grids to choose from")
    chosen = min(grids, key=lambda saved: (abs(saved - step), saved))
    return chosen, grids[chosen]


def choose_grids(runs, steps) -> list[list[tuple[int, str]]]:
    """For each run (RunPaths or sample folder), the nearest saved grid to each step; steps None: the last one."""
    table = []
    for run in runs:
        folder = run.sample_path if isinstance(run, RunPaths) else os.fspath(run)
        grids = list_training_grids(folder)
        if not grids:
            name = run.name if isinstance(run, RunPaths) else folder
            raise RunError(f"run {name!r}: no sample grids train_<step>.png in {os.path.abspath(folder)}")
        wanted = [max(grids)] if steps is None else steps
        table.append([nearest_grid(grids, int(step)) for step in wanted])
    return table


def compare_grids(runs, steps, out_path: str, labels=None, max_cell: int = 512) -> str:
    """A sheet of sample grids: runs as rows, requested steps as columns, each cell the nearest saved grid.

    runs: RunPaths or sample folders; steps: ints, or None for each run's last grid. Under each cell its actual
    step is written (with "nearest to N" when it differs). Grids are scaled to one cell size (at most max_cell px).
    """
    runs = list(runs)
    if not runs:
        raise ValueError("compare_grids needs at least one run")
    if steps is not None and not len(steps):
        raise ValueError("compare_grids needs at least one step (or None for the last grid)")
    labels = _labels(runs, labels, lambda run: run.name if isinstance(run, RunPaths)
                     else os.path.basename(os.path.normpath(os.fspath(run))))
    table = choose_grids(runs, steps)
    images = [[Image.open(path).convert("RGB") for _, path in row] for row in table]
    width = max(image.width for row in images for image in row)
    height = max(image.height for row in images for image in row)
    scale = min(1.0, max_cell / max(width, height))
    cell_w, cell_h = max(1, round(width * scale)), max(1, round(height * scale))

    big, small = font(15), font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def measure(text, text_font=big):
        return text_size(probe, text, text_font)

    def caption(col, actual):
        requested = None if steps is None else int(steps[col])
        if requested in (None, actual):
            return f"step {actual}", "dimgray"
        return f"step {actual} (nearest to {requested})", "darkorange"

    pad, line = 12, measure("Step 0123456789")[1] + 8
    headers = (["last grid"] if steps is None else [f"step {int(s)}" for s in steps])
    label_w = max(measure(label)[0] for label in labels) + 2 * pad
    captions = [caption(col, actual)[0] for row in table for col, (actual, _) in enumerate(row)]
    col_w = max(cell_w, max(measure(h)[0] for h in headers), max(measure(c, small)[0] for c in captions))
    sheet_w = label_w + len(headers) * (col_w + pad) + pad
    sheet_h = line + pad + len(runs) * (cell_h + line + pad) + pad
    sheet = Image.new("RGB", (sheet_w, sheet_h), "white")
    draw = ImageDraw.Draw(sheet)
    for col, header in enumerate(headers):
        x = label_w + col * (col_w + pad)
        draw.text((x + (col_w - measure(header)[0]) // 2, pad // 2), header, fill="black", font=big)
    for row, (label, choices, row_images) in enumerate(zip(labels, table, images)):
        y = line + pad + row * (cell_h + line + pad)
        draw.text((pad, y + (cell_h - measure(label)[1]) // 2), label, fill="black", font=big)
        for col, ((actual, _), image) in enumerate(zip(choices, row_images)):
            x = label_w + col * (col_w + pad)
            fit = min(cell_w / image.width, cell_h / image.height)
            size = (max(1, round(image.width * fit)), max(1, round(image.height * fit)))
            resample = Image.Resampling.NEAREST if fit >= 1 else Image.Resampling.LANCZOS
            sheet.paste(image.resize(size, resample), (x + (col_w - size[0]) // 2, y + (cell_h - size[1]) // 2))
            text, color = caption(col, actual)
            draw.text((x + (col_w - measure(text, small)[0]) // 2, y + (cell_h + size[1]) // 2 + 2), text,
                      fill=color, font=small)
    with files.replacing(out_path) as temporary:
        sheet.save(temporary, format="PNG")
    return out_path


# ---------------------------------------------------------------------------------------------- sweeps
SWEEP_LINE_STYLES = ("-", "--", ":", "-.")


def sweep_curves(groups, out_path: str, window: int | None = None, title: str | None = None) -> str:
    """A sweep's runs overlaid, one colour per combination of settings (its seeds in the same colour, one line
    style each): the smoothed log G/D ratio, D and G losses, D(x) and D(G(z)), then KID and FID where the runs
    have them; each run's data swap dashed in its colour, the first run's epochs as thin grey lines.

    groups: [(label, [(run label, LossLog or run folder, metrics.jsonl rows)])]; runs without a log are left out.
    """
    groups = [(label, [(name, _as_log(log), rows) for name, log, rows in members]) for label, members in groups]
    logs = [log for _, members in groups for _, log, _ in members]
    if not logs:
        raise RunError("no run of the sweep has a loss log yet")
    window = window or default_window(min(len(log) for log in logs))
    metric_keys = [(key, name) for key, name in METRIC_PANELS[:2]
                   if any(_metric_series(plotted_rows(rows), key)[0].size for _, members in groups
                          for _, _, rows in members)]
    panels = [("ratio", "log(G loss / D loss)"), ("d", "D loss"), ("g", "G loss"), ("d_real", "D(x)"),
              ("d_fake", "D(G(z))")] + metric_keys
    figure, axes = _figure(len(panels), 2.6 * len(panels) + 0.8)
    by_key = dict(zip((key for key, _ in panels), axes))
    curves = {key: [] for key, _ in panels}
    for index, (label, members) in enumerate(groups):
        color = f"C{index % 10}"
        for number, (name, log, rows) in enumerate(members):
            style = SWEEP_LINE_STYLES[number % len(SWEEP_LINE_STYLES)]
            shown = f"{label}: {name}" if len(members) > 1 else label
            for key, values in (("ratio", log_ratio(log.g_loss, log.d_loss)), ("d", log.d_loss), ("g", log.g_loss),
                                ("d_real", log.d_real), ("d_fake", log.d_fake)):
                smoothed = _smooth_log(log, values, window)
                curves[key].append(smoothed)
                _curve(by_key[key], log.step, smoothed, color=color, linestyle=style, linewidth=1.3,
                       label=shown if key == "ratio" else None)
            for key, _ in metric_keys:
                steps, values = _metric_series(plotted_rows(rows), key)
                if steps.size:
                    by_key[key].plot(steps, values, color=color, linestyle=style, marker="o", markersize=3,
                                     linewidth=1.3)
            if log.swap_step is not None:
                for key, _ in panels[:5]:
                    by_key[key].axvline(log.swap_step, color=color, linestyle="--", linewidth=0.9,
                                        label=f"{shown}: data swap at {log.swap_step}" if key == "ratio" else None)
    _mark_epochs(axes[0], logs[0])
    by_key["ratio"].axhline(0.0, color="black", linewidth=1.0, label="G loss = D loss")
    for key, ylabel in panels:
        if curves[key] and key in ("ratio", "d", "g", "d_real", "d_fake"):
            _robust_ylim(by_key[key], curves[key] + ([[0.0]] if key == "ratio" else []), curves[key])
        by_key[key].set_ylabel(ylabel)
    _mark_equilibrium(by_key["ratio"], "\u2212log 2: D(x) = D(G(z)) = \u00bd")
    axes[0].set_title(title or f"{len(logs)} runs (trailing mean of {window} steps)")
    _legend(by_key["ratio"])
    axes[-1].set_xlabel("step (one D update each)")
    return save_figure(figure, out_path)
