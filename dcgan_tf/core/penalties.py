"""Penalties on D's gradients, each an object with a name (its losses.csv column) and a weight: D's loss is its
adversarial loss plus the sum of weight x penalty.

  gradient_penalty: WGAN-GP's mean (|grad D(x_hat)| - 1)^2 on random points x_hat between real and fake images,
                    weight --gp_weight (only with --loss wgan_gp).
  r1_penalty:       R1 (Mescheder et al. 2018): mean |grad D(x)|^2 on real images, weight --r1_gamma / 2; lazy with
                    --r1_every k: computed every k-th step (0 on the others), k times as strong.
"""

from __future__ import annotations

import tensorflow as tf

from dcgan_tf.core import distribution

PENALTY_SEED_OFFSET = 130363  # WGAN-GP's mixing weights: a stream of keys of their own


def _squared_gradient_norms(critic, images) -> tf.Tensor:
    """[N] |d critic(images)[i] / d images[i]|^2, differentiable (for D's update). Images are independent in D's
    output unless D mixes them (batch norm), so the gradient of the sum is each image's own gradient."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(tf.cast(critic(images), tf.float32))
    gradients = tf.cast(tape.gradient(total, images), tf.float32)
    return tf.reduce_sum(tf.square(gradients), axis=tf.range(1, tf.rank(gradients)))


def r1_penalty(critic, real) -> tf.Tensor:
    """mean |grad critic(x)|^2 over the real batch (R1 without its gamma / 2)."""
    return tf.reduce_mean(_squared_gradient_norms(critic, tf.cast(real, tf.float32)))


def gradient_penalty(critic, real, fake, mix) -> tf.Tensor:
    """WGAN-GP's mean (|grad critic(x_hat)| - 1)^2, x_hat = mix * real + (1 - mix) * fake, mix [N, 1, 1, 1] in
    [0, 1] (drawn by the caller, so the draw is keyed like every other)."""
    real, fake = tf.cast(real, tf.float32), tf.cast(fake, tf.float32)
    between = mix * real + (1.0 - mix) * fake
    norms = tf.sqrt(_squared_gradient_norms(critic, between) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


class GradientPenalty:
    """WGAN-GP's penalty; `value(critic, real, fake, key, step)` draws the mixing weights with `key(stream)`, the
    draw's key on a stream of their own."""

    name = "gradient_penalty"

    def __init__(self, weight: float):
        self.weight = float(weight)

    def value(self, critic, real, fake, key, step) -> tf.Tensor:
        del step
        mix = distribution.stateless_uniform_rows(key(PENALTY_SEED_OFFSET), tf.shape(real)[0], (1, 1, 1))
        return gradient_penalty(critic, real, fake, mix)


class R1Penalty:
    """R1 on the real images D sees, every `every`-th step (lazy regularisation: weight gamma / 2 x every)."""

    name = "r1_penalty"

    def __init__(self, gamma: float, every: int = 1):
        if every < 1:
            raise ValueError(f"r1_every must be >= 1 (got {every})")
        self.every = int(every)
        self.weight = float(gamma) / 2 * self.every

    def value(self, critic, real, fake, key, step) -> tf.Tensor:
        del fake, key
        if self.every == 1:
            return r1_penalty(critic, real)
        return distribution.when(tf.equal(step % self.every, 0), lambda: r1_penalty(critic, real))


def penalties_for(loss: str, gp_weight: float = 10.0, r1_gamma: float = 0.0, r1_every: int = 1) -> tuple:
    """The penalties a run's settings ask for, in losses.csv's column order: WGAN-GP's with --loss wgan_gp, R1 with
    --r1_gamma > 0."""
    return ((GradientPenalty(gp_weight),) if loss == "wgan_gp" else ()) + \
        ((R1Penalty(r1_gamma, r1_every),) if r1_gamma else ())
