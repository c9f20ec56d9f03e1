"""DCGAN as a keras.Model: one train_step = one discriminator update, then `g_advantage` generator updates."""

from __future__ import annotations

import functools
import random

import keras
import tensorflow as tf

from dcgan_tf import augment, distribution
from dcgan_tf.latent import sample_z

D_METRIC_NAMES = ("d_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake")
METRIC_NAMES = ("d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake")
AUGMENT_SEED_OFFSET = 104729  # the augmentations' keys: a stream of their own, apart from z's
REAL, FAKE, FAKE_FOR_G = 0, 1, 2  # which view of a draw's batch D is given (each augmented on its own)


def _bce_with_logits(target: float, logits):
    logits = tf.cast(logits, tf.float32)  # already float32 from the nets' last layer; losses stay float32
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target),
                                                                  logits=logits))


class DCGAN(keras.Model):
    """Generator + discriminator trained adversarially with the non-saturating loss.

    Data: images [N, H, W, C] float32 in [-1, 1], or (images, one-hot labels [N, y_dim]) when conditional.
    `step` counts train steps (one D update each); `epoch` counts finished epochs and `epoch_start_step` is the step
    at which the current epoch began (both set by the EpochCounter callback), so a resumed run knows its place.
    Each z batch is a stateless draw keyed by (seed, step, draw within the step), so a resumed run draws the same z.
    With `augment_policies` (DiffAugment) every batch D sees, real or fake, in D's and G's updates, is augmented,
    keyed the same way (see `d_view`).

    Under a tf.distribute strategy (built in its scope) each replica trains on its slice of the global batch and
    takes the same rows of the global z draw; losses are divided by the replica count because the optimizers sum
    the replicas' gradients, so an update equals one device's on the whole batch.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, z_dim: int, z_dist: str = "uniform_signed",
                 g_advantage: int = 2, y_dim: int | None = None, seed: int | None = None, d_steps: int = 1,
                 augment_policies: tuple = (), augment_p: float = 1.0, **kwargs):
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
        self.seed = int(seed) if seed is not None else random.randrange(2**31)
        self.augment_policies, self.augment_p = tuple(augment_policies), float(augment_p)
        # counters change once per step, not once per replica
        counter = functools.partial(keras.Variable, 0, dtype="int64", trainable=False, aggregation="only_first_replica")
        self.step = counter(name="step")
        self.epoch = counter(name="epoch")
        self.epoch_start_step = counter(name="epoch_start_step")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in METRIC_NAMES}
        self.built = True  # G and D are built; fit() under a strategy must not trace call() on an image batch

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

    @property
    def draws_per_step(self) -> int:
        return self.d_steps + self.g_advantage - 1  # the last D update and the first G update share one z

    @property
    def steps_done(self) -> int:
        """The global step as a Python int: train steps done so far (resumed runs included)."""
        return int(self.step.numpy())

    @property
    def epochs_done(self) -> int:
        return int(self.epoch.numpy())

    @property
    def steps_into_epoch(self) -> int:
        """Steps done since the current epoch began (the place a resumed run continues its data order from)."""
        return self.steps_done - int(self.epoch_start_step.numpy())

    def sample_z(self, batch_size, draw=0):
        """The current step's `draw`-th z batch [batch_size, z_dim]: keyed by (seed, step, draw), not by RNG state.

        In a replica context of a strategy with R replicas, the global draw has R * batch_size rows and replica r
        takes rows [r * batch_size, (r + 1) * batch_size), so the z match one device's on the global batch.
        """
        key = tf.stack([tf.constant(self.seed, tf.int64), self.step * self.draws_per_step + tf.cast(draw, tf.int64)])
        z = sample_z((batch_size * distribution.replicas_in_sync(), self.z_dim), self.z_dist, key)
        return distribution.this_replicas_rows(z, batch_size)

    def d_view(self, images, draw=0, which: int = REAL):
        """What D is shown of a batch: under --augment its DiffAugment, keyed by (seed, step, draw, which of REAL,
        FAKE, FAKE_FOR_G) so a repeated step augments alike; else the batch itself."""
        if not self.augment_policies:
            return images
        key = tf.stack([tf.constant(self.seed + AUGMENT_SEED_OFFSET, tf.int64),
                        (self.step * self.draws_per_step + tf.cast(draw, tf.int64)) * 3 + which])
        return augment.augment(images, self.augment_policies, key, self.augment_p)

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
        """One step: `d_steps` D updates, then `g_advantage` G updates; returns this step's losses and D outputs.

        Every update draws its own z, keyed by (seed, step, draw), so a resumed run repeats the exact step. The loops
        are graph loops (distribution.repeat); losses are averaged over the updates of each network.
        """
        real, labels = data if self.conditional else (data, None)
        batch_size = tf.shape(real)[0]

        # (1) Update D d_steps times: maximise log D(x) + log(1 - D(G(z))) on this real batch, a fresh z each time.
        #     The last D update shares its G forward pass with the first G update (see shared_forward_updates).
        def d_update(i, sums):
            values = self.discriminator_update(real, labels, draw=i)
            return {name: sums[name] + values[name] for name in D_METRIC_NAMES}

        d_sums = distribution.repeat(self.d_steps - 1, d_update, {name: tf.constant(0.0) for name in D_METRIC_NAMES})
        d_last, g_loss = self.shared_forward_updates(real, labels, draw=self.d_steps - 1)
        d_means = {name: (d_sums[name] + d_last[name]) / self.d_steps for name in D_METRIC_NAMES}

        # (2) Update G g_advantage times in all: maximise log D(G(z)), a fresh z each time (carpedm20 reused one z).
        def g_update(i, total):
            return total + self.generator_update(batch_size, labels, draw=self.d_steps + i)

        g_loss_sum = distribution.repeat(self.g_advantage - 1, g_update, g_loss)

        self.step.assign_add(1)
        values = {**d_means, "g_loss": g_loss_sum / self.g_advantage}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        # Per-step values: callbacks see this step's losses; fit's epoch logs come from the trackers (same names).
        return distribution.step_logs(values, self.distribute_strategy)

    def discriminator_update(self, real, labels=None, draw=0, fake=None) -> dict:
        """One D update on a real batch and a fake batch of the same size (made from the step's `draw`-th z unless
        given); returns D's losses and mean outputs (D_METRIC_NAMES)."""
        if fake is None:
            fake = self.generate(self.sample_z(tf.shape(real)[0], draw), labels, training=True)  # no tape: no G grads
        with tf.GradientTape() as tape:
            real_logits = self.discriminate(self.d_view(real, draw, REAL), labels, training=True)
            fake_logits = self.discriminate(self.d_view(fake, draw, FAKE), labels, training=True)
            d_loss_real = _bce_with_logits(1.0, real_logits)
            d_loss_fake = _bce_with_logits(0.0, fake_logits)
            d_loss = d_loss_real + d_loss_fake
            scaled = distribution.scaled_loss(self.d_optimizer, d_loss)
        d_variables = self.discriminator.trainable_variables
        distribution.apply_gradients(self.d_optimizer, tape.gradient(scaled, d_variables), d_variables)
        return {"d_loss": d_loss, "d_loss_real": d_loss_real, "d_loss_fake": d_loss_fake,
                "d_real": tf.reduce_mean(tf.sigmoid(real_logits)), "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits))}

    def shared_forward_updates(self, real, labels=None, draw=0):
        """A D update and then a G update on the same z, with one generator forward pass for both.

        The same weight updates as discriminator_update then generator_update with one `draw` (D's update leaves
        G's weights alone, so G would make the same fake batch twice), minus one G forward pass per step: the fake
        batch D learns from is kept on G's tape, and G's update backpropagates through it and D's updated weights.
        G's batch-norm moving averages see that batch once, not twice (they only serve sampling).
        Returns (D's values, the G loss).
        """
        z = self.sample_z(tf.shape(real)[0], draw)
        with tf.GradientTape() as tape:
            fake = self.generate(z, labels, training=True)
            with tape.stop_recording():
                d_values = self.discriminator_update(real, labels, draw=draw, fake=tf.stop_gradient(fake))
            g_loss = _bce_with_logits(1.0, self.discriminate(self.d_view(fake, draw, FAKE_FOR_G), labels,
                                                             training=True))
            scaled = distribution.scaled_loss(self.g_optimizer, g_loss)
        g_variables = self.generator.trainable_variables
        distribution.apply_gradients(self.g_optimizer, tape.gradient(scaled, g_variables), g_variables)
        return d_values, g_loss

    def generator_update(self, batch_size, labels=None, draw=0):
        """One G update against the current D (non-saturating loss) on a fresh z; returns the G loss."""
        z = self.sample_z(batch_size, draw)
        with tf.GradientTape() as tape:
            fake = self.generate(z, labels, training=True)
            g_loss = _bce_with_logits(1.0, self.discriminate(self.d_view(fake, draw, FAKE_FOR_G), labels,
                                                             training=True))
            scaled = distribution.scaled_loss(self.g_optimizer, g_loss)
        g_variables = self.generator.trainable_variables
        distribution.apply_gradients(self.g_optimizer, tape.gradient(scaled, g_variables), g_variables)
        return g_loss

