"""Plots of a run and comparisons of runs, from hand-written loss CSVs and tiny fake sample grids (no model)."""

import math
import os

import numpy as np
import pytest
from PIL import Image

from conftest import HEADER, write_run
from dcgan_tf.analysis import plots
from dcgan_tf.runs.folders import RunError, RunPaths, list_training_grids, resolve_run


def write_grids(folder, steps, size=(24, 16), color=(200, 30, 30)):
    os.makedirs(folder, exist_ok=True)
    for step in steps:
        Image.new("RGB", size, color).save(os.path.join(folder, f"train_{step:08d}.png"))


def assert_png(path, min_width=300, min_height=150):
    assert os.path.isfile(path)
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width >= min_width and image.height >= min_height
        return image.size


# ------------------------------------------------------------------------------------------ maths
def test_smooth_is_a_trailing_mean_that_skips_non_finite_values():
    np.testing.assert_allclose(plots.smooth([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(plots.smooth([1, 2, 3, 4, 5], 3), [1, 1.5, 2, 3, 4])
    np.testing.assert_allclose(plots.smooth([1, 2, 3], 1), [1, 2, 3])
    np.testing.assert_allclose(plots.smooth([2, 4], 10), [2, 3])  # window longer than the data
    np.testing.assert_allclose(plots.smooth([1, np.nan, 3, np.inf, 5], 2), [1, 1, 3, 3, 5])
    assert np.isnan(plots.smooth([np.nan, np.nan, 1.0], 2)[:2]).all()
    assert plots.smooth([], 5).shape == (0,)
    with pytest.raises(ValueError, match="window"):
        plots.smooth([1.0], 0)


def test_log_ratio_values_and_guards():
    ratio = plots.log_ratio([2.0, 1.0, 0.5, 0.0, 1.0, np.nan, 1.0, -1.0], [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, np.inf, 1.0])
    np.testing.assert_allclose(ratio[:3], [math.log(2), 0.0, -math.log(2)])
    assert np.isnan(ratio[3:]).all()


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


# ------------------------------------------------------------------------------------------ reading
def test_read_loss_log_without_data_column(tmp_path):
    folder = write_run(tmp_path, "plain", 25, per_epoch=10, nan_at=(7,))
    log = plots.read_loss_log(folder)  # a folder or the CSV itself
    assert len(log) == 25 and log.step.tolist() == list(range(1, 26))
    assert log.data is None and log.swap_step is None and log.swap_label is None
    assert log.epoch_starts.tolist() == [11, 21]
    assert np.isnan(log.d_loss[6]) and np.isnan(log.g_loss[6])  # "nan" and "inf" both masked
    assert np.isfinite(np.delete(log.d_loss, 6)).all()
    assert log.name == "plain"


def test_read_loss_log_detects_the_swap_and_ignores_empty_cells(tmp_path):
    folder = write_run(tmp_path, "swap", 30, swap_at=16)
    log = plots.read_loss_log(os.path.join(folder, "losses.csv"))
    assert log.swap_step == 16
    assert (log.swap_from, log.swap_to) == ("reconstructions", "originals")
    assert "step 16" in log.swap_label

    path = tmp_path / "edited.csv"  # unsorted, a duplicate step (last wins), empty data cells, a torn last line
    path.write_text("step,epoch,d_loss,g_loss,data\n"
                    "2,0,1.0,1.0,\n1,0,1.0,1.0,originals\n3,0,1.0,1.0,\n3,0,2.0,4.0,originals\n"
                    "4,1,1.0,1.0,originals\n5,1,1.0,1.0,reconstructions\n6,1,1.0,1.0,originals\n7,1,0.")
    log = plots.read_loss_log(str(path))
    assert log.step.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert log.d_loss[2] == 2.0 and log.g_loss[2] == 4.0
    assert log.swap_step == 5  # the first change only
    assert log.epoch_starts.tolist() == [4]
    assert np.isnan(log.d_real).all()  # columns the file lacks are NaN


def test_read_loss_log_errors_are_clear(tmp_path):
    with pytest.raises(RunError, match="no loss log .*losses.csv"):
        plots.read_loss_log(str(tmp_path))
    (tmp_path / "losses.csv").write_text(",".join(HEADER) + "\n")
    with pytest.raises(RunError, match="no rows yet"):
        plots.read_loss_log(str(tmp_path))
    (tmp_path / "losses.csv").write_text("step,loss\n1,0.5\n")
    with pytest.raises(RunError, match="no column d_loss, g_loss"):
        plots.read_loss_log(str(tmp_path))


# ------------------------------------------------------------------------------------------ plots of a run
def test_ratio_plot_reads_a_csv_with_the_swap_marker(tmp_path):
    log = plots.read_loss_log(write_run(tmp_path, "swap", 60, swap_at=31, nan_at=(12,)))
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
    assert smoothed[30] == pytest.approx(plots.log_ratio(log.g_loss, log.d_loss)[30])
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

    figure = plots.losses_figure(plots.read_loss_log(folder))
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
    log = plots.read_loss_log(write_run(tmp_path, "short_epochs", 200, per_epoch=2))  # 99 epoch starts
    lines = plots.loss_ratio_figure(log).axes[0].get_lines()
    drawn = [line for line in lines if line.get_color() == "0.75"]
    assert len(drawn) == 33 <= plots.MAX_EPOCH_LINES
    assert "epoch start (1 in 3 drawn)" in [line.get_label() for line in lines]


# ------------------------------------------------------------------------------------------ runs compared
def test_resolve_run_by_name_or_folder_and_clear_errors(tmp_path):
    checkpoint_dir, sample_dir = str(tmp_path / "checkpoints"), str(tmp_path / "samples")
    write_run(checkpoint_dir, "ga2", 10)
    write_run(checkpoint_dir, "ga4", 10)
    run = resolve_run("ga2", checkpoint_dir, sample_dir)
    assert run == RunPaths("ga2", os.path.join(checkpoint_dir, "ga2"), os.path.join(sample_dir, "ga2"))

    elsewhere = write_run(str(tmp_path / "archive"), "old_run", 10, config=False)
    write_grids(os.path.join(elsewhere, "grids_here"), [1])  # not the sample folder
    write_grids(os.path.join(sample_dir, "old_run"), [5])
    run = resolve_run(elsewhere + os.sep, checkpoint_dir, sample_dir)
    assert run.name == "old_run" and run.checkpoint_path.rstrip(os.sep) == elsewhere
    assert run.sample_path == os.path.join(sample_dir, "old_run")

    with pytest.raises(RunError, match="no run 'ga3'.*runs there: ga2, ga4"):
        resolve_run("ga3", checkpoint_dir, sample_dir)
    with pytest.raises(RunError, match="runs there: none"):
        resolve_run("x", str(tmp_path / "nowhere"), sample_dir)


def test_compare_works_for_runs_of_different_lengths(tmp_path):
    checkpoint_dir = str(tmp_path / "checkpoints")
    short = write_run(checkpoint_dir, "ga2", 30, nan_at=(4,))
    long = write_run(checkpoint_dir, "ga50", 120)
    swap = write_run(checkpoint_dir, "ae_swap", 80, swap_at=41)
    runs = [resolve_run(name, checkpoint_dir, str(tmp_path / "samples")) for name in ("ga2", "ga50")]
    out = plots.compare_runs(runs + [swap], str(tmp_path / "compare" / "runs.png"))
    assert_png(out, min_width=800, min_height=700)

    logs = [plots.read_loss_log(path) for path in (short, long)]
    out = plots.compare_runs(logs, str(tmp_path / "two.png"), labels=["ratio 2", "ratio 50"], window=3)
    assert_png(out)
    with pytest.raises(ValueError, match="1 labels for 2 runs"):
        plots.compare_runs(logs, str(tmp_path / "bad.png"), labels=["one"])
    with pytest.raises(RunError, match="no loss log"):
        plots.compare_runs([str(tmp_path)], str(tmp_path / "bad.png"))


def test_nearest_grid_selection(tmp_path):
    write_grids(str(tmp_path), [0, 100, 200, 400])
    (tmp_path / "test_00000150.png").write_bytes(b"")  # test-mode grids are not training grids
    grids = list_training_grids(str(tmp_path))
    assert sorted(grids) == [0, 100, 200, 400]
    assert plots.nearest_grid(grids, 100) == (100, grids[100])
    assert plots.nearest_grid(grids, 130)[0] == 100
    assert plots.nearest_grid(grids, 150)[0] == 100  # a tie goes to the earlier grid
    assert plots.nearest_grid(grids, 320)[0] == 400
    assert plots.nearest_grid(grids, 10_000)[0] == 400
    assert list_training_grids(str(tmp_path / "none")) == {}
    with pytest.raises(ValueError, match="no sample grids"):
        plots.nearest_grid({}, 5)


def test_compare_grids_sheet(tmp_path):
    a, b = str(tmp_path / "samples" / "control"), str(tmp_path / "samples" / "ae_swap")
    write_grids(a, [50, 100, 400, 420])
    write_grids(b, [100, 200], size=(48, 32), color=(20, 20, 220))  # another grid size, a shorter run
    assert [[s for s, _ in row] for row in plots.choose_grids([a, b], [100, 400])] == [[100, 400], [100, 200]]
    assert [[s for s, _ in row] for row in plots.choose_grids([a, b], None)] == [[420], [200]]

    out = plots.compare_grids([a, b], [100, 400], str(tmp_path / "sheet.png"))
    width, height = assert_png(out, min_width=2 * 48, min_height=2 * 32)
    with Image.open(out) as sheet:
        pixels = np.asarray(sheet.convert("RGB")).reshape(-1, 3)
    assert ((pixels == (200, 30, 30)).all(axis=1)).sum() >= 2 * 48 * 32  # run a's grids, scaled to the cell
    assert ((pixels == (20, 20, 220)).all(axis=1)).sum() >= 2 * 48 * 32

    run = RunPaths("named", str(tmp_path), a)
    assert_png(plots.compare_grids([run], None, str(tmp_path / "last.png"), labels=["control"]), 48, 32)
    with pytest.raises(RunError, match="no sample grids train_<step>.png"):
        plots.compare_grids([a, str(tmp_path / "empty")], [100], str(tmp_path / "bad.png"))
    with pytest.raises(ValueError, match="at least one step"):
        plots.compare_grids([a], [], str(tmp_path / "bad.png"))
