"""A run's loss log read from hand-written CSVs, and the series maths of its plots (no model, no matplotlib)."""

import math
import os

import numpy as np
import pytest

from conftest import HEADER, write_run
from dcgan_tf.analysis import loss_log
from dcgan_tf.runs.folders import RunError


# ------------------------------------------------------------------------------------------ maths
def test_smooth_is_a_trailing_mean_that_skips_non_finite_values():
    np.testing.assert_allclose(loss_log.smooth([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(loss_log.smooth([1, 2, 3, 4, 5], 3), [1, 1.5, 2, 3, 4])
    np.testing.assert_allclose(loss_log.smooth([1, 2, 3], 1), [1, 2, 3])
    np.testing.assert_allclose(loss_log.smooth([2, 4], 10), [2, 3])  # window longer than the data
    np.testing.assert_allclose(loss_log.smooth([1, np.nan, 3, np.inf, 5], 2), [1, 1, 3, 3, 5])
    assert np.isnan(loss_log.smooth([np.nan, np.nan, 1.0], 2)[:2]).all()
    assert loss_log.smooth([], 5).shape == (0,)
    with pytest.raises(ValueError, match="window"):
        loss_log.smooth([1.0], 0)


def test_log_ratio_values_and_guards():
    ratio = loss_log.log_ratio([2.0, 1.0, 0.5, 0.0, 1.0, np.nan, 1.0, -1.0],
                               [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, np.inf, 1.0])
    np.testing.assert_allclose(ratio[:3], [math.log(2), 0.0, -math.log(2)])
    assert np.isnan(ratio[3:]).all()


# ------------------------------------------------------------------------------------------ reading
def test_read_loss_log_without_data_column(tmp_path):
    folder = write_run(tmp_path, "plain", 25, per_epoch=10, nan_at=(7,))
    log = loss_log.read_loss_log(folder)  # a folder or the CSV itself
    assert len(log) == 25 and log.step.tolist() == list(range(1, 26))
    assert log.data is None and log.swap_step is None and log.swap_label is None
    assert log.epoch_starts.tolist() == [11, 21]
    assert np.isnan(log.d_loss[6]) and np.isnan(log.g_loss[6])  # "nan" and "inf" both masked
    assert np.isfinite(np.delete(log.d_loss, 6)).all()
    assert log.name == "plain"


def test_read_loss_log_detects_the_swap_and_ignores_empty_cells(tmp_path):
    folder = write_run(tmp_path, "swap", 30, swap_at=16)
    log = loss_log.read_loss_log(os.path.join(folder, "losses.csv"))
    assert log.swap_step == 16
    assert (log.swap_from, log.swap_to) == ("reconstructions", "originals")
    assert "step 16" in log.swap_label

    path = tmp_path / "edited.csv"  # unsorted, a duplicate step (last wins), empty data cells, a torn last line
    path.write_text("step,epoch,d_loss,g_loss,data\n"
                    "2,0,1.0,1.0,\n1,0,1.0,1.0,originals\n3,0,1.0,1.0,\n3,0,2.0,4.0,originals\n"
                    "4,1,1.0,1.0,originals\n5,1,1.0,1.0,reconstructions\n6,1,1.0,1.0,originals\n7,1,0.")
    log = loss_log.read_loss_log(str(path))
    assert log.step.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert log.d_loss[2] == 2.0 and log.g_loss[2] == 4.0
    assert log.swap_step == 5  # the first change only
    assert log.epoch_starts.tolist() == [4]
    assert np.isnan(log.d_real).all()  # columns the file lacks are NaN


def test_read_loss_log_errors_are_clear(tmp_path):
    with pytest.raises(RunError, match="no loss log .*losses.csv"):
        loss_log.read_loss_log(str(tmp_path))
    (tmp_path / "losses.csv").write_text(",".join(HEADER) + "\n")
    with pytest.raises(RunError, match="no rows yet"):
        loss_log.read_loss_log(str(tmp_path))
    (tmp_path / "losses.csv").write_text("step,loss\n1,0.5\n")
    with pytest.raises(RunError, match="no column d_loss, g_loss"):
        loss_log.read_loss_log(str(tmp_path))
