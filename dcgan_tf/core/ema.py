"""The EMA generator (--ema): an exponential moving average of G's variables, what samples when a run keeps one.

keras-io gan_ada's shape: `update(step)` after each step's G updates, `sampler()` the generator to draw with.
`NoEMA` does nothing and samples with G itself. Sampling with averaged weights needs batch-norm statistics of its
own: they are measured on the averaged weights (BigGAN's "standing statistics", `measure_statistics`).
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from dcgan_tf.config import EMA_WARMUP
from dcgan_tf.latent import sample_z

STATISTICS_SEED_OFFSET = 152897  # the z (and labels) the batch-norm statistics are measured on: a stream of their own
# the mean of the generator's batch statistics over this many batches of this many z
STATISTICS_BATCHES = 16
STATISTICS_BATCH = 64


def measure_statistics(generator: keras.Model, seed: int, z_dim: int, z_dist: str, y_dim: int | None = None) -> None:
    """Set the batch-norm moving statistics of `generator` to the mean of its batch statistics over
    STATISTICS_BATCHES fixed batches of z (and random labels): BigGAN's standing statistics. The EMA generator
    needs them: its averaged weights never trained, so the statistics averaged along with them are not theirs."""
    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    momenta = [layer.momentum for layer in norms]
    try:
        for k in range(STATISTICS_BATCHES):
            for layer in norms:  # statistics <- their running mean over the batches so far
                layer.momentum = k / (k + 1)
            key = tf.constant([seed + STATISTICS_SEED_OFFSET, k], tf.int64)
            z = sample_z((STATISTICS_BATCH, z_dim), z_dist, key)
            if y_dim:
                digits = tf.random.stateless_uniform([STATISTICS_BATCH], key + 1, 0, y_dim, tf.int32)
                generator([z, tf.one_hot(digits, y_dim)], training=True)
            else:
                generator(z, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


class NoEMA:
    """No moving average: G samples."""

    decay = None
    weights = ()

    def __init__(self, generator: keras.Model):
        self.generator = generator

    def update(self, step) -> None:
        del step

    def sampler(self, version, measure) -> keras.Model:
        del version, measure
        return self.generator


class GeneratorEMA(NoEMA):
    """average <- d x average + (1 - d) x G after every step, for every variable of G (trainable weights and
    batch-norm statistics alike), d = decay_at(step). `weights` (variables made in the strategy's scope) are saved
    in checkpoints; `sampler` loads them into a copy of G whose batch-norm statistics are measured on them."""

    def __init__(self, generator: keras.Model, decay: float):
        super().__init__(generator)
        self.decay = float(decay)
        state = functools.partial(keras.Variable, dtype="float32", trainable=False, aggregation="only_first_replica")
        # from G's values (a Keras Variable made from a tf.Variable would share it)
        self.weights = [state(variable.numpy(), name=f"ema_{i}") for i, variable in enumerate(generator.variables)]
        self.copy = keras.models.clone_model(generator)  # sampling's copy, loaded from weights
        # counts updates (not saved): with the step, says when the sampling copy must be loaded again
        self.updates = keras.Variable(0, dtype="int64", trainable=False, aggregation="only_first_replica",
                                      name="ema_updates")
        self._loaded = None

    def decay_at(self, step):
        """The decay at `step` (the step just done, counting from 1): min(decay, (1 + step) / (10 + step))."""
        step = tf.cast(step, tf.float32)
        return tf.minimum(self.decay, (1.0 + step) / (EMA_WARMUP + step))

    def update(self, step) -> None:
        decay = self.decay_at(step)
        for average, variable in zip(self.weights, self.generator.variables):
            average.assign(decay * average + (1.0 - decay) * tf.cast(variable, tf.float32))
        self.updates.assign_add(1)

    def sampler(self, version, measure) -> keras.Model:
        """The copy, loaded with the averages as they are now and `measure(copy)` run on it, once per `version`
        (the step) and update count; called eagerly."""
        version = (version, int(self.updates.numpy()))
        if self._loaded != version:
            for target, average in zip(self.copy.variables, self.weights):
                target.assign(average)
            measure(self.copy)
            self._loaded = version
        return self.copy


def moving_average(generator: keras.Model, decay: float | None):
    """The EMA a run's --ema asks for: GeneratorEMA, or NoEMA when unset."""
    return NoEMA(generator) if decay is None else GeneratorEMA(generator, decay)
