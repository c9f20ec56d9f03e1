"""DCGAN as a keras.Model: one train_step = one discriminator update, then `g_advantage` generator updates."""

from __future__ import annotations

import functools
import random

import keras
import tensorflow as tf

from dcgan_tf.core import augment, distribution, losses
from dcgan_tf.latent import sample_z

D_METRIC_NAMES = ("d_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake")
METRIC_NAMES = ("d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake")
AUGMENT_SEED_OFFSET = 104729  # the augmentations' keys: a stream of their own, apart from z's
PENALTY_SEED_OFFSET = 130363  # WGAN-GP's mixing weights: another stream
STATISTICS_SEED_OFFSET = 152897  # the z (and labels) the EMA generator's batch-norm statistics are measured on
WRONG_LABEL_SEED_OFFSET = 196613  # --matching_aware's wrong labels: another stream
# The EMA generator samples with batch-norm statistics measured on its own weights (BigGAN's "standing statistics"):
# the mean of its batch statistics over this many batches of this many z
STATISTICS_BATCHES = 16
STATISTICS_BATCH = 64
REAL, FAKE, FAKE_FOR_G = 0, 1, 2  # which view of a draw's batch D is given (each augmented on its own)
EMA_WARMUP = 10  # the EMA's decay is min(decay, (1 + step) / (EMA_WARMUP + step)): early G weights fade fast
REAL_SIGN = "real_sign"  # ADA's measure, mean sign(D(x)) of an update (internal: not a logged value)


class DCGAN(keras.Model):
    """Generator + discriminator trained adversarially, with the non-saturating BCE loss or `loss` (see losses.py).

    Data: images [N, H, W, C] float32 in [-1, 1], or (images, one-hot labels [N, y_dim]) when conditional.
    `step` counts train steps (one D update each); `epoch` counts finished epochs and `epoch_start_step` is the step
    at which the current epoch began (both set by the EpochCounter callback), so a resumed run knows its place.
    Each z batch is a stateless draw keyed by (seed, step, draw within the step), so a resumed run draws the same z.
    With `augment_policies` (DiffAugment) every batch D sees, real or fake, in D's and G's updates, is augmented,
    keyed the same way (see `d_view`); with `ada_target` their probability adapts (ADA; `ada_p`, saved).
    With `ema` an exponential moving average of G's variables (`ema_weights`, saved) is what samples (`sampler`).
    `r1_gamma` adds R1 on real images to D's loss every `r1_every` steps; `loss="wgan_gp"` its gradient penalty.
    With `matching_aware` (GAN-CLS, conditional only) D also learns to call real images with wrong labels fake
    (`wrong_labels`, keyed like z), its fake term split equally between those and G's images.

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
        if ada_target is not None and not augment_policies:
            raise ValueError("ada_target adapts the probability of augment_policies: give them too")
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
        self.augment_policies, self.augment_p = tuple(augment_policies), float(augment_p)
        self.loss_kind, self.gp_weight = losses.check(loss), float(gp_weight)
        self.r1_gamma, self.r1_every = float(r1_gamma), int(r1_every)
        self.matching_aware = bool(matching_aware)
        # counters change once per step, not once per replica
        counter = functools.partial(keras.Variable, 0, dtype="int64", trainable=False, aggregation="only_first_replica")
        self.step = counter(name="step")
        self.epoch = counter(name="epoch")
        self.epoch_start_step = counter(name="epoch_start_step")
        # state a step changes alike on every replica (kept from the first), saved in the checkpoint
        state = functools.partial(keras.Variable, dtype="float32", trainable=False, aggregation="only_first_replica")
        self.ada_target = None if ada_target is None else float(ada_target)
        if self.ada_target is not None:  # ADA: p starts at 0; the mean sign of D(x) and its count since p last moved
            self.ada_p = state(0.0, name="augment_p")
            self.ada_signs = state(0.0, name="ada_signs")
            self.ada_updates = state(0.0, name="ada_updates")
        self.ema_decay = None if ema is None else float(ema)
        if self.ema_decay is not None:  # G's moving average (trainable weights and batch-norm statistics alike)
            # from G's values (a Keras Variable made from a tf.Variable would share it)
            self.ema_weights = [state(variable.numpy(), name=f"ema_{i}") for i, variable in
                                enumerate(generator.variables)]
            self.ema_generator = keras.models.clone_model(generator)  # sampling's copy, loaded from ema_weights
            # counts EMA updates (not saved): with the step, says when the sampling copy must be loaded again
            self.ema_updates = keras.Variable(0, dtype="int64", trainable=False, aggregation="only_first_replica",
                                              name="ema_updates")
            self._sampler_loaded = None
        else:
            self.ema_weights = []
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
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
    def metric_names(self) -> tuple[str, ...]:
        """What each step logs: METRIC_NAMES, then GAN-CLS's wrong-label term and the penalties this model adds, and
        ADA's p (the p of the step)."""
        return METRIC_NAMES + self._d_extra_names + (("augment_p",) if self.ada_target is not None else ())

    @property
    def _d_extra_names(self) -> tuple[str, ...]:
        return ((("d_loss_wrong",) if self.matching_aware else ())
                + (("gradient_penalty",) if self.loss_kind == "wgan_gp" else ())
                + (("r1_penalty",) if self.r1_gamma else ()))

    @property
    def d_update_names(self) -> tuple[str, ...]:
        """What one D update returns (averaged over a step's D updates)."""
        return D_METRIC_NAMES + self._d_extra_names + ((REAL_SIGN,) if self.ada_target is not None else ())

    @property
    def augment_probability(self):
        """The p of --augment now: ADA's variable, or the fixed float."""
        return self.ada_p if self.ada_target is not None else self.augment_p

    @property
    def sampler(self) -> keras.Model:
        """The generator that samples (grids, test mode, evaluation): G, or with --ema the EMA copy, loaded with the
        moving averages as they are now and its batch-norm statistics measured on them (`measure_statistics`).
        Loaded once per step (or restore); called eagerly."""
        if self.ema_decay is None:
            return self.generator
        version = (self.steps_done, int(self.ema_updates.numpy()))
        if self._sampler_loaded != version:
            for target, average in zip(self.ema_generator.variables, self.ema_weights):
                target.assign(average)
            self.measure_statistics(self.ema_generator)
            self._sampler_loaded = version
        return self.ema_generator

    def measure_statistics(self, generator: keras.Model) -> None:
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
                key = tf.constant([self.seed + STATISTICS_SEED_OFFSET, k], tf.int64)
                z = sample_z((STATISTICS_BATCH, self.z_dim), self.z_dist, key)
                if self.conditional:
                    digits = tf.random.stateless_uniform([STATISTICS_BATCH], key + 1, 0, self.y_dim, tf.int32)
                    generator([z, tf.one_hot(digits, self.y_dim)], training=True)
                else:
                    generator(z, training=True)
        finally:
            for layer, momentum in zip(norms, momenta):
                layer.momentum = momentum

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
        return augment.augment(images, self.augment_policies, key, self.augment_probability)

    def wrong_labels(self, labels, draw=0):
        """--matching_aware: for one-hot labels [N, y_dim] of classes y, one-hot labels of (y + 1 + k) mod y_dim with
        k uniform in 0..y_dim - 2, so each is drawn uniformly from the other classes. Keyed by (seed, step, draw) like
        z; in a replica context this replica's rows of the global batch's draw, as sample_z's."""
        key = tf.stack([tf.constant(self.seed + WRONG_LABEL_SEED_OFFSET, tf.int64),
                        self.step * self.draws_per_step + tf.cast(draw, tf.int64)])
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

        # (1) Update D d_steps times on this real batch (its --loss, plus any penalty), a fresh z each time.
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
        if self.ada_target is not None:
            values["augment_p"] = tf.identity(self.ada_p)  # the p this step trained with
            self._adapt_augment_p(d_means[REAL_SIGN], batch_size)
        self.step.assign_add(1)
        if self.ema_decay is not None:
            self._update_ema()
        for name, value in values.items():
            self.trackers[name].update_state(value)
        # Per-step values: callbacks see this step's losses; fit's epoch logs come from the trackers (same names).
        return distribution.step_logs(values, self.distribute_strategy)

    def _adapt_augment_p(self, real_sign, batch_size) -> None:
        """ADA: gather this step's mean sign of D(x) (over replicas); every ADA_INTERVAL steps move p by the sign of
        (their mean - target), in proportion to the images seen, and start gathering again."""
        self.ada_signs.assign_add(distribution.mean_over_replicas(real_sign))
        self.ada_updates.assign_add(1.0)
        due = tf.equal((self.step + 1) % augment.ADA_INTERVAL, 0)
        images_seen = self.ada_updates * tf.cast(batch_size * distribution.replicas_in_sync(), tf.float32)
        moved = tf.clip_by_value(self.ada_p + augment.ada_adjustment(self.ada_signs / self.ada_updates,
                                                                     self.ada_target, images_seen), 0.0, 1.0)
        self.ada_p.assign(tf.where(due, moved, self.ada_p))
        self.ada_signs.assign(tf.where(due, 0.0, self.ada_signs))
        self.ada_updates.assign(tf.where(due, 0.0, self.ada_updates))

    def ema_decay_at(self, step):
        """The EMA's decay at `step` (the step just done, counting from 1): min(decay, (1 + step) / (10 + step))."""
        step = tf.cast(step, tf.float32)
        return tf.minimum(self.ema_decay, (1.0 + step) / (EMA_WARMUP + step))

    def _update_ema(self) -> None:
        """average <- decay * average + (1 - decay) * G, for every variable of G (after this step's G updates)."""
        decay = self.ema_decay_at(self.step)
        for average, variable in zip(self.ema_weights, self.generator.variables):
            average.assign(decay * average + (1.0 - decay) * tf.cast(variable, tf.float32))
        self.ema_updates.assign_add(1)

    def discriminator_update(self, real, labels=None, draw=0, fake=None) -> dict:
        """One D update on a real batch and a fake batch of the same size (made from the step's `draw`-th z unless
        given); returns D's losses, mean outputs and penalties (d_update_names).

        With matching_aware (GAN-CLS) D also sees the real view with wrong labels: D minimises
        d_loss_real + (d_loss_wrong + d_loss_fake) / 2 (+ penalties, on real images with their own labels)."""
        if fake is None:
            fake = self.generate(self.sample_z(tf.shape(real)[0], draw), labels, training=True)  # no tape: no G grads
        real_view, fake_view = self.d_view(real, draw, REAL), self.d_view(fake, draw, FAKE)

        def critic(images):
            return self.discriminate(images, labels, training=True)

        with tf.GradientTape() as tape:
            real_logits, fake_logits = critic(real_view), critic(fake_view)
            if self.matching_aware:
                wrong_logits = self.discriminate(real_view, self.wrong_labels(labels, draw), training=True)
                d_loss_real, d_loss_wrong, d_loss_fake = losses.matching_aware_terms(self.loss_kind, real_logits,
                                                                                     wrong_logits, fake_logits)
                d_loss = d_loss_real + (d_loss_wrong + d_loss_fake) / 2
            else:
                d_loss_real, d_loss_fake = losses.discriminator_terms(self.loss_kind, real_logits, fake_logits)
                d_loss = d_loss_real + d_loss_fake
            penalties = self._penalties(critic, real_view, fake_view, draw)
            if self.loss_kind == "wgan_gp":
                d_loss += self.gp_weight * penalties["gradient_penalty"]
            if self.r1_gamma:  # lazy: every r1_every steps, r1_every times as strong
                d_loss += self.r1_gamma / 2 * self.r1_every * penalties["r1_penalty"]
            scaled = distribution.scaled_loss(self.d_optimizer, d_loss)
        d_variables = self.discriminator.trainable_variables
        distribution.apply_gradients(self.d_optimizer, tape.gradient(scaled, d_variables), d_variables)
        values = {"d_loss": d_loss, "d_loss_real": d_loss_real, "d_loss_fake": d_loss_fake,
                  "d_real": losses.d_output(self.loss_kind, real_logits),
                  "d_fake": losses.d_output(self.loss_kind, fake_logits),
                  **penalties}
        if self.matching_aware:
            values["d_loss_wrong"] = d_loss_wrong
        if self.ada_target is not None:
            values[REAL_SIGN] = tf.reduce_mean(tf.sign(tf.cast(real_logits, tf.float32)))
        return values

    def _penalties(self, critic, real_view, fake_view, draw) -> dict:
        """D's gradient penalties this model uses, unweighted: WGAN-GP's, and R1 (0 on the steps it skips)."""
        penalties = {}
        if self.loss_kind == "wgan_gp":
            key = tf.stack([tf.constant(self.seed + PENALTY_SEED_OFFSET, tf.int64),
                            self.step * self.draws_per_step + tf.cast(draw, tf.int64)])
            mix = distribution.stateless_uniform_rows(key, tf.shape(real_view)[0], (1, 1, 1))
            penalties["gradient_penalty"] = losses.gradient_penalty(critic, real_view, fake_view, mix)
        if self.r1_gamma:
            if self.r1_every == 1:
                penalties["r1_penalty"] = losses.r1_penalty(critic, real_view)
            else:  # lazy: only every r1_every-th step
                penalties["r1_penalty"] = distribution.when(tf.equal(self.step % self.r1_every, 0),
                                                            lambda: losses.r1_penalty(critic, real_view))
        return penalties

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
            fake_logits = self.discriminate(self.d_view(fake, draw, FAKE_FOR_G), labels, training=True)
            g_loss = losses.generator_loss(self.loss_kind, fake_logits)
            scaled = distribution.scaled_loss(self.g_optimizer, g_loss)
        g_variables = self.generator.trainable_variables
        distribution.apply_gradients(self.g_optimizer, tape.gradient(scaled, g_variables), g_variables)
        return d_values, g_loss

    def generator_update(self, batch_size, labels=None, draw=0):
        """One G update against the current D on a fresh z; returns the G loss."""
        z = self.sample_z(batch_size, draw)
        with tf.GradientTape() as tape:
            fake = self.generate(z, labels, training=True)
            fake_logits = self.discriminate(self.d_view(fake, draw, FAKE_FOR_G), labels, training=True)
            g_loss = losses.generator_loss(self.loss_kind, fake_logits)
            scaled = distribution.scaled_loss(self.g_optimizer, g_loss)
        g_variables = self.generator.trainable_variables
        distribution.apply_gradients(self.g_optimizer, tape.gradient(scaled, g_variables), g_variables)
        return g_loss

