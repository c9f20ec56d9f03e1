"""A sweep's report from hand-made run folders (loss CSVs, metrics.jsonl, tiny grids; no model): every run and its
numbers in the tables, mean ± std over seeds, the pictures, a self-contained HTML page that a real browser renders."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import write_run
from dcgan_tf.runs import folders
from dcgan_tf.sweeps import plan, report


def fake_sweep(tmp_path) -> plan.Sweep:
    """Three runs of g_advantage=2,4 x seeds 1,2: three trained (one with a data swap), one never started."""
    ck, sm = tmp_path / "ck", tmp_path / "sm"
    planned, kids = [], {}
    for index, (ga, seed) in enumerate([(2, 1), (2, 2), (4, 1), (4, 2)]):
        name = f"ga{ga}_s{seed}"
        run = plan.SweepRun(name=name, settings={"g_advantage": ga}, seed=seed, args=[f"--g_advantage={ga}"],
                            epoch=3, checkpoint_path=str(ck / name), sample_path=str(sm / name))
        planned.append(run)
        if (ga, seed) == (4, 2):
            continue  # pending
        write_run(str(ck), name, 30, swap_at=15 if ga == 4 else None)
        kids[name] = [0.30 - 0.05 * index, 0.20 - 0.05 * index]
        for step, kid in zip((15, 30), kids[name]):
            folders.append_metrics(run.checkpoint_path, {"step": step, "kid": kid, "kid_std": 0.01, "mode": "train",
                                                         "features": "smoke-not_a_quality_measure-seed0-dim64"})
        os.makedirs(run.sample_path)
        for step in (10, 20, 30):
            pixels = np.random.default_rng(step + index).integers(0, 255, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(run.sample_path, folders.training_grid_name(step)))
        folders.mark_finished(run.checkpoint_path, 30, 3)
    sweep = plan.Sweep(name="study", folder=str(sm / "sweeps" / "study"), grid={"g_advantage": [2, 4]},
                       seeds=[1, 2], runs=planned, command=["python", "main.py", "--sweep", "g_advantage=2,4"],
                       report_steps=[10, 30])
    sweep.save()
    return sweep, kids


def test_the_report_lists_every_run_its_numbers_and_the_pictures(tmp_path):
    sweep, kids = fake_sweep(tmp_path)
    written = report.write_report(sweep.folder)
    assert sorted(os.path.basename(path) for path in written) == sorted(
        [report.CURVES_PNG, report.GRIDS_PNG, report.REPORT_MD, report.REPORT_HTML])
    assert all(os.path.isfile(path) for path in written)
    md = open(os.path.join(sweep.folder, report.REPORT_MD)).read()
    for run in sweep.runs:
        assert run.name in md
    rows = {line.split("|")[3].strip(): line for line in md.splitlines() if line.startswith("| ") and "ga" in line}
    assert "| pending |" in rows["ga4_s2"] and "| finished |" in rows["ga2_s1"]
    for name, (first, last) in kids.items():
        assert f"| {last:.4f} | {min(first, last):.4f} (" in rows[name]  # final KID, best KID (its step)
    ga2 = [kids["ga2_s1"][1], kids["ga2_s2"][1]]  # the g_advantage=2 row: mean ± std over its seeds
    assert f"{np.mean(ga2):.4f} \u00b1 {np.std(ga2, ddof=1):.4f}" in md
    assert "2/2" in md and "1/2" in md  # finished runs per setting
    assert md.count("python main.py --g_advantage=") == 4  # each run's command
    html = open(os.path.join(sweep.folder, report.REPORT_HTML)).read()
    sources = re.findall(r'<img[^>]* src="([^"]*)"', html)
    assert len(sources) == 2 and all(source.startswith("data:image/png;base64,") for source in sources)
    assert "Sample metrics measured with: smoke features: NOT a quality measure." in md  # said, and in bold in HTML
    assert "<strong>Sample metrics measured with: smoke features: NOT a quality measure.</strong>" in html
    sheet = Image.open(os.path.join(sweep.folder, report.GRIDS_PNG))
    assert sheet.height > 3 * 20  # three runs with grids, one row each


def test_the_report_of_a_sweep_whose_runs_have_not_started_says_so(tmp_path):
    sweep = plan.Sweep(name="empty", folder=str(tmp_path / "empty"), grid={"g_advantage": [2]}, seeds=[1],
                       runs=[plan.SweepRun(name="r", settings={"g_advantage": 2}, seed=1, args=[], epoch=1,
                                           checkpoint_path=str(tmp_path / "ck" / "r"),
                                           sample_path=str(tmp_path / "sm" / "r"))], command=[])
    sweep.save()
    written = report.write_report(sweep.folder)
    assert [os.path.basename(path) for path in written] == [report.REPORT_MD, report.REPORT_HTML]
    assert "1 pending" in open(written[0]).read()


def test_a_run_resumed_to_more_epochs_is_not_finished(tmp_path):
    run = plan.SweepRun(name="r", settings={}, seed=1, args=[], epoch=3, checkpoint_path=str(tmp_path / "r"),
                        sample_path=str(tmp_path / "s"))
    assert not plan.is_finished(run)
    folders.mark_finished(run.checkpoint_path, 20, 2)
    assert not plan.is_finished(run)
    folders.mark_finished(run.checkpoint_path, 30, 3)
    assert plan.is_finished(run)
    (tmp_path / "r" / folders.FINISHED_FILE).write_text("{torn")
    assert not plan.is_finished(run)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian: apt-get install chromium)")
def test_the_html_report_renders_in_a_headless_browser(tmp_path):
    sweep, _ = fake_sweep(tmp_path)
    report.write_report(sweep.folder)
    shot = tmp_path / "shot.png"
    page = "file://" + os.path.abspath(os.path.join(sweep.folder, report.REPORT_HTML))
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--log-level=3",
                    "--window-size=1200,3000", f"--screenshot={shot}", page], capture_output=True, timeout=120,
                   check=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (3000, 1200)
    rows = np.flatnonzero((pixels < 250).any(axis=(1, 2)))
    assert rows.max() > 1500  # the page reaches down past the tables: its embedded pictures were drawn
    colourful = (pixels.max(axis=2).astype(int) - pixels.min(axis=2)) > 60
    assert colourful.sum() > 2000  # the curves' colours and the grids' pixels, not only black text


def test_the_report_gives_an_ema_runs_effective_decay(tmp_path):
    """--ema 0.999 after 30 steps is min(0.999, 31 / 40) = 0.775: the table says what the average really was."""
    from dcgan_tf.config import Config

    sweep, _ = fake_sweep(tmp_path)
    run = sweep.runs[0]
    config = Config(ema=0.999, checkpoint_dir=os.path.dirname(run.checkpoint_path),
                    run_name=os.path.basename(run.checkpoint_path))
    folders.save_config(config)
    report.write_report(sweep.folder)
    md = open(os.path.join(sweep.folder, report.REPORT_MD)).read()
    assert "EMA decay (last step)" in md
    rows = {line.split("|")[3].strip(): line for line in md.splitlines() if line.startswith("| ") and "ga" in line}
    assert "| 0.7750 |" in rows[run.name] and "| 0.7750 |" not in rows["ga2_s2"]


def test_the_best_copy_score_is_the_one_nearest_a_half():
    """0.5: samples like the data; 1: copies; near 0: far from the data, no merit. KID's best is the lowest."""
    found = [(0.05, 100), (0.62, 200), (0.9, 300)]
    rules = {key: rule for key, _, rule in report.METRIC_COLUMNS}
    assert report.best_of(found, rules["copy_fraction"]) == (0.62, 200)
    assert report.best_of(found, rules["kid"]) == (0.05, 100)
    assert report.best_of(found, rules["precision"]) == (0.9, 300)
