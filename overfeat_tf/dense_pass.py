"""The dense pass every task shares, and the settings that shape it.

`InferenceSettings` is the one frozen record of how a trained model runs at
test time (scales, stride, flips, top-k, the merge's thresholds); the
`Classifier`, `Localizer` and `Detector` each read the fields they need.
`DensePass` runs the network densely over every scale of an image and its
mirror (section 4.2), or over the window views of the image at its
training size; the runners build on it rather than on each other.

Scales. A scale is the length, in pixels, of the image's *shorter* side
after resizing; the longer side keeps the aspect ratio. Table 5's six
scales are the shorter sides 245, 281, 317, 389, 425, 461 of the accurate
model (window 221); other networks use the same multiples of their window
(`paper_scales`). Any image size goes in: smaller images are enlarged,
larger ones shrunk (antialiased) to each scale.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from overfeat_tf.architectures import Geometry, check_stride
from overfeat_tf.derived import dense
from overfeat_tf.errors import InvalidTypeError, InvalidValueError
from overfeat_tf.models import OverFeat
from overfeat_tf.preprocessing import (
    MAX_ASPECT_RATIO,
    normalize,
    resize,
    smallest_side_shape,
)

# Sermanet et al. (2014), Table 5: the shorter side of the six scales of
# the accurate model, whose window is `_TABLE5_WINDOW`.
TABLE5_SIZES = (245, 281, 317, 389, 425, 461)
_TABLE5_WINDOW = 221
# How a merged box is scored (`InferenceSettings.merge_score`).
MERGE_SCORES = ("sum", "mean")
# What every runner's graphs take: float32 pixels [B, H, W, C].
IMAGES = tf.TensorSpec([None, None, None, None], tf.float32, name="images")


def paper_scales(geometry: Geometry, indices: Sequence[int] | None = None):
    """Table 5's scales for a network, as shorter sides in pixels.

    The accurate model gets Table 5's sizes exactly; another window gets the
    same multiples of its window (fast: 256, 294, 331, 407, 444, 482).

    Args:
        geometry: the network's `Geometry` (`model.geometry`).
        indices: 1-based scale numbers as in the paper (e.g. `(1, 2, 4, 6)`);
            None for all six.
    """
    indices = tuple(range(1, 7)) if indices is None else tuple(indices)
    bad = [i for i in indices if not 1 <= i <= len(TABLE5_SIZES)]
    if bad or not indices:
        raise InvalidValueError(
            f"Scale numbers run from 1 to {len(TABLE5_SIZES)} (Table 5). "
            f"Received: {list(indices)}"
        )
    factor = geometry.window / _TABLE5_WINDOW
    return tuple(round(TABLE5_SIZES[i - 1] * factor) for i in indices)


def scales_from_factors(geometry: Geometry, factors: Sequence[float]):
    """Scales given as multiples of the window, as shorter sides in pixels."""
    return check_sizes(geometry, tuple(round(f * geometry.window) for f in factors))


def check_sizes(geometry: Geometry, sizes) -> tuple[int, ...]:
    """`sizes` as a tuple of ints, or a ValueError unless each is at least
    the window."""
    sizes = tuple(int(s) for s in sizes)
    if not sizes or min(sizes) < geometry.min_input_size:
        raise InvalidValueError(
            f"Scales must be at least the window ({geometry.min_input_size} px) "
            f"and there must be one. Received: {list(sizes)}"
        )
    return sizes


@dataclasses.dataclass(frozen=True)
class InferenceSettings:
    """How a trained model runs at test time, for every task.

    A runner takes one (`Classifier(model, settings)`) and keyword
    overrides of its fields (`Classifier(model, scales=(256,), flips=False)`);
    `serving.runner_for` builds one from a recipe.

    Attributes:
        scales: shorter sides in pixels, each >= the window; None (default)
            for Table 5's six (`paper_scales`).
        stride: `"fine"` (default, the paper's offset max pooling) or
            `"coarse"`.
        flips: also run every scale on the mirrored image (default True).
        smallest_side: shorter side the images are resized to for the
            window views (10 views, center crop); default 256, the training
            size.
        max_aspect_ratio: images whose longer side exceeds this many times
            their shorter side are refused (`InvalidArgumentError` naming
            it), as every scale would grow them that many times the scale's
            square; default `preprocessing.MAX_ASPECT_RATIO` (10). The SavedModel
            and TFLite files keep their runner's bound.
        top_k: classes a classifier returns (default 5, at most the number
            of classes).
        top_k_classes: classes per scale whose boxes a localizer merges (the
            paper's k; default 5). A detector merges every object class.
        max_detections: boxes returned per image; None for the runner's
            default (a localizer's 5, which the ILSVRC metric reads; a
            detector's 100).
        merge_threshold: the merge stops when the best pair's match score
            exceeds this (`merge.match_score`, in [0, 2)). Default 0.6.
        merge_score: a merged box's score: `"sum"` (default, the paper's: the
            sum of the class scores of the windows merged into it) or
            `"mean"` (their mean, which does not grow with the number of
            windows, so a threshold means the same at one scale as at six).
        min_window_score: a window's box enters the merge for each class it
            gives at least this probability; None for the runner's default
            (a localizer's 0: every window; a detector's 0.1).
        score_threshold: a detector drops merged boxes scoring less (0.5).
        max_candidates: None (default) merges every window's box; N merges
            only the N best in fixed-size buffers (`merge.greedy_merge_fixed`):
            static shapes for TFLite, and a bound on the merge's work.
        jit_compile: run the merge loop under XLA (default True).
    """

    scales: tuple[int, ...] | None = None
    stride: str = "fine"
    flips: bool = True
    smallest_side: int = 256
    max_aspect_ratio: float = MAX_ASPECT_RATIO
    top_k: int = 5
    top_k_classes: int = 5
    max_detections: int | None = None
    merge_threshold: float = 0.6
    merge_score: str = "sum"
    min_window_score: float | None = None
    score_threshold: float = 0.5
    max_candidates: int | None = None
    jit_compile: bool = True

    def for_model(self, model: OverFeat, **defaults) -> InferenceSettings:
        """These settings checked against `model`, with Table 5's scales
        when none are given and `defaults` for the fields left None."""
        if not isinstance(model, OverFeat):
            raise InvalidTypeError(
                "A runner takes an OverFeat model. "
                f"Received: model of type {type(model).__name__}"
            )
        geometry = model.geometry
        scales = paper_scales(geometry) if self.scales is None else self.scales
        if self.smallest_side < geometry.window:
            raise InvalidValueError(
                f"smallest_side must be at least the window ({geometry.window}). "
                f"Received: smallest_side={self.smallest_side}"
            )
        if not self.max_aspect_ratio >= 1:
            raise InvalidValueError(
                "max_aspect_ratio must be a number >= 1 (longer side / shorter "
                f"side). Received: max_aspect_ratio={self.max_aspect_ratio}"
            )
        if self.max_candidates is not None and self.max_candidates < 1:
            raise InvalidValueError(
                f"max_candidates must be >= 1 or None. Received: {self.max_candidates}"
            )
        if self.merge_score not in MERGE_SCORES:
            raise InvalidValueError(
                f"merge_score must be one of {MERGE_SCORES}. "
                f"Received: merge_score={self.merge_score!r}"
            )
        unset = {
            key: value for key, value in defaults.items() if getattr(self, key) is None
        }
        return dataclasses.replace(
            self,
            **unset,
            scales=check_sizes(geometry, scales),
            stride=check_stride(self.stride),
            flips=bool(self.flips),
            max_aspect_ratio=float(self.max_aspect_ratio),
            merge_threshold=float(self.merge_threshold),
            score_threshold=float(self.score_threshold),
        )


def settings_of(settings: InferenceSettings | None, options: dict) -> InferenceSettings:
    """`settings` (default `InferenceSettings()`) with the keyword `options`."""
    return dataclasses.replace(settings or InferenceSettings(), **options)


class Scaled(NamedTuple):
    """The dense model's outputs at one scale (views on the batch axis)."""

    outputs: dict
    views: int  # 1, or 2 with the mirror second
    shape: tuple  # (height, width) of the resized images
    original: tuple  # (height, width) of the input images


class Views(NamedTuple):
    """The coarse model's outputs on the window views of a batch."""

    outputs: dict  # on [V * B, w, w, 3], the views on the batch axis
    views: int
    center: tf.Tensor  # the center window (x1, y1, x2, y2) in resized pixels
    shape: tuple  # (height, width) of the resized images


class DensePass:
    """A trained OverFeat over the scales (and mirrors) of `settings`, and
    over window views; one per model, shared by the runners on it."""

    def __init__(self, model: OverFeat, settings: InferenceSettings):
        self.model = model
        self.settings = settings
        self.geometry = model.geometry
        stride = settings.stride
        self.dense = model if model.stride == stride else dense(model, stride)
        self.coarse = model if model.stride == "coarse" else dense(model, "coarse")

    def scales(self, images):
        """The dense model on every scale of RGB `images`, flips batched in.

        Yields one `Scaled` per scale: the model's outputs on the resized
        batch (then its mirror when `flips`, concatenated on the batch axis).
        """
        settings = self.settings
        height, width = image_size(images)
        for size in settings.scales:
            shape = smallest_side_shape(height, width, size, settings.max_aspect_ratio)
            scaled = normalize(resize(images, *shape))
            views = [scaled, tf.reverse(scaled, [2])] if settings.flips else [scaled]
            outputs = self.dense(tf.concat(views, 0), training=False)
            yield Scaled(outputs, len(views), shape, (height, width))

    def windows(self, images, corners: bool) -> Views:
        """The center window of RGB `images` resized to `smallest_side` (and
        with `corners`, the 4 corner windows and the mirrors of all 5)."""
        shape = tf.shape(images)
        images = resize(
            images,
            *smallest_side_shape(
                shape[1],
                shape[2],
                self.settings.smallest_side,
                self.settings.max_aspect_ratio,
            ),
        )
        w = self.geometry.window
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        bottom, right = height - w, width - w
        offsets = [(bottom // 2, right // 2)]
        if corners:
            offsets += [(0, 0), (0, right), (bottom, 0), (bottom, right)]
        windows = [images[:, y : y + w, x : x + w] for y, x in offsets]
        if corners:
            windows += [tf.reverse(window, [2]) for window in windows]
        batch = tf.ensure_shape(tf.concat(windows, 0), [None, w, w, 3])
        top, left = offsets[0]
        center = tf.cast(tf.stack([left, top, left + w, top + w]), tf.float32)
        outputs = self.coarse(normalize(batch), training=False)
        return Views(outputs, len(windows), center, (height, width))


def run(graph, images):
    """`graph` on an image or a batch (checked), rows without the batch axis
    for a single image."""
    images, single = as_batch(images)
    outputs = graph(images)
    if single:
        return {name: value[0] for name, value in outputs.items()}
    return outputs


def as_batch(images) -> tuple[tf.Tensor, bool]:
    """Checks an image or a batch and returns float32 [B, H, W, C], single."""
    if isinstance(images, (str, bytes)) or not hasattr(images, "shape"):
        try:
            images = np.asarray(images)
        except (TypeError, ValueError):
            images = None
        if images is None or images.dtype == object or images.dtype.kind in "SUO":
            raise InvalidTypeError(
                "Expected an image array [H, W, C] or a batch [B, H, W, C] of "
                "uint8 or float pixels; decode image files first."
            )
    dtype = tf.as_dtype(images.dtype)
    if not (dtype.is_floating or dtype in (tf.uint8, tf.uint16, tf.int32)):
        raise InvalidTypeError(
            f"Images must be uint8 or float pixels. Received: dtype={dtype.name}"
        )
    shape = tuple(images.shape)
    if len(shape) not in (3, 4) or shape[-1] not in (1, 2, 3, 4):
        raise InvalidValueError(
            "Expected an image [H, W, C] or a batch [B, H, W, C] with C in "
            f"1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). Received: shape={shape}"
        )
    if 0 in shape:
        raise InvalidValueError(f"Empty image or batch. Received: shape={shape}")
    images = tf.cast(images, tf.float32)
    # A NaN would come out as a confident class (docs/deploy.md, "Limits and
    # safety"). Checked on eager calls; traced for an export, the graphs
    # take what they are given (the SavedModel takes uint8 and bytes only).
    if (
        dtype.is_floating
        and tf.executing_eagerly()
        and not tf.reduce_all(tf.math.is_finite(images))
    ):
        raise InvalidValueError(
            "Images must hold finite pixel values (0-255), not NaN or inf"
        )
    single = len(shape) == 3
    return (images[None] if single else images), single


def image_size(images):
    """(height, width) of [B, H, W, C]: Python ints where static (a graph for
    one image size then has static shapes throughout, as TFLite needs)."""
    shape = tf.shape(images)
    return tuple(images.shape[i] or shape[i] for i in (1, 2))


def rgb(images):
    """[B, H, W, C] with C in 1-4 -> [B, H, W, 3]: gray repeated, alpha dropped."""
    if images.shape[-1] is not None:
        if images.shape[-1] < 3:
            return tf.tile(images[..., :1], [1, 1, 1, 3])
        return images[..., :3]
    channels = tf.shape(images)[-1]
    rgb = tf.cond(
        channels < 3,
        lambda: tf.tile(images[..., :1], [1, 1, 1, 3]),
        lambda: images[..., :3],
    )
    return tf.ensure_shape(rgb, [None, None, None, 3])
