"""Export: every format gives the run's own samples for the same z (the EMA generator when there is one), conditional
exports take labels, the SavedModel loads without this package, and bad requests fail naming what is wrong."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import tiny_config, write_images
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.images import to_uint8
from dcgan_tf.runs.folders import RunError
from dcgan_tf.runs.trained import load_trained
from dcgan_tf.serving import export
from dcgan_tf.training.loop import train


HAVE_ONNX = all(importlib.util.find_spec(name) for name in ("tf2onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="tf2onnx and onnxruntime (the onnx extra) are not installed")


def z_batch(count, z_dim, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (count, z_dim)).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run with an EMA generator, trained 3 steps and exported in every format (onnx where tf2onnx and
    onnxruntime are installed: the onnx extra)."""
    tmp = tmp_path_factory.mktemp("export")
    write_images(tmp / "pics", 10)
    config = tiny_config(tmp, tmp / "pics", ema=0.9).resolved()
    train(config)
    formats = export.FORMATS if HAVE_ONNX else export.FORMATS[:-1]
    paths = export.export_run(config, formats)
    saved, model, step = load_trained(config)
    return config, model, step, paths


@pytest.mark.slow
def test_the_export_folder_holds_every_format_and_describes_them(trained):
    config, model, step, paths = trained
    folder = export.export_folder(config)
    names = ["export.json", "generator.keras", "saved_model", "generator.tflite"] + ["generator.onnx"] * HAVE_ONNX
    assert paths == [os.path.join(folder, name) for name in names]
    assert all(os.path.exists(path) for path in paths)
    info = json.load(open(paths[0]))
    assert info["step"] == step == model.steps_done > 0
    assert info["ema"] is True and info["run"] == config.name and info["dataset"] == "pics"
    assert (info["z_dim"], info["z_dist"], info["z_draw"]) == (8, "uniform_signed", "uniform(-1, 1)")
    assert (info["height"], info["width"], info["c_dim"], info["y_dim"], info["class_names"]) == (16, 16, 3, None, None)
    assert info["files"] == {"keras": "generator.keras", "savedmodel": "saved_model", "tflite": "generator.tflite",
                             **({"onnx": "generator.onnx"} if HAVE_ONNX else {})}
    assert not [name for name in os.listdir(config.checkpoint_path) if name.startswith(".export-")]
    assert export.export_is_current(config)  # of the newest checkpoint, with the SavedModel the demo loads


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_every_format_gives_the_runs_own_samples_for_the_same_z(trained):
    import keras
    import tensorflow as tf

    config, model, step, paths = trained
    z = z_batch(6, config.z_dim)
    own = np.asarray(model.generate(z))  # the run's sampling: the EMA generator
    assert not np.allclose(own, np.asarray(model.generator(z, training=False)))  # so G would not pass

    loaded = export.load_export(export.export_folder(config))
    from_saved_model = loaded.generate(z)
    assert from_saved_model.dtype == np.uint8 and from_saved_model.shape == (6, 16, 16, 3)
    assert np.abs(from_saved_model.astype(int) - to_uint8(own)).max() <= 1

    keras_model = keras.saving.load_model(paths[1])
    np.testing.assert_allclose(np.asarray(keras_model(z, training=False)), own, atol=1e-5)

    interpreter = tf.lite.Interpreter(model_path=paths[3])
    from_tflite = interpreter.get_signature_runner("serving_default")(z=z)["images"]
    assert from_tflite.dtype == np.uint8 and np.abs(from_tflite.astype(int) - to_uint8(own)).max() <= 1


@pytest.mark.slow
def test_the_saved_model_loads_in_a_process_without_this_package(trained, tmp_path):
    config, model, step, paths = trained
    z = z_batch(3, config.z_dim, seed=1)
    np.save(tmp_path / "z.npy", z)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["dcgan_tf"] = None  # importing it fails from here on
        import numpy as np, tensorflow as tf
        serve = tf.saved_model.load({paths[2]!r}).signatures["serving_default"]
        images = serve(z=tf.constant(np.load({str(tmp_path / 'z.npy')!r})))["images"].numpy()
        assert "dcgan_tf" not in [name.split(".")[0] for name, module in sys.modules.items() if module]
        np.save({str(tmp_path / 'images.npy')!r}, images)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    images = np.load(tmp_path / "images.npy")
    assert images.dtype == np.uint8 and np.abs(images.astype(int) - to_uint8(model.generate(z))).max() <= 1


def test_a_new_export_replaces_the_old_one_whole(tmp_path):
    config = tiny_config(tmp_path, tmp_path / "pics", c_dim=3).resolved()
    model = build_dcgan(config)
    folder = export.export_folder(config)
    export.export_model(config, model, 0)  # keras and savedmodel
    assert sorted(os.listdir(folder)) == ["export.json", "generator.keras", "saved_model"]
    assert not export.export_is_current(config)  # the run has no checkpoint it could be of
    written = export.export_model(config, model, 0, "tflite")
    assert sorted(os.listdir(folder)) == ["export.json", "generator.tflite"]  # no SavedModel: tflite's source went
    assert written == [os.path.join(folder, "export.json"), os.path.join(folder, "generator.tflite")]
    assert json.load(open(written[0]))["ema"] is False
    with pytest.raises(export.ExportError, match="no SavedModel"):
        export.load_export(folder)


def test_conditional_exports_take_labels(tmp_path):
    import keras

    config = Config(dataset="mnist", output_height=28, z_dim=6, gf_dim=4, df_dim=4, gfc_dim=16, dfc_dim=16, c_dim=1,
                    checkpoint_dir=str(tmp_path / "checkpoints"), sample_dir=str(tmp_path / "samples"),
                    seed=2).resolved()
    model = build_dcgan(config)
    paths = export.export_model(config, model, 0, ("keras", "savedmodel", "onnx") if HAVE_ONNX else "keras,savedmodel")
    info = json.load(open(paths[0]))
    assert info["y_dim"] == 10 and info["class_names"] == [str(d) for d in range(10)]
    assert info["signature"]["inputs"]["labels"] == "int32 [N], 0-9"
    z, labels = z_batch(4, 6), np.array([0, 3, 3, 9])
    own = np.asarray(model.generate(z, np.eye(10, dtype=np.float32)[labels]))
    loaded = export.load_export(export.export_folder(config))
    images = loaded.generate(z, labels)
    assert images.shape == (4, 28, 28, 1) and np.abs(images.astype(int) - to_uint8(own)).max() <= 1
    assert not np.array_equal(loaded.generate(z[:1], [0]), loaded.generate(z[:1], [7]))  # the label matters
    keras_model = keras.saving.load_model(paths[1])  # its ConcatLabelMaps layers are registered
    np.testing.assert_allclose(np.asarray(keras_model([z, np.eye(10, dtype=np.float32)[labels]])), own, atol=1e-5)
    if HAVE_ONNX:
        import onnxruntime

        session = onnxruntime.InferenceSession(paths[3], providers=["CPUExecutionProvider"])
        from_onnx = session.run(["images"], {"z": z, "labels": labels.astype(np.int32)})[0]
        assert np.abs(from_onnx.astype(int) - to_uint8(own)).max() <= 1
    with pytest.raises(ValueError, match="conditional: pass labels"):
        loaded.generate(z)
    with pytest.raises(ValueError, match="labels must be 0-9"):
        loaded.generate(z[:1], [10])


@needs_onnx
def test_the_onnx_file_gives_the_runs_own_samples(trained):
    import onnxruntime

    config, model, step, paths = trained
    z = z_batch(5, config.z_dim, seed=2)
    session = onnxruntime.InferenceSession(paths[4], providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z"] and [o.name for o in session.get_outputs()] == ["images"]
    images = session.run(["images"], {"z": z})[0]
    assert images.dtype == np.uint8 and np.abs(images.astype(int) - to_uint8(model.generate(z))).max() <= 1


def test_onnx_without_its_converter_says_which_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    with pytest.raises(ConfigError, match=r"onnx needs the converter tf2onnx: pip install -e '.\[onnx\]'"):
        export.parse_formats("keras,onnx")


@pytest.mark.parametrize("formats, message", [
    ("keras,png", "png: choose from keras, savedmodel, tflite, onnx"), ("", "empty"),
])
def test_unknown_formats_fail_naming_the_flag(formats, message):
    with pytest.raises(ConfigError, match=message) as info:
        export.parse_formats(formats)
    assert info.value.field == "export_format"


def test_formats_keep_one_order():
    assert export.parse_formats("TFLite, keras") == ("keras", "tflite")


def test_a_run_without_a_checkpoint_cannot_be_exported(tmp_path):
    write_images(tmp_path / "pics", 4)
    with pytest.raises(RunError):
        export.export_run(tiny_config(tmp_path, tmp_path / "pics").resolved())


def test_a_folder_without_export_json_is_not_an_export(tmp_path):
    with pytest.raises(export.ExportError, match="not an export: no export.json .*--export"):
        export.load_export(str(tmp_path))


def test_an_ema_export_uses_the_runs_own_seed_whatever_the_commands(trained):
    import dataclasses

    config, model, step, paths = trained
    z = z_batch(4, config.z_dim, seed=4)
    before = export.load_export(export.export_folder(config)).generate(z)
    other = dataclasses.replace(config, seed=0, run_name=config.name)  # --seed measures the EMA statistics otherwise
    export.export_run(other, "savedmodel")
    info = json.load(open(os.path.join(export.export_folder(config), "export.json")))
    assert info["seed"] == config.seed == 3
    np.testing.assert_array_equal(export.load_export(export.export_folder(config)).generate(z), before)


@pytest.mark.slow
def test_a_conditional_keras_file_loads_in_a_fresh_process_after_importing_the_networks(tmp_path):
    config = Config(dataset="mnist", output_height=28, z_dim=6, gf_dim=4, df_dim=4, gfc_dim=16, dfc_dim=16, c_dim=1,
                    checkpoint_dir=str(tmp_path / "checkpoints"), sample_dir=str(tmp_path / "samples")).resolved()
    paths = export.export_model(config, build_dcgan(config), 0, "keras")
    script = textwrap.dedent(f"""
        import keras, numpy as np
        import dcgan_tf.core.networks  # registers ConcatLabelMaps, as docs/serving.md says
        generator = keras.saving.load_model({paths[1]!r})
        print(generator([np.zeros((2, 6), "float32"), np.eye(10, dtype="float32")[:2]]).shape)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0 and "(2, 28, 28, 1)" in done.stdout, done.stderr[-2000:]


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_a_mixed_precision_run_exports_a_float32_copy_every_format_reads(tmp_path):
    import tensorflow as tf

    config = tiny_config(tmp_path, tmp_path / "pics", c_dim=3, mixed_precision=True).resolved()
    model = build_dcgan(config)
    assert model.generator.compute_dtype != "float32"  # bf16 on a CPU
    formats = ("savedmodel", "tflite", "onnx") if HAVE_ONNX else ("savedmodel", "tflite")
    paths = export.export_model(config, model, 0, formats)
    z = z_batch(4, config.z_dim)
    from_saved_model = export.load_export(export.export_folder(config)).generate(z)
    runner = tf.lite.Interpreter(model_path=paths[2]).get_signature_runner("serving_default")
    assert np.abs(runner(z=z)["images"].astype(int) - from_saved_model).max() <= 1
    if HAVE_ONNX:
        import onnxruntime

        session = onnxruntime.InferenceSession(paths[3], providers=["CPUExecutionProvider"])
        assert np.abs(session.run(["images"], {"z": z})[0].astype(int) - from_saved_model).max() <= 1
    own = to_uint8(np.asarray(model.generate(z), np.float32)).astype(int)  # the run's bf16 sampling
    assert np.abs(own - from_saved_model).mean() < 2  # the same images, but for bf16's rounding


def test_export_if_stale_exports_only_an_export_behind_the_newest_checkpoint(trained, monkeypatch):
    """What --demo does before it serves: nothing for an export of the newest checkpoint; else the export again, with
    generator.keras and the SavedModel (the demo reads both) and the formats it had."""
    config, model, step, paths = trained
    assert export.export_if_stale(config) == []
    had = tuple(json.load(open(os.path.join(export.export_folder(config), "export.json")))["files"])
    asked = []
    monkeypatch.setattr(export, "export_is_current", lambda saved: False)
    monkeypatch.setattr(export, "export_run", lambda config, formats: asked.append(formats) or ["written"])
    assert export.export_if_stale(config) == ["written"]
    assert asked == [("keras", "savedmodel", *had)]


def test_an_export_refuses_a_run_another_process_holds(trained):
    from dcgan_tf.runs import lock as run_lock

    config, model, step, paths = trained
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from dcgan_tf.runs import lock as run_lock
        with run_lock.holding({config.checkpoint_path!r}, what="run"):
            print("held", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(run_lock.RunBusyError):
            export.export_run(config)
    finally:
        holder.kill()
        holder.wait()


def test_a_failed_replace_keeps_the_previous_export(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, tmp_path / "pics", c_dim=3).resolved()
    model = build_dcgan(config)
    folder = export.export_folder(config)
    export.export_model(config, model, 0, "keras")
    real_replace = os.replace

    def failing(source, target):
        if os.path.basename(source).startswith(export.BUILDING_PREFIX):
            raise OSError("disk trouble")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk trouble"):
        export.export_model(config, model, 0, "tflite")
    assert sorted(os.listdir(folder)) == ["export.json", "generator.keras"]  # the old export, whole
    assert [name for name in os.listdir(config.checkpoint_path) if name.startswith(".export")] == []
