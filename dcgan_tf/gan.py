"""DCGAN as a keras.Model: one train_step = one discriminator update, then `g_advantage` generator updates."""

from __future__ import annotations

import functools
import random

import keras
import tensorflow as tf

Z_RANGES = {"uniform_signed": (-1.0, 1.0), "uniform_unsigned": (0.0, 1.0), "normal01": None}
METRIC_NAMES = ("d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake")


def sample_z(shape, z_dist: str, seed):
    """Draw latent vectors: uniform_signed U(-1, 1), uniform_unsigned U(0, 1) or normal01 N(0, 1).

    `seed` is an int, a keras.random.SeedGenerator (advanced on each call), or an int tensor [2] (a stateless key).
    """
    if z_dist not in Z_RANGES:
        raise ValueError(f"unknown z_dist {z_dist!r}")
    if tf.is_tensor(seed):
        if z_dist == "normal01":
            return tf.random.stateless_normal(shape, seed)
        return tf.random.stateless_uniform(shape, seed, *Z_RANGES[z_dist])
    if z_dist == "normal01":
        return keras.random.normal(shape, seed=seed)
    return keras.random.uniform(shape, *Z_RANGES[z_dist], seed=seed)


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

    Under a tf.distribute strategy (built in its scope) each replica trains on its slice of the global batch and
    takes the same rows of the global z draw; losses are divided by the replica count because the optimizers sum
    the replicas' gradients, so an update equals one device's on the whole batch.
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
        self.seed = int(seed) if seed is not None else random.randrange(2**31)
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

    def sample_z(self, batch_size, draw=0):
        """The current step's `draw`-th z batch [batch_size, z_dim]: keyed by (seed, step, draw), not by RNG state.

        In a replica context of a strategy with R replicas, the global draw has R * batch_size rows and replica r
        takes rows [r * batch_size, (r + 1) * batch_size), so the z match one device's on the global batch.
        """
        replicas = _replicas_in_sync()
        key = tf.stack([tf.constant(self.seed, tf.int64), self.step * self.draws_per_step + tf.cast(draw, tf.int64)])
        z = sample_z((batch_size * replicas, self.z_dim), self.z_dist, key)
        if replicas == 1:
            return z
        first = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int32) * batch_size
        return tf.slice(z, tf.stack([first, 0]), tf.stack([batch_size, -1]))

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
        # d_steps discriminator updates (default 1), on this real batch and a fresh fake batch each; metrics averaged.
        # The last one shares its generator forward pass with the first G update (see shared_forward_updates).
        names = ("d_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake")
        d_totals = self._repeat(self.d_steps - 1, lambda i, totals: tuple(
            t + v for t, v in zip(totals, self._d_update_values(real, labels, names, draw=i))),
            tuple(tf.constant(0.0) for _ in names))
        last_d, first_g_loss = self.shared_forward_updates(real, labels, draw=self.d_steps - 1)
        d_values = {name: (total + last_d[name]) / self.d_steps for name, total in zip(names, d_totals)}
        # the other g_advantage - 1 generator updates, each on a freshly drawn z (carpedm20 reused one z throughout)
        g_loss_total = self._repeat(self.g_advantage - 1, lambda i, total: total + self.generator_update(
            batch_size, labels, draw=self.d_steps + i), first_g_loss)
        self.step.assign_add(1)
        values = {**d_values, "g_loss": g_loss_total / self.g_advantage}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        # Per-step values: callbacks see this step's losses; fit's epoch logs come from the trackers (same names).
        if _across_workers(self.distribute_strategy):  # Keras averages these over workers along a batch axis
            return {name: tf.reshape(value, [1]) for name, value in values.items()}
        return values

    @staticmethod
    def _repeat(count: int, body, initial):
        """body(i, state) -> state for i in range(count), in a graph while_loop (Keras traces train_step without
        AutoGraph), so g_advantage=50 builds no bigger graph than 1. Measured no slower than the updates written out.
        With several replicas the updates are written out: a strategy cannot synchronise inside a while_loop."""
        if _replicas_in_sync() > 1:
            state = initial
            for i in range(count):
                state = body(i, state)
            return state
        return tf.while_loop(lambda i, state: i < count, lambda i, state: (i + 1, body(i, state)),
                             (tf.constant(0), initial))[1]

    def _d_update_values(self, real, labels, names, draw):
        values = self.discriminator_update(real, labels, draw)
        return tuple(values[name] for name in names)

    def discriminator_update(self, real, labels=None, draw=0, fake=None) -> dict:
        """One D update on a real batch and a fake batch of the same size (made from the step's `draw`-th z unless
        given); returns D's losses and mean outputs."""
        if fake is None:
            fake = self.generate(self.sample_z(tf.shape(real)[0], draw), labels, training=True)  # no tape: no G grads
        with tf.GradientTape() as tape:
            real_logits = self.discriminate(real, labels, training=True)
            fake_logits = self.discriminate(fake, labels, training=True)
            d_loss_real = _bce_with_logits(1.0, real_logits)
            d_loss_fake = _bce_with_logits(0.0, fake_logits)
            d_loss = d_loss_real + d_loss_fake
            scaled = _scaled_loss(self.d_optimizer, d_loss)
        d_variables = self.discriminator.trainable_variables
        apply_gradients(self.d_optimizer, tape.gradient(scaled, d_variables), d_variables)
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
                d_values = self.discriminator_update(real, labels, fake=tf.stop_gradient(fake))
            g_loss = _bce_with_logits(1.0, self.discriminate(fake, labels, training=True))
            scaled = _scaled_loss(self.g_optimizer, g_loss)
        g_variables = self.generator.trainable_variables
        apply_gradients(self.g_optimizer, tape.gradient(scaled, g_variables), g_variables)
        return d_values, g_loss

    def generator_update(self, batch_size, labels=None, draw=0):
        """One G update against the current D (non-saturating loss) on a fresh z; returns the G loss."""
        z = self.sample_z(batch_size, draw)
        with tf.GradientTape() as tape:
            fake = self.generate(z, labels, training=True)
            g_loss = _bce_with_logits(1.0, self.discriminate(fake, labels, training=True))
            scaled = _scaled_loss(self.g_optimizer, g_loss)
        g_variables = self.generator.trainable_variables
        apply_gradients(self.g_optimizer, tape.gradient(scaled, g_variables), g_variables)
        return g_loss


def _replicas_in_sync() -> int:
    """How many replicas share this step: 1 outside a distribution strategy or in its cross-replica context."""
    context = tf.distribute.get_replica_context()
    return context.num_replicas_in_sync if context is not None else 1


def _scaled_loss(optimizer, loss):
    """The loss to differentiate: this replica's share (the optimizer sums replicas' gradients), times the fp16 loss
    scale when there is one (scale_loss is the identity otherwise)."""
    replicas = _replicas_in_sync()
    return optimizer.scale_loss(loss / replicas if replicas > 1 else loss)


def _across_workers(strategy) -> bool:
    """Whether Keras' fit() runs this strategy over several workers (the test Keras itself applies)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def apply_gradients(optimizer, grads, variables) -> None:
    """optimizer.apply(grads, variables). With fp16 loss scaling over several replicas, an overflow on any replica
    becomes every replica's: Keras' LossScaleOptimizer judges the gradients of one replica before they are summed, so
    without this one replica's inf could be applied, or workers could take different branches and wait forever."""
    if _replicas_in_sync() > 1 and isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(grad)) for grad in grads])
        overflows = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(finite), tf.float32))
        poison = tf.where(overflows > 0, float("nan"), 0.0)
        grads = [grad + tf.cast(poison, grad.dtype) for grad in grads]
    optimizer.apply(grads, variables)
