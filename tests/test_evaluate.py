"""Measuring runs: --metrics while training (metrics.jsonl that continues across a resume, pictures, the best
checkpoint), --evaluate / --evaluate_all afterwards, label accuracy of a conditional run, and the offline error."""

import json
import os

import numpy as np
import pytest

from conftest import make_mnist, tiny_config
from dcgan_tf.analysis.plots import plot_metrics
from dcgan_tf.metrics import evaluate, features
from dcgan_tf.runs import folders as runs
from dcgan_tf.runs.trained import load_trained
from dcgan_tf.training.loop import train

MEASURED = dict(metrics="kid,fid,precision_recall,memorisation", metrics_features="smoke", metrics_freq=2,
                metrics_samples=16)


def steps_of(config):
    return [row["step"] for row in runs.read_metrics(config.checkpoint_path)]


@pytest.mark.slow
def test_metrics_while_training_continue_across_a_resume(tmp_path, image_folder):
    first = train(tiny_config(tmp_path, image_folder, **MEASURED)).config  # 3 steps: evaluated at 2 and the end
    assert steps_of(first) == [2, 3]
    with open(runs.metrics_file(first.checkpoint_path), "a") as handle:
        handle.write('{"step": 9, "kid": 0.1}\n{"step": 10, "ki')  # after the checkpoint, then torn by a kill
    result = train(tiny_config(tmp_path, image_folder, epoch=2, **MEASURED))
    assert steps_of(result.config) == [2, 3, 4, 6]  # rows past the restored step 3 went; nothing twice
    row = runs.read_metrics(result.config.checkpoint_path)[-1]
    assert {"fid", "kid", "kid_std", "precision", "recall", "copy_fraction", "seconds"} <= set(row)
    assert (row["samples"], row["real"], row["mode"], row["epoch"]) == (16, 10, "train", 2)
    assert row["features"].startswith("smoke-not_a_quality_measure") and row["kid"] > 0 and row["fid"] > 0
    pictures = os.listdir(result.config.sample_path)
    assert {"plot_metrics.png", "nearest_00000002.png", "nearest_00000006.png"} <= set(pictures)
    assert any(name.startswith("events") for name in os.listdir(os.path.join(result.config.checkpoint_path, "logs")))


@pytest.mark.slow
def test_evaluations_of_one_checkpoint_repeat_exactly(tmp_path, image_folder, first_run):
    """The evaluations' z are fixed per run: the same weights give the same values, so changes are G's doing."""
    config = first_run(max_to_keep=2)  # ckpt-2, ckpt-3
    stand_in = features.SmokeFeatures(seed=1, dim=16)
    plain = tiny_config(tmp_path, image_folder, metrics="kid,fid", metrics_samples=12)
    latest = evaluate.evaluate_run(plain, extractor=stand_in)
    again = evaluate.evaluate_run(plain, extractor=stand_in)
    every = evaluate.evaluate_run(plain, every_checkpoint=True, extractor=stand_in)
    assert [row["checkpoint"] for row in latest + every] == ["ckpt-3", "ckpt-2", "ckpt-3"]
    assert latest[0]["kid"] == again[0]["kid"] == every[1]["kid"] and latest[0]["fid"] == every[1]["fid"]
    assert every[0]["kid"] != every[1]["kid"]
    assert [(row["step"], row["mode"]) for row in runs.read_metrics(config.checkpoint_path)] == [
        (3, "evaluate"), (3, "evaluate"), (2, "evaluate"), (3, "evaluate")]


@pytest.mark.slow
def test_keep_best_keeps_the_best_scoring_checkpoint_across_a_resume(tmp_path, image_folder, monkeypatch):
    scripted = {2: 0.5, 3: 0.2, 4: 0.3, 6: 0.25}  # the best is step 3's; the resumed run must remember it

    def evaluate_scripted(self, model, picture_dir=None):
        step = model.steps_done
        return {"step": step, "epoch": model.epochs_done, "samples": 4, "real": 10, "kid": scripted[step],
                "kid_std": 0.0, "seconds": 0.0}

    monkeypatch.setattr(evaluate.Evaluator, "evaluate", evaluate_scripted)
    settings = dict(MEASURED, keep_best="kid")
    train(tiny_config(tmp_path, image_folder, **settings))
    result = train(tiny_config(tmp_path, image_folder, epoch=2, **settings))
    best = os.path.join(result.config.checkpoint_path, "best")
    record = json.load(open(os.path.join(best, "best.json")))
    assert (record["step"], record["kid"], record["signature"]["samples"]) == (3, 0.2, 16)
    assert sorted(name.split(".")[0] for name in os.listdir(best) if name.startswith("ckpt")) == ["ckpt-3", "ckpt-3"]
    _, model, step = load_trained(tiny_config(tmp_path, image_folder, checkpoint="best"))
    assert step == 3
    _, _, latest = load_trained(tiny_config(tmp_path, image_folder))
    assert latest == 6


@pytest.mark.slow
def test_label_accuracy_of_a_conditional_run(tmp_path):

    make_mnist(tmp_path / "data")  # 12 + 5 labelled digits
    config = tiny_config(tmp_path, "mnist", data_dir=str(tmp_path / "data"), output_height=28, batch_size=8,
                         gfc_dim=16, dfc_dim=16, metrics="label_accuracy", metrics_samples=20, metrics_freq=100)
    result = train(config)
    (row,) = runs.read_metrics(result.config.checkpoint_path)
    assert 0.0 <= row["label_accuracy"] <= 1.0 and 0.0 <= row["classifier_accuracy"] <= 1.0
    assert len(row["label_accuracy_per_label"]) == 10 and row["samples"] == 20
    cache = os.path.join(str(tmp_path / "checkpoints"), runs.METRICS_CACHE_DIR)
    (folder,) = [name for name in os.listdir(cache) if name.startswith("classifier_mnist")]
    assert sorted(os.listdir(os.path.join(cache, folder))) == ["label_classifier.json", "label_classifier.keras"]


@pytest.mark.parametrize("settings,flag", [
    (dict(fid_weights="nope.pth"), "--fid_weights"),  # the default network, the FID Inception
    (dict(metrics_features="keras_inception", inception_weights="nope.h5"), "--inception_weights"),
])
def test_missing_weights_fail_before_any_work(tmp_path, image_folder, settings, flag):
    settings = {key: str(tmp_path / value) if key.endswith("weights") else value for key, value in settings.items()}
    config = tiny_config(tmp_path, image_folder, metrics="kid", **settings)
    with pytest.raises(features.MissingWeightsError, match=flag):
        train(config)
    assert not os.path.exists(tmp_path / "checkpoints") and not os.path.exists(tmp_path / "samples")


def test_plot_metrics_overlays_runs_and_says_when_there_are_none(tmp_path):
    folders = []
    for name, values in (("a", (0.4, 0.2)), ("b", (0.5, 0.45))):
        folder = tmp_path / name
        folders.append(str(folder))
        for step, kid in zip((10, 20), values):
            runs.append_metrics(str(folder), {"step": step, "kid": kid, "kid_std": 0.01, "fid": 100 * kid})
    path = plot_metrics(folders, str(tmp_path / "compare.png"), labels=["ga2", "ga4"])
    assert os.path.getsize(path) > 0
    os.makedirs(tmp_path / "empty")
    with pytest.raises(runs.RunError, match="--metrics"):
        plot_metrics([str(tmp_path / "empty")], str(tmp_path / "none.png"))
    assert not os.path.exists(tmp_path / "none.png")
    assert np.isclose(runs.read_metrics(folders[0])[1]["kid"], 0.2)


def test_a_best_checkpoint_the_resumed_run_does_not_hold_is_dropped(tmp_path):
    """best/ made after the checkpoint a run resumes from (or before a rollback) is not this run's: emptied, and the
    best ranked from the comparable rows kept; one made before it stays, with its value."""
    import tensorflow as tf

    signature = {"features": "tiny", "samples": 16, "real": 10}
    best = evaluate.BestCheckpoint(tf.train.Checkpoint(v=tf.Variable(1.0)), str(tmp_path), "kid")
    best.signature = signature
    assert best.offer({"step": 9, "kid": 0.1}) and best.best == 0.1
    rows = [{"step": 2, "kid": 0.5, **signature}, {"step": 3, "kid": 0.3, **signature},
            {"step": 3, "kid": 0.01, "mode": "evaluate", **signature}, {"step": 3, "kid": 0.02, "samples": 99}]
    best.resume(3, signature, rows)
    assert not os.path.exists(tmp_path / "best") and best.best == 0.3  # evaluate-mode and unlike rows not ranked
    best.offer({"step": 3, "kid": 0.2})
    best.resume(5, signature, rows)
    assert best.best == 0.2 and os.path.isfile(tmp_path / "best" / "best.json")
    best.resume(5, {**signature, "samples": 32}, rows)  # measured otherwise now: not comparable
    assert best.best is None and not os.path.exists(tmp_path / "best")


@pytest.mark.slow
def test_a_failing_evaluation_is_logged_and_training_goes_on(tmp_path, image_folder, monkeypatch, caplog):
    def failing(self, model, picture_dir=None):
        raise ValueError("too few samples for 3 neighbours")

    monkeypatch.setattr(evaluate.Evaluator, "evaluate", failing)
    caplog.set_level("ERROR")
    result = train(tiny_config(tmp_path, image_folder, **MEASURED))
    assert result.step == 3 and result.stopped_by is None
    assert "no evaluation at step 2: ValueError: too few samples" in caplog.text


def test_the_log_line_says_how_to_read_the_copy_score_and_the_ema_decay():
    from dcgan_tf.metrics.evaluate import describe

    line = describe({"step": 360, "copy_fraction": 0.04, "ema_decay": 0.97568, "samples": 500, "real": 169,
                     "seconds": 3.0, "features": "fid_inception-15bbbb5109b5"})
    assert "copy_fraction 0.040 (0.5: like the data, 1: copies, near 0: far from it)" in line
    assert "EMA decay 0.9757" in line and "FID Inception" in line
