"""DiffAugment (Zhao et al. 2020): differentiable augmentations of every image the discriminator sees.

On a small data set D memorises the real images; augmenting real and fake alike, in D's and G's updates, keeps it
from doing so without leaking the augmentations into G's samples (they are differentiable, so G learns through
them). The three policies of the paper's reference code, on images [B, H, W, C] in [-1, 1]:
  color:       brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around each pixel's channel mean), contrast
               (x U(0.5, 1.5) around each image's mean); values may leave [-1, 1], as in the reference code;
  translation: a shift of up to 1/8 of each side, filled with zeros;
  cutout:      a square of half each side set to zero, at a random place (clipped at the borders).
Every draw is stateless, keyed by a [2] int64 key, so the same step augments the same way when it runs again
(resume). Under a tf.distribute strategy each replica draws the whole global batch's parameters and takes its own
rows, so an update equals one device's on the global batch.

`Augmentation` is the pipeline a model holds (the policies at a fixed p); `AdaptiveAugmentation` adds ADA's p.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from dcgan_tf.config import AUGMENT_POLICIES
from dcgan_tf.core import distribution

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _uniform(key, batch: tf.Tensor, minval=0.0, maxval=1.0, dtype=tf.float32, tail=(1, 1, 1)):
    """[batch, *tail] stateless uniform draws: this replica's rows of the global batch's draw."""
    return distribution.stateless_uniform_rows(key, batch, tail, minval, maxval, dtype)


def color(images, key):
    """Brightness, saturation and contrast, each by its own per-image factor."""
    brightness, saturation, contrast = tf.unstack(tf.random.experimental.stateless_split(key, 3))
    batch = tf.shape(images)[0]
    images = images + (_uniform(brightness, batch) - 0.5)
    mean = tf.reduce_mean(images, axis=3, keepdims=True)
    images = (images - mean) * (_uniform(saturation, batch) * 2.0) + mean
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean) * (_uniform(contrast, batch) + 0.5) + mean


def translation(images, key, ratio: float = TRANSLATION_RATIO):
    """Shift each image by up to `ratio` of each side (independently in y and x); the uncovered part is zero."""
    key_y, key_x = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    shift_y = tf.cast(tf.cast(height, tf.float32) * ratio + 0.5, tf.int32)
    shift_x = tf.cast(tf.cast(width, tf.float32) * ratio + 0.5, tf.int32)
    move_y = _uniform(key_y, batch, -shift_y, shift_y + 1, tf.int32, tail=(1,))
    move_x = _uniform(key_x, batch, -shift_x, shift_x + 1, tf.int32, tail=(1,))
    # gather each output row (column) from the zero-padded input: index 0 and side + 1 are the zero borders
    rows = tf.clip_by_value(tf.range(height)[None, :] + move_y + 1, 0, height + 1)
    cols = tf.clip_by_value(tf.range(width)[None, :] + move_x + 1, 0, width + 1)
    images = tf.gather(tf.pad(images, [[0, 0], [1, 1], [0, 0], [0, 0]]), rows, axis=1, batch_dims=1)
    return tf.gather(tf.pad(images, [[0, 0], [0, 0], [1, 1], [0, 0]]), cols, axis=2, batch_dims=1)


def cutout(images, key, ratio: float = CUTOUT_RATIO):
    """Zero a square of `ratio` of each side in each image, centred anywhere in it (so it may be cut by a border)."""
    key_y, key_x = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    size_y = tf.cast(tf.cast(height, tf.float32) * ratio + 0.5, tf.int32)
    size_x = tf.cast(tf.cast(width, tf.float32) * ratio + 0.5, tf.int32)
    top = _uniform(key_y, batch, 0, height + (1 - size_y % 2), tf.int32, tail=(1, 1)) - size_y // 2
    left = _uniform(key_x, batch, 0, width + (1 - size_x % 2), tf.int32, tail=(1, 1)) - size_x // 2
    rows, cols = tf.range(height)[None, :, None], tf.range(width)[None, None, :]
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return images * tf.cast(~inside, images.dtype)[..., None]


POLICY_FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout}
assert tuple(POLICY_FUNCTIONS) == AUGMENT_POLICIES


def augment(images, policies, key, p=1.0):
    """images [B, H, W, C] in [-1, 1] through each policy in turn; with p < 1 each image is augmented with
    probability p and left as it is otherwise. The same key gives the same result; p = 0 gives the images.
    `p` may be a tensor (ADA's, which changes while training): then, in the graph, nothing is computed while p is 0,
    else every image is augmented and each kept with probability p."""
    fixed = isinstance(p, (int, float))
    if not policies or (fixed and p <= 0):
        return images
    if fixed:
        return _augmented(images, policies, key, p)
    p = tf.cast(p, tf.float32)
    return tf.cond(p > 0, lambda: _augmented(images, policies, key, p), lambda: tf.identity(images))


def _augmented(images, policies, key, p):
    dtype = images.dtype
    images = tf.cast(images, tf.float32)
    keys = tf.unstack(tf.random.experimental.stateless_split(key, len(policies) + 1))
    augmented = images
    for policy, policy_key in zip(policies, keys[1:]):
        augmented = POLICY_FUNCTIONS[policy](augmented, policy_key)
    if not isinstance(p, (int, float)) or p < 1:
        chosen = _uniform(keys[0], tf.shape(images)[0]) < tf.cast(p, tf.float32)
        augmented = tf.where(chosen, augmented, images)
    return tf.cast(augmented, dtype)


# ADA (Karras et al. 2020): every ADA_INTERVAL steps, r = the mean sign of D's outputs on (augmented) real images over
# those steps; p moves by sign(r - target) x (images seen) / ADA_IMAGES, within [0, 1]. The ADA paper lets p cross
# 0 -> 1 in 500k images, a few per cent of its runs; runs on a small set here last some 10k-100k images, so it may
# cross in ADA_IMAGES.
ADA_INTERVAL = 4
ADA_IMAGES = 10_000


def ada_adjustment(mean_sign, target: float, images_seen) -> tf.Tensor:
    """How much ADA moves p after `images_seen` images whose real outputs had this mean sign (before clipping)."""
    return tf.sign(tf.cast(mean_sign, tf.float32) - target) * tf.cast(images_seen, tf.float32) / ADA_IMAGES


AUGMENT_SEED_OFFSET = 104729  # the augmentations' keys: a stream of their own, apart from z's
REAL, FAKE, FAKE_FOR_G = 0, 1, 2  # which view of a draw's batch D is given (each augmented on its own)


class Augmentation:
    """What D is shown of a batch (keras-io gan_ada's shape): `view(images, key)` augments with the policies at
    probability `p`, keyed by `key()` (a [2] int64 key made only when something is drawn: the model keys each view
    by its draw and which of REAL, FAKE, FAKE_FOR_G it is), so a repeated step augments alike; `update` moves p
    (ADA) and does nothing here. No policies: the batch itself."""

    adaptive = False

    def __init__(self, policies=(), p: float = 1.0):
        self.policies, self.fixed_p = tuple(policies), float(p)

    @property
    def p(self):
        return self.fixed_p

    def view(self, images, key):
        if not self.policies:
            return images
        return augment(images, self.policies, key(), self.p)

    def update(self, real_sign, images, step) -> None:
        """ADA's step (see AdaptiveAugmentation): nothing at a fixed p."""
        del real_sign, images, step


class AdaptiveAugmentation(Augmentation):
    """ADA: the policies at a probability p that starts at 0 and moves every ADA_INTERVAL steps by the sign of
    (mean sign of D(x) - target), in proportion to the images seen (ada_adjustment). `p`, and the signs and
    update count gathered since p last moved, are variables (made in the strategy's scope, saved in checkpoints)."""

    adaptive = True

    def __init__(self, policies, target: float):
        if not policies:
            raise ValueError("ada_target adapts the probability of augment_policies: give them too")
        super().__init__(policies, 0.0)
        self.target = float(target)
        state = functools.partial(keras.Variable, dtype="float32", trainable=False, aggregation="only_first_replica")
        self.probability = state(0.0, name="augment_p")
        self.signs = state(0.0, name="ada_signs")
        self.updates = state(0.0, name="ada_updates")

    @property
    def p(self):
        return self.probability

    def update(self, real_sign, images, step) -> None:
        """Gather a step's mean sign of D(x) (already averaged over replicas) and its `images` (global batch); at the
        end of every ADA_INTERVAL-th step (`step` counts from 0, before the step is counted) move p by the gathered
        signs and start gathering again."""
        due = tf.equal((step + 1) % ADA_INTERVAL, 0)
        self.signs.assign_add(real_sign)
        self.updates.assign_add(1.0)
        images_seen = self.updates * tf.cast(images, tf.float32)
        moved = tf.clip_by_value(self.probability + ada_adjustment(self.signs / self.updates, self.target,
                                                                   images_seen), 0.0, 1.0)
        self.probability.assign(tf.where(due, moved, self.probability))
        self.signs.assign(tf.where(due, 0.0, self.signs))
        self.updates.assign(tf.where(due, 0.0, self.updates))


def pipeline(policies=(), p: float = 1.0, ada_target: float | None = None) -> Augmentation:
    """The augmentation a run's settings ask for: adaptive with --ada_target, else at the fixed --augment_p."""
    return Augmentation(policies, p) if ada_target is None else AdaptiveAugmentation(policies, ada_target)
