"""Forgetting to draw (DCGAN paper section 6.3.1): find the generator's filters that draw what boxes mark; drop them.

The paper boxed the windows in 150 generated bedrooms, fitted a logistic regression on the feature maps of G's
second-highest conv layer to predict "inside a window box" at each position, and generated the same z with the
filters of positive weight zeroed everywhere: the windows vanished or became other objects. Here:

- forget_boxes: the boxes (a CSV of sample, x0, y0, x1, y1 drawn on a numbered grid), placed in each sample's pixels.
- `Forgetter`: a Keras generator split at one of its conv layers (the feature maps it hands on, after its batch norm
  and ReLU): those maps for z, and images with chosen filters zeroed.
- `fit_filters`: scikit-learn's logistic regression on per-position feature vectors, each position labelled by
  whether a box covers it (at the layer's resolution; samples without boxes are all negative).
- `Forgetting`: what one run of it found (filters, weights, the images before and after, how much changed inside the
  boxes and outside them), as a JSON record and as a before/after picture.

visualize's `forget` option and the web demo both use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from PIL import Image, ImageDraw

from dcgan_tf.analysis.forget_boxes import POSITIVE_COVER, parse_boxes, pixel_mask, place_boxes, position_labels
from dcgan_tf.config import ConfigError
from dcgan_tf.images import MIN_LABELED_CELL, GridLayout, font, tile, to_uint8, upscale

CHANGE_THRESHOLD = 0.2  # a pixel "changed" when a channel moved by more than this ([-1, 1] images: 10% of the range)
FIT_C = 1.0  # the logistic regression's inverse L2 strength, on standardised features
FIT_MAX_ITER = 1000
BOX_COLOUR = (255, 0, 0)
PAIR_GAP = 2  # white pixels between a sample and its forgetting
PAIR_PADDING = 8  # between the pairs
_CONVS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)
_PASS_THROUGH = (keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.Activation)


# ------------------------------------------------------------------------------------------------ the split
class KeepFilters(keras.layers.Layer):
    """Feature maps [N, H, W, C] times a fixed 0/1 vector [C]: the dropped filters zeroed at every position."""

    def __init__(self, keep, **kwargs):
        super().__init__(**kwargs)
        self.keep = np.asarray(keep, np.float32)

    def call(self, maps):
        return maps * keras.ops.cast(keras.ops.convert_to_tensor(self.keep), maps.dtype)

    def compute_output_shape(self, shape):
        return shape


def _conv_name(layer) -> str | None:
    """The name of a conv layer (of the one a SpectralNormalization wraps, as the networks name it), else None."""
    inner = layer.layer if isinstance(layer, keras.layers.SpectralNormalization) else layer
    return inner.name if isinstance(inner, _CONVS) else None


def conv_layers(generator: keras.Model) -> dict[str, keras.layers.Layer]:
    """{name: the layer whose output is the conv's feature maps as the next layer gets them} for every conv layer of
    a functional generator but the last (which draws the image), lowest first: the conv itself or the batch norm,
    ReLU or activation that follow it."""
    consumers: dict[int, list] = {}
    for layer in generator.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.input):
            consumers.setdefault(id(tensor), []).append(layer)
    found = {}
    for layer in generator.layers:
        name = _conv_name(layer)
        if name is None:
            continue
        tap = layer
        while len(consumers.get(id(tap.output), [])) == 1 and isinstance(consumers[id(tap.output)][0], _PASS_THROUGH):
            tap = consumers[id(tap.output)][0]
        found[name] = tap
    return dict(list(found.items())[:-1])


class Forgetter:
    """A functional Keras generator split at one of its conv layers (default: the second-highest, the paper's).

    `features(z, labels)` -> that layer's feature maps [N, h, w, C] float32; `generate(z, labels, drop)` -> images
    [N, H, W, C] in [-1, 1] with the filters in `drop` zeroed at every position. Inference mode throughout.
    """

    def __init__(self, generator: keras.Model, layer: str | None = None):
        self.generator = generator
        self.layers = conv_layers(generator)
        if not self.layers:
            raise ConfigError("forget_layer", f"generator {generator.name!r} has no conv layer below its last")
        self.layer = layer or list(self.layers)[-1]
        if self.layer not in self.layers:
            raise ConfigError("forget_layer", f"{self.layer!r} is not one of the generator's conv layers below its "
                                              f"last: {', '.join(self.layers)}")
        self._tap = self.layers[self.layer]
        self._features = keras.Model(generator.input, self._tap.output)
        self.shape = tuple(int(side) for side in self._tap.output.shape[1:])  # (h, w, C)
        self._dropping: dict[tuple, keras.Model] = {}

    @property
    def filters(self) -> int:
        return self.shape[-1]

    def check_filters(self, filters) -> tuple[int, ...]:
        """Filter indices, sorted and unique; ConfigError naming --forget_filters for one the layer does not have."""
        filters = tuple(sorted({int(index) for index in filters}))
        wrong = [index for index in filters if not 0 <= index < self.filters]
        if wrong:
            raise ConfigError("forget_filters", f"filter {wrong[0]} is not in layer {self.layer}, which has "
                                                f"{self.filters}: 0-{self.filters - 1}")
        return filters

    def _inputs(self, z, labels):
        z = np.asarray(z, np.float32)
        return z if labels is None else [z, np.asarray(labels, np.float32)]

    def _batches(self, model, z, labels, batch: int = 256) -> np.ndarray:
        out = [np.asarray(keras.ops.convert_to_numpy(model(
            self._inputs(z[start:start + batch], None if labels is None else labels[start:start + batch]),
            training=False)), np.float32) for start in range(0, len(z), batch)]
        return np.concatenate(out)

    def features(self, z, labels=None) -> np.ndarray:
        """z [N, z_dim] (+ one-hot labels [N, y_dim]) -> the layer's feature maps [N, h, w, C] float32."""
        return self._batches(self._features, np.asarray(z, np.float32), labels)

    def dropping(self, drop) -> keras.Model:
        """The generator with the filters in `drop` zeroed after the layer (G's own layers and weights)."""
        drop = self.check_filters(drop)
        if not drop:
            return self.generator
        if drop not in self._dropping:
            keep = np.ones(self.filters, np.float32)
            keep[list(drop)] = 0
            zero = KeepFilters(keep, name=f"forget_{self.layer}")

            def call(layer, *args, **kwargs):
                out = layer(*args, **kwargs)
                return zero(out) if layer is self._tap else out

            self._dropping[drop] = keras.models.clone_model(self.generator, clone_function=lambda layer: layer,
                                                            call_function=call)
        return self._dropping[drop]

    def generate(self, z, labels=None, drop=()) -> np.ndarray:
        """z [N, z_dim] (+ one-hot labels) -> images [N, H, W, C] float32 in [-1, 1], `drop`'s filters zeroed."""
        return self._batches(self.dropping(drop), np.asarray(z, np.float32), labels)

    def forget(self, z, labels=None, placed: dict | None = None, filters=None, seed: int = 0) -> "Forgetting":
        """Fit the filters that draw what the boxes `placed` (place_boxes' {sample: boxes in its pixels}) mark and
        drop them; or drop `filters` as given (the boxes, if any, then only measure the change)."""
        z = np.asarray(z, np.float32)
        placed = placed or {}
        height, width = self.generator.output.shape[1:3]
        fit = None
        if filters is None:
            if not placed:
                raise ConfigError("forget_boxes", "give boxes to fit the filters to, or the filters to drop")
            positive = position_labels(placed, len(z), height, width, *self.shape[:2])
            fit = fit_filters(self.features(z, labels), positive, seed)
            filters = fit.filters
        filters = self.check_filters(filters)
        before = self.generate(z, labels)
        after = self.generate(z, labels, filters) if filters else before
        return Forgetting(self.layer, self.shape, filters, fit, before, after, placed,
                          pixel_mask(placed, len(z), height, width) if placed else None)

    def forget_on_grid(self, z, labels, boxes: str, layout: GridLayout, source: str = "the boxes",
                       seed: int = 0) -> "Forgetting":
        """forget with boxes given as CSV text (parse_boxes) on the numbered grid `layout` of the samples of z."""
        return self.forget(z, labels, place_boxes(parse_boxes(boxes, source), layout, source), seed=seed)


# ------------------------------------------------------------------------------------------------ the fit
@dataclass(frozen=True)
class Fit:
    """The logistic regression on standardised per-position features: a weight per filter, the filters of positive
    weight (the paper's rule; strongest first), and how many positions it saw and classified right."""

    weights: np.ndarray  # [C]
    intercept: float
    positives: int
    negatives: int
    accuracy: float  # balanced accuracy on the positions it was fitted to

    @property
    def filters(self) -> tuple[int, ...]:
        order = np.argsort(-self.weights, kind="stable")
        return tuple(int(index) for index in order if self.weights[index] > 0)


def fit_filters(features: np.ndarray, positive: np.ndarray, seed: int = 0) -> Fit:
    """features [N, h, w, C], positive bool [N, h, w] -> Fit. Each position is one example; features are
    standardised (so weights compare across filters), classes weighted to balance (boxes cover little), L2 with
    C=FIT_C. Deterministic: lbfgs, seeded."""
    from sklearn.linear_model import LogisticRegression

    x = features.reshape(-1, features.shape[-1]).astype(np.float64)
    y = positive.reshape(-1)
    if y.all() or not y.any():
        raise ConfigError("forget_boxes", "the boxes cover every position of the layer's feature maps" if y.any()
                          else "the boxes cover no position of the layer's feature maps")
    mean, spread = x.mean(axis=0), x.std(axis=0)
    spread[spread == 0] = 1.0  # a filter that never fires gets weight 0
    model = LogisticRegression(C=FIT_C, class_weight="balanced", max_iter=FIT_MAX_ITER, random_state=seed)
    standard = (x - mean) / spread
    model.fit(standard, y)
    guess = model.predict(standard)
    accuracy = (np.mean(guess[y]) + np.mean(~guess[~y])) / 2
    return Fit(model.coef_[0].astype(np.float64), float(model.intercept_[0]), int(y.sum()), int((~y).sum()),
               float(accuracy))


# ------------------------------------------------------------------------------------------------ the result
@dataclass
class Forgetting:
    """What dropping found: the layer (its name and [h, w, C]), the filters dropped, the fit (None when the filters
    were given), the images before and after ([N, H, W, C] in [-1, 1]), the boxes and their pixel mask."""

    layer: str
    shape: tuple
    filters: tuple[int, ...]
    fit: Fit | None
    before: np.ndarray
    after: np.ndarray
    placed: dict
    mask: np.ndarray | None  # bool [N, H, W], None without boxes

    def change(self) -> dict:
        """How much changed: the fraction of pixels that moved by more than CHANGE_THRESHOLD (in any channel) and
        the mean absolute change, inside the boxes and in the rest of every image."""
        moved = np.abs(self.after - self.before).max(axis=-1)
        changed = moved > CHANGE_THRESHOLD
        result = {"threshold": CHANGE_THRESHOLD, "all": float(changed.mean()), "mean_abs_all": float(moved.mean())}
        if self.mask is not None:
            result.update(inside=float(changed[self.mask].mean()), outside=float(changed[~self.mask].mean()),
                          mean_abs_inside=float(moved[self.mask].mean()),
                          mean_abs_outside=float(moved[~self.mask].mean()))
        return result

    def record(self, **about) -> dict:
        """The JSON record: `about` (run, step, ...), then the layer, the filters dropped with their weights, every
        filter's weight, the fit, the boxes (sample pixels) and the change."""
        record = dict(about)
        record.update(layer=self.layer, layer_shape=list(self.shape), filters=list(self.filters),
                      samples=len(self.before))
        if self.fit is not None:
            weights = self.fit.weights
            record.update(filter_weights=[round(float(weights[index]), 6) for index in self.filters],
                          weights=[round(float(weight), 6) for weight in weights],
                          fit={"model": "sklearn LogisticRegression on standardised per-position features, "
                                        f"class_weight balanced, C={FIT_C}", "intercept": round(self.fit.intercept, 6),
                               "positives": self.fit.positives, "negatives": self.fit.negatives,
                               "balanced_accuracy": round(self.fit.accuracy, 4),
                               "positive_cover": POSITIVE_COVER})
        record["boxes"] = [{"sample": sample, "box": [round(value, 3) for value in box]}
                           for sample in sorted(self.placed) for box in self.placed[sample]]
        record["change"] = {key: round(value, 4) for key, value in self.change().items()}
        return record

    def summary(self) -> str:
        """describe(record()): the layer, the filters dropped and how much changed."""
        return describe(self.record())

    def picture(self, cols: int, min_side: int = MIN_LABELED_CELL, count: int | None = None) -> np.ndarray:
        """uint8 [H', W', 3]: for each of the first `count` samples (all by default), in rows of `cols`, the sample
        (numbered, its boxes outlined) and beside it the same z with the filters dropped."""
        return before_after_picture(self.before[:count], self.after[:count], self.placed, cols, min_side)


def before_after_picture(before, after, placed: dict, cols: int, min_side: int = MIN_LABELED_CELL) -> np.ndarray:
    """images before and after [N, H, W, C] in [-1, 1] -> uint8 RGB pairs (before | after), in rows of `cols`; each
    before-image carries its number and its boxes (placed: {sample: boxes in its pixels}) outlined in red."""
    first, second = upscale(to_uint8(before), min_side), upscale(to_uint8(after), min_side)
    count, height, width, _ = first.shape
    scale = height // before.shape[1]
    pairs = []
    index_font = font(max(8, height // 5))
    for index in range(count):
        pair = Image.fromarray(tile(np.stack([first[index], second[index]]), 1, 2, PAIR_GAP))
        draw = ImageDraw.Draw(pair)
        for x0, y0, x1, y1 in placed.get(index, []):
            draw.rectangle((x0 * scale, y0 * scale, max(x0 * scale, x1 * scale - 1), max(y0 * scale, y1 * scale - 1)),
                           outline=BOX_COLOUR, width=max(1, scale // 4))
        left, top, right, bottom = draw.textbbox((2, 1), str(index), font=index_font)
        draw.rectangle((0, 0, right + 2, bottom + 2), fill=(0, 0, 0))
        draw.text((2, 1), str(index), fill=(255, 255, 0), font=index_font)
        pairs.append(np.asarray(pair))
    rows = math.ceil(count / cols)
    return tile(np.stack(pairs), rows, min(cols, count), PAIR_PADDING)


def describe(record: dict) -> str:
    """One paragraph on a forget record: the layer, the filters dropped and how much changed in and out of the boxes."""
    filters = record["filters"]
    shown = ", ".join(str(index) for index in filters[:12]) + (f" and {len(filters) - 12} more" if len(filters) > 12
                                                               else "")
    fitted = "fitted to the boxes" if "fit" in record else "as given"
    text = (f"forget: layer {record['layer']} ({'x'.join(map(str, record['layer_shape']))}): dropped "
            f"{len(filters)} of {record['layer_shape'][-1]} filters ({fitted}): {shown or 'none'}")
    change = record["change"]
    threshold = change["threshold"]
    if "inside" in change:
        text += (f"; pixels changed by more than {threshold:g}: {change['inside']:.1%} inside the boxes, "
                 f"{change['outside']:.1%} outside (mean absolute change {change['mean_abs_inside']:.3f} vs "
                 f"{change['mean_abs_outside']:.3f})")
    else:
        text += f"; pixels changed by more than {threshold:g}: {change['all']:.1%}"
    return text
