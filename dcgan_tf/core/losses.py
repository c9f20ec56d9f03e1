"""The adversarial losses (--loss) and the gradient penalties on D (WGAN-GP's, R1), on D's logits.

  bce:     the DCGAN paper's: D minimises BCE(real -> 1) + BCE(fake -> 0); G the non-saturating BCE(fake -> 1).
  hinge:   SNGAN / BigGAN: D minimises mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))); G minimises -mean(D(G(z))).
  wgan_gp: D (a critic) minimises mean(D(G(z))) - mean(D(x)) + gp_weight * mean((|grad D(x_hat)| - 1)^2) on
           random points x_hat between real and fake images; G minimises -mean(D(G(z))).
GAN-CLS's matching-aware D (Reed et al. 2016, --matching_aware) also scores real images with wrong labels as fake:
D minimises real + (wrong + fake) / 2, the fake term of its loss split between the two kinds of mismatch.
R1 (Mescheder et al. 2018) adds gamma / 2 * mean(|grad D(x)|^2) on real images to D's loss, under any of them.

What D "says" about a batch (d_real, d_fake in losses.csv): the mean probability sigmoid(logit) under bce, the
mean raw score under hinge and wgan_gp, whose scores are no probabilities.
Every loss is float32, whatever the compute dtype of the nets.
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


def discriminator_terms(loss: str, real_logits, fake_logits) -> tuple[tf.Tensor, tf.Tensor]:
    """(D's loss on the real batch, D's loss on the fake batch); D minimises their sum (plus any penalty)."""
    return _real_term(loss, real_logits), _fake_term(loss, fake_logits)


def matching_aware_terms(loss: str, real_logits, wrong_logits, fake_logits) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """GAN-CLS: (D's loss on real images with their labels, on real images with wrong labels, on fake images with
    their labels), the last two as discriminator_terms' fake term; D minimises real + (wrong + fake) / 2."""
    return _real_term(loss, real_logits), _fake_term(loss, wrong_logits), _fake_term(loss, fake_logits)


def _real_term(loss: str, logits) -> tf.Tensor:
    if loss == "bce":
        return _bce(1.0, logits)
    if loss == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 - _f32(logits)))
    if loss == "wgan_gp":
        return -tf.reduce_mean(_f32(logits))
    raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {loss!r})")


def _fake_term(loss: str, logits) -> tf.Tensor:
    if loss == "bce":
        return _bce(0.0, logits)
    if loss == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 + _f32(logits)))
    if loss == "wgan_gp":
        return tf.reduce_mean(_f32(logits))
    raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {loss!r})")


def generator_loss(loss: str, fake_logits) -> tf.Tensor:
    """G's loss on D's logits for its fake batch."""
    if loss == "bce":
        return _bce(1.0, fake_logits)
    if loss in ("hinge", "wgan_gp"):
        return -tf.reduce_mean(_f32(fake_logits))
    raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {loss!r})")


def d_output(loss: str, logits) -> tf.Tensor:
    """What D says about a batch, on average: a probability under bce, a raw score otherwise."""
    logits = _f32(logits)
    return tf.reduce_mean(tf.sigmoid(logits) if loss == "bce" else logits)


def _squared_gradient_norms(critic, images) -> tf.Tensor:
    """[N] |d critic(images)[i] / d images[i]|^2, differentiable (for D's update). Images are independent in D's
    output unless D mixes them (batch norm), so the gradient of the sum is each image's own gradient."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(_f32(critic(images)))
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


def check(loss: str) -> str:
    """`loss` if it is one of LOSSES; else ValueError."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {loss!r})")
    return loss
