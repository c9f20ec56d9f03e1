"""Take a trained generator out of the run: `<run>/export/` with a Keras file, a TensorFlow SavedModel (uint8 images
from z, loadable without this package), optionally TensorFlow Lite, and export.json describing them; and
`load_export`, the SavedModel behind a numpy call (what the web demo uses).

The generator exported is the one that samples: the EMA generator when the run keeps one, else G.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import logging
import os
import shutil
import tempfile

import numpy as np

from dcgan_tf import files
from dcgan_tf.config import Config, ConfigError
from dcgan_tf.latent import Z_DISTRIBUTIONS
from dcgan_tf.runs import folders
from dcgan_tf.runs import lock as run_lock
from dcgan_tf.runs.trained import load_trained

log = logging.getLogger(__name__)

EXPORT_DIR = "export"  # under the run's checkpoint folder
INFO_FILE = "export.json"
KERAS_FILE = "generator.keras"
SAVED_MODEL_DIR = "saved_model"
TFLITE_FILE = "generator.tflite"
ONNX_FILE = "generator.onnx"
ONNX_OPSET = 17
FORMATS = ("keras", "savedmodel", "tflite", "onnx")
FORMAT_FILES = {"keras": KERAS_FILE, "savedmodel": SAVED_MODEL_DIR, "tflite": TFLITE_FILE, "onnx": ONNX_FILE}
DEFAULT_FORMATS = ("keras", "savedmodel")
FORMAT_VERSION = 1
SIGNATURE = "serving_default"
BUILDING_PREFIX = ".export-building-"  # in the run folder: an export being written
ASIDE_PREFIX = ".export-previous-"  # the export it replaces, until the new one is in place
GENERATE_BATCH = 256


class ExportError(ValueError):
    """A folder that is not a usable export (no export.json, or the format asked for is missing)."""


def parse_formats(formats) -> tuple[str, ...]:
    """"keras,tflite" or a list -> the formats in FORMATS order; ConfigError naming --export_format otherwise."""
    names = [part.strip().lower() for part in (formats.split(",") if isinstance(formats, str) else formats)]
    names = [name for name in names if name]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ConfigError("export_format", f"{', '.join(unknown) or 'empty'}: choose from {', '.join(FORMATS)}")
    if "onnx" in names and importlib.util.find_spec("tf2onnx") is None:
        raise ConfigError("export_format", "onnx needs the converter tf2onnx: pip install -e '.[onnx]'")
    return tuple(name for name in FORMATS if name in names)


def export_folder(config: Config) -> str:
    """`<checkpoint_dir>/<run>/export` of a (resolved) Config."""
    return os.path.join(config.checkpoint_path, EXPORT_DIR)


def class_names(config: Config) -> list[str] | None:
    """The name of each label of a conditional run (a labelled folder's classes, MNIST's digits "0".."9"), or None."""
    if not config.conditional:
        return None
    return list(config.class_names) if config.class_names else [str(label) for label in range(config.y_dim)]


def to_uint8_graph(images):
    """float images in [-1, 1] -> uint8 [0, 255] inside a TensorFlow graph, rounding half to even as images.to_uint8."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round((tf.cast(images, tf.float32) + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def serving_function(generator, z_dim: int, y_dim: int | None):
    """(function, input signature): z [N, z_dim] float32 (+ labels [N] int32) -> {"images": uint8 [N, H, W, C]}."""
    import tensorflow as tf

    z_spec = tf.TensorSpec([None, z_dim], tf.float32, name="z")
    if y_dim:
        def serve(z, labels):
            return {"images": to_uint8_graph(generator([z, tf.one_hot(labels, y_dim)], training=False))}

        return serve, [z_spec, tf.TensorSpec([None], tf.int32, name="labels")]

    def serve(z):
        return {"images": to_uint8_graph(generator(z, training=False))}

    return serve, [z_spec]


def write_saved_model(generator, z_dim: int, y_dim: int | None, path: str) -> str:
    """A SavedModel whose serving_default signature maps z (+ labels) to uint8 images; only TensorFlow ops, so
    `tf.saved_model.load` reads it without this package."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(generator)
    function, signature = serving_function(generator, z_dim, y_dim)
    archive.add_endpoint(SIGNATURE, function, input_signature=signature)
    # "Assets written to <temporary folder>", "Writing fingerprint", "Function `serve` contains input name(s)"
    chatter = logging.getLogger("tensorflow")
    level = chatter.level
    chatter.setLevel(max(level, logging.ERROR))
    try:
        archive.write_out(path, verbose=False)
    finally:
        chatter.setLevel(level)
    return path


def write_tflite(saved_model: str, path: str) -> str:
    """The SavedModel's serving signature converted to TensorFlow Lite (builtin ops; float32 weights)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[SIGNATURE])
    with open(path, "wb") as handle:
        handle.write(converter.convert())
    return path


def write_onnx(generator, z_dim: int, y_dim: int | None, path: str) -> str:
    """The serving function (z (+ labels) -> uint8 images) converted to ONNX by tf2onnx (opset ONNX_OPSET), with
    the same input and output names as the SavedModel's signature."""
    import tensorflow as tf
    import tf2onnx

    function, signature = serving_function(generator, z_dim, y_dim)
    tf2onnx.convert.from_function(tf.function(function, input_signature=signature), input_signature=signature,
                                  opset=ONNX_OPSET, output_path=path)
    return path


def export_info(saved: Config, step: int, ema: bool, formats: tuple[str, ...]) -> dict:
    """What export.json holds: enough for another program to draw z, pass labels and read the images."""
    import keras
    import tensorflow as tf

    from dcgan_tf import __version__

    dist = Z_DISTRIBUTIONS[saved.z_dist]
    conditional = bool(saved.conditional)
    inputs = {"z": f"float32 [N, {saved.z_dim}]"}
    if conditional:
        inputs["labels"] = f"int32 [N], 0-{saved.y_dim - 1}"
    return {
        "format_version": FORMAT_VERSION, "run": saved.name, "dataset": saved.dataset_name, "step": step,
        "checkpoint": saved.checkpoint, "ema": ema, "seed": saved.seed,
        "computes_in": "float32" + (" (the run trained in mixed precision)" if saved.mixed_precision else ""),
        "z_dim": saved.z_dim, "z_dist": saved.z_dist,
        "z_draw": "normal(0, 1)" if dist.normal else f"uniform({dist.low:g}, {dist.high:g})",
        "y_dim": saved.y_dim if conditional else None, "class_names": class_names(saved),
        "height": saved.output_height, "width": saved.output_width, "c_dim": saved.c_dim,
        "files": {name: FORMAT_FILES[name] for name in formats},
        "signature": {"name": SIGNATURE, "inputs": inputs,
                      "outputs": {"images": f"uint8 [N, {saved.output_height}, {saved.output_width}, {saved.c_dim}]"}},
        "keras_inputs": "z float32 [N, z_dim]" + (", one-hot labels float32 [N, y_dim]" if conditional else "")
                        + " -> images float32 [N, H, W, C] in [-1, 1]",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"dcgan_tf": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
    }


def export_run(config: Config, formats=DEFAULT_FORMATS) -> list[str]:
    """Export the run `config` names (its newest checkpoint, or the best under checkpoint="best") into
    `<run>/export/`, replacing an earlier export whole; returns the paths written.

    Holds the run's lock: not while the run trains, nor two exports at once.
    """
    formats = parse_formats(formats)
    saved = folders.open_saved_run(config)
    stored = folders.load_saved_config(saved)  # the run's own seed: the EMA generator's statistics are measured with it
    config = dataclasses.replace(config, run_name=saved.name, seed=stored.seed)
    with run_lock.holding(saved.checkpoint_path, what="export"):  # before reading a checkpoint training may prune
        remove_unfinished_exports(saved.checkpoint_path)
        saved, model, step = load_trained(config)
        return export_model(saved, model, step, formats)


def remove_unfinished_exports(folder: str) -> None:
    """Delete what an export killed midway left in the run folder (its building and set-aside folders)."""
    for name in os.listdir(folder):
        if name.startswith((BUILDING_PREFIX, ASIDE_PREFIX)):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def float32_generator(saved: Config, generator):
    """The generator as it computes in float32: itself, or for a mixed-precision run a float32 copy with its
    weights (which mixed precision keeps in float32), so TensorFlow Lite and ONNX get one dtype throughout."""
    if not saved.mixed_precision:
        return generator
    import keras

    from dcgan_tf.core.build import config_generator, dtype_policy

    with dtype_policy("float32"):
        copy = config_generator(saved)
    copy.set_weights([keras.ops.convert_to_numpy(weight) for weight in generator.weights])
    return copy


def export_model(saved: Config, model, step: int, formats=DEFAULT_FORMATS) -> list[str]:
    """Export a model in memory (`saved`: its resolved Config, `step`: its training step) into `<run>/export/`."""
    formats = parse_formats(formats)
    generator = float32_generator(saved, model.sampler)  # the EMA generator when the run keeps one
    ema = model.ema_decay is not None
    folder = export_folder(saved)
    os.makedirs(saved.checkpoint_path, exist_ok=True)
    building = tempfile.mkdtemp(prefix=BUILDING_PREFIX, dir=saved.checkpoint_path)  # the old export stays meanwhile
    try:
        if "keras" in formats:
            generator.save(os.path.join(building, KERAS_FILE))
        saved_model = os.path.join(building, SAVED_MODEL_DIR)
        if "savedmodel" in formats or "tflite" in formats:
            write_saved_model(generator, saved.z_dim, saved.y_dim if saved.conditional else None, saved_model)
        if "tflite" in formats:
            write_tflite(saved_model, os.path.join(building, TFLITE_FILE))
            if "savedmodel" not in formats:
                shutil.rmtree(saved_model)
        if "onnx" in formats:
            write_onnx(generator, saved.z_dim, saved.y_dim if saved.conditional else None,
                       os.path.join(building, ONNX_FILE))
        files.write_json(os.path.join(building, INFO_FILE), export_info(saved, step, ema, formats))
        replace_folder(building, folder)
    finally:
        if os.path.isdir(building):
            shutil.rmtree(building)
    info = read_info(folder)
    log.info("exported %s at step %d (%s): %s", saved.name, step, "EMA generator" if ema else "G", folder)
    return [os.path.join(folder, name) for name in (INFO_FILE, *info["files"].values())]


def replace_folder(new: str, folder: str) -> None:
    """Put the folder `new` at `folder`: the old one is moved aside first and deleted only once `new` is in place
    (moved back if that fails), so some whole export is there at every moment but between two renames."""
    aside = None
    if os.path.isdir(folder):
        aside = tempfile.mkdtemp(prefix=ASIDE_PREFIX, dir=os.path.dirname(folder))
        os.rmdir(aside)
        os.replace(folder, aside)
    try:
        os.replace(new, folder)
    except BaseException:
        if aside is not None:
            os.replace(aside, folder)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def read_info(folder: str) -> dict:
    """export.json of an export folder; ExportError when there is none."""
    try:
        info = files.read_json_object(os.path.join(folder, INFO_FILE))
    except files.DamagedFileError as error:
        raise ExportError(f"{error}: write the export again with python main.py --export (the run's flags)") from None
    if info is None:
        raise ExportError(f"{os.path.abspath(folder)} is not an export: no {INFO_FILE} in it (write one with "
                          f"python main.py --export)")
    return info


def export_is_current(config: Config) -> bool:
    """True when the run has an export of its newest checkpoint with a SavedModel (what the demo loads)."""
    from dcgan_tf.runs import checkpoints

    folder = export_folder(config)
    info = files.read_json(os.path.join(folder, INFO_FILE))  # None when missing or damaged: a new export replaces it
    if not info or "savedmodel" not in info.get("files", {}):
        return False
    if not os.path.isfile(os.path.join(folder, info["files"]["savedmodel"], "saved_model.pb")):
        return False
    latest = checkpoints.latest_step(folders.checkpoint_folder(config))
    return latest is not None and latest == info.get("step") and info.get("checkpoint") == config.checkpoint


def export_if_stale(config: Config, saved: Config | None = None) -> list[str]:
    """The run's export brought up to its newest checkpoint, as the demo needs it: written again (.keras, SavedModel
    and the formats it had) when missing or older (export_is_current); the paths written, [] when it was current.
    saved: the run's saved config (folders.open_saved_run(config), read when not given)."""
    saved = saved or folders.open_saved_run(config)
    if export_is_current(saved):
        return []
    try:
        before = tuple(read_info(export_folder(saved))["files"])
    except ExportError:
        before = ()
    # generator.keras too: the SavedModel shows no layer, and the demo's forgetting reads them
    return export_run(config, ("keras", "savedmodel", *before))


class ExportedGenerator:
    """An export's SavedModel as a numpy function: `generate(z, labels)` -> uint8 images; `info` is export.json."""

    def __init__(self, folder: str):
        import tensorflow as tf

        self.folder = folder
        self.info = read_info(folder)
        path = os.path.join(folder, self.info.get("files", {}).get("savedmodel", SAVED_MODEL_DIR))
        if not os.path.isdir(path):
            raise ExportError(f"{os.path.abspath(folder)} has no SavedModel (export with --export_format savedmodel)")
        self._loaded = tf.saved_model.load(path)
        self._serve = self._loaded.signatures[SIGNATURE]
        self._keras = None
        self._forgetters = {}

    @property
    def has_keras(self) -> bool:
        """Whether the export holds generator.keras (what `forgetter` splits)."""
        return os.path.isfile(os.path.join(self.folder, self.info.get("files", {}).get("keras", KERAS_FILE)))

    def forgetter(self, layer: str | None = None):
        """The export's Keras generator split at `layer` (default the second-highest conv layer), to find and drop
        the filters that draw what boxes mark: an analysis.forget.Forgetter. The SavedModel's signature maps z to
        images and shows no layer, so this loads generator.keras beside it (once). ExportError without one."""
        import keras

        from dcgan_tf.analysis.forget import Forgetter

        if not self.has_keras:
            raise ExportError(f"{os.path.abspath(self.folder)} has no {KERAS_FILE}, whose layers forgetting reads "
                              f"(export with --export_format keras,savedmodel)")
        if self._keras is None:
            self._keras = keras.saving.load_model(os.path.join(self.folder, self.info["files"]["keras"]),
                                                  compile=False)
        if layer not in self._forgetters:
            self._forgetters[layer] = Forgetter(self._keras, layer)
        return self._forgetters[layer]

    @property
    def conditional(self) -> bool:
        return bool(self.info.get("y_dim"))

    def generate(self, z, labels=None) -> np.ndarray:
        """z [N, z_dim] float32 (+ labels [N] ints, conditional exports only) -> uint8 images [N, H, W, C]."""
        import tensorflow as tf

        z = np.asarray(z, np.float32).reshape(-1, self.info["z_dim"])
        if self.conditional:
            if labels is None:
                raise ValueError(f"this generator is conditional: pass labels [N] in 0-{self.info['y_dim'] - 1}")
            labels = np.broadcast_to(np.asarray(labels, np.int32), (len(z),))
            if labels.size and not (0 <= labels.min() and labels.max() < self.info["y_dim"]):
                raise ValueError(f"labels must be 0-{self.info['y_dim'] - 1} (got {sorted(set(labels.tolist()))})")
        elif labels is not None:
            raise ValueError("this generator is not conditional: it takes no labels")
        out = []
        for start in range(0, len(z), GENERATE_BATCH):
            inputs = {"z": tf.constant(z[start:start + GENERATE_BATCH])}
            if self.conditional:
                inputs["labels"] = tf.constant(labels[start:start + GENERATE_BATCH])
            out.append(self._serve(**inputs)["images"].numpy())
        shape = (0, self.info["height"], self.info["width"], self.info["c_dim"])
        return np.concatenate(out) if out else np.zeros(shape, np.uint8)


def load_export(folder: str) -> ExportedGenerator:
    """The generator of an export folder (its SavedModel), ready to call with numpy arrays."""
    return ExportedGenerator(folder)


def describe(info: dict) -> str:
    """One line on an export: run, step, generator, image size, inputs."""
    labels = f" + labels 0-{info['y_dim'] - 1}" if info.get("y_dim") else ""
    return (f"{info['run']} at step {info['step']} ({'EMA generator' if info['ema'] else 'G'}): z [{info['z_dim']}] "
            f"{info['z_draw']}{labels} -> {info['height']}x{info['width']}x{info['c_dim']} uint8; "
            f"{', '.join(info['files'])}")
