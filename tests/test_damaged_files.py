"""Files a run reads back, torn or hand-edited: config.json, metrics.jsonl, best.json, probe.json, finished.json,
export.json and sweep.json. Each is named with what is wrong; a log keeps its complete lines and sets the torn one
aside; a record that can be made again is set aside (never silently overwritten); nothing else is changed."""

import json
import logging
import os
import shutil

import pytest

from conftest import TINY, csv_steps, run_main, tiny_config, write_images
from dcgan_tf import files
from dcgan_tf.analysis import probe
from dcgan_tf.metrics.evaluate import BestCheckpoint
from dcgan_tf.runs import folders
from dcgan_tf.runs.folders import RunError
from dcgan_tf.serving import export
from dcgan_tf.sweeps import plan
from dcgan_tf.training.loop import train


def folder_state(folder):
    """{file name: bytes} of a folder's files."""
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name))}


@pytest.mark.parametrize("text, fault", [
    ("{bad json", "not valid JSON (Expecting property name enclosed in double quotes: line 1, column 2)"),
    ("", "it is empty"),
    ("[1, 2]", "a JSON list, not an object"),
])
def test_read_json_object_names_the_file_and_the_fault(tmp_path, text, fault):
    path = tmp_path / "record.json"
    path.write_text(text)
    with pytest.raises(files.DamagedFileError) as error:
        files.read_json_object(str(path))
    assert str(error.value) == f"{path} is damaged: {fault}"
    assert files.read_json_object(str(tmp_path / "missing.json")) is None
    (tmp_path / "good.json").write_text('{"step": 3}')
    assert files.read_json_object(str(tmp_path / "good.json")) == {"step": 3}


def test_a_damaged_config_json_stops_training_with_how_to_recover_and_changes_nothing(tmp_path, image_folder,
                                                                                      first_run):
    config = first_run()
    path = os.path.join(config.checkpoint_path, "config.json")
    with open(path, "w") as handle:
        handle.write("{bad json")
    before = folder_state(config.checkpoint_path)
    with pytest.raises(RunError) as error:
        train(tiny_config(tmp_path, image_folder, epoch=2))
    message = str(error.value)
    assert message.startswith(f"{path} is damaged: not valid JSON (") and "nothing was done" in message
    assert f"mv {path} {path}.damaged" in message and "resumes from its newest checkpoint, ckpt-3" in message
    assert config.name in message
    after = folder_state(config.checkpoint_path)
    after.pop("run.lock", None), before.pop("run.lock", None)  # the lock file names the latest holder
    assert after == before

    # what the message says to do: the file aside, the same command: the run resumes where it was
    os.replace(path, path + ".damaged")
    result = train(tiny_config(tmp_path, image_folder, epoch=2))
    assert (result.step, result.epoch) == (6, 2)
    assert csv_steps(config) == [1, 2, 3, 4, 5, 6]
    assert folders.load_saved_config(config).name == config.name


@pytest.mark.slow
def test_a_damaged_config_json_is_one_line_from_main(tmp_path):
    write_images(tmp_path / "data" / "faces", 8)
    run = tmp_path / "checkpoints" / "faces_b4_16x16_z8_ga2_gf8_df8"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{bad json")
    for mode in (["--train"], [], ["--visualize"]):
        done = run_main("--dataset", "faces", *TINY, "--epoch", "1", *mode, cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        lines = [line for line in done.stderr.splitlines() if line.startswith("main.py: error: ")]
        assert len(lines) == 1 and "config.json is damaged: not valid JSON" in lines[0], done.stderr[-2000:]
    assert sorted(set(os.listdir(run)) - {"run.lock"}) == ["config.json"]  # the lock names its latest holder
    assert (run / "config.json").read_text() == "{bad json"


def test_metrics_jsonl_keeps_its_complete_lines_and_sets_the_torn_one_aside(tmp_path, caplog):
    folder = str(tmp_path / "run")
    folders.append_metrics(folder, {"step": 2, "kid": 0.5})
    with open(folders.metrics_file(folder), "a") as handle:
        handle.write('{"step": 3, "ki')  # a kill in the middle of a line: no newline
    folders.append_metrics(folder, {"step": 3, "kid": 0.4})  # the next row starts a line of its own
    assert folders.read_metrics(folder) == [{"step": 2, "kid": 0.5}, {"step": 3, "kid": 0.4}]
    with caplog.at_level(logging.WARNING, logger="dcgan_tf"):
        kept = folders.keep_metrics_until(folder, 3)  # a resume
    assert kept == [{"step": 2, "kid": 0.5}, {"step": 3, "kid": 0.4}]
    assert open(folders.metrics_file(folder) + ".torn").read() == '{"step": 3, "ki\n'
    assert open(folders.metrics_file(folder)).read().count("\n") == 2
    assert "1 torn or invalid line(s) set aside in" in caplog.text and "metrics.jsonl.torn" in caplog.text


def test_a_damaged_best_json_is_set_aside_and_best_is_chosen_again(tmp_path, caplog):
    import tensorflow as tf

    keeper = BestCheckpoint(tf.train.Checkpoint(v=tf.Variable(1.0)), str(tmp_path), "kid")
    os.makedirs(keeper.directory)
    with open(keeper.record, "w") as handle:
        handle.write('{"step": 2, "kid"')
    rows = [{"step": 1, "kid": 0.3, "mode": "train"}, {"step": 2, "kid": 0.2, "mode": "train"}]
    with caplog.at_level(logging.WARNING, logger="dcgan_tf"):
        keeper.resume(2, {}, rows)
    assert keeper.best == 0.2  # ranked again from the evaluations
    assert f"{keeper.record} is damaged: not valid JSON" in caplog.text
    assert (tmp_path / "best.json.damaged").read_text() == '{"step": 2, "kid"'


def test_a_damaged_probe_json_is_set_aside_and_a_new_one_begun(tmp_path, caplog):
    path = tmp_path / probe.PROBE_FILE
    path.write_text('{"probes": [{"step": 2')
    record = {"step": 3, "checkpoint": "latest", "data": "x", "labels_per_class": 3, "layers": "all",
              "max_test": None, "seed": 1}
    with caplog.at_level(logging.WARNING, logger="dcgan_tf"):
        probe.write_probe_record(str(tmp_path), record)
    assert json.load(open(path)) == {"probes": [record]}
    assert (tmp_path / (probe.PROBE_FILE + ".damaged")).read_text() == '{"probes": [{"step": 2'
    assert f"{path} is damaged" in caplog.text and "set aside as" in caplog.text


def test_a_damaged_finished_json_counts_as_not_finished_and_is_named(tmp_path, caplog):
    (tmp_path / folders.FINISHED_FILE).write_text('{"step": 6, "ep')
    with caplog.at_level(logging.WARNING, logger="dcgan_tf"):
        assert folders.finished_epoch(str(tmp_path)) is None
    assert f"{tmp_path / folders.FINISHED_FILE} is damaged" in caplog.text


def test_a_damaged_export_json_is_named_with_how_to_write_it_again(tmp_path):
    (tmp_path / export.INFO_FILE).write_text("{")
    with pytest.raises(export.ExportError) as error:
        export.read_info(str(tmp_path))
    assert f"{tmp_path / export.INFO_FILE} is damaged: not valid JSON" in str(error.value)
    assert "python main.py --export" in str(error.value)


def test_a_damaged_sweep_json_is_named_and_the_sweep_command_plans_it_again(tmp_path, caplog):
    (tmp_path / "data" / "faces").mkdir(parents=True)
    base = {"dataset": "faces", "data_dir": str(tmp_path / "data"), "checkpoint_dir": str(tmp_path / "ck"),
            "sample_dir": str(tmp_path / "sm"), "output_height": 16, "epoch": 1}
    grid = plan.parse_sweep("g_advantage=1,2")
    sweep = plan.plan_sweep(base, grid, given={"dataset", "output_height", "epoch"})
    sweep.save()
    with open(sweep.file, "w") as handle:
        handle.write('{"runs": [')
    with pytest.raises(RunError) as error:
        plan.load_sweep(sweep.folder)
    assert f"{sweep.file} is damaged: not valid JSON" in str(error.value) and "plans it again" in str(error.value)
    with caplog.at_level(logging.WARNING, logger="dcgan_tf"):
        again = plan.plan_sweep(base, grid, given={"dataset", "output_height", "epoch"})
    again.save()
    assert [run.name for run in plan.load_sweep(again.folder).runs] == [run.name for run in sweep.runs]
    assert os.path.isfile(sweep.file + ".damaged") and "the sweep is planned again" in caplog.text
    shutil.rmtree(tmp_path / "sm")
