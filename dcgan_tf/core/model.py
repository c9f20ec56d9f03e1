"""DCGAN as a keras.Model: one train_step = one discriminator update, then `g_advantage` generator updates.

The options are objects the model holds, each doing nothing when off: the adversarial loss (losses.py), D's
penalties (penalties.py), the augmentation pipeline with ADA's p (augment.py) and the EMA generator (ema.py).
"""

from __future__ import annotations

import functools
import random

import keras
import tensorflow as tf

from dcgan_tf.core import augment, distribution, losses, penalties
from dcgan_tf.core.ema import measure_statistics, moving_average
from dcgan_tf.core.augment import FAKE, FAKE_FOR_G, REAL
from dcgan_tf.latent import sample_z

D_METRIC_NAMES = ("d_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake")
METRIC_NAMES = ("d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake")
WRONG_LABEL_SEED_OFFSET = 196613  # --matching_aware's wrong labels: a stream of keys of their own
REAL_SIGN = "real_sign"  # ADA's measure, mean sign(D(x)) of an update (internal: not a logged value)


class DCGAN(keras.Model):
    """Generator + discriminator trained adversarially, with the non-saturating BCE loss or `loss` (see losses.py).

    Data: images [N, H, W, C] float32 in [-1, 1], or (images, one-hot labels [N, y_dim]) when conditional.
    `step` counts train steps (one D update each); `epoch` counts finished epochs and `epoch_start_step` is the step
    at which the current epoch began (both set by the EpochCounter callback), so a resumed run knows its place.
    Each z batch is a stateless draw keyed by (seed, step, draw within the step), so a resumed run draws the same z;
    every other draw (augmentations, penalty points, wrong labels) is keyed the same way, on a stream of its own.
    The options: `augmentation` (DiffAugment's policies at p, ADA's p with `ada_target`), `penalties` (WGAN-GP's with
    `loss="wgan_gp"`, R1 with `r1_gamma` every `r1_every` steps), `ema` (the EMA generator, what samples: `sampler`).
    With `matching_aware` (GAN-CLS, conditional only) D also learns to call real images with wrong labels fake
    (`wrong_labels`), its fake term split equally between those and G's images.

    Under a tf.distribute strategy (built in its scope) each replica trains on its slice of the global batch and
    takes the same rows of the global z draw; losses are divided by the replica count because the optimizers sum
    the replicas' gradients, so an update equals one device's on the whole batch.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, z_dim: int, z_dist: str = "uniform_signed",
                 g_advantage: int = 2, y_dim: int | None = None, seed: int | None = None, d_steps: int = 1,
                 augment_policies: tuple = (), augment_p: float = 1.0, ada_target: float | None = None,
                 loss: str = "bce", gp_weight: float = 10.0, r1_gamma: float = 0.0, r1_every: int = 1,
                 ema: float | None = None, matching_aware: bool = False, **kwargs):
        super().__init__(**kwargs)
        if g_advantage < 1 or d_steps < 1 or r1_every < 1:
            raise ValueError(f"g_advantage, d_steps and r1_every must be >= 1 (got {g_advantage}, {d_steps}, "
                             f"{r1_every})")
        if matching_aware and (y_dim or 0) < 2:
            raise ValueError(f"matching_aware draws wrong labels from the other classes: it needs y_dim >= 2 "
                             f"(got {y_dim})")
        self.generator = generator
        self.discriminator = discriminator
        self.z_dim = z_dim
        self.z_dist = z_dist
        self.g_advantage = g_advantage
        self.d_steps = d_steps
        self.y_dim = y_dim
        self.seed = int(seed) if seed is not None else random.randrange(2**31)
        self.matching_aware = bool(matching_aware)
        # counters change once per step, not once per replica
        counter = functools.partial(keras.Variable, 0, dtype="int64", trainable=False, aggregation="only_first_replica")
        self.step = counter(name="step")
        self.epoch = counter(name="epoch")
        self.epoch_start_step = counter(name="epoch_start_step")
        # the options (plain objects: their variables are saved by checkpoints.make_checkpoint, by name)
        self.adversarial_loss = losses.named(loss)
        self.penalties = penalties.penalties_for(loss, gp_weight, r1_gamma, r1_every)
        self.augmentation = augment.pipeline(augment_policies, augment_p, ada_target)
        self.ema = moving_average(generator, ema)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        self.built = True  # G and D are built; fit() under a strategy must not trace call() on an image batch

    @property
    def loss_kind(self) -> str:
        return self.adversarial_loss.name

    @property
    def ema_decay(self) -> float | None:
        return self.ema.decay

    @property
    def ema_weights(self) -> list:
        return list(self.ema.weights)

    @property
    def ada_target(self) -> float | None:
        return self.augmentation.target if self.augmentation.adaptive else None

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
    def metric_names(self) -> tuple[str, ...]:
        """What each step logs: METRIC_NAMES, then GAN-CLS's wrong-label term and the penalties this model adds, and
        ADA's p (the p of the step)."""
        return METRIC_NAMES + self._d_extra_names + (("augment_p",) if self.augmentation.adaptive else ())

    @property
    def _d_extra_names(self) -> tuple[str, ...]:
        return (("d_loss_wrong",) if self.matching_aware else ()) + tuple(p.name for p in self.penalties)

    @property
    def d_update_names(self) -> tuple[str, ...]:
        """What one D update returns (averaged over a step's D updates)."""
        return D_METRIC_NAMES + self._d_extra_names + ((REAL_SIGN,) if self.augmentation.adaptive else ())

    @property
    def augment_probability(self):
        """The p of --augment now: ADA's variable, or the fixed float."""
        return self.augmentation.p

    @property
    def sampler(self) -> keras.Model:
        """The generator that samples (grids, test mode, evaluation): G, or with --ema the EMA copy, loaded with the
        moving averages as they are now and its batch-norm statistics measured on them (`measure_statistics`).
        Loaded once per step (or restore); called eagerly."""
        return self.ema.sampler(self.steps_done, self.measure_statistics)

    def measure_statistics(self, generator: keras.Model) -> None:
        """Standing batch-norm statistics for `generator` on this model's fixed z (ema.measure_statistics)."""
        measure_statistics(generator, self.seed, self.z_dim, self.z_dist, self.y_dim)

    def ema_decay_at(self, step):
        """The EMA's decay at `step` (the step just done, counting from 1)."""
        return self.ema.decay_at(step)

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

    def draw_index(self, draw=0) -> tf.Tensor:
        """The current step's `draw`-th draw counted over the run: step x draws_per_step + draw (int64)."""
        return self.step * self.draws_per_step + tf.cast(draw, tf.int64)

    def draw_key(self, draw=0, stream: int = 0) -> tf.Tensor:
        """The [2] int64 key of the current step's `draw`-th draw: (seed + stream, draw_index). Every random draw of a
        step is keyed so, z on stream 0 and each other kind on a stream of its own, so a repeated or resumed step
        draws alike."""
        return tf.stack([tf.constant(self.seed + stream, tf.int64), self.draw_index(draw)])

    def sample_z(self, batch_size, draw=0):
        """The current step's `draw`-th z batch [batch_size, z_dim]: keyed by draw_key, not by RNG state.

        In a replica context of a strategy with R replicas, the global draw has R * batch_size rows and replica r
        takes rows [r * batch_size, (r + 1) * batch_size), so the z match one device's on the global batch.
        """
        z = sample_z((batch_size * distribution.replicas_in_sync(), self.z_dim), self.z_dist, self.draw_key(draw))
        return distribution.this_replicas_rows(z, batch_size)

    def d_view(self, images, draw=0, which: int = REAL):
        """What D is shown of a batch: the augmentation's view (the batch itself without --augment), keyed by
        (seed + AUGMENT_SEED_OFFSET, 3 x draw_index + which of REAL, FAKE, FAKE_FOR_G)."""
        return self.augmentation.view(images, lambda: tf.stack([
            tf.constant(self.seed + augment.AUGMENT_SEED_OFFSET, tf.int64), self.draw_index(draw) * 3 + which]))

    def wrong_labels(self, labels, draw=0):
        """--matching_aware: for one-hot labels [N, y_dim] of classes y, one-hot labels of (y + 1 + k) mod y_dim with
        k uniform in 0..y_dim - 2, so each is drawn uniformly from the other classes. Keyed like z; in a replica
        context this replica's rows of the global batch's draw, as sample_z's."""
        key = self.draw_key(draw, WRONG_LABEL_SEED_OFFSET)
        shift = 1 + distribution.stateless_uniform_rows(key, tf.shape(labels)[0], minval=0, maxval=self.y_dim - 1,
                                                        dtype=tf.int32)
        classes = tf.argmax(tf.convert_to_tensor(labels, tf.float32), axis=-1, output_type=tf.int32)
        return tf.one_hot((classes + shift) % self.y_dim, self.y_dim)

    def generate(self, z, labels=None, training: bool = False):
        """z [N, z_dim] (+ one-hot labels [N, y_dim]) -> images [N, H, W, C] in [-1, 1].

        Training uses G; sampling (training=False) uses `sampler`, the EMA generator when the model keeps one.
        """
        generator = self.generator if training else self.sampler
        z = tf.convert_to_tensor(z, tf.float32)
        if self.conditional:
            if labels is None:
                raise ValueError(f"this generator is conditional: pass one-hot labels [N, {self.y_dim}] with z")
            return generator([z, tf.convert_to_tensor(labels, tf.float32)], training=training)
        return generator(z, training=training)

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

        # (1) Update D d_steps times on this real batch (its loss plus its penalties), a fresh z each time.
        #     The last D update shares its G forward pass with the first G update (see shared_forward_updates).
        names = self.d_update_names

        def d_update(i, sums):
            values = self.discriminator_update(real, labels, draw=i)
            return {name: sums[name] + values[name] for name in names}

        d_sums = distribution.repeat(self.d_steps - 1, d_update, {name: tf.constant(0.0) for name in names})
        d_last, g_loss = self.shared_forward_updates(real, labels, draw=self.d_steps - 1)
        d_means = {name: (d_sums[name] + d_last[name]) / self.d_steps for name in names}

        # (2) Update G g_advantage times in all, a fresh z each time (carpedm20 reused one z).
        def g_update(i, total):
            return total + self.generator_update(batch_size, labels, draw=self.d_steps + i)

        g_loss_sum = distribution.repeat(self.g_advantage - 1, g_update, g_loss)

        values = {name: value for name, value in d_means.items() if name != REAL_SIGN}
        values["g_loss"] = g_loss_sum / self.g_advantage
        if self.augmentation.adaptive:
            values["augment_p"] = tf.identity(self.augmentation.p)  # the p this step trained with
            self.augmentation.update(distribution.mean_over_replicas(d_means[REAL_SIGN]),
                                     batch_size * distribution.replicas_in_sync(), self.step)
        self.step.assign_add(1)
        self.ema.update(self.step)  # after this step's G updates; nothing without --ema
        for name, value in values.items():
            self.trackers[name].update_state(value)
        # Per-step values: callbacks see this step's losses; fit's epoch logs come from the trackers (same names).
        return distribution.step_logs(values, self.distribute_strategy)

    def discriminator_update(self, real, labels=None, draw=0, fake=None) -> dict:
        """One D update on a real batch and a fake batch of the same size (made from the step's `draw`-th z unless
        given): D minimises its loss on real and fake views plus its weighted penalties. Returns D's losses, mean
        outputs and unweighted penalties (d_update_names).

        With matching_aware (GAN-CLS) D also sees the real view with wrong labels: D minimises
        d_loss_real + (d_loss_wrong + d_loss_fake) / 2 (+ penalties, on real images with their own labels)."""
        if fake is None:
            fake = self.generate(self.sample_z(tf.shape(real)[0], draw), labels, training=True)  # no tape: no G grads
        real_view, fake_view = self.d_view(real, draw, REAL), self.d_view(fake, draw, FAKE)
        loss = self.adversarial_loss

        def critic(images):
            return self.discriminate(images, labels, training=True)

        with tf.GradientTape() as tape:
            real_logits, fake_logits = critic(real_view), critic(fake_view)
            values = {"d_loss_real": loss.real_term(real_logits), "d_loss_fake": loss.fake_term(fake_logits)}
            fake_term = values["d_loss_fake"]
            if self.matching_aware:  # the fake term split between wrong labels and G's images
                wrong_logits = self.discriminate(real_view, self.wrong_labels(labels, draw), training=True)
                values["d_loss_wrong"] = loss.fake_term(wrong_logits)
                fake_term = (values["d_loss_wrong"] + fake_term) / 2
            d_loss = values["d_loss_real"] + fake_term
            for penalty in self.penalties:
                values[penalty.name] = penalty.value(critic, real_view, fake_view,
                                                     lambda stream: self.draw_key(draw, stream), self.step)
                d_loss += penalty.weight * values[penalty.name]
            scaled = distribution.scaled_loss(self.d_optimizer, d_loss)
        self._apply(self.d_optimizer, tape, scaled, self.discriminator)
        values.update(d_loss=d_loss, d_real=loss.d_output(real_logits), d_fake=loss.d_output(fake_logits))
        if self.augmentation.adaptive:
            values[REAL_SIGN] = tf.reduce_mean(tf.sign(tf.cast(real_logits, tf.float32)))
        return values

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
            g_loss, scaled = self._generator_loss(fake, labels, draw)
        self._apply(self.g_optimizer, tape, scaled, self.generator)
        return d_values, g_loss

    def generator_update(self, batch_size, labels=None, draw=0):
        """One G update against the current D on a fresh z; returns the G loss."""
        z = self.sample_z(batch_size, draw)
        with tf.GradientTape() as tape:
            g_loss, scaled = self._generator_loss(self.generate(z, labels, training=True), labels, draw)
        self._apply(self.g_optimizer, tape, scaled, self.generator)
        return g_loss

    def _generator_loss(self, fake, labels, draw):
        """(G's loss on D's view of its fake batch, that loss scaled for G's optimizer): on the caller's tape."""
        fake_logits = self.discriminate(self.d_view(fake, draw, FAKE_FOR_G), labels, training=True)
        g_loss = self.adversarial_loss.generator_term(fake_logits)
        return g_loss, distribution.scaled_loss(self.g_optimizer, g_loss)

    @staticmethod
    def _apply(optimizer, tape, scaled_loss, network: keras.Model) -> None:
        variables = network.trainable_variables
        distribution.apply_gradients(optimizer, tape.gradient(scaled_loss, variables), variables)
