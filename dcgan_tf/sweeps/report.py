"""A sweep's report, from what its runs hold now: `report.md` (pictures alongside) and `report.html` (the same, the
pictures embedded, so the one file opens anywhere, offline).

It has a table of the runs (the settings that vary, seed, status, steps, training time, final and best metrics,
disk used) and one of the settings over their seeds (mean ± std), the runs' curves overlaid (compare.sweep_curves),
their training grids side by side at chosen steps (compare.compare_grids), and each run's command.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import os
import shlex

import numpy as np

from dcgan_tf import files
from dcgan_tf.analysis import compare, loss_log, plots
from dcgan_tf.config import Config, effective_ema_decay
from dcgan_tf.metrics import feature_caption
from dcgan_tf.runs import folders
from dcgan_tf.runs.folders import RunError, RunPaths
from dcgan_tf.sweeps.plan import Sweep, SweepRun, format_value, is_finished, load_sweep

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
CURVES_PNG = "report_curves.png"
GRIDS_PNG = "report_grids.png"
# metrics.jsonl values in the tables: (key, heading, which is best: True the highest, False the lowest, a number the
# nearest to it). The copy score is about 0.5 for samples like the data, 1 for copies and near 0 for samples far from
# the data, so its best is the nearest to 0.5: a low one is no merit (read it beside precision).
METRIC_COLUMNS = (("kid", "KID", False), ("fid", "FID", False), ("precision", "precision", True),
                  ("recall", "recall", True), ("label_accuracy", "label accuracy", True),
                  ("copy_fraction", "copy score (0.5: like the data, 1: copies, ~0: far from it)", 0.5))


def best_of(found: list[tuple[float, int]], best) -> tuple[float, int]:
    """The best (value, step) of `found` by METRIC_COLUMNS' rule `best`."""
    if best is True or best is False:
        return (max if best else min)(found, key=lambda pair: pair[0])
    return min(found, key=lambda pair: abs(pair[0] - best))


@dataclasses.dataclass
class RunSummary:
    """What one run of a sweep holds now."""

    run: SweepRun
    status: str
    steps: int | None  # the last step in losses.csv
    epochs: int | None
    seconds: float | None  # training time: losses.csv's seconds summed, else the sweep's process time
    final: dict  # metric key -> value at the last evaluation
    best: dict  # metric key -> (value, step) of the best evaluation
    disk_bytes: int
    log: loss_log.LossLog | None
    rows: list  # the evaluations drawn (metrics.jsonl)
    ema_decay: float | None = None  # --ema runs: the decay their average has at the last step (after the warm-up)


def _ema_decay(run: SweepRun, steps: int | None) -> float | None:
    """The effective EMA decay of a run at `steps` (config.effective_ema_decay), from its config.json; None without
    an EMA or a readable config."""
    try:
        saved = folders.load_saved_config(Config(checkpoint_dir=os.path.dirname(run.checkpoint_path),
                                                 run_name=os.path.basename(run.checkpoint_path)))
    except RunError:
        return None
    ema = saved.resolved().ema if saved is not None else None
    return effective_ema_decay(ema, steps) if ema and steps else None


def summarize(run: SweepRun) -> RunSummary:
    try:
        log = loss_log.read_loss_log(run.checkpoint_path)
    except RunError:
        log = None
    rows = plots.plotted_rows(folders.read_metrics(run.checkpoint_path))
    final, best = {}, {}
    for key, _, rule in METRIC_COLUMNS:
        found = [(row[key], row["step"]) for row in rows
                 if isinstance(row.get(key), (int, float)) and math.isfinite(row[key])]
        if found:
            final[key] = found[-1][0]
            best[key] = best_of(found, rule)
    status = "finished" if is_finished(run) else run.status if run.status != "finished" else "stopped"
    if status == "pending" and log is not None:
        status = "stopped"  # trained outside this sweep's runner (--sweep_print), not to the end yet
    seconds = log.training_seconds if log is not None else None
    epochs = int(log.epoch.max()) + 1 if log is not None and log.epoch.max() >= 0 else None
    return RunSummary(run=run, status=status, steps=int(log.step[-1]) if log is not None else None, epochs=epochs,
                      seconds=seconds if seconds is not None else (run.wall_seconds or None), final=final, best=best,
                      disk_bytes=folders.folder_bytes(run.checkpoint_path) + folders.folder_bytes(run.sample_path),
                      log=log, rows=rows, ema_decay=_ema_decay(run, int(log.step[-1]) if log is not None else None))


def mean_std(values) -> str:
    """'0.0123 ± 0.0045' over the finite values (one value: itself; none: '–')."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "\u2013"
    if len(values) == 1:
        return _number(values[0])
    return f"{_number(float(np.mean(values)))} \u00b1 {_number(float(np.std(values, ddof=1)))}"


def _steps(values: list[int]) -> str:
    """The steps the runs reached: one number when they agree, else their range."""
    if not values:
        return "\u2013"
    return str(values[0]) if min(values) == max(values) else f"{min(values)}\u2013{max(values)}"


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def _minutes(seconds: float | None) -> str:
    return "\u2013" if seconds is None else f"{seconds / 60:.1f} min"


def _mb(count: float) -> str:
    return f"{count / 2**20:.1f} MB"


def _settings(sweep: Sweep, run: SweepRun) -> list[str]:
    return [format_value(run.settings.get(name)) for name in sweep.grid]


def run_table(sweep: Sweep, summaries: list[RunSummary], metric_keys) -> tuple[list[str], list[list[str]]]:
    """Headings and rows of the per-run table."""
    head = [*sweep.grid, "seed", "run", "status", "steps", "training time"]
    for key, heading, _ in metric_keys:
        head += [f"final {heading}", f"best {heading} (step)"]
    ema = any(s.ema_decay is not None for s in summaries)
    head += ["EMA decay (last step)"] * ema + ["disk used"]
    rows = []
    for s in summaries:
        row = [*_settings(sweep, s.run), str(s.run.seed), s.run.name, s.status,
               "\u2013" if s.steps is None else str(s.steps), _minutes(s.seconds)]
        for key, _, _ in metric_keys:
            row.append(_number(s.final[key]) if key in s.final else "\u2013")
            row.append(f"{_number(s.best[key][0])} ({s.best[key][1]})" if key in s.best else "\u2013")
        if ema:
            row.append("\u2013" if s.ema_decay is None else f"{s.ema_decay:.4f}")
        row.append(_mb(s.disk_bytes))
        rows.append(row)
    return head, rows


def group_table(sweep: Sweep, summaries: list[RunSummary], metric_keys) -> tuple[list[str], list[list[str]]]:
    """Headings and rows of the per-combination table: mean ± std over its seeds."""
    head = [*sweep.grid, "seeds", "finished", "steps", "training time"]
    for key, heading, _ in metric_keys:
        head += [f"final {heading}", f"best {heading}"]
    head.append("disk used")
    groups = {}
    for s in summaries:
        groups.setdefault(tuple(_settings(sweep, s.run)), []).append(s)
    rows = []
    for settings, members in groups.items():
        row = [*settings, ",".join(str(s.run.seed) for s in members),
               f"{sum(s.status == 'finished' for s in members)}/{len(members)}",
               _steps([s.steps for s in members if s.steps is not None]),
               _minutes(np.mean([s.seconds for s in members]) if all(s.seconds for s in members) else None)]
        for key, _, _ in metric_keys:
            row.append(mean_std([s.final.get(key) for s in members]))
            row.append(mean_std([s.best[key][0] if key in s.best else None for s in members]))
        row.append(_mb(float(np.mean([s.disk_bytes for s in members]))))
        rows.append(row)
    return head, rows


def write_report(folder: str, steps: list[int] | None = None) -> list[str]:
    """(Re)write a sweep's report from its sweep.json and what its runs hold now; the paths written."""
    sweep = load_sweep(folder)
    steps = steps or sweep.report_steps
    summaries = [summarize(run) for run in sweep.runs]
    metric_keys = [column for column in METRIC_COLUMNS if any(column[0] in s.final for s in summaries)]
    written, pictures = [], {}
    groups = {}
    for s in summaries:
        if s.log is not None:
            label = " ".join(f"{k}={v}" for k, v in zip(sweep.grid, _settings(sweep, s.run)))
            groups.setdefault(label, []).append((f"seed {s.run.seed}", s.log, s.rows))
    if groups:
        pictures["curves"] = compare.sweep_curves(list(groups.items()), os.path.join(folder, CURVES_PNG),
                                                  title=f"sweep {sweep.name}: {len(summaries)} runs")
    with_grids = [s for s in summaries if folders.list_training_grids(s.run.sample_path)]
    if with_grids:
        pictures["grids"] = compare.compare_grids(
            [RunPaths(s.run.name, s.run.checkpoint_path, s.run.sample_path) for s in with_grids], steps,
            os.path.join(folder, GRIDS_PNG), labels=[s.run.label for s in with_grids])
    written += pictures.values()
    sweep_bytes = folders.folder_bytes(folder)
    context = _Context(sweep, summaries, metric_keys, steps, pictures, sweep_bytes)
    written.append(files.write_text(os.path.join(folder, REPORT_MD), _markdown(context)))
    written.append(files.write_text(os.path.join(folder, REPORT_HTML), _html(context)))
    return written


@dataclasses.dataclass
class _Context:
    sweep: Sweep
    summaries: list
    metric_keys: list
    steps: list | None
    pictures: dict
    sweep_bytes: int

    @property
    def disk_line(self) -> str:
        used = sum(s.disk_bytes for s in self.summaries) + self.sweep_bytes
        line = f"disk used: {_mb(used)} (runs {_mb(used - self.sweep_bytes)}, this sweep's folder " \
               f"{_mb(self.sweep_bytes)})"
        if self.sweep.disk_budget_mb:
            line += f" of a budget of {self.sweep.disk_budget_mb:g} MB"
            thinned = {name: change for name, change in self.sweep.budget.get("settings", {}).items() if change}
            if thinned:
                line += "; to fit it, runs were given " + "; ".join(sorted({
                    ", ".join(f"--{k} {v}" for k, v in change.items()) for change in thinned.values()}))
        return line

    @property
    def features_line(self) -> str:
        """Which feature network measured the runs' metrics (the plotted rows'), or '' without metrics."""
        keys = {row.get("features") for s in self.summaries for row in (s.rows or []) if row.get("features")}
        captions = sorted({feature_caption(key) for key in keys})
        return f"Sample metrics measured with: {'; '.join(captions)}." if captions else ""

    @property
    def counts(self) -> str:
        statuses = [s.status for s in self.summaries]
        return ", ".join(f"{statuses.count(name)} {name}" for name in ("finished", "running", "stopped", "failed",
                                                                        "pending") if statuses.count(name))

    @property
    def dropped(self) -> list[str]:
        found = {}
        for s in self.summaries:
            for setting, why in s.run.dropped.items():
                found.setdefault((setting, why), []).append(s.run.label)
        return [f"--{setting} left out of {len(labels)} run(s) ({', '.join(labels)}): {why}"
                for (setting, why), labels in found.items()]


def _md_table(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(c: _Context) -> str:
    sweep = c.sweep
    grid = "; ".join(f"{name}={','.join(format_value(v) for v in values)}" for name, values in sweep.grid.items())
    parts = [f"# Sweep {sweep.name}", "",
             f"{len(c.summaries)} runs: {grid} \u00d7 seeds {','.join(map(str, sweep.seeds))} ({c.counts}).", "",
             f"Command: `{shlex.join(sweep.command)}`" if sweep.command else "", "", c.disk_line + ".", ""]
    parts += [c.features_line, ""] if c.features_line else []
    parts += [f"- {line}" for line in c.dropped] + ([""] if c.dropped else [])
    parts += ["## Settings over seeds (mean \u00b1 std)", "", _md_table(*group_table(sweep, c.summaries,
                                                                                     c.metric_keys)), ""]
    parts += ["## Runs", "", _md_table(*run_table(sweep, c.summaries, c.metric_keys)), "",
              "Training time sums each step's wall time from losses.csv (grids, checkpoints and evaluations "
              "included; process start-up and data loading not).", ""]
    if "curves" in c.pictures:
        parts += ["## Curves", "", f"![curves]({CURVES_PNG})", ""]
    if "grids" in c.pictures:
        which = "steps " + ", ".join(map(str, c.steps)) if c.steps else "each run's last grid"
        parts += [f"## Grids ({which}; the nearest saved grid, labelled with its step)", "",
                  f"![grids]({GRIDS_PNG})", ""]
    parts += ["## Commands", "", "Each run on its own (the same command resumes it):", "", "```"]
    parts += [shlex.join(s.run.command()) for s in c.summaries]
    parts += ["```", ""]
    return "\n".join(parts)


HTML_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.text { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 12px; }
.failed { color: #b00020; } .stopped, .pending, .running { color: #a06000; }
"""


def _html_table(head, rows, status_column: int | None = None) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            numeric = cell[:1].isdigit() or cell[:1] in "-\u2013"
            classes = ([] if numeric else ["text"]) + ([cell] if index == status_column else [])
            attribute = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attribute}>{html.escape(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _embedded(path: str, alt: str) -> str:
    with open(path, "rb") as handle:
        data = base64.b64encode(handle.read()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html(c: _Context) -> str:
    sweep = c.sweep
    grid = "; ".join(f"{name}={','.join(format_value(v) for v in values)}" for name, values in sweep.grid.items())
    run_head, run_rows = run_table(sweep, c.summaries, c.metric_keys)
    body = [f"<h1>Sweep {html.escape(sweep.name)}</h1>",
            f"<p>{len(c.summaries)} runs: {html.escape(grid)} \u00d7 seeds "
            f"{html.escape(','.join(map(str, sweep.seeds)))} ({html.escape(c.counts)}).</p>"]
    if sweep.command:
        body.append(f"<p>Command: <code>{html.escape(shlex.join(sweep.command))}</code></p>")
    body.append(f"<p>{html.escape(c.disk_line)}.</p>")
    if c.features_line:
        body.append(f"<p><strong>{html.escape(c.features_line)}</strong></p>")
    if c.dropped:
        body.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in c.dropped) + "</ul>")
    body += ["<h2>Settings over seeds (mean \u00b1 std)</h2>",
             _html_table(*group_table(sweep, c.summaries, c.metric_keys)),
             "<h2>Runs</h2>", _html_table(run_head, run_rows, status_column=run_head.index("status")),
             "<p>Training time sums each step's wall time from losses.csv (grids, checkpoints and evaluations "
             "included; process start-up and data loading not).</p>"]
    if "curves" in c.pictures:
        body += ["<h2>Curves</h2>", _embedded(c.pictures["curves"], "curves")]
    if "grids" in c.pictures:
        which = "steps " + ", ".join(map(str, c.steps)) if c.steps else "each run's last grid"
        body += [f"<h2>Grids ({html.escape(which)}; the nearest saved grid, labelled with its step)</h2>",
                 _embedded(c.pictures["grids"], "grids")]
    body += ["<h2>Commands</h2>", "<p>Each run on its own (the same command resumes it):</p>",
             "<pre>" + "\n".join(html.escape(shlex.join(s.run.command())) for s in c.summaries) + "</pre>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Sweep {html.escape(sweep.name)}</title><style>{HTML_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
