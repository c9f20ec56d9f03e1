"""Projection: find the z whose G(z) looks like a real image, so walks and vector arithmetic can start from real
pictures (`--visualize_option interpolate/arithmetic --z_files`).

For a target image x, `project` minimises over z alone (G and D frozen, batch norm in inference mode)

    loss(z) = mean (G(z) - x)^2 + feature_weight * mean over D's conv layers k of mean (D_k(G(z)) - D_k(x))^2

with Adam, in [-1, 1] pixel units. G is the generator that samples (`DCGAN.sampler`: the EMA copy when the run keeps
one); D_k are the activation maps of D's conv layers (metrics.features.discriminator_feature_model), which reward
matching edges and textures where pixels alone settle on a blur. The loss is not convex in z, so each target gets
`restarts` starting z drawn from the run's z distribution, keyed by (seed + PROJECTION_SEED_OFFSET, target index);
all restarts of all targets are optimised together as one batch, and the restart with the lowest final loss wins.
After every step z is clipped back into the support of a uniform z distribution (a normal one is left alone).

`write_projection` writes into the run's sample folder, for each input image <stem> (a second input with the same
name gets <stem>_2, then _3, ...):

  project_<stem>.png  target, progress frames, result in one captioned row, with the pixel error
  project_<stem>.npz  z [1, z_dim] float32 and where it came from (NPZ_KEYS); `read_z_files` reads it back
  project_<stem>.gif  the optimisation: the target beside G(z), frame by frame
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from dcgan_tf import files
from dcgan_tf.config import Config
from dcgan_tf.data.loading import DataError, ImageSpec, decode_image
from dcgan_tf.images import CELL_PADDING, evenly_spaced, save_gif, save_image, text_cell, tile, to_uint8, upscale
from dcgan_tf.latent import Z_DISTRIBUTIONS, sample_z, sweep_range
from dcgan_tf.metrics.features import discriminator_feature_model

log = logging.getLogger(__name__)

PROJECTION_SEED_OFFSET = 179_999  # starting z: a stream of their own, apart from training's and the pictures' z
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-8  # Adam's, as keras.optimizers.Adam's defaults but for epsilon
HISTORY_POINTS = 20  # record_every defaults to steps // this: about 20 progress frames plus the start
PNG_FRAMES = 6  # progress frames on the PNG (evenly spaced, start and result included)
CAPTION_HEIGHT = 16  # pixels of each caption strip
HOLD_SECONDS = 1.0  # the GIF rests this long on the result before it loops
NPZ_KEYS = ("z", "z_dist", "z_dim", "y_dim", "label", "step", "source", "pixel_error", "loss", "restart")
NO_LABEL = -1  # `label` of an unconditional run's z (and y_dim 0)


@dataclass
class Projection:
    """What `project` found for N targets with R restarts each (winner: the restart of lowest final loss).

    z [N, z_dim] float32, images [N, H, W, C] = G(z) float32 in [-1, 1], pixel_error [N] (mean squared error in
    [-1, 1] units), loss [N] (pixel error + feature_weight * feature distance), restart [N] (the winning restart);
    history: [(step, images [N, H, W, C])] of the winners at the record points, start and end included;
    restart_losses [N, R]: every restart's final loss; start_z [N, R, z_dim]: where each restart began.
    """

    z: np.ndarray
    images: np.ndarray
    pixel_error: np.ndarray
    loss: np.ndarray
    restart: np.ndarray
    history: list = field(default_factory=list)
    restart_losses: np.ndarray | None = None
    start_z: np.ndarray | None = None


# ------------------------------------------------------------------------------------------------ optimisation
def start_points(model, count: int, restarts: int, seed: int) -> np.ndarray:
    """[count, restarts, z_dim] starting z from the model's z distribution; target n's keyed by (seed + offset, n)."""
    return np.stack([np.asarray(sample_z((restarts, model.z_dim), model.z_dist,
                                         tf.constant([seed + PROJECTION_SEED_OFFSET, n], tf.int64)), np.float32)
                     for n in range(count)]).reshape(count, restarts, model.z_dim)


def _check_targets(model, targets) -> np.ndarray:
    """targets as float32 [N, H, W, C] of the generator's image shape; ValueError otherwise."""
    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.floating):
        raise ValueError(f"targets must be float images in [-1, 1] (got {targets.dtype}; data.to_float converts uint8)")
    shape = tuple(model.generator.outputs[0].shape[1:])
    if targets.ndim != 4 or tuple(targets.shape[1:]) != shape or len(targets) == 0:
        raise ValueError(f"targets must be images [N, {', '.join(map(str, shape))}] like the generator's "
                         f"(got {targets.shape})")
    return targets.astype(np.float32)


def _one_hot(model, labels, count: int) -> np.ndarray | None:
    """Class ids (one int, or [count]) -> one-hot [count, y_dim] for a conditional model; None for an unconditional
    one. ValueError when a conditional model gets none, an unconditional one gets some, or an id is out of range."""
    if not model.conditional:
        if labels is not None:
            raise ValueError("this model is unconditional (no y_dim): project without labels")
        return None
    if labels is None:
        raise ValueError(f"this model is conditional: pass labels, class ids 0-{model.y_dim - 1}, one per target")
    ids = np.asarray(labels)
    if ids.ndim == 0:
        ids = np.full(count, ids)
    if not np.issubdtype(ids.dtype, np.integer) or ids.shape != (count,):
        raise ValueError(f"labels must be {count} integer class ids, one per target (got {ids.dtype} {ids.shape})")
    if ids.min() < 0 or ids.max() >= model.y_dim:
        raise ValueError(f"labels must be class ids 0-{model.y_dim - 1} (got {ids.min()}-{ids.max()})")
    return np.eye(model.y_dim, dtype=np.float32)[ids]


def _as_list(maps) -> list:
    return list(maps) if isinstance(maps, (list, tuple)) else [maps]


def project(model, targets, labels=None, steps: int = 300, restarts: int = 4, learning_rate: float = 0.05,
            feature_weight: float = 0.1, seed: int = 0, record_every: int | None = None,
            start_z=None) -> Projection:
    """Find z with G(z) close to each target: targets [N, H, W, C] float32 in [-1, 1], labels [N] class ids (a
    conditional model's; one int for all). See the module docstring for the loss and the restarts.

    `steps` Adam steps at `learning_rate` on every restart; `record_every` steps between history frames (default
    steps // HISTORY_POINTS, at least 1). `start_z` [N, R, z_dim] replaces the seeded starting points (R restarts).
    The same arguments give the same result.
    """
    targets = _check_targets(model, targets)
    count = len(targets)
    one_hot = _one_hot(model, labels, count)
    if steps < 0 or restarts < 1 or (record_every is not None and record_every < 1):
        raise ValueError(f"project needs steps >= 0, restarts >= 1 and record_every >= 1 (got {steps}, {restarts}, "
                         f"{record_every})")
    if start_z is None:
        start_z = start_points(model, count, restarts, seed)
    start_z = np.asarray(start_z, np.float32)
    if start_z.ndim != 3 or start_z.shape[0] != count or start_z.shape[2] != model.z_dim:
        raise ValueError(f"start_z must be [{count}, restarts, {model.z_dim}] (got {start_z.shape})")
    restarts = start_z.shape[1]
    record_every = record_every or max(1, steps // HISTORY_POINTS)
    record = sorted(set(range(0, steps + 1, record_every)) | {steps})

    # candidate c = r * N + n: restart r of target n, all in one batch
    x = tf.constant(np.tile(targets, (restarts, 1, 1, 1)))
    y = None if one_hot is None else tf.constant(np.tile(one_hot, (restarts, 1)))
    generator = model.sampler  # the generator model.generate(training=False) uses: G, or the EMA copy
    features = discriminator_feature_model(model.discriminator) if feature_weight else None

    def d_maps(images):
        maps = features(images if y is None else [images, y], training=False)
        return [tf.cast(m, tf.float32) for m in _as_list(maps)]

    target_maps = d_maps(x) if features is not None else []

    def forward(z):
        """z [R*N, z_dim] -> (loss [R*N], pixel error [R*N], images)."""
        images = tf.cast(generator(z if y is None else [z, y], training=False), tf.float32)
        pixel = tf.reduce_mean(tf.square(images - x), axis=[1, 2, 3])
        if features is None:
            return pixel, pixel, images
        distance = tf.add_n([tf.reduce_mean(tf.square(m - t), axis=[1, 2, 3])
                             for m, t in zip(d_maps(images), target_maps)]) / len(target_maps)
        return pixel + feature_weight * distance, pixel, images

    dist = Z_DISTRIBUTIONS[model.z_dist]
    low, high = sweep_range(model.z_dist)

    @tf.function
    def step(z, m, v, t):
        """One Adam step on every candidate's z (their losses are summed: each z gets its own loss's gradient)."""
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = tf.reduce_sum(forward(z)[0])
        gradient = tape.gradient(loss, z)
        m = BETA_1 * m + (1.0 - BETA_1) * gradient
        v = BETA_2 * v + (1.0 - BETA_2) * tf.square(gradient)
        z = z - learning_rate * (m / (1.0 - BETA_1 ** t)) / (tf.sqrt(v / (1.0 - BETA_2 ** t)) + EPSILON)
        return (z if dist.normal else tf.clip_by_value(z, low, high)), m, v

    z = tf.constant(start_z.transpose(1, 0, 2).reshape(restarts * count, model.z_dim))
    m, v = tf.zeros_like(z), tf.zeros_like(z)
    snapshots = {0: z}
    for k in range(1, steps + 1):
        z, m, v = step(z, m, v, tf.constant(k, tf.float32))
        if k in record:
            snapshots[k] = z
    loss, pixel, images = (np.asarray(a) for a in forward(z))

    restart_losses = loss.reshape(restarts, count).T
    winner = np.argmin(restart_losses, axis=1)
    chosen = winner * count + np.arange(count)
    final_images = images[chosen]

    def winners_images(s):
        if s == steps:
            return final_images
        z_s = tf.gather(snapshots[s], chosen)
        inputs = z_s if one_hot is None else [z_s, tf.constant(one_hot)]
        return np.asarray(tf.cast(generator(inputs, training=False), tf.float32))

    return Projection(z=np.asarray(z)[chosen], images=final_images, pixel_error=pixel[chosen], loss=loss[chosen],
                      restart=winner, history=[(s, winners_images(s)) for s in record],
                      restart_losses=restart_losses, start_z=start_z)


# ------------------------------------------------------------------------------------------------ files
def read_target(path: str, config: Config) -> np.ndarray:
    """One image file -> uint8 [output_height, output_width, c_dim], decoded, cropped and resized as the run's
    training images are (data.decode_image with the run's ImageSpec). DataError naming the file if unreadable."""
    config = config.resolved()
    spec = ImageSpec(config.output_height, config.output_width, config.crop, config.input_height, config.input_width)
    try:
        return decode_image(path, spec, config.c_dim)
    except Exception as error:  # noqa: BLE001 - any decoder failure means "this file is no image we can use"
        raise DataError(f"{path} cannot be read as an image to project ({type(error).__name__}: {error})") from error


def unique_stems(paths) -> list[str]:
    """File names without folder and extension; a repeated one gets _2, _3, ... (in order) so no output collides."""
    stems, used = [], set()
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0] or "image"
        candidate, number = stem, 1
        while candidate in used:
            number += 1
            candidate = f"{stem}_{number}"
        used.add(candidate)
        stems.append(candidate)
    return stems


def _captioned_row(cells: np.ndarray, captions: list[str]) -> np.ndarray:
    """uint8 RGB cells [K, h, w, 3] in one padded row with a caption under each."""
    height, width = cells.shape[1:3]
    row = tile(cells, 1, len(cells), CELL_PADDING)
    labels = tile(np.stack([text_cell(text, CAPTION_HEIGHT, width) for text in captions]), 1, len(cells),
                  CELL_PADDING)
    return np.concatenate([row, labels])


def progress_picture(target, history, pixel_error: float) -> np.ndarray:
    """target [H, W, C] float, history [(step, image [H, W, C])] -> uint8 RGB: target, the progress frames and the
    result (the last frame) in one captioned row, and the result's pixel error beneath."""
    picked = evenly_spaced(list(history), PNG_FRAMES)
    cells = upscale(to_uint8(np.stack([target] + [image for _, image in picked])))
    captions = ["target"] + [f"step {s}" for s, _ in picked[:-1]] + ["result"]
    row = _captioned_row(cells, captions)
    footer = text_cell(f"pixel MSE {pixel_error:.3g}", CAPTION_HEIGHT, row.shape[1])
    return np.concatenate([row, footer])


def progress_frames(target, history, fps: float) -> np.ndarray:
    """uint8 GIF frames: the target beside G(z) at each recorded step (captioned), the last held HOLD_SECONDS."""
    frames = []
    for s, image in history:
        cells = upscale(to_uint8(np.stack([target, image])))
        frames.append(_captioned_row(cells, ["target", f"step {s}"]))
    hold = max(0, int(round(HOLD_SECONDS * fps)) - 1)  # identical frames are stored once, shown longer
    return np.stack(frames + [frames[-1]] * hold)


def _labels_per_path(labels, count: int):
    if labels is None or np.ndim(labels) == 0:
        return labels if labels is None else [int(labels)] * count
    labels = [int(label) for label in labels]
    if len(labels) != count:
        raise ValueError(f"give one label per image ({count}), or one for all (got {len(labels)})")
    return labels


def write_projection(config: Config, model, step: int, paths, labels=None, steps: int = 300, restarts: int = 4,
                     learning_rate: float = 0.05, feature_weight: float = 0.1, seed: int | None = None,
                     record_every: int | None = None, fps: float = 10.0) -> list[str]:
    """Project each image file in `paths` (one batch) and write project_<stem>.png/.npz/.gif into
    config.sample_path (see the module docstring); returns the paths written, three per image.

    `config` is the run's (saved) config, `step` its checkpoint's step; `labels`: one class id per image, or one for
    all (conditional runs only). `seed` defaults to config.seed. DataError naming an unreadable file.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else [str(p) for p in paths]
    if not paths:
        raise ValueError("no images to project")
    config = config.resolved()
    if config.c_dim is None:  # decode to the generator's channels
        config = dataclasses.replace(config, c_dim=int(model.generator.outputs[0].shape[-1]))
    targets = np.stack([read_target(path, config) for path in paths]).astype(np.float32) / 127.5 - 1.0
    per_path = _labels_per_path(labels, len(paths))
    seed = config.seed if seed is None else seed
    result = project(model, targets, per_path, steps=steps, restarts=restarts, learning_rate=learning_rate,
                     feature_weight=feature_weight, seed=seed, record_every=record_every)
    written = []
    for n, (path, stem) in enumerate(zip(paths, unique_stems(paths))):
        base = os.path.join(config.sample_path, f"project_{stem}")
        history = [(s, images[n]) for s, images in result.history]
        with files.replacing(base + ".png", suffix=".png") as temporary:
            save_image(progress_picture(targets[n], history, float(result.pixel_error[n])), temporary)
        with files.replacing(base + ".npz", suffix=".npz") as temporary:
            np.savez(temporary, z=result.z[n:n + 1].astype(np.float32), z_dist=np.array(model.z_dist),
                     z_dim=np.array(model.z_dim), y_dim=np.array(model.y_dim or 0),
                     label=np.array(NO_LABEL if per_path is None else per_path[n]), step=np.array(int(step)),
                     source=np.array(os.path.abspath(path)), pixel_error=np.array(result.pixel_error[n]),
                     loss=np.array(result.loss[n]), restart=np.array(int(result.restart[n])))
        with files.replacing(base + ".gif", suffix=".gif") as temporary:
            save_gif(progress_frames(targets[n], history, fps), temporary, fps)
        written += [base + ".png", base + ".npz", base + ".gif"]
        log.info("projected %s: pixel MSE %.4f (restart %d) -> %s.npz", path, result.pixel_error[n],
                 result.restart[n], base)
    return written


def read_z_files(paths, z_dim: int, z_dist: str | None = None) -> tuple[np.ndarray, list[int | None]]:
    """z rows from .npz files write_projection wrote (or any .npz with a 'z' [K, z_dim], or a .npy of z), in order:
    (z [N, z_dim] float32, each row's class id or None). ValueError naming the file when it is unreadable, lacks
    'z', or its z_dim (or, given z_dist, its recorded z_dist) differs from the run's."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("no z files given")
    rows, labels = [], []
    for path in paths:
        try:
            loaded = np.load(path, allow_pickle=False)
            if isinstance(loaded, np.ndarray):  # a .npy: the z themselves
                arrays = {"z": loaded}
            else:
                with loaded:
                    arrays = {name: loaded[name] for name in loaded.files}
        except Exception as error:  # noqa: BLE001 - missing, torn or no numpy file at all: say which
            raise ValueError(f"z file {path} cannot be read ({type(error).__name__}: {error})") from error
        if "z" not in arrays:
            raise ValueError(f"z file {path} has no 'z' array (it holds: {', '.join(sorted(arrays)) or 'nothing'})")
        z = np.asarray(arrays["z"])
        z = z[None] if z.ndim == 1 else z
        if z.ndim != 2 or not np.issubdtype(z.dtype, np.number) or len(z) == 0:
            raise ValueError(f"z file {path}: 'z' must be [K, {z_dim}] numbers (got {z.dtype} {z.shape})")
        if z.shape[1] != z_dim:
            raise ValueError(f"z file {path} holds {z.shape[1]}-dimensional z, but this run's z_dim is {z_dim}")
        if not np.all(np.isfinite(z)):
            raise ValueError(f"z file {path} holds NaN or infinite z")
        if z_dist is not None and "z_dist" in arrays and str(arrays["z_dist"]) != z_dist:
            raise ValueError(f"z file {path} was made for z_dist {str(arrays['z_dist'])!r}, but this run's is "
                             f"{z_dist!r}")
        found = np.asarray(arrays.get("label", NO_LABEL)).reshape(-1)
        if found.size not in (1, len(z)):
            raise ValueError(f"z file {path}: 'label' must be one class id or one per z row (got {found.size})")
        rows.append(z.astype(np.float32))
        labels += [None if int(label) < 0 else int(label) for label in np.broadcast_to(found, (len(z),))]
    return np.concatenate(rows), labels
