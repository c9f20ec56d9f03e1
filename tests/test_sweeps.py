"""Sweeps: the grid from --sweep, run names and commands, settings a combination leaves out, the runner (finished
runs skipped, a failing run does not stop the others, resume), the disk budget, and one real sweep through main.py
(--sweep_print's command run as printed, the rest trained by the sweep, the report, the budget held)."""

import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_main, write_images
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.runs import folders
from dcgan_tf.sweeps import plan, report, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------------------ the grid
@pytest.fixture
def data_dir(tmp_path):
    """A --data_dir holding the (empty) data folders the planning tests name: a sweep checks they exist."""
    for name in ("faces", "pokemon"):
        (tmp_path / "data" / name).mkdir(parents=True)
    return str(tmp_path / "data")


def test_parse_sweep_types_each_value_as_its_setting():
    grid = plan.parse_sweep("g_advantage=2,4,50; d_batchnorm=true,false;augment=none,color+translation;"
                            "ema=none,0.999;preprocess=none,autoencoder")
    assert grid == {"g_advantage": [2, 4, 50], "d_batchnorm": [True, False], "augment": ["", "color,translation"],
                    "ema": [None, 0.999], "preprocess": ["none", "autoencoder"]}
    assert plan.parse_sweep("") == {}


@pytest.mark.parametrize("text, message", [
    ("g_advantage=2,x", "g_advantage=x: not an integer"),
    ("colour=1,2", "'colour' is not a run setting"),
    ("seed=1,2", "--seeds"),
    ("sample_dir=a,b", "output setting"),
    ("g_advantage=2,2", "lists a value twice"),
    ("g_advantage", "setting=value1,value2"),
    ("g_advantage=2;g_advantage=4", "given twice"),
])
def test_parse_sweep_names_what_is_wrong(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        plan.parse_sweep(text)
    assert error.value.field == "sweep"


def test_plan_is_the_cartesian_product_times_seeds_with_ordinary_run_names(tmp_path, data_dir):
    base = {"dataset": "faces", "data_dir": data_dir, "checkpoint_dir": str(tmp_path / "ck"), "sample_dir": str(tmp_path / "sm"),
            "output_height": 16, "epoch": 3}
    grid = plan.parse_sweep("g_advantage=2,4;d_layers=2,4")
    sweep = plan.plan_sweep(base, grid, [0, 1], given={"dataset", "output_height", "epoch"})
    assert [(run.settings, run.seed) for run in sweep.runs] == [
        ({"g_advantage": g, "d_layers": d}, s) for g in (2, 4) for d in (2, 4) for s in (0, 1)]
    for run in sweep.runs:  # each one is the run the same flags make by hand
        expected = Config(**{**base, **run.settings, "seed": run.seed})
        assert run.name == expected.name and run.checkpoint_path == expected.checkpoint_path
        assert f"--g_advantage={run.settings['g_advantage']}" in run.args or run.settings["g_advantage"] == 2
        assert run.args[-1] == "--train" and run.epoch == 3
    assert sweep.runs[0].name == "faces_b64_16x16_z100_ga2_dl2_s0"
    assert sweep.name == "faces_g_advantage-2-4_d_layers-2-4_seeds-0-1"
    assert sweep.folder == os.path.join(str(tmp_path / "sm"), "sweeps", sweep.name)


def test_a_swept_training_setting_names_its_runs(data_dir):
    sweep = plan.plan_sweep({"dataset": "faces", "data_dir": data_dir}, plan.parse_sweep("learning_rate=0.0002,0.0001"))
    names = [run.name for run in sweep.runs]
    assert names == ["faces_b64_64x64_z100_ga2_learning_rate0.0002", "faces_b64_64x64_z100_ga2_learning_rate0.0001"]
    assert "--run_name=" + names[1] in sweep.runs[1].args and "--learning_rate=0.0001" in sweep.runs[1].args


def test_a_swept_loss_brings_its_recipe_unless_given(data_dir):
    """--loss wgan_gp's combination trains as WGAN-GP does (5 critic steps, 1 G step, Adam 1e-4 (0, 0.9)); the other
    keeps DCGAN's defaults; a setting the command gives wins."""
    base = {"dataset": "faces", "data_dir": data_dir, "d_batchnorm": False, "beta2": 0.99}
    sweep = plan.plan_sweep(base, plan.parse_sweep("loss=hinge,wgan_gp"), given={"d_batchnorm", "beta2"})
    hinge, wgan = sweep.runs
    assert "--d_steps=5" in wgan.args and "--g_advantage=1" in wgan.args and "--beta1=0" in wgan.args
    assert "--beta2=0.99" in wgan.args and "--learning_rate=0.0001" in wgan.args
    assert not any(arg.startswith(("--d_steps", "--beta1")) for arg in hinge.args)


def test_a_fixed_setting_a_combination_has_no_use_for_is_left_out_of_it(data_dir):
    grid = plan.parse_sweep("preprocess=none,autoencoder")
    sweep = plan.plan_sweep({"dataset": "pokemon", "data_dir": data_dir, "swap_epoch": 20}, grid,
                            given={"dataset", "swap_epoch"})
    control, autoencoded = sweep.runs
    assert "swap_epoch" in control.dropped and "--swap_epoch=20" not in control.args
    assert autoencoded.dropped == {} and "--swap_epoch=20" in autoencoded.args
    # ... but one that no combination uses is the user's mistake
    with pytest.raises(ConfigError) as error:
        plan.plan_sweep({"dataset": "pokemon", "data_dir": data_dir, "swap_epoch": 20},
                        plan.parse_sweep("g_advantage=2,4"),
                        given={"dataset", "swap_epoch"})
    assert error.value.field == "swap_epoch"
    # and a fixed setting that conflicts with a swept value is no setting to leave out: the sweep fails
    with pytest.raises(ConfigError) as error:
        plan.plan_sweep({"loss": "wgan_gp"}, plan.parse_sweep("d_batchnorm=true,false"), given={"loss"})
    assert error.value.field == "loss"


def test_plan_refuses_a_run_name_and_nothing_to_sweep():
    with pytest.raises(ConfigError, match="sweep_name") as error:
        plan.plan_sweep({"run_name": "mine"}, {"g_advantage": [2, 4]})
    assert error.value.field == "run_name"
    with pytest.raises(ConfigError, match="nothing to sweep"):
        plan.plan_sweep({}, {}, [3])
    assert [run.seed for run in plan.plan_sweep({}, {}, [3, 4]).runs] == [3, 4]  # seeds alone: replicates


def test_a_folder_of_other_runs_is_refused_before_any_work(tmp_path, data_dir):
    base = {"dataset": "faces", "data_dir": data_dir, "sample_dir": str(tmp_path)}
    plan.plan_sweep(base, {"g_advantage": [2, 4]}, name="s").save()
    with pytest.raises(folders.RunError, match="--sweep_name"):
        plan.plan_sweep(base, {"g_advantage": [2, 8]}, name="s")


# ------------------------------------------------------------------------------------------ the runner
FAKE_TRAINER = """
import json, os, sys
folder, behaviour = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(folder), exist_ok=True)
with open(os.path.join(os.path.dirname(folder), "calls.txt"), "a") as handle:
    handle.write(os.path.basename(folder) + " " + os.environ.get("TF_NUM_INTRAOP_THREADS", "-") + "\\n")
print("training", folder)
if behaviour == "kill":
    os.kill(os.getpid(), 9)
if behaviour == "fail":
    print("Traceback: something broke", file=sys.stderr)
    sys.exit(3)
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "finished.json"), "w") as handle:
    json.dump({"step": 10, "epoch": 2}, handle)
"""


def fake_sweep(tmp_path, behaviours) -> plan.Sweep:
    planned = [plan.SweepRun(name=f"run{i}", settings={"g_advantage": i}, seed=1,
                             args=[str(tmp_path / "ck" / f"run{i}"), behaviour], epoch=2,
                             checkpoint_path=str(tmp_path / "ck" / f"run{i}"),
                             sample_path=str(tmp_path / "sm" / f"run{i}"))
               for i, behaviour in enumerate(behaviours)]
    return plan.Sweep(name="fake", folder=str(tmp_path / "sweep"), grid={"g_advantage": list(range(len(planned)))},
                      seeds=[1], runs=planned, command=["python", "main.py", "--sweep", "..."])


def calls(tmp_path):
    path = tmp_path / "ck" / "calls.txt"
    return path.read_text().split("\n")[:-1] if path.exists() else []


def test_a_failing_run_does_not_stop_the_others_and_the_same_command_retries_only_it(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE_TRAINER)
    program = [sys.executable, str(tmp_path / "fake.py")]
    said = []
    sweep = runner.run_sweep(fake_sweep(tmp_path, ["ok", "fail", "ok"]), program, say=said.append,
                             poll_seconds=0.05)
    assert [run.status for run in sweep.runs] == ["finished", "failed", "finished"]
    assert sweep.runs[1].returncode == 3
    assert any("run1 failed (exit 3)" in line and "something broke" in line for line in said)
    record = json.load(open(sweep.file))
    assert [run["status"] for run in record["runs"]] == ["finished", "failed", "finished"]
    assert "something broke" in (tmp_path / "sweep" / "logs" / "run1.log").read_text()
    assert len(calls(tmp_path)) == 3

    # the same sweep again: finished runs are skipped, the failed one runs again (and now succeeds)
    again = plan.merge_saved(fake_sweep(tmp_path, ["ok", "ok", "ok"]))
    assert [run.status for run in again.runs] == ["finished", "failed", "finished"]
    said.clear()
    runner.run_sweep(again, program, say=said.append, poll_seconds=0.05)
    assert [run.status for run in again.runs] == ["finished"] * 3
    assert [line.split()[0] for line in calls(tmp_path)] == ["run0", "run1", "run2", "run1"]
    assert "2 of 3 runs already finished" in said[0]


def test_a_killed_run_is_named_as_killed(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE_TRAINER)
    said = []
    sweep = runner.run_sweep(fake_sweep(tmp_path, ["kill", "ok"]), [sys.executable, str(tmp_path / "fake.py")],
                             say=said.append, poll_seconds=0.05)
    assert [run.status for run in sweep.runs] == ["failed", "finished"]
    assert any("run0 failed (killed by SIGKILL)" in line for line in said)


def test_parallel_runs_share_the_cpu_threads(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE_TRAINER)
    runner.run_sweep(fake_sweep(tmp_path, ["ok", "ok"]), [sys.executable, str(tmp_path / "fake.py")], parallel=2,
                     say=lambda line: None, poll_seconds=0.05)
    threads = {line.split()[1] for line in calls(tmp_path)}
    if not runner.visible_gpus():
        assert threads == {str(max(1, (os.cpu_count() or 1) // 2))}


def test_run_and_report_says_how_the_sweep_went_and_writes_its_report(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE_TRAINER)
    outcome = runner.run_and_report(fake_sweep(tmp_path, ["ok", "fail"]), [sys.executable, str(tmp_path / "fake.py")],
                                    say=lambda line: None)
    assert outcome.stopped_by is None
    assert [run.name for run in outcome.finished] == ["run0"] and [run.name for run in outcome.unfinished] == ["run1"]
    log = os.path.join(str(tmp_path / "sweep"), "logs", "run1.log")
    assert outcome.unfinished_lines() == [f"run1 failed (exit 3, log {log})"]
    assert outcome.written[-1] == outcome.report_html == str(tmp_path / "sweep" / report.REPORT_HTML)
    assert os.path.isfile(outcome.report_html)


STOPPABLE_TRAINER = """
import os, signal, sys, time
folder = sys.argv[1]
os.makedirs(folder, exist_ok=True)
def stop(signum, frame):
    open(os.path.join(folder, "stopped_by"), "w").write(signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
open(os.path.join(folder, "started"), "w").write("")
time.sleep(60)
"""

SWEEP_DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
from dcgan_tf.sweeps import plan, runner
sweep = plan.load_sweep(sys.argv[2])
try:
    runner.run_sweep(sweep, [sys.executable, sys.argv[3]], parallel=2, poll_seconds=0.05)
except KeyboardInterrupt as stopped:
    print("sweep stopped by", stopped)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_sweep_stops_its_running_runs(tmp_path, signum):
    (tmp_path / "trainer.py").write_text(STOPPABLE_TRAINER)
    (tmp_path / "driver.py").write_text(SWEEP_DRIVER)
    sweep = fake_sweep(tmp_path, ["ok", "ok", "ok"])
    sweep.save()
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), ROOT, sweep.folder,
                               str(tmp_path / "trainer.py")], stdout=subprocess.PIPE, text=True)
    started = [tmp_path / "ck" / f"run{i}" / "started" for i in range(2)]
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    driver.send_signal(signum)  # to the sweep's process alone, as `kill` does
    out, _ = driver.communicate(timeout=30)
    assert f"sweep stopped by {signum.name}" in out
    for i in range(2):
        assert (tmp_path / "ck" / f"run{i}" / "stopped_by").read_text() == signum.name
    assert not (tmp_path / "ck" / "run2").exists()  # no new run started
    record = json.load(open(sweep.file))
    assert [run["status"] for run in record["runs"]] == ["stopped", "stopped", "pending"]


def test_run_environment_gives_gpus_round_robin_or_splits_the_threads():
    assert runner.run_environment(3, 4, ["0", "1"])["CUDA_VISIBLE_DEVICES"] == "1"
    env = runner.run_environment(0, 2, [], cpus=8)
    assert env["TF_NUM_INTRAOP_THREADS"] == "4" and env["OMP_NUM_THREADS"] == "4"
    alone = runner.run_environment(0, 1, ["0", "1"], cpus=8)  # one at a time: the whole machine
    assert alone.get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")
    assert alone.get("TF_NUM_INTRAOP_THREADS") == os.environ.get("TF_NUM_INTRAOP_THREADS")
    assert runner.run_environment(2, 3, ["0", "1"])["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"  # two share GPU 0


# ------------------------------------------------------------------------------------------ the disk budget
@pytest.mark.slow
def test_the_budget_thins_grids_and_checkpoints_or_names_the_least_it_needs(image_folder):
    from dcgan_tf.sweeps import disk_budget

    config = Config(dataset=image_folder, input_fname_pattern="*.png", output_height=16, z_dim=8, gf_dim=8, df_dim=8,
                    batch_size=2, epoch=20, sample_freq=1, max_to_keep=3).resolved()  # 100 steps, 101 grids
    estimate = disk_budget.estimate_run(config, 10, disk_budget.checkpoint_bytes(config))
    assert (estimate.steps, estimate.grids) == (100, 103)  # and one at the end of each fit
    roomy = (disk_budget.SWEEP_FOLDER_BYTES + 6 * estimate.grid_bytes + 2 * estimate.total(3, False)) / 2**20 + 1
    overrides, _ = disk_budget.fit_budget([config, config], roomy)
    assert overrides == [{}, {}]
    tight = (disk_budget.SWEEP_FOLDER_BYTES + 6 * estimate.grid_bytes + 2 * estimate.total(1, False, 20)) / 2**20
    overrides, _ = disk_budget.fit_budget([config, config], tight)
    change = overrides[0]
    assert change["max_to_keep"] == 1
    kept = change["keep_samples"] + -(-estimate.grids // change["keep_every"]) + 1
    assert kept <= 20
    with pytest.raises(ConfigError, match="give at least") as error:
        disk_budget.fit_budget([config, config], 1)
    assert error.value.field == "disk_budget_mb"
    # runs of different sizes: the least named is the least that holds all of them, and it does
    wide = dataclasses.replace(config, gf_dim=32, df_dim=32)
    with pytest.raises(ConfigError) as error:
        disk_budget.fit_budget([config, wide], 1)
    least = int(re.search(r"give at least (\d+)", error.value.message).group(1))
    overrides, _ = disk_budget.fit_budget([config, wide], least)
    assert all("keep_samples" in change for change in overrides)


# ------------------------------------------------------------------------------------------ through main.py

SWEEP = ["--dataset", "faces", "--input_fname_pattern", "*.png", "--output_height", "16", "--batch_size", "4",
         "--z_dim", "8", "--gf_dim", "8", "--df_dim", "8", "--epoch", "2", "--sample_freq", "1", "--verbose", "2",
         "--sweep", "g_advantage=1,2", "--metrics", "kid", "--metrics_features", "smoke", "--metrics_freq", "3",
         "--metrics_samples", "16", "--report_steps", "1,6", "--max_to_keep", "3"]


def test_a_missing_data_folder_fails_before_any_run_naming_the_flag(tmp_path):
    printed = run_main("--dataset", "typo", "--sweep", "g_advantage=1,2", "--sweep_print", cwd=tmp_path)
    assert printed.returncode == 2 and printed.stdout == ""
    assert "--dataset: no data folder 'typo'" in printed.stderr


@pytest.mark.slow
def test_a_sweep_printed_then_trained_then_reported_within_its_disk_budget(tmp_path):
    write_images(tmp_path / "data" / "faces", 10)  # batch 4: 3 steps an epoch, 6 in all; a grid every step
    # MB: the runs as asked (3 checkpoints of ~2 MB, 7 grids) would not fit; with one checkpoint and 4 grids they do
    budget = "13"
    printed = run_main(*SWEEP, "--disk_budget_mb", budget, "--sweep_print", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    commands = [line for line in printed.stdout.splitlines() if line.startswith("python ")]
    assert len(commands) == 2
    first = shlex.split(commands[0])
    assert first[:2] == ["python", os.path.join(ROOT, "main.py")]
    done = subprocess.run([sys.executable, *first[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr  # it runs as printed, and trains the sweep's first run
    folder = tmp_path / "samples" / "sweeps" / "faces_g_advantage-1-2"
    record = json.load(open(folder / "sweep.json"))
    first_run = tmp_path / "checkpoints" / record["runs"][0]["name"]
    assert folders.finished_epoch(str(first_run)) == 2
    before = {name: os.path.getmtime(first_run / name) for name in os.listdir(first_run)}

    trained = run_main(*SWEEP, "--train", "--disk_budget_mb", budget, cwd=tmp_path)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "1 of 2 runs already finished" in trained.stdout
    assert {name: os.path.getmtime(first_run / name) for name in os.listdir(first_run)} == before  # untouched
    record = json.load(open(folder / "sweep.json"))
    assert [run["status"] for run in record["runs"]] == ["finished", "finished"]
    second = record["runs"][1]
    assert record["budget"]["settings"][second["name"]]  # the budget thinned the runs
    assert "--max_to_keep=3" not in second["args"]  # 1, the default
    assert any(arg.startswith("--keep_samples=") for arg in second["args"])
    used = sum(folders.folder_bytes(str(tmp_path / where / run["name"])) for run in record["runs"]
               for where in ("checkpoints", "samples"))
    assert used + folders.folder_bytes(str(folder)) <= float(budget) * 2**20

    md = (folder / "report.md").read_text()
    for run in record["runs"]:
        assert run["name"] in md
        kid = [row["kid"] for row in folders.read_metrics(str(tmp_path / "checkpoints" / run["name"]))][-1]
        assert f"{kid:.4f}" in md  # its final KID
    assert (folder / report.CURVES_PNG).is_file() and (folder / report.GRIDS_PNG).is_file()
    html = (folder / "report.html").read_text()
    assert re.findall(r'<img[^>]* src="([^"]{0,10})', html) == ["data:image", "data:image"]  # self-contained

    rewritten = run_main("--report", "faces_g_advantage-1-2", cwd=tmp_path)
    assert rewritten.returncode == 0, rewritten.stderr
    assert "report.html" in rewritten.stdout


PARSE_BACK = """
import json, sys
root, listed = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
sys.argv = ["main.py"]
import main
from absl import flags
for args in json.load(open(listed)):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["main.py", *args])
    config = main.config_from_flags()
    print(json.dumps({"name": config.name, "epoch": config.epoch, "sample_freq": config.sample_freq,
                      "output_height": config.output_height, "ema": config.ema, "verbose": config.verbose}))
"""


@pytest.mark.parametrize("sweep, extra", [
    ("output_height=32,64", []), ("batch_size=32,64;ema=none,0.5", ["--epoch", "25", "--sample_freq", "200"]),
    ("dataset=none,mnist", []), ("preprocess=none,autoencoder", ["--dataset", "pokemon", "--swap_epoch", "20"]),
    ("learning_rate=0.0002,0.0001", ["--small_data"]),
])
def test_each_printed_command_makes_the_run_the_sweep_planned(tmp_path, sweep, extra):
    (tmp_path / "data" / "pokemon").mkdir(parents=True)  # a data folder must exist before any run starts
    printed = run_main("--sweep", sweep, *extra, "--seeds", "1,2", "--sweep_print", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    folder = [line[len("wrote "):] for line in printed.stderr.splitlines() if line.startswith("wrote ")][0]
    assert all(line.startswith("python ") for line in printed.stdout.splitlines())  # the commands alone
    planned = json.load(open(tmp_path / folder))["runs"]
    (tmp_path / "args.json").write_text(json.dumps([run["args"] for run in planned]))
    (tmp_path / "parse.py").write_text(PARSE_BACK)
    parsed = subprocess.run([sys.executable, str(tmp_path / "parse.py"), ROOT, str(tmp_path / "args.json")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert parsed.returncode == 0, parsed.stderr
    made = [json.loads(line) for line in parsed.stdout.splitlines()]
    assert [run["name"] for run in made] == [run["name"] for run in planned]
    assert all(run["epoch"] == planned_run["epoch"] for run, planned_run in zip(made, planned))
    assert all(run["verbose"] == 2 for run in made)  # their console goes to a log file
    if sweep == "output_height=32,64":
        assert [run["output_height"] for run in made] == [32, 32, 64, 64]  # the quick start, except what is swept
    if extra[:2] == ["--epoch", "25"]:
        assert {(run["epoch"], run["sample_freq"]) for run in made} == {(25, 200)}
        assert [run["ema"] for run in made] == [None, None, 0.5, 0.5] * 2
    if sweep == "dataset=none,mnist":
        assert [run["output_height"] for run in made] == [32, 32, 64, 64]  # the quick start is the built-in set's


@pytest.mark.slow
def test_a_second_process_on_the_same_sweep_is_refused(tmp_path):
    (tmp_path / "data" / "faces").mkdir(parents=True)
    args = ["--dataset", "faces", "--sweep", "g_advantage=1,2", "--sweep_print"]
    assert run_main(*args, cwd=tmp_path).returncode == 0
    folder = str(tmp_path / "samples" / "sweeps" / "faces_g_advantage-1-2")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from dcgan_tf.runs import lock as run_lock; "
                               "lock = run_lock.RunLock(sys.argv[2], 'sweep').acquire(); "
                               "print('held', flush=True); time.sleep(60)", ROOT, folder],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = run_main(*args, cwd=tmp_path)
        assert second.returncode == 2 and second.stdout == ""
        assert f"sweep {folder} is being written by pid {holder.pid}" in second.stderr
    finally:
        holder.kill()
        holder.wait()
