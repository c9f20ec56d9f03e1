"""main.py end to end: train a few steps on a tiny folder, resume, test mode, and flag errors before any work."""

import glob
import importlib.util
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from conftest import ROOT, TINY, free_port, run_main, write_grids, write_images, write_run


def assert_quiet(stderr: str) -> None:
    """No line of TensorFlow's C++ log (glog's "I0000 ...", "E0000 ...") or absl's start-up notice."""
    chatter = [line for line in stderr.splitlines()
               if re.match(r"[IWEF]\d{4} ", line) or "before absl::InitializeLog" in line]
    assert chatter == [], chatter


def end_block_paths(stdout: str) -> list[str]:
    """The paths main.py's end-of-run block names (the checkpoint as its prefix)."""
    block = stdout[stdout.rindex("latest grid"):stdout.index("next:")]
    paths = []
    for line in block.splitlines():
        words = line.split()
        if line.startswith("latest grid"):
            paths.append(words[2])
        elif words[:1] == ["plots"]:
            paths += [word.rstrip(",") for word in words[1:]]
        elif words[:1] in (["losses"], ["checkpoint"]):
            paths.append(words[1])
    return paths


@pytest.mark.slow
def test_train_resume_and_test_mode_through_main(tmp_path):
    write_images(tmp_path / "data" / "faces", 9)
    open(tmp_path / "data" / "faces" / "broken.png", "w").write("not a picture")
    first = run_main("--dataset", "faces", *TINY, "--epoch", "1", "--g_advantage", "3", "--train", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "broken.png" in first.stderr  # the bad file is named
    run = tmp_path / "checkpoints" / "faces_b4_16x16_z8_ga3_gf8_df8"
    assert (run / "config.json").is_file()
    assert sorted(os.listdir(tmp_path / "samples" / run.name)) == [
        "plot_loss_ratio.png", "plot_losses.png", "train_00000002.png", "train_00000003.png"]  # plots at the end

    second = run_main("--dataset", "faces", *TINY, "--epoch", "2", "--g_advantage", "3", "--train", "--verbose", "1",
                      cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "resuming run faces_b4_16x16_z8_ga3_gf8_df8 at step 3, epoch 1" in second.stderr
    assert "trained faces_b4_16x16_z8_ga3_gf8_df8 at step 6, epoch 2" in second.stdout
    assert_quiet(second.stderr)
    # stdout is a pipe, not a terminal: plain progress lines for the run (no bar redrawn with carriage returns and
    # colour codes), no per-epoch bars; then the end block, naming files that exist
    assert "step 6/6 (100%), " in second.stdout and "Epoch 2/2" not in second.stdout
    assert "\r" not in second.stdout and "\x1b[" not in second.stdout
    named = end_block_paths(second.stdout)
    assert len(named) == 5 and all(glob.glob(os.path.join(tmp_path, path) + "*") for path in named), named
    assert "python main.py --dataset faces" in second.stdout and "--visualize --visualize_option interpolate" in \
        second.stdout

    test = run_main("--dataset", "faces", *TINY, "--g_advantage", "3", cwd=tmp_path)
    assert test.returncode == 0, test.stderr
    assert os.path.isfile(tmp_path / "samples" / run.name / "test_00000006.png")

    measured = run_main("--dataset", "faces", *TINY, "--g_advantage", "3", "--evaluate", "--metrics", "kid,fid",
                        "--metrics_features", "smoke", "--metrics_samples", "8", cwd=tmp_path)
    assert measured.returncode == 0, measured.stderr
    assert "ckpt-6: step 6: fid " in measured.stdout and f"wrote {os.path.join('checkpoints', run.name)}" in \
        measured.stdout
    exported = run_main("--dataset", "faces", *TINY, "--g_advantage", "3", "--export", "--export_format",
                        "savedmodel,tflite", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    folder = os.path.join("checkpoints", run.name, "export")
    assert f"{run.name} at step 6 (G): z [8] uniform(-1, 1) -> 16x16x3 uint8; savedmodel, tflite" in exported.stdout
    assert sorted(os.listdir(tmp_path / folder)) == ["export.json", "generator.tflite", "saved_model"]
    assert f"wrote {os.path.join(folder, 'generator.tflite')}" in exported.stdout
    if importlib.util.find_spec("gradio"):  # the demo serves that export: its first line says where, then Ctrl-C
        port = free_port()
        served = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), "--dataset", "faces", *TINY,
                                   "--g_advantage", "3", "--demo", "--port", str(port)], cwd=tmp_path, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        try:
            first = served.stdout.readline()
            assert first.startswith(f"demo at http://127.0.0.1:{port}/: only this computer can reach it"), first
            later = [served.stdout.readline() for _ in range(2)]  # once it listens: serving at ..., Ctrl+C
            assert later[0].startswith("serving at http://127.0.0.1:") and "Ctrl+C" in later[1], later
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
                assert page.status == 200 and b"<html" in page.read()
        finally:
            served.send_signal(signal.SIGINT)
            out, err = served.communicate(timeout=300)  # Gradio takes seconds to stop, longer on a busy machine
        assert served.returncode == 0 and "demo stopped" in out, err[-2000:]
        assert "exported" not in out  # the export of step 6 was current: none was written
    offline = run_main("--dataset", "faces", *TINY, "--g_advantage", "3", "--evaluate", "--fid_weights",
                       "nope.pth", cwd=tmp_path)
    assert offline.returncode == 2 and "--fid_weights nope.pth is not a file" in offline.stderr


@pytest.mark.slow
def test_compare_through_main_writes_the_runs_curves_and_grids(tmp_path):
    for name in ("ga2", "ga50"):
        write_run(str(tmp_path / "checkpoints"), name, 30)
        write_grids(str(tmp_path / "samples" / name), [10, 30])
    done = run_main("--compare", "ga2,ga50", "--compare_steps", "10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = [f"compare_{what}_ga2_vs_ga50.png" for what in ("losses", "grids")]
    assert done.stdout.split("\n")[:2] == [f"wrote {os.path.join('samples', 'compare', name)}" for name in names]
    assert sorted(os.listdir(tmp_path / "samples" / "compare")) == sorted(names)


@pytest.mark.parametrize("flags,message", [
    (["--g_advantage", "0"], "--g_advantage: must be an integer >= 1 (got 0)"),
    (["--batch_size", "0"], "--batch_size: must be an integer >= 1"),
    (["--output_height", "12"], "--output_height: output height 12 does not work"),
    (["--learning_rate", "-1"], "--learning_rate: must be > 0"),
    (["--z_dist", "cauchy"], "--z_dist"),
    (["--swap_epoch", "3"], "--swap_epoch: swaps from the autoencoder's reconstructions to the originals, so it "
                            "needs --preprocess autoencoder"),
    (["--seed", "-1"], "--seed: must be in [0, 2**32)"),
    (["--nan_policy", "retry"], "--nan_policy"),
    (["--metrics", "kid,beauty"], "--metrics: unknown beauty: choose from fid, kid, precision_recall"),
    (["--metrics", "label_accuracy"], "--metrics: label_accuracy scores samples drawn for each label"),
    (["--keep_best", "kid"], "--keep_best: ranks checkpoints by kid, so --metrics must include kid"),
    (["--metrics_features", "vgg"], "--metrics_features"),
])
def test_invalid_flags_fail_before_any_work(tmp_path, flags, message):
    result = run_main("--train", *flags, "--checkpoint_dir", str(tmp_path / "ck"), cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert not os.path.exists(tmp_path / "ck")  # nothing was written


@pytest.mark.slow
@pytest.mark.parametrize("flags,message", [
    (["--export", "--export_format", "keras,png"], "--export_format: png: choose from keras, savedmodel, tflite, onnx"),
    (["--export_format", "tflite"], "--export_format belongs to --export: add --export"),
    (["--port", "8000"], "--port belongs to --demo: add --demo"),
    (["--compare_steps", "10"], "--compare_steps belongs to --compare: add --compare"),
    (["--train", "--sweep_parallel", "2"], "--sweep_parallel belongs to a sweep: add --sweep (or --seeds)"),
    (["--demo", "--demo_from", "nowhere"], "--demo_from: nowhere is not an export folder (no export.json"),
    (["--demo", "--port", "0"], "--port: must be 1-65535 (got 0)"),
    (["--demo", "--demo_dims", "3-1"], "--demo_dims: '3-1' is not a dimension or a range"),
])
def test_export_and_demo_flags_fail_before_any_work(tmp_path, flags, message):
    if "--demo" in flags:
        pytest.importorskip("gradio", reason="the demo's flags are checked after Gradio is found")
    result = run_main(*flags, "--checkpoint_dir", str(tmp_path / "ck"), cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not os.path.exists(tmp_path / "ck")


def test_the_mode_table_names_every_mode_and_gives_each_flag_one_mode():
    import flags
    import main

    assert set(flags.MODE_FLAG_NAMES) == {mode.flag for mode in main.MODES if mode.flag}
    owned = [name for names in flags.MODE_FLAGS.values() for name in names]
    assert len(owned) == len(set(owned))
    assert set(flags.MODE_FLAGS) - {"sweep"} <= set(flags.MODE_FLAG_NAMES)


@pytest.mark.slow
def test_missing_data_fails_with_the_pattern_looked_for(tmp_path):
    os.makedirs(tmp_path / "data" / "empty")
    result = run_main("--dataset", "empty", "--train", cwd=tmp_path)
    assert result.returncode == 2
    assert f"no files match {tmp_path / 'data' / 'empty' / '*.jpg'}" in result.stderr
    result = run_main("--dataset", "nowhere", "--train", cwd=tmp_path)
    assert f"data folder {tmp_path / 'data' / 'nowhere'} does not exist" in result.stderr


@pytest.mark.slow
def test_test_mode_without_a_run_lists_the_runs(tmp_path):
    result = run_main("--dataset", "mice", cwd=tmp_path)
    assert result.returncode == 2
    assert "no run 'mice_b64_64x64_z100_ga2'" in result.stderr and "runs there: none" in result.stderr


@pytest.mark.slow
def test_quick_start_defaults_apply_to_the_built_in_set_only(tmp_path):
    result = run_main(cwd=tmp_path)  # test mode on the built-in set, before any training
    assert result.returncode == 2
    assert "no run 'twemoji_smileys_b32_32x32_z100_ga2_gf32_df32_ema0.999'" in result.stderr  # QUICK_START's run
    assert_quiet(result.stderr)
    given = run_main("--output_height", "16", "--tf_log", cwd=tmp_path)  # a setting given explicitly wins
    assert "no run 'twemoji_smileys_b32_16x16_z100_ga2_gf32_df32_ema0.999'" in given.stderr
    assert re.search(r"^[IWE]\d{4} ", given.stderr, re.M)  # --tf_log: TensorFlow's own log is back


def test_help_lists_the_projects_flags_by_group_quickly(tmp_path):
    result = run_main("--help", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    for group in ("modes", "data:", "model:", "small-data training", "autoencoder preprocessing:", "training:",
                  "outputs:", "quality metrics", "--visualize:", "--compare:"):
        assert f"\n{group}" in result.stdout, group
    for flag in ("  --[no]train (default: false)", "  --epoch (default: 25)", "  --dataset (default: unset)",
                 "  --loss (default: 'bce')", "  --[no]tf_log (default: false)"):
        assert flag in result.stdout
    assert "One of: bce, hinge, wgan_gp." in " ".join(result.stdout.split())  # wrapped anywhere
    for internal in ("--flagfile", "--logtostderr", "--only_check_args", "--xla_", "tensorflow"):
        assert internal not in result.stdout  # absl's and TensorFlow's own flags: --helpfull
    # quickly: defining and listing the flags loads no TensorFlow
    code = "import sys, flags; flags.grouped_help(); print('tensorflow' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert loaded.stdout.strip() == "False", loaded.stderr


def test_every_flag_is_in_one_help_group():
    code = ("from absl import flags as absl_flags; import flags; "
            "print(' '.join(flag.name for flag in absl_flags.FLAGS.flags_by_module_dict()[flags.__name__]))")
    listed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    sys.path.insert(0, ROOT)
    import flags

    grouped = [name for _, names in flags.HELP_GROUPS for name in names]
    assert sorted(grouped) == sorted(set(listed.stdout.split())) and len(grouped) == len(set(grouped))


@pytest.mark.parametrize("modes", [["--train", "--visualize"], ["--train", "--compare", "a,b"]])
def test_two_modes_fail_before_any_work(tmp_path, modes):
    result = run_main(*modes, "--checkpoint_dir", str(tmp_path / "ck"), "--sample_dir", str(tmp_path / "sa"),
                      cwd=tmp_path)
    assert result.returncode == 2
    names = [arg for arg in modes if arg.startswith("--")]
    lines = [line for line in result.stderr.splitlines() if all(name in line for name in names)]
    assert len(lines) == 1 and lines[0].startswith("main.py: error: ") and lines[0].endswith(
        " are two modes: pass one of them")
    assert not os.path.exists(tmp_path / "ck") and not os.path.exists(tmp_path / "sa")  # nothing was written
