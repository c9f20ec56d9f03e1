"""Runs compared: their curves overlaid and their sample grids side by side, from hand-written loss CSVs and tiny
fake sample grids (no model)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import assert_png, write_grids, write_run
from dcgan_tf.analysis import compare, loss_log
from dcgan_tf.runs.folders import RunError, RunPaths, list_training_grids, resolve_run


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
    out = compare.compare_runs(runs + [swap], str(tmp_path / "compare" / "runs.png"))
    assert_png(out, min_width=800, min_height=700)

    logs = [loss_log.read_loss_log(path) for path in (short, long)]
    out = compare.compare_runs(logs, str(tmp_path / "two.png"), labels=["ratio 2", "ratio 50"], window=3)
    assert_png(out)
    with pytest.raises(ValueError, match="1 labels for 2 runs"):
        compare.compare_runs(logs, str(tmp_path / "bad.png"), labels=["one"])
    with pytest.raises(RunError, match="no loss log"):
        compare.compare_runs([str(tmp_path)], str(tmp_path / "bad.png"))


def test_nearest_grid_selection(tmp_path):
    write_grids(str(tmp_path), [0, 100, 200, 400])
    (tmp_path / "test_00000150.png").write_bytes(b"")  # test-mode grids are not training grids
    grids = list_training_grids(str(tmp_path))
    assert sorted(grids) == [0, 100, 200, 400]
    assert compare.nearest_grid(grids, 100) == (100, grids[100])
    assert compare.nearest_grid(grids, 130)[0] == 100
    assert compare.nearest_grid(grids, 150)[0] == 100  # a tie goes to the earlier grid
    assert compare.nearest_grid(grids, 320)[0] == 400
    assert compare.nearest_grid(grids, 10_000)[0] == 400
    assert list_training_grids(str(tmp_path / "none")) == {}
    with pytest.raises(ValueError, match="no sample grids"):
        compare.nearest_grid({}, 5)


def test_compare_grids_sheet(tmp_path):
    a, b = str(tmp_path / "samples" / "control"), str(tmp_path / "samples" / "ae_swap")
    write_grids(a, [50, 100, 400, 420])
    write_grids(b, [100, 200], size=(48, 32), color=(20, 20, 220))  # another grid size, a shorter run
    assert [[s for s, _ in row] for row in compare.choose_grids([a, b], [100, 400])] == [[100, 400], [100, 200]]
    assert [[s for s, _ in row] for row in compare.choose_grids([a, b], None)] == [[420], [200]]

    out = compare.compare_grids([a, b], [100, 400], str(tmp_path / "sheet.png"))
    width, height = assert_png(out, min_width=2 * 48, min_height=2 * 32)
    with Image.open(out) as sheet:
        pixels = np.asarray(sheet.convert("RGB")).reshape(-1, 3)
    assert ((pixels == (200, 30, 30)).all(axis=1)).sum() >= 2 * 48 * 32  # run a's grids, scaled to the cell
    assert ((pixels == (20, 20, 220)).all(axis=1)).sum() >= 2 * 48 * 32

    run = RunPaths("named", str(tmp_path), a)
    assert_png(compare.compare_grids([run], None, str(tmp_path / "last.png"), labels=["control"]), 48, 32)
    with pytest.raises(RunError, match="no sample grids train_<step>.png"):
        compare.compare_grids([a, str(tmp_path / "empty")], [100], str(tmp_path / "bad.png"))
    with pytest.raises(ValueError, match="at least one step"):
        compare.compare_grids([a], [], str(tmp_path / "bad.png"))


def test_write_comparison_names_its_pictures_after_the_runs(tmp_path):
    """--compare's files: the curves and the grids, and the metrics once a run has evaluations."""
    checkpoint_dir, sample_dir, out = str(tmp_path / "checkpoints"), str(tmp_path / "samples"), str(tmp_path / "out")
    for name in ("ga2", "ga50"):
        write_run(checkpoint_dir, name, 30)
        write_grids(os.path.join(sample_dir, name), [10, 30])
    runs = [resolve_run(name, checkpoint_dir, sample_dir) for name in ("ga2", "ga50")]
    written = compare.write_comparison(runs, out, [10], labels=["two", "fifty"])
    assert written == [os.path.join(out, f"compare_{what}_ga2_vs_ga50.png") for what in ("losses", "grids")]
    for path in written:
        assert_png(path, min_width=40, min_height=16)
    with open(os.path.join(runs[1].checkpoint_path, "metrics.jsonl"), "w") as handle:
        handle.write(json.dumps({"step": 30, "kid": 0.1, "kid_std": 0.01}) + "\n")
    written = compare.write_comparison(runs, out)
    assert [os.path.basename(path) for path in written][2:] == ["compare_metrics_ga2_vs_ga50.png"]
    assert_png(written[2])
