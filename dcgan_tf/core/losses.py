"""The adversarial losses (--loss) as objects: each says D's terms, G's term and what D's outputs mean.

  bce:     the DCGAN paper's: D minimises BCE(real -> 1) + BCE(fake -> 0); G the non-saturating BCE(fake -> 1).
  hinge:   SNGAN / BigGAN: D minimises mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))); G minimises -mean(D(G(z))).
  wgan_gp: D (a critic) minimises mean(D(G(z))) - mean(D(x)); G minimises -mean(D(G(z))). Its gradient penalty is a
           penalty like R1 (penalties.py), added to D's loss.

What D "says" about a batch (d_real, d_fake in losses.csv): the mean probability sigmoid(logit) under bce, the
mean raw score under hinge and wgan_gp, whose scores are no probabilities. Every loss is float32, whatever the
compute dtype of the nets.
"""

from __future__ import annotations

import tensorflow as tf

from dcgan_tf.config import LOSSES


def _f32(logits):
    return tf.cast(logits, tf.float32)


def _bce(target: float, logits):
    logits = _f32(logits)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target),
                                                                  logits=logits))


class AdversarialLoss:
    """One --loss: `real_term` and `fake_term` are D's losses on real and fake logits (D minimises their sum),
    `generator_term` G's loss on D's logits for its fake batch, `d_output` what D says about a batch on average."""

    name = ""
    probabilities = False  # D's outputs read as probabilities (the log G/D ratio and D(x) = 1/2 mean something)
    score_gap = ""  # under a score loss: what D's mean real score minus its mean fake score estimates

    def real_term(self, logits) -> tf.Tensor:
        raise NotImplementedError

    def fake_term(self, logits) -> tf.Tensor:
        raise NotImplementedError

    def generator_term(self, fake_logits) -> tf.Tensor:
        return -tf.reduce_mean(_f32(fake_logits))

    def d_output(self, logits) -> tf.Tensor:
        return tf.reduce_mean(_f32(logits))


class NonSaturatingBCE(AdversarialLoss):
    name, probabilities = "bce", True

    def real_term(self, logits):
        return _bce(1.0, logits)

    def fake_term(self, logits):
        return _bce(0.0, logits)

    def generator_term(self, fake_logits):
        return _bce(1.0, fake_logits)

    def d_output(self, logits):
        return tf.reduce_mean(tf.sigmoid(_f32(logits)))


class Hinge(AdversarialLoss):
    name, score_gap = "hinge", "D's margin"

    def real_term(self, logits):
        return tf.reduce_mean(tf.nn.relu(1.0 - _f32(logits)))

    def fake_term(self, logits):
        return tf.reduce_mean(tf.nn.relu(1.0 + _f32(logits)))


class Wasserstein(AdversarialLoss):
    name, score_gap = "wgan_gp", "the critic's Wasserstein estimate"

    def real_term(self, logits):
        return -tf.reduce_mean(_f32(logits))

    def fake_term(self, logits):
        return tf.reduce_mean(_f32(logits))


ADVERSARIAL_LOSSES = {loss.name: loss for loss in (NonSaturatingBCE(), Hinge(), Wasserstein())}
assert tuple(ADVERSARIAL_LOSSES) == LOSSES


def named(loss: str) -> AdversarialLoss:
    """The loss object of a --loss name; ValueError naming the choices for any other."""
    if loss not in ADVERSARIAL_LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {loss!r})")
    return ADVERSARIAL_LOSSES[loss]
