"""DCGAN as a keras.Model: one train_step = one discriminator update, then `g_advantage` generator updates."""

from __future__ import annotations

import keras
import tensorflow as tf

METRIC_NAMES = ("d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake")


def sample_z(shape, z_dist: str, seed):
    """Draw latent vectors: uniform_signed U(-1, 1), uniform_unsigned U(0, 1) or normal01 N(0, 1).

    `seed` is an int or a keras.random.SeedGenerator (advanced on each call).
    """
    if z_dist == "uniform_signed":
        return keras.random.uniform(shape, -1.0, 1.0, seed=seed)
    if z_dist == "uniform_unsigned":
        return keras.random.uniform(shape, 0.0, 1.0, seed=seed)
    if z_dist == "normal01":
        return keras.random.normal(shape, seed=seed)
    raise ValueError(f"unknown z_dist {z_dist!r}")


def _bce_with_logits(target: float, logits):
    logits = tf.cast(logits, tf.float32)  # already float32 from the nets' last layer; losses stay float32
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target),
                                                                  logits=logits))


class DCGAN(keras.Model):
    """Generator + discriminator trained adversarially with the non-saturating loss.

    Data: images [N, H, W, C] float32 in [-1, 1], or (images, one-hot labels [N, y_dim]) when conditional.
    `step` counts train steps (one D update each); `epoch` counts finished epochs and `epoch_start_step` is the step
    at which the current epoch began (both set by the EpochCounter callback), so a resumed run knows its place.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, z_dim: int, z_dist: str = "uniform_signed",
                 g_advantage: int = 2, y_dim: int | None = None, seed: int | None = None, d_steps: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        if g_advantage < 1 or d_steps < 1:
            raise ValueError(f"g_advantage and d_steps must be >= 1 (got {g_advantage}, {d_steps})")
        self.generator = generator
        self.discriminator = discriminator
        self.z_dim = z_dim
        self.z_dist = z_dist
        self.g_advantage = g_advantage
        self.d_steps = d_steps
        self.y_dim = y_dim
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.step = keras.Variable(0, dtype="int64", trainable=False, name="step")
        self.epoch = keras.Variable(0, dtype="int64", trainable=False, name="epoch")
        self.epoch_start_step = keras.Variable(0, dtype="int64", trainable=False, name="epoch_start_step")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in METRIC_NAMES}

    @property
    def conditional(self) -> bool:
        return bool(self.y_dim)

    def compile(self, d_optimizer: keras.optimizers.Optimizer, g_optimizer: keras.optimizers.Optimizer, **kwargs):
        """Attach one optimizer per network and create their slots now, so a checkpoint can restore into them."""
        super().compile(optimizer=None, **kwargs)  # no third (default RMSprop) optimizer with slots for every weight
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def sample_z(self, batch_size):
        return sample_z((batch_size, self.z_dim), self.z_dist, self.seed_generator)

    def generate(self, z, labels=None, training: bool = False):
        """z [N, z_dim] (+ one-hot labels [N, y_dim]) -> images [N, H, W, C] in [-1, 1]."""
        z = tf.convert_to_tensor(z, tf.float32)
        if self.conditional:
            if labels is None:
                raise ValueError(f"this generator is conditional: pass one-hot labels [N, {self.y_dim}] with z")
            return self.generator([z, tf.convert_to_tensor(labels, tf.float32)], training=training)
        return self.generator(z, training=training)

    def discriminate(self, images, labels=None, training: bool = False):
        """images [N, H, W, C] (+ one-hot labels) -> logits [N, 1]."""
        images = tf.convert_to_tensor(images, tf.float32)
        if self.conditional:
            return self.discriminator([images, tf.convert_to_tensor(labels, tf.float32)], training=training)
        return self.discriminator(images, training=training)

    def call(self, z, training=False):
        return self.generate(z, training=training)

    def train_step(self, data):
        real, labels = data if self.conditional else (data, None)
        batch_size = tf.shape(real)[0]
        # d_steps discriminator updates (default 1), on this real batch and a fresh fake batch each; metrics averaged
        names = ("d_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake")
        d_totals = self._repeat(self.d_steps, lambda totals: tuple(
            t + v for t, v in zip(totals, self._d_update_values(real, labels, names))),
            tuple(tf.constant(0.0) for _ in names))
        d_values = {name: total / self.d_steps for name, total in zip(names, d_totals)}
        # g_advantage generator updates, each on a freshly drawn z (carpedm20 reused one z; we do not)
        g_loss_total = self._repeat(self.g_advantage, lambda total: total + self.generator_update(batch_size, labels),
                                    tf.constant(0.0))
        self.step.assign_add(1)
        values = {**d_values, "g_loss": g_loss_total / self.g_advantage}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        # Per-step values: callbacks see this step's losses; fit's epoch logs come from the trackers (same names).
        return values

    @staticmethod
    def _repeat(count: int, body, initial):
        """body(state) -> state, `count` times, in a graph while_loop (Keras traces train_step without AutoGraph),
        so g_advantage=50 builds no bigger graph than 1. Measured no slower than the updates written out."""
        return tf.while_loop(lambda i, state: i < count, lambda i, state: (i + 1, body(state)),
                             (tf.constant(0), initial))[1]

    def _d_update_values(self, real, labels, names):
        values = self.discriminator_update(real, labels)
        return tuple(values[name] for name in names)

    def discriminator_update(self, real, labels=None) -> dict:
        """One D update on a real batch and a fake batch of the same size; returns D's losses and mean outputs."""
        fake = self.generate(self.sample_z(tf.shape(real)[0]), labels, training=True)  # outside the tape: no G grads
        with tf.GradientTape() as tape:
            real_logits = self.discriminate(real, labels, training=True)
            fake_logits = self.discriminate(fake, labels, training=True)
            d_loss_real = _bce_with_logits(1.0, real_logits)
            d_loss_fake = _bce_with_logits(0.0, fake_logits)
            d_loss = d_loss_real + d_loss_fake
            scaled = self.d_optimizer.scale_loss(d_loss)  # the loss itself, unless fp16 loss scaling is on
        d_variables = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(scaled, d_variables), d_variables)
        return {"d_loss": d_loss, "d_loss_real": d_loss_real, "d_loss_fake": d_loss_fake,
                "d_real": tf.reduce_mean(tf.sigmoid(real_logits)), "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits))}

    def generator_update(self, batch_size, labels=None):
        """One G update against the current D (non-saturating loss) on a fresh z; returns the G loss."""
        z = self.sample_z(batch_size)
        with tf.GradientTape() as tape:
            fake = self.generate(z, labels, training=True)
            g_loss = _bce_with_logits(1.0, self.discriminate(fake, labels, training=True))
            scaled = self.g_optimizer.scale_loss(g_loss)
        g_variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled, g_variables), g_variables)
        return g_loss
