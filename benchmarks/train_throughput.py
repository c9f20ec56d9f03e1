"""Training throughput of the canonical DCGAN, and how fast the input pipeline can feed it.

Run by hand (it prints numbers; it is not a test and asserts nothing):

    PYTHONPATH=. /work/venv/bin/python benchmarks/train_throughput.py            # defaults
    PYTHONPATH=. /work/venv/bin/python benchmarks/train_throughput.py --steps 5 --repeats 1   # quick look

(or `pip install -e .` and drop the PYTHONPATH). At defaults it runs 1 traced + 2 warm-up + 3 x 10 timed steps of
the canonical model plus a few seconds of input-pipeline work: about 4 minutes on 2 CPU cores at ~6 s/step. Other
work on the machine skews every figure; the load average is printed at the start and the end. Nothing is written
outside a temporary folder that is removed at the end; no run folder, checkpoint or sample is created.

What is measured, and what each figure means:

1. Environment: CPU count, CPU model, TF / Keras versions and the GPUs TF sees, so figures from different
   machines can be told apart.

2. Training (the project's own `DCGAN` from `build_dcgan(Config(...).resolved())`, c_dim 3, fed by
   `data.make_dataset` over random uint8 images held in memory, trained with `model.fit(verbose=0)` and no
   callbacks other than a timer):
   - "time to first step": from calling fit() to the end of its first step: building the epoch iterator, tracing
     and compiling train_step, and running that step. A one-off cost per process.
   - warm-up: the remaining `--warmup_steps - 1` steps of that first fit(), for reference only.
   - then one fit() of `--repeats` epochs of `--steps` steps each, every epoch timed on its own
     (on_epoch_begin -> on_epoch_end). "images/s" = steps * batch_size / epoch seconds, i.e. REAL images
     consumed per second (each step also generates (1 + g_advantage) * batch_size fakes, not counted);
     the median over epochs is reported, with min and max. "ms/step" = median epoch seconds / steps.

3. Input pipeline alone, on a temporary folder of `--num_files` random smooth 150x150 JPEGs:
   (a) `data.load_images(files, ImageSpec(size, size, crop=True, input_height=108, input_width=108))`: the
       parallel decode + centre crop + resize into the in-memory cache, in images/s (median of `--repeats`),
       with c_dim left None as `train()` passes it unless c_dim is set (the library then works out grayscale
       vs RGB itself). The same call with c_dim=3 is shown as (a'); a gap between the two is the cost of that
       channel detection. This is a one-off cost before training starts, not a per-step one.
   (b) iterating `data.make_dataset(cache, batch_size, seed)` (index stream -> gather -> float [-1, 1] ->
       prefetch), after a few warm-up batches, in images/s (median of `--repeats`).
   (c) the same over `data.probe_images(files, spec)`: the streaming path a data set over `--cache_limit`
       takes, which decodes, crops and resizes every batch from the JPEGs in a parallel map.
   Each is also shown as a ratio to the training images/s of step 2: "input pipeline feeds Nx what training
   consumes". N well above 1 means the input side is not the bottleneck.

4. A summary table of all of the above, with the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import PIL  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from dcgan_tf.config import Config  # noqa: E402
from dcgan_tf.core.build import build_dcgan  # noqa: E402
from dcgan_tf.data import loading  # noqa: E402


# ---------------------------------------------------------------------------------------------- helpers
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs (and input-pipeline repeats)")
    parser.add_argument("--warmup_steps", type=int, default=3,
                        help="steps of the untimed first fit() (its first step includes tracing)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="output height = width (multiple of 16)")
    parser.add_argument("--g_advantage", type=int, default=2)
    parser.add_argument("--gf_dim", type=int, default=64)
    parser.add_argument("--df_dim", type=int, default=64)
    parser.add_argument("--z_dim", type=int, default=100)
    parser.add_argument("--num_images", type=int, default=1024, help="random in-memory images for training")
    parser.add_argument("--num_files", type=int, default=256, help="JPEG files for the input-pipeline test")
    parser.add_argument("--pipeline_batches", type=int, default=200,
                        help="make_dataset batches timed per input-pipeline repeat")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "warmup_steps", "batch_size", "size", "g_advantage", "gf_dim", "df_dim",
                 "z_dim", "num_images", "num_files", "pipeline_batches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 74 - len(text)), flush=True)


def fmt_rate(value: float) -> str:
    return f"{value:,.1f}"


class Timer(keras.callbacks.Callback):
    """perf_counter at the end of every batch and the start/end of every epoch."""

    def __init__(self):
        super().__init__()
        self.batch_ends: list[float] = []
        self.epoch_begins: list[float] = []
        self.epoch_ends: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_begins.append(time.perf_counter())

    def on_train_batch_end(self, batch, logs=None):
        self.batch_ends.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_ends.append(time.perf_counter())


# ---------------------------------------------------------------------------------------------- 1. environment
def environment() -> dict:
    heading("environment")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    gpus = tf.config.list_physical_devices("GPU")
    env = {
        "cpu count": f"{os.cpu_count()} (usable by this process: {affinity})",
        "cpu model": cpu_model(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": f"{keras.__version__} (backend {keras.backend.backend()})",
        "numpy / Pillow": f"{np.__version__} / {PIL.__version__}",
        "GPUs seen by TF": ", ".join(g.name for g in gpus) if gpus else "none",
        "load average (1/5/15 min)": " / ".join(f"{x:.2f}" for x in os.getloadavg()) + "  (other work skews figures)",
        "TF intra/inter-op threads": f"{tf.config.threading.get_intra_op_parallelism_threads()} / "
                                     f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = TF default)",
    }
    for key, value in env.items():
        print(f"{key:>26}: {value}")
    return env


# ---------------------------------------------------------------------------------------------- 2. training
def training_throughput(args) -> dict:
    heading("training throughput (DCGAN.fit, in-memory random images)")
    config = Config(output_height=args.size, batch_size=args.batch_size, z_dim=args.z_dim, gf_dim=args.gf_dim,
                    df_dim=args.df_dim, g_advantage=args.g_advantage, c_dim=3, seed=args.seed,
                    verbose=0).resolved().validate()
    print(f"model: {config.output_height}x{config.output_width}x{config.c_dim}, gf_dim {config.gf_dim}, "
          f"df_dim {config.df_dim}, z_dim {config.z_dim}, batch {config.batch_size}, "
          f"g_advantage {config.g_advantage}")

    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.num_images, config.output_height, config.output_width, 3), dtype=np.uint8)
    loaded = loading.LoadedImages(images, paths=[])
    dataset = loading.make_dataset(loaded, config.batch_size, config.seed)

    started = time.perf_counter()
    model = build_dcgan(config)
    build_s = time.perf_counter() - started
    params = model.generator.count_params() + model.discriminator.count_params()
    print(f"build_dcgan: {build_s:.2f} s ({params:,} parameters)", flush=True)

    # Warm-up fit: its first step traces and compiles train_step.
    warm = Timer()
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=args.warmup_steps, epochs=1, verbose=0, callbacks=[warm], shuffle=False)
    first_step_s = warm.batch_ends[0] - started
    print(f"time to first step (iterator + trace + compile + 1 step): {first_step_s:.2f} s")
    warm_rest = None
    if args.warmup_steps > 1:
        warm_rest = (warm.batch_ends[-1] - warm.batch_ends[0]) / (args.warmup_steps - 1)
        print(f"warm-up steps 2..{args.warmup_steps}: {warm_rest * 1000:.0f} ms/step (not used below)")

    # Timed fit: `repeats` epochs of `steps` steps, each epoch timed on its own (train_step is not retraced).
    timer = Timer()
    print(f"timing {args.repeats} epoch(s) of {args.steps} steps ...", flush=True)
    model.fit(dataset, steps_per_epoch=args.steps, epochs=args.repeats, verbose=0, callbacks=[timer],
              shuffle=False)
    epoch_s = [end - begin for begin, end in zip(timer.epoch_begins, timer.epoch_ends)]
    rates = [args.steps * config.batch_size / s for s in epoch_s]
    for i, (s, rate) in enumerate(zip(epoch_s, rates)):
        ends = [t for t in timer.batch_ends if timer.epoch_begins[i] <= t <= timer.epoch_ends[i]]
        steps_ms = np.diff([timer.epoch_begins[i], *ends]) * 1000
        print(f"  epoch {i + 1}: {s:7.2f} s  {rate:8.1f} images/s  {s / args.steps * 1000:7.0f} ms/step  "
              f"(steps: first {steps_ms[0]:.0f}, min {steps_ms.min():.0f}, max {steps_ms.max():.0f} ms)")
    median_s = statistics.median(epoch_s)
    # Between epochs: from the last step's end to the next epoch's first step's start (callbacks, metric resets,
    # the data stream crossing into a new seeded order). With the cache it should be a sliver of an epoch.
    gaps = [begin - end for end, begin in zip(timer.epoch_ends, timer.epoch_begins[1:])]
    first_batches = [min(t for t in timer.batch_ends if t >= begin) for begin in timer.epoch_begins]
    step_s = median_s / args.steps
    between = [(first - begin) - step_s + gap for first, begin, gap in zip(first_batches[1:], timer.epoch_begins[1:],
                                                                          gaps)]
    epoch_overhead = statistics.median(between) if between else float("nan")
    print(f"per-epoch overhead (gap between epochs, plus the first step's excess over a median step): "
          f"{epoch_overhead * 1000:.0f} ms = {epoch_overhead / median_s:.1%} of an epoch of {args.steps} steps")
    result = {
        "first_step_s": first_step_s,
        "warm_rest_s": warm_rest,
        "images_per_s": statistics.median(rates),
        "images_per_s_min": min(rates),
        "images_per_s_max": max(rates),
        "ms_per_step": median_s / args.steps * 1000,
        "steps": int(model.step.numpy()),
        "epoch_overhead_s": epoch_overhead,
        "epoch_s": median_s,
    }
    print(f"median: {result['images_per_s']:.1f} real images/s (min {min(rates):.1f}, max {max(rates):.1f}), "
          f"{result['ms_per_step']:.0f} ms/step; "
          f"{result['images_per_s'] * (1 + config.g_advantage):.1f} generated images/s")
    return result


# ---------------------------------------------------------------------------------------------- 3. input pipeline
def write_jpegs(folder: str, count: int, side: int, seed: int) -> list[str]:
    """`count` random smooth RGB images (a random 6x6 colour field, bicubic-upsampled) as JPEG, quality 90."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        image = Image.fromarray(coarse, "RGB").resize((side, side), Image.Resampling.BICUBIC)
        path = os.path.join(folder, f"img_{i:05d}.jpg")
        image.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def time_load_images(files, spec, c_dim, repeats) -> tuple[float, loading.LoadedImages]:
    rates, loaded = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        loaded = loading.load_images(files, spec, c_dim=c_dim)
        rates.append(len(files) / (time.perf_counter() - started))
    return statistics.median(rates), loaded


def time_make_dataset(cache, batch_size, seed, batches, repeats, warmup=5) -> float:
    rates = []
    for r in range(repeats):
        iterator = iter(loading.make_dataset(cache, batch_size, seed + r))
        for _ in range(warmup):
            next(iterator)
        started = time.perf_counter()
        for _ in range(batches):
            batch = next(iterator)
        _ = batch.numpy()  # the last batch is materialised (eager tensors already are; this is belt and braces)
        rates.append(batches * batch_size / (time.perf_counter() - started))
    return statistics.median(rates)


def input_pipeline(args, train_rate: float) -> dict:
    heading("input pipeline alone")
    folder = tempfile.mkdtemp(prefix="dcgan_bench_")
    try:
        started = time.perf_counter()
        files = write_jpegs(folder, args.num_files, 150, args.seed)
        print(f"wrote {len(files)} JPEGs of 150x150 to {folder} in {time.perf_counter() - started:.2f} s")
        spec = loading.ImageSpec(args.size, args.size, crop=True, input_height=108, input_width=108)
        workers = min(32, (os.cpu_count() or 1) + 4)
        print(f"load_images: {spec}, {workers} worker threads (the library default)", flush=True)

        load_rate, cache = time_load_images(files, spec, None, args.repeats)
        print(f"(a)  load_images(c_dim=None):                {load_rate:9.1f} images/s "
              f"-> cache {cache.images.shape} {cache.images.dtype}")
        load3_rate, _ = time_load_images(files, spec, 3, args.repeats)
        print(f"(a') load_images(c_dim=3):                   {load3_rate:9.1f} images/s")

        print(f"make_dataset: batch {args.batch_size}, {args.pipeline_batches} batches per repeat after 5 warm-up",
              flush=True)
        feed_rate = time_make_dataset(cache, args.batch_size, args.seed, args.pipeline_batches, args.repeats)
        print(f"(b)  make_dataset batches from the cache:      {feed_rate:9.1f} images/s")
        streamed = loading.probe_images(files, spec)
        stream_batches = max(1, min(args.pipeline_batches, 2 * args.num_files // args.batch_size))
        stream_rate = time_make_dataset(streamed, args.batch_size, args.seed, stream_batches, args.repeats, warmup=1)
        print(f"(c)  make_dataset streaming from the JPEGs:    {stream_rate:9.1f} images/s "
              f"(--cache_limit exceeded: decode per batch)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    result = {"load_images": load_rate, "load_images_c3": load3_rate, "make_dataset": feed_rate,
              "streaming": stream_rate}
    for key, label in (("load_images", "(a)  load_images"), ("load_images_c3", "(a') load_images c_dim=3"),
                       ("make_dataset", "(b)  make_dataset batches"), ("streaming", "(c)  streaming batches")):
        print(f"{label}: input pipeline feeds {result[key] / train_rate:,.1f}x what training consumes "
              f"({train_rate:.1f} images/s)")
    return result


# ---------------------------------------------------------------------------------------------- 4. summary
def summary(args, env: dict, train: dict, pipe: dict) -> None:
    heading("summary")
    rate = train["images_per_s"]
    rows = [
        ("machine", f"{env['cpu count'].split()[0]} CPU, {env['cpu model']}", ""),
        ("TF / Keras", f"{tf.__version__} / {keras.__version__}", f"GPU: {env['GPUs seen by TF']}"),
        ("model", f"{args.size}x{args.size}x3 gf{args.gf_dim} df{args.df_dim} z{args.z_dim}",
         f"batch {args.batch_size}, g_advantage {args.g_advantage}"),
        ("time to first step", f"{train['first_step_s']:.2f} s", "trace + compile + 1 step"),
        ("training", f"{fmt_rate(rate)} images/s",
         f"{train['ms_per_step']:.0f} ms/step, median of {args.repeats} x {args.steps} steps "
         f"(min {train['images_per_s_min']:.1f}, max {train['images_per_s_max']:.1f})"),
        ("per-epoch overhead", f"{train['epoch_overhead_s'] * 1000:.0f} ms",
         f"{train['epoch_overhead_s'] / train['epoch_s']:.1%} of a {args.steps}-step epoch (cached data)"),
        ("(a)  load_images c_dim=None", f"{fmt_rate(pipe['load_images'])} images/s",
         f"{pipe['load_images'] / rate:,.1f}x training (one-off, before training)"),
        ("(a') load_images c_dim=3", f"{fmt_rate(pipe['load_images_c3'])} images/s",
         f"{pipe['load_images_c3'] / rate:,.1f}x training (one-off, before training)"),
        ("(b)  make_dataset", f"{fmt_rate(pipe['make_dataset'])} images/s",
         f"{pipe['make_dataset'] / rate:,.1f}x training (per step)"),
        ("(c)  streaming", f"{fmt_rate(pipe['streaming'])} images/s",
         f"{pipe['streaming'] / rate:,.1f}x training (per step, over --cache_limit)"),
        ("peak RSS", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB", "whole process"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, value, note in rows:
        print(f"{name:<{widths[0]}}  {value:>{widths[1]}}  {note}")


def main(argv=None) -> int:
    args = parse_args(argv)
    total = time.perf_counter()
    env = environment()
    train = training_throughput(args)
    pipe = input_pipeline(args, train["images_per_s"])
    summary(args, env, train, pipe)
    print(f"\ntotal benchmark time: {time.perf_counter() - total:.0f} s; load average now "
          + " / ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
