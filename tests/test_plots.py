"""Plots of one run, from hand-written loss CSVs (no model)."""

import os

import numpy as np
import pytest

from conftest import assert_png, write_run
from dcgan_tf.analysis import loss_log, plots
from dcgan_tf.runs.folders import RunError


# ------------------------------------------------------------------------------------------ drawing
def test_long_curves_are_thinned_for_drawing_but_keep_their_extremes():
    x = np.arange(1, 10_001)
    y = np.sin(x / 50.0)
    y[1234], y[5678], y[7000:7100] = 9.0, -9.0, np.nan
    tx, ty = plots.thin_for_drawing(x, y, max_points=500)
    assert len(tx) <= 500 and np.all(np.diff(tx) > 0)
    assert 1235 in tx and 5679 in tx and np.nanmax(ty) == 9.0 and np.nanmin(ty) == -9.0
    assert np.isnan(ty).any()  # the all-NaN stretch stays a gap
    short = plots.thin_for_drawing(x[:100], y[:100], max_points=500)
    assert np.array_equal(short[0], x[:100])


# ------------------------------------------------------------------------------------------ plots of a run
def test_ratio_plot_reads_a_csv_with_the_swap_marker(tmp_path):
    log = loss_log.read_loss_log(write_run(tmp_path, "swap", 60, swap_at=31, nan_at=(12,)))
    figure = plots.loss_ratio_figure(log)
    ax = figure.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "ideal (G loss = D loss)" in labels
    ideal = ax.get_lines()[labels.index("ideal (G loss = D loss)")]
    assert list(ideal.get_ydata()) == [0, 0]
    swap = [line for line in ax.get_lines() if line.get_label().startswith("data swap at step 31")]
    assert len(swap) == 1 and list(swap[0].get_xdata()) == [31, 31]
    # The smoothed curve restarts at the swap: its first point after it is that step's own ratio.
    smoothed = [line for line in ax.get_lines() if line.get_label().startswith("log(G/D)")][0].get_ydata()
    assert smoothed[30] == pytest.approx(loss_log.log_ratio(log.g_loss, log.d_loss)[30])
    assert_png(plots.plot_loss_ratio(log, str(tmp_path / "out" / "ratio.png")))


def test_plot_run_writes_both_plots_into_the_sample_folder(tmp_path):
    folder = write_run(tmp_path / "checkpoints", "run", 40, nan_at=(5, 6))
    sample_path = str(tmp_path / "samples" / "run")
    paths = plots.plot_run(folder, sample_path)
    assert [os.path.basename(p) for p in paths] == ["plot_losses.png", "plot_loss_ratio.png"]
    width, height = assert_png(paths[0], min_height=500)
    assert width >= 800
    assert_png(paths[1])
    assert not [name for name in os.listdir(sample_path) if name.endswith(".tmp")]

    figure = plots.losses_figure(loss_log.read_loss_log(folder))
    assert len(figure.axes) == 2
    epoch_lines = [line for line in figure.axes[0].get_lines() if line.get_color() == "0.75"]
    assert [line.get_xdata()[0] for line in epoch_lines] == [11, 21, 31]

    with pytest.raises(RunError, match="losses.csv"):
        plots.plot_run(str(tmp_path / "checkpoints" / "missing"), sample_path)


def test_a_linear_probe_line_is_no_metric_to_plot(tmp_path):
    import json

    folder = write_run(tmp_path / "checkpoints", "run", 20)
    with open(os.path.join(folder, "metrics.jsonl"), "w") as handle:  # what --probe appends, and nothing else
        handle.write(json.dumps({"step": 20, "mode": "probe", "probe_accuracy_trained_d": 0.9}) + "\n")
    paths = plots.plot_run(folder, str(tmp_path / "samples" / "run"))
    assert [os.path.basename(p) for p in paths] == ["plot_losses.png", "plot_loss_ratio.png"]
    assert plots.plotted_rows([{"step": 1, "kid": 0.1}, {"step": 2, "mode": "probe"}]) == [{"step": 1, "kid": 0.1}]


def test_many_epochs_draw_a_bounded_number_of_lines(tmp_path):
    log = loss_log.read_loss_log(write_run(tmp_path, "short_epochs", 200, per_epoch=2))  # 99 epoch starts
    lines = plots.loss_ratio_figure(log).axes[0].get_lines()
    drawn = [line for line in lines if line.get_color() == "0.75"]
    assert len(drawn) == 33 <= plots.MAX_EPOCH_LINES
    assert "epoch start (1 in 3 drawn)" in [line.get_label() for line in lines]
