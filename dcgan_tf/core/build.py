"""build_dcgan(config): the DCGAN a run's settings describe, with its dtype policy, optimizers and replica scope."""

from __future__ import annotations

import contextlib
import logging

import keras
import tensorflow as tf

from dcgan_tf.config import Config
from dcgan_tf.core.model import DCGAN
from dcgan_tf.core.networks import build_discriminator, build_generator

log = logging.getLogger(__name__)

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16() -> bool | None:
    """Whether this CPU has bfloat16 arithmetic (AVX512-BF16 or AMX-BF16); None where /proc/cpuinfo is missing."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return None
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def warn_if_bf16_is_emulated(config: Config) -> None:
    """--mixed_precision on a CPU without bf16 instructions is several times slower: say so."""
    if precision_policy(config.mixed_precision) == "mixed_bfloat16" and cpu_has_bf16() is False:
        log.warning("--mixed_precision: this CPU has no bfloat16 instructions (%s), so TensorFlow emulates bf16 and "
                    "training runs several times slower than float32 (8x measured on an AVX2 CPU); leave "
                    "--mixed_precision off here", " or ".join(BF16_CPU_FLAGS))


def precision_policy(mixed: bool) -> str:
    """Keras dtype policy: float32, or mixed precision: mixed_float16 on a GPU, mixed_bfloat16 on a CPU."""
    if not mixed:
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Layers built inside take this dtype policy; Keras' global policy is restored afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_dcgan(config: Config, strategy: tf.distribute.Strategy | None = None) -> DCGAN:
    """The DCGAN a (resolved, c_dim-known) config describes, compiled with one Adam per network.

    Seeds Keras' global RNG with config.seed first, so the same seed gives the same initial weights. With
    config.mixed_precision the layers compute in bf16 (CPU) or fp16 (GPU, with dynamic loss scaling) while weights,
    batch-norm statistics, logits and losses stay float32. With a multi-replica `strategy` the model is built in its
    scope, and batch norm takes its statistics over the global batch (synchronised), as on one device.
    """
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        with strategy.scope():
            return _build_dcgan(config, sync_batchnorm=True)
    return _build_dcgan(config, sync_batchnorm=False)


def config_generator(config: Config, sync_batchnorm: bool = False) -> keras.Model:
    """The generator a (resolved, c_dim-known) config describes, in the current dtype policy (unseeded: its
    weights are for the caller to set)."""
    return build_generator(config.output_height, config.output_width, config.c_dim, config.z_dim, config.gf_dim,
                           y_dim=config.y_dim, gfc_dim=config.gfc_dim, sync_batchnorm=sync_batchnorm,
                           spectral_norm="g" in config.spectral_norm_networks,
                           conditioning="mnist" if config.mnist_nets else "projection")


def _build_dcgan(config: Config, sync_batchnorm: bool) -> DCGAN:
    keras.utils.set_random_seed(config.seed)
    policy = precision_policy(config.mixed_precision)
    conditioning = "mnist" if config.mnist_nets else "projection"  # a labelled folder's conditional nets
    with dtype_policy(policy):
        generator = config_generator(config, sync_batchnorm)
        discriminator = build_discriminator(config.output_height, config.output_width, config.c_dim,
                                            config.df_dim, y_dim=config.y_dim, dfc_dim=config.dfc_dim,
                                            conv_layers=config.d_layers, batchnorm=config.d_batchnorm,
                                            sync_batchnorm=sync_batchnorm,
                                            spectral_norm="d" in config.spectral_norm_networks,
                                            conditioning=conditioning)
    model = DCGAN(generator, discriminator, config.z_dim, config.z_dist, config.g_advantage, config.y_dim,
                  seed=config.seed, d_steps=config.d_steps, augment_policies=config.augment_policies,
                  augment_p=config.augment_p, ada_target=config.ada_target, loss=config.loss,
                  gp_weight=config.gp_weight, r1_gamma=config.r1_gamma, r1_every=config.r1_every,
                  ema=config.ema or None, matching_aware=config.matching_aware)
    d_learning_rate = config.d_learning_rate or config.learning_rate
    d_optimizer = keras.optimizers.Adam(d_learning_rate, beta_1=config.beta1, beta_2=config.beta2)
    g_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1, beta_2=config.beta2)
    if policy == "mixed_float16":  # fp16 gradients underflow without loss scaling; bf16 has fp32's range
        d_optimizer = keras.optimizers.LossScaleOptimizer(d_optimizer)
        g_optimizer = keras.optimizers.LossScaleOptimizer(g_optimizer)
    model.compile(d_optimizer=d_optimizer, g_optimizer=g_optimizer, jit_compile=config.jit_compile)
    return model
