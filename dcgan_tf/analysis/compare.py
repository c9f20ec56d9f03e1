"""Several runs side by side: their loss and log G/D curves overlaid, their sample grids in one sheet (Pillow), the
two with their metrics as --compare writes them (write_comparison), and a sweep's runs overlaid (sweep_curves, for
its report).

Reads what training writes: `<checkpoint_dir>/<run>/losses.csv` and the sample grids
`<sample_dir>/<run>/train_<step:08d>.png`. Needs no model: only numpy, matplotlib (Agg) and Pillow.
"""

from __future__ import annotations

import os

from PIL import Image, ImageDraw

from dcgan_tf import files
from dcgan_tf.analysis.loss_log import LossLog, default_window, log_ratio, read_loss_log, smooth_log
from dcgan_tf.analysis.plots import (METRIC_PANELS, draw_curve, legend_beside, mark_epochs, mark_equilibrium,
                                     metric_series, plot_metrics, plotted_rows, robust_ylim, run_labels, save_figure,
                                     stacked_figure)
from dcgan_tf.images import font, text_size
from dcgan_tf.runs.folders import RunError, RunPaths, list_training_grids, read_metrics


# ---------------------------------------------------------------------------------------------- runs
def _as_log(run) -> LossLog:
    if isinstance(run, LossLog):
        return run
    if isinstance(run, RunPaths):
        return read_loss_log(run.checkpoint_path)
    return read_loss_log(os.fspath(run))


def compare_runs(runs, out_path: str, labels=None, window: int | None = None) -> str:
    """One figure overlaying runs' smoothed log G/D ratios, D losses and G losses against the step.

    runs: RunPaths, LossLogs, run folders or CSV paths, of any lengths. One smoothing window serves every run
    (default: from the shortest run); each run's data swap is a dashed line in its colour.
    """
    logs = [_as_log(run) for run in runs]
    if not logs:
        raise ValueError("compare_runs needs at least one run")
    labels = [log.name for log in logs] if labels is None else run_labels(logs, labels, None)
    window = window or default_window(min(len(log) for log in logs))
    figure, (ratio_ax, d_ax, g_ax) = stacked_figure(3, 9.5)
    curves = {"ratio": [], "d": [], "g": []}
    for index, (log, label) in enumerate(zip(logs, labels)):
        color = f"C{index % 10}"
        for key, ax, values in (("ratio", ratio_ax, log_ratio(log.g_loss, log.d_loss)),
                                ("d", d_ax, log.d_loss), ("g", g_ax, log.g_loss)):
            smoothed = smooth_log(log, values, window)
            curves[key].append(smoothed)
            draw_curve(ax, log.step, smoothed, color=color, linewidth=1.4,
                       label=f"{label} ({len(log)} steps)" if key == "ratio" else None)
            if log.swap_step is not None:
                ax.axvline(log.swap_step, color=color, linestyle="--", linewidth=1.0,
                           label=f"{label}: data swap at {log.swap_step}" if key == "ratio" else None)
    ratio_ax.axhline(0.0, color="black", linewidth=1.0, label="ideal (G loss = D loss)")
    for key, ax, ylabel in (("ratio", ratio_ax, "log(G loss / D loss)"), ("d", d_ax, "D loss"),
                            ("g", g_ax, "G loss")):
        robust_ylim(ax, curves[key] + ([[0.0]] if key == "ratio" else []), curves[key])
        ax.set_ylabel(ylabel)
    mark_equilibrium(ratio_ax, "\u2212log 2: D(x) = D(G(z)) = \u00bd")
    ratio_ax.set_title(f"{len(logs)} runs compared (trailing mean of {window} steps)")
    legend_beside(ratio_ax)
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
    labels = run_labels(runs, labels, lambda run: run.name if isinstance(run, RunPaths)
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


# ---------------------------------------------------------------------------------------------- --compare
def write_comparison(runs: list[RunPaths], out_folder: str, steps=None, labels=None) -> list[str]:
    """--compare: the runs' curves overlaid (compare_runs), their grids side by side (compare_grids) and, when any
    run has evaluations, their metrics overlaid (plot_metrics), as compare_<what>_<run>_vs_<run>.png in out_folder;
    the paths written. steps: the grids' steps (None: each run's last grid); labels: one per run (None: its name)."""
    stem = "_vs_".join(run.name for run in runs)
    written = [compare_runs(runs, os.path.join(out_folder, f"compare_losses_{stem}.png"), labels),
               compare_grids(runs, steps, os.path.join(out_folder, f"compare_grids_{stem}.png"), labels)]
    if any(plotted_rows(read_metrics(run.checkpoint_path)) for run in runs):  # the runs' evaluations overlaid
        written.append(plot_metrics(runs, os.path.join(out_folder, f"compare_metrics_{stem}.png"), labels))
    return written


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
                   if any(metric_series(plotted_rows(rows), key)[0].size for _, members in groups
                          for _, _, rows in members)]
    panels = [("ratio", "log(G loss / D loss)"), ("d", "D loss"), ("g", "G loss"), ("d_real", "D(x)"),
              ("d_fake", "D(G(z))")] + metric_keys
    figure, axes = stacked_figure(len(panels), 2.6 * len(panels) + 0.8)
    by_key = dict(zip((key for key, _ in panels), axes))
    curves = {key: [] for key, _ in panels}
    for index, (label, members) in enumerate(groups):
        color = f"C{index % 10}"
        for number, (name, log, rows) in enumerate(members):
            style = SWEEP_LINE_STYLES[number % len(SWEEP_LINE_STYLES)]
            shown = f"{label}: {name}" if len(members) > 1 else label
            for key, values in (("ratio", log_ratio(log.g_loss, log.d_loss)), ("d", log.d_loss), ("g", log.g_loss),
                                ("d_real", log.d_real), ("d_fake", log.d_fake)):
                smoothed = smooth_log(log, values, window)
                curves[key].append(smoothed)
                draw_curve(by_key[key], log.step, smoothed, color=color, linestyle=style, linewidth=1.3,
                           label=shown if key == "ratio" else None)
            for key, _ in metric_keys:
                steps, values = metric_series(plotted_rows(rows), key)
                if steps.size:
                    by_key[key].plot(steps, values, color=color, linestyle=style, marker="o", markersize=3,
                                     linewidth=1.3)
            if log.swap_step is not None:
                for key, _ in panels[:5]:
                    by_key[key].axvline(log.swap_step, color=color, linestyle="--", linewidth=0.9,
                                        label=f"{shown}: data swap at {log.swap_step}" if key == "ratio" else None)
    mark_epochs(axes[0], logs[0])
    by_key["ratio"].axhline(0.0, color="black", linewidth=1.0, label="G loss = D loss")
    for key, ylabel in panels:
        if curves[key] and key in ("ratio", "d", "g", "d_real", "d_fake"):
            robust_ylim(by_key[key], curves[key] + ([[0.0]] if key == "ratio" else []), curves[key])
        by_key[key].set_ylabel(ylabel)
    mark_equilibrium(by_key["ratio"], "\u2212log 2: D(x) = D(G(z)) = \u00bd")
    axes[0].set_title(title or f"{len(logs)} runs (trailing mean of {window} steps)")
    legend_beside(by_key["ratio"])
    axes[-1].set_xlabel("step (one D update each)")
    return save_figure(figure, out_path)
