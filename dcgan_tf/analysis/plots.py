"""Plots of one run (PNG, matplotlib's Agg canvas): its losses, log G/D ratio or score gap, and its evaluations;
and the figure helpers the comparisons of runs (compare.py) share.

Reads what training writes: `<checkpoint_dir>/<run>/losses.csv` (through loss_log) and metrics.jsonl. Needs no model:
only numpy and matplotlib (Agg).
"""

from __future__ import annotations

import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dcgan_tf import files
from dcgan_tf.analysis.loss_log import LossLog, default_window, log_ratio, read_loss_log, smooth_log
from dcgan_tf.config import Config
from dcgan_tf.metrics import feature_caption
from dcgan_tf.runs.folders import CONFIG_FILE, LOSS_CSV, RunError, RunPaths, read_metrics

LOSSES_PNG = "plot_losses.png"
RATIO_PNG = "plot_loss_ratio.png"
SCORE_GAP_PNG = "plot_score_gap.png"  # instead of the ratio, under the hinge and wgan_gp losses
METRICS_PNG = "plot_metrics.png"
# metrics.jsonl values drawn, each in its own panel, in this order (those a run has)
METRIC_PANELS = (("kid", "KID (lower is better)"), ("fid", "FID (lower is better)"), ("precision", "precision"),
                 ("recall", "recall"), ("copy_fraction", "copy fraction (memorisation)"),
                 ("label_accuracy", "label accuracy"))
# D loss sums the real and fake terms, so at D(x) = D(G(z)) = 1/2 it is 2 log 2 while G loss is log 2.
EQUILIBRIUM_LOG_RATIO = -math.log(2.0)
MAX_EPOCH_LINES = 40
MAX_DRAWN_POINTS = 2000  # a longer curve is drawn as its per-bin min/max envelope (same look, fast to render)


# ---------------------------------------------------------------------------------------------- figures
def legend_beside(ax) -> None:
    """The legend right of the plot, where it never hides a curve (and costs no search for a free spot)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0)


def stacked_figure(rows: int, height: float) -> tuple[Figure, np.ndarray]:
    """A figure of `rows` panels stacked, sharing the step axis: (figure, axes [rows])."""
    figure = Figure(figsize=(12, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return figure, axes


def save_figure(figure: Figure, path: str, dpi: int = 100) -> str:
    """Write a figure as PNG (replacing the file atomically, so a viewer never reads half of it)."""
    with files.replacing(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return path


def mark_epochs(ax, log: LossLog) -> None:
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


def mark_equilibrium(ax, label: str) -> None:
    """A faint line at -log 2 (the log ratio where D(x) = D(G(z)) = 1/2), if it lies in the plotted range."""
    low, high = ax.get_ylim()
    if low <= EQUILIBRIUM_LOG_RATIO <= high:
        ax.axhline(EQUILIBRIUM_LOG_RATIO, color="0.5", linestyle=":", linewidth=1.0, label=label)


def robust_ylim(ax, raw: list, smoothed: list) -> None:
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


def draw_curve(ax, x, y, **style):
    """ax.plot of the curve cut to what the figure shows (thin_for_drawing)."""
    ax.plot(*thin_for_drawing(x, y), **style)


def _raw_and_smooth(ax, log: LossLog, values, window: int, color: str, label: str) -> np.ndarray:
    smoothed = smooth_log(log, values, window)
    draw_curve(ax, log.step, values, color=color, alpha=0.25, linewidth=0.7)
    draw_curve(ax, log.step, smoothed, color=color, linewidth=1.6, label=f"{label} (mean of {window})")
    return smoothed


# ---------------------------------------------------------------------------------------------- one run
def losses_figure(log: LossLog, window: int | None = None, title: str | None = None, loss=None) -> Figure:
    """D and G loss (raw, faint, and smoothed) over steps; D(x) and D(G(z)) below (probabilities under a loss whose
    outputs are probabilities, bce's, raw scores under hinge and wgan_gp); epochs and the swap marked. `loss`: the
    run's core.losses.AdversarialLoss (unset: bce's probabilities)."""
    window = window or default_window(len(log))
    figure, (top, bottom) = stacked_figure(2, 7.5)
    smoothed = [_raw_and_smooth(top, log, log.d_loss, window, "C0", "D loss"),
                _raw_and_smooth(top, log, log.g_loss, window, "C1", "G loss")]
    robust_ylim(top, [log.d_loss, log.g_loss], smoothed)
    top.set_ylabel("loss")
    top.set_title(title or f"{log.name}: losses ({len(log)} steps)")
    _raw_and_smooth(bottom, log, log.d_real, window, "C2", "D(x)")
    _raw_and_smooth(bottom, log, log.d_fake, window, "C3", "D(G(z))")
    if loss is None or loss.probabilities:
        bottom.axhline(0.5, color="0.4", linestyle=":", linewidth=1.0, label="0.5")
        bottom.set_ylim(-0.03, 1.03)
        bottom.set_ylabel("mean D output")
    else:
        robust_ylim(bottom, [log.d_real, log.d_fake], [])
        bottom.set_ylabel(f"mean D score ({loss.name}: raw, no probability)")
    bottom.set_xlabel("step (one D update each)")
    for ax in (top, bottom):
        mark_epochs(ax, log)
        _mark_swap(ax, log)
        legend_beside(ax)
    return figure


def loss_ratio_figure(log: LossLog, window: int | None = None, title: str | None = None) -> Figure:
    """log(G loss / D loss) over steps, raw and smoothed, with the ideal 0 drawn; epochs and the swap marked.

    A faint line also shows -log 2, where D(x) = D(G(z)) = 1/2 (D loss adds its real and fake terms).
    """
    window = window or default_window(len(log))
    ratio = log_ratio(log.g_loss, log.d_loss)
    figure, (ax,) = stacked_figure(1, 4.5)
    smoothed = _raw_and_smooth(ax, log, ratio, window, "C4", "log(G/D)")
    ax.axhline(0.0, color="black", linewidth=1.2, label="ideal (G loss = D loss)")
    robust_ylim(ax, [ratio, [0.0]], [smoothed])
    mark_equilibrium(ax, "\u2212log 2: D(x) = D(G(z)) = \u00bd")
    mark_epochs(ax, log)
    _mark_swap(ax, log)
    ax.set_ylabel("log(G loss / D loss)")
    ax.set_xlabel("step (one D update each)")
    ax.set_title(title or f"{log.name}: log G/D loss ratio")
    legend_beside(ax)
    return figure


def score_gap_figure(log: LossLog, loss, window: int | None = None, title: str | None = None) -> Figure:
    """D's mean score on real minus fake images over steps: what stands in for the log G/D ratio under the hinge and
    wgan_gp losses, whose losses may be negative (under wgan_gp it is the critic's estimate of the Wasserstein
    distance between the real and generated images; under hinge, the margin D keeps between them). Near 0: D
    cannot tell them apart; growing: D wins."""
    window = window or default_window(len(log))
    gap = log.d_real - log.d_fake
    figure, (ax,) = stacked_figure(1, 4.5)
    smoothed = _raw_and_smooth(ax, log, gap, window, "C4", "D(x) − D(G(z))")
    ax.axhline(0.0, color="black", linewidth=1.2, label="0: D cannot tell them apart")
    robust_ylim(ax, [gap, [0.0]], [smoothed])
    mark_epochs(ax, log)
    _mark_swap(ax, log)
    ax.set_ylabel("mean D score, real − fake")
    ax.set_xlabel("step (one D update each)")
    ax.set_title(title or f"{log.name}: score gap ({loss.name} loss: {loss.score_gap})")
    legend_beside(ax)
    return figure


def plot_losses(log: LossLog, path: str, window: int | None = None, loss=None) -> str:
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


def plot_run(checkpoint_path: str, sample_path: str, window: int | None = None, loss=None) -> list[str]:
    """Read `<checkpoint_path>/losses.csv`; write plot_losses.png and plot_loss_ratio.png into sample_path (under
    the hinge and wgan_gp losses, whose D outputs are no probabilities, plot_score_gap.png instead of the ratio), and
    plot_metrics.png when the run has evaluations (metrics.jsonl). `loss`: the run's core.losses.AdversarialLoss
    (unset: its config.json's)."""
    if loss is None:  # here, not at the top: the sweep report imports this module without TensorFlow
        from dcgan_tf.core.losses import named

        loss = named(run_loss(checkpoint_path))
    log = read_loss_log(os.path.join(checkpoint_path, LOSS_CSV))
    written = [plot_losses(log, os.path.join(sample_path, LOSSES_PNG), window, loss=loss)]
    if loss.probabilities:
        written.append(plot_loss_ratio(log, os.path.join(sample_path, RATIO_PNG), window))
    else:
        written.append(save_figure(score_gap_figure(log, loss, window), os.path.join(sample_path, SCORE_GAP_PNG)))
    if plotted_rows(read_metrics(checkpoint_path)):
        written.append(plot_metrics([checkpoint_path], os.path.join(sample_path, METRICS_PNG)))
    return written


# ---------------------------------------------------------------------------------------------- evaluations
def metric_series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
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
    names = run_labels(folders, labels, lambda folder: os.path.basename(os.path.normpath(folder)))
    panels = [(key, title) for key, title in METRIC_PANELS if any(metric_series(r, key)[0].size for r in rows)]
    if not panels:
        raise RunError(f"no evaluations in {', '.join(folders)}: train with --metrics, or run --evaluate")
    figure, axes = stacked_figure(len(panels), 2.6 * len(panels) + 0.6)
    for ax, (key, title) in zip(axes, panels):
        for index, (run_rows, name) in enumerate(zip(rows, names)):
            steps, values = metric_series(run_rows, key)
            if not steps.size:
                continue
            color = f"C{index % 10}"
            ax.plot(steps, values, marker="o", markersize=3, color=color, linewidth=1.4, label=name)
            if key == "kid":
                _, spread = metric_series(run_rows, "kid_std")
                if spread.size == values.size:
                    ax.fill_between(steps, values - spread, values + spread, color=color, alpha=0.2, linewidth=0)
        ax.set_ylabel(title)
        legend_beside(ax)
    captions = sorted({feature_caption(r[-1].get("features")) for r in rows if r and r[-1].get("features")})
    measured = f"\n{'; '.join(captions)}" if captions else ""
    axes[0].set_title(("sample quality (metrics.jsonl)" if len(rows) == 1 else f"{len(rows)} runs' sample quality")
                      + measured)
    axes[-1].set_xlabel("step (one D update each)")
    return save_figure(figure, out_path)


def run_labels(items, labels, default) -> list[str]:
    """The items' labels: `labels` as given (one per item, ValueError otherwise), else default(item) of each."""
    if labels is None:
        return [default(item) for item in items]
    labels = list(labels)
    if len(labels) != len(items):
        raise ValueError(f"{len(labels)} labels for {len(items)} runs")
    return labels

