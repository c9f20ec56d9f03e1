"""The project's training speed against a plain `tf.function` loop of the same model, measured in one run.

Run by hand (it prints numbers; it is not a test and asserts nothing):

    PYTHONPATH=. python benchmarks/reference_ratio.py                       # fp32, defaults (~6 min on 2 cores)
    PYTHONPATH=. python benchmarks/reference_ratio.py --jit_compile         # both sides with XLA
    PYTHONPATH=. python benchmarks/reference_ratio.py --mixed_precision     # both sides in mixed precision
    PYTHONPATH=. python benchmarks/reference_ratio.py --augment all         # the project with DiffAugment, the
                                                                            # reference plain: the ratio is its cost
    PYTHONPATH=. python benchmarks/reference_ratio.py --small_data          # likewise, --small_data's settings

What it does, all in one process so the machine's state is shared:
1. Times a large matmul (fp32 and, with --mixed_precision, bf16 on CPU / fp16 on GPU): the machine's practical peak.
2. Counts the FLOPs of one training step of the canonical model (64x64 RGB, gf/df 64, z 100, batch 64, one D and
   `--g_advantage` G updates) from the layer shapes: forward passes, input gradients and weight gradients of every
   conv, transposed conv and dense layer that the step needs (see `step_flops`); the project's step does one G
   forward pass fewer, and its FLOP/s count only what it does.
3. Alternates `--rounds` rounds of `--steps` steps of
   - the project: `build_dcgan(Config(...))` trained by `fit()` on `data.make_dataset` (what `train()` runs, minus
     the monitoring callbacks), and
   - the reference: the same networks (same builders, same init) and Keras Adam optimizers in a plain
     `@tf.function` step (D update on a real and a fake batch, then g_advantage G updates, a fresh z each) over
     the same tf.data batches, called from a Python loop,
   timing each round on its own. Each side is warmed up (traced) first. The ratio project / reference is given per
   round pair and as the median; the project's achieved FLOP/s is given against the matmul peak. Both are timed
   from the start of their first step to the end of their last (fit()'s per-call setup and teardown excluded,
   see `Project.run`), with the CPU time the hypervisor stole during the round.
4. Peak resident memory of the process (ru_maxrss).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dcgan_tf.config import Config, with_small_data  # noqa: E402
from dcgan_tf.core.build import build_dcgan  # noqa: E402
from dcgan_tf.core.networks import build_discriminator, build_generator  # noqa: E402
from dcgan_tf.data import loading  # noqa: E402
from dcgan_tf.latent import sample_z  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side, alternating")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--g_advantage", type=int, default=2)
    parser.add_argument("--gf_dim", type=int, default=64)
    parser.add_argument("--df_dim", type=int, default=64)
    parser.add_argument("--jit_compile", action="store_true", help="XLA on both sides")
    parser.add_argument("--mixed_precision", action="store_true",
                        help="mixed precision on both sides (bf16 on CPU, fp16 with loss scaling on GPU)")
    parser.add_argument("--augment", default="", help="the project's --augment (the reference never augments)")
    parser.add_argument("--small_data", action="store_true",
                        help="the project with --small_data's settings (the reference stays plain: the ratio is "
                             "their cost)")
    parser.add_argument("--skip_reference", action="store_true", help="time the project only")
    parser.add_argument("--inter_op_threads", type=int, default=0,
                        help="TF inter-op thread pool size for both sides (0: TF's default)")
    parser.add_argument("--intra_op_threads", type=int, default=0,
                        help="TF intra-op thread pool size for both sides (0: TF's default)")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------- FLOPs
def layer_flops(layer) -> int:
    """Forward multiply-adds x 2 of one conv / transposed conv / dense layer for one image; 0 for other layers."""
    if isinstance(layer, keras.layers.Conv2DTranspose):
        _, h, w, c_in = layer.input.shape
        k_h, k_w = layer.kernel_size
        return 2 * h * w * c_in * layer.filters * k_h * k_w
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, c_out = layer.output.shape
        k_h, k_w = layer.kernel_size
        return 2 * h * w * layer.input.shape[-1] * c_out * k_h * k_w
    if isinstance(layer, keras.layers.Dense):
        return 2 * layer.input.shape[-1] * layer.units
    return 0


def network_flops(model) -> tuple[int, int]:
    """(forward FLOPs of the whole network, of its first weighted layer) per image."""
    flops = [layer_flops(layer) for layer in model.layers]
    weighted = [f for f in flops if f]
    return sum(weighted), weighted[0]


def step_flops(generator, discriminator, batch: int, g_advantage: int, shared_forward: bool = False) -> int:
    """FLOPs of one train step. A weight gradient costs one forward pass of its layer, an input gradient another.

    D update: G forward; D forward on real and fake; D weight gradients on both; D input gradients on both except
    through its first layer. G update: G forward; D forward; D input gradients all the way to the image (no D
    weight gradients); G weight gradients; G input gradients except through its first (dense) layer.
    `shared_forward`: the D update and the first G update share one G forward pass (the project's step).
    """
    g_fwd, g_first = network_flops(generator)
    d_fwd, d_first = network_flops(discriminator)
    d_update = g_fwd + 2 * d_fwd + 2 * d_fwd + 2 * (d_fwd - d_first)
    g_update = g_fwd + d_fwd + d_fwd + g_fwd + (g_fwd - g_first)
    return batch * (d_update + g_advantage * g_update - (g_fwd if shared_forward else 0))


def matmul_peak(dtype, n: int = 2048, repeats: int = 20) -> float:
    """GFLOP/s of an n x n matmul chain in `dtype` (best of three timings of `repeats` matmuls)."""
    a = tf.random.uniform((n, n), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.matmul(x, b) * tf.cast(1e-3, dtype)
        return tf.reduce_sum(tf.cast(x, tf.float32))

    chain(a).numpy()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        chain(a).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 * repeats / best / 1e9


# ---------------------------------------------------------------------------------------------- the two sides
def make_config(args) -> Config:
    values = dict(output_height=args.size, batch_size=args.batch_size, gf_dim=args.gf_dim, df_dim=args.df_dim,
                  g_advantage=args.g_advantage, c_dim=3, seed=1, verbose=0, jit_compile=args.jit_compile,
                  mixed_precision=args.mixed_precision, augment=args.augment)
    if args.small_data:
        values = with_small_data(values, given={"augment"} if args.augment else set())
    return Config(**values).resolved().validate()


class Project:
    """The project's DCGAN, trained by fit() over make_dataset: what train() runs, without its callbacks."""

    def __init__(self, config, dataset):
        self.model = build_dcgan(config)
        self.dataset = dataset

    def run(self, steps: int) -> float:
        """Seconds from the start of the first step to the end of the last. fit()'s own setup and teardown are
        left out: they are paid once per fit() (once per run in train()), and tearing down fit's distributed
        iterator was measured to take 0-1 s, in steps of about 1 s, which would swamp a short round."""
        timer = _StepSpan()
        self.model.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
        return timer.seconds


class _StepSpan(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds = time.perf_counter() - self.started


class Reference:
    """A plain training loop: the same networks and optimizers in one @tf.function step."""

    def __init__(self, config, dataset):
        keras.utils.set_random_seed(config.seed)
        self.g = build_generator(config.output_height, config.output_width, config.c_dim, config.z_dim,
                                 config.gf_dim)
        self.d = build_discriminator(config.output_height, config.output_width, config.c_dim, config.df_dim)
        self.g_opt = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
        self.d_opt = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
        if config.mixed_precision and tf.config.list_physical_devices("GPU"):
            self.g_opt = keras.optimizers.LossScaleOptimizer(self.g_opt)
            self.d_opt = keras.optimizers.LossScaleOptimizer(self.d_opt)
        self.seed = keras.random.SeedGenerator(config.seed)
        self.config = config
        self.iterator = iter(dataset)
        self.step = tf.function(self._step, jit_compile=config.jit_compile)

    def _bce(self, target, logits):
        logits = tf.cast(logits, tf.float32)
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), target), logits))

    def _step(self, real):
        batch = tf.shape(real)[0]
        fake = self.g(sample_z((batch, self.config.z_dim), self.config.z_dist, self.seed), training=True)
        with tf.GradientTape() as tape:
            d_loss = self._bce(1.0, self.d(real, training=True)) + self._bce(0.0, self.d(fake, training=True))
            scaled = self.d_opt.scale_loss(d_loss)
        self.d_opt.apply(tape.gradient(scaled, self.d.trainable_variables), self.d.trainable_variables)
        g_loss = 0.0
        for _ in range(self.config.g_advantage):
            with tf.GradientTape() as tape:
                z = sample_z((batch, self.config.z_dim), self.config.z_dist, self.seed)
                loss = self._bce(1.0, self.d(self.g(z, training=True), training=True))
                scaled = self.g_opt.scale_loss(loss)
            self.g_opt.apply(tape.gradient(scaled, self.g.trainable_variables), self.g.trainable_variables)
            g_loss += loss
        return d_loss, g_loss

    def run(self, steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            d_loss, _ = self.step(next(self.iterator))
        d_loss.numpy()  # wait for the last step
        return time.perf_counter() - started


def steal_seconds() -> float:
    """CPU time the hypervisor gave to others (/proc/stat 'steal'), summed over CPUs; 0 where unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def timed(side, steps: int) -> float:
    return side.run(steps)


def main(argv=None) -> int:
    args = parse_args(argv)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    total = time.perf_counter()
    gpus = tf.config.list_physical_devices("GPU")
    print(f"cpu count {os.cpu_count()}, python {platform.python_version()}, TF {tf.__version__}, "
          f"Keras {keras.__version__}, GPUs: {', '.join(g.name for g in gpus) or 'none'}")
    if args.mixed_precision:
        print("mixed precision: " + ("fp16 (loss scaling)" if gpus else "bf16"))
    print(f"TF threads: inter-op {args.inter_op_threads or 'default'}, intra-op {args.intra_op_threads or 'default'}")
    print(f"load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (other work skews every figure)")

    fp32_peak = matmul_peak(tf.float32)
    print(f"matmul 2048^2 fp32: {fp32_peak:.0f} GFLOP/s", flush=True)
    low_peak = None
    if args.mixed_precision:
        low_peak = matmul_peak(tf.float16 if gpus else tf.bfloat16)
        print(f"matmul 2048^2 {'fp16' if gpus else 'bf16'}: {low_peak:.0f} GFLOP/s", flush=True)

    config = make_config(args)
    rng = np.random.default_rng(1)
    images = loading.LoadedImages(rng.integers(0, 256, (1024, config.output_height, config.output_width, 3), np.uint8),
                                  paths=[])
    project = Project(config, loading.make_dataset(images, config.batch_size, config.seed))
    networks = project.model.generator, project.model.discriminator, config.batch_size, config.g_advantage
    flops = {"reference": step_flops(*networks), "project": step_flops(*networks, shared_forward=True)}
    print(f"one step: {flops['reference'] / 1e9:.0f} GFLOP in the reference, {flops['project'] / 1e9:.0f} in the "
          f"project (its D update and first G update share a G forward pass) ({config.output_height}x"
          f"{config.output_width}x3, batch {config.batch_size}, g_advantage {config.g_advantage}, jit_compile "
          f"{config.jit_compile})")
    sides = {"project": project}
    if not args.skip_reference:
        sides["reference"] = Reference(config, loading.make_dataset(images, config.batch_size, config.seed))
    for name, side in sides.items():  # trace and warm up
        print(f"warming up {name} (2 steps, the first traces) ... {timed(side, 2):.1f} s", flush=True)

    times = {name: [] for name in sides}
    for round_ in range(args.rounds):
        for name, side in (sides.items() if round_ % 2 == 0 else reversed(sides.items())):
            stolen = steal_seconds()
            seconds = timed(side, args.steps)
            stolen = steal_seconds() - stolen
            times[name].append(seconds)
            print(f"round {round_ + 1} {name:>9}: {args.steps * config.batch_size / seconds:6.2f} images/s "
                  f"({seconds / args.steps:.2f} s/step; CPU stolen by the host: {stolen:.1f} s)", flush=True)

    print("\n== summary")
    rates = {name: [args.steps * config.batch_size / s for s in values] for name, values in times.items()}
    for name, values in rates.items():
        rate = statistics.median(values)
        achieved = rate / config.batch_size * flops[name] / 1e9
        print(f"{name:>9}: {rate:6.2f} images/s (median of {len(values)}; min {min(values):.2f}, max "
              f"{max(values):.2f}); {achieved:.0f} GFLOP/s = {achieved / fp32_peak:.0%} of the fp32 matmul"
              + (f", {achieved / low_peak:.0%} of the low-precision matmul" if low_peak else ""))
    if "reference" in rates:
        ratios = [p / r for p, r in zip(rates["project"], rates["reference"])]
        print(f"project / reference: {statistics.median(ratios):.3f} (per round: "
              f"{', '.join(f'{x:.3f}' for x in ratios)})")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_rss:,.0f} MB; total {time.perf_counter() - total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
