"""Multi-scale dense classification (section 4.2) as one `tf.function` graph.

`Classifier` runs a trained model densely over several scales and their
horizontal flips, takes each class's spatial maximum per scale and flip,
and averages those vectors: the paper's Table 2 protocol. It also offers
the comparison view of Krizhevsky et al. (2012): 4 corners + center and
their flips (`ten_views`), and the single center window of training-time
validation (`center_crop`). Evaluation, the CLI and the exporters all call
this one graph.

Scales. A scale is the length, in pixels, of the image's *shorter* side
after resizing; the longer side keeps the aspect ratio. Table 5's six
scales are the shorter sides 245, 281, 317, 389, 425, 461 of the accurate
model (window 221); other networks use the same multiples of their window
(`paper_scales`). Any image size goes in: smaller images are enlarged,
larger ones shrunk (antialiased) to each scale.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from overfeat_tf.architectures import Geometry, check_stride
from overfeat_tf.data.pipelines import (
    MAX_ASPECT_RATIO,
    normalize,
    resize,
    smallest_side_shape,
)
from overfeat_tf.derived import dense
from overfeat_tf.errors import InvalidTypeError, InvalidValueError
from overfeat_tf.models import OverFeat

# Sermanet et al. (2014), Table 5: the shorter side of the six scales of
# the accurate model, whose window is `_TABLE5_WINDOW`.
TABLE5_SIZES = (245, 281, 317, 389, 425, 461)
_TABLE5_WINDOW = 221


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


class _Scaled(NamedTuple):
    """The dense model's outputs at one scale (views on the batch axis)."""

    outputs: dict
    views: int  # 1, or 2 with the mirror second
    shape: tuple  # (height, width) of the resized images
    original: tuple  # (height, width) of the input images


_IMAGES = tf.TensorSpec([None, None, None, None], tf.float32, name="images")


class Classifier(tf.Module):
    """A trained OverFeat run densely over scales and flips: images -> classes.

    `classifier(images)` takes one image [H, W, C] or a batch [B, H, W, C]
    of any size, uint8 or float pixels in [0, 255]; C is 3 (RGB), 1
    (grayscale, repeated to RGB), 2 (grayscale + alpha) or 4 (RGBA): alpha
    is dropped. For each scale it resizes the batch (shorter side = scale),
    runs the dense model at `stride` on it and on its mirror, applies a
    softmax at every cell, takes each class's maximum over the map, and
    averages these vectors over scales and flips.

    Returns a dict: `probabilities` float32 [B, C] (the averaged maxima,
    divided by their sum so that a row sums to 1; on a single window this
    is the plain softmax), `top_k_ids` int32 [B, k], `top_k_probabilities`
    float32 [B, k] and `top_k_names` string [B, k] (`model.class_names`).
    A single image gives rows without the batch axis.

    Images in one batch share one size; batch images of different sizes
    separately. The graphs (`dense_graph`, `ten_view_graph`) take float32
    [B, H, W, C] pixels and are what exporters serve.

    Args:
        model: a trained `OverFeat` (any stride; the weights are shared).
        scales: shorter sides in pixels, each >= the window; default all
            six of `paper_scales`.
        stride: `"fine"` (default, the paper's offset max pooling) or
            `"coarse"`.
        flips: also run every scale on the mirrored image (default True).
        top_k: classes in the top-k outputs (default 5, at most the number
            of classes).
        smallest_side: shorter side the images are resized to for
            `ten_views` and `center_crop` (default 256, the training size).
        max_aspect_ratio: images whose longer side exceeds this many times
            their shorter side are refused (`InvalidArgumentError` naming
            it), as every scale would grow them that many times the
            scale's square; default `pipelines.MAX_ASPECT_RATIO` (10).
            The SavedModel and TFLite files keep their runner's bound.
    """

    # The tasks this runner serves (`serving.task_graph`), its own first.
    tasks = ("classify",)

    def __init__(
        self,
        model: OverFeat,
        *,
        scales: Sequence[int] | None = None,
        stride: str = "fine",
        flips: bool = True,
        top_k: int = 5,
        smallest_side: int = 256,
        max_aspect_ratio: float = MAX_ASPECT_RATIO,
    ):
        super().__init__(name="overfeat_classifier")
        if not isinstance(model, OverFeat):
            raise InvalidTypeError(
                "Classifier takes an OverFeat model. "
                f"Received: model of type {type(model).__name__}"
            )
        geometry = model.geometry
        self.scales = check_sizes(
            geometry, paper_scales(geometry) if scales is None else scales
        )
        self.stride = check_stride(stride)
        self.flips = bool(flips)
        if not 1 <= top_k <= model.num_classes:
            raise InvalidValueError(
                f"top_k must be in [1, {model.num_classes}] (the number of "
                f"classes). Received: top_k={top_k}"
            )
        self.top_k = top_k
        if smallest_side < geometry.window:
            raise InvalidValueError(
                f"smallest_side must be at least the window ({geometry.window}). "
                f"Received: smallest_side={smallest_side}"
            )
        self.smallest_side = smallest_side
        if not max_aspect_ratio >= 1:
            raise InvalidValueError(
                "max_aspect_ratio must be a number >= 1 (longer side / shorter "
                f"side). Received: max_aspect_ratio={max_aspect_ratio}"
            )
        self.max_aspect_ratio = float(max_aspect_ratio)
        self.model = model
        self.geometry = geometry
        self._dense = model if model.stride == stride else dense(model, stride)
        self._coarse = model if model.stride == "coarse" else dense(model, "coarse")
        self._names = tf.constant(list(model.class_names))

    def __call__(self, images):
        """Multi-scale dense classification; see the class docstring."""
        return self._run(self.dense_graph, images)

    def ten_views(self, images):
        """The 10-view protocol: 4 corner and 1 center windows, and flips.

        Images are resized so that their shorter side is `smallest_side`;
        the 10 windows' softmax outputs are averaged. Same inputs and
        outputs as calling the classifier.
        """
        return self._run(self.ten_view_graph, images)

    def center_crop(self, images):
        """One center window of the image resized to `smallest_side`: the
        training-time validation view, the baseline of Table 2."""
        return self._run(self.center_crop_graph, images)

    @tf.function(input_signature=[_IMAGES])
    def dense_graph(self, images):
        """float32 pixels [B, H, W, C] -> outputs (multi-scale dense pass)."""
        maxima = []
        for scaled in self._dense_pass(_rgb(images)):
            cell_max = tf.reduce_max(
                tf.nn.softmax(scaled.outputs["class_logits"]), axis=[1, 2]
            )
            maxima.extend(tf.split(cell_max, scaled.views))
        scores = tf.reduce_mean(tf.stack(maxima), 0)
        return self._outputs(scores / tf.reduce_sum(scores, -1, keepdims=True))

    def _dense_pass(self, images):
        """The dense model on every scale of RGB `images`, flips batched in.

        Yields one `_Scaled` per scale: the model's outputs on the resized
        batch (then its mirror when `flips`, concatenated on the batch axis).
        """
        height, width = _size(images)
        for size in self.scales:
            shape = smallest_side_shape(height, width, size, self.max_aspect_ratio)
            scaled = normalize(resize(images, *shape))
            views = [scaled, tf.reverse(scaled, [2])] if self.flips else [scaled]
            outputs = self._dense(tf.concat(views, 0), training=False)
            yield _Scaled(outputs, len(views), shape, (height, width))

    @tf.function(input_signature=[_IMAGES])
    def ten_view_graph(self, images):
        """float32 pixels [B, H, W, C] -> outputs (10 windows per image)."""
        return self._windows(images, corners=True)

    @tf.function(input_signature=[_IMAGES])
    def center_crop_graph(self, images):
        """float32 pixels [B, H, W, C] -> outputs (the center window)."""
        return self._windows(images, corners=False)

    def _windows(self, images, corners):
        """Softmax averaged over the center window (and corners and flips)."""
        images = _rgb(images)
        shape = tf.shape(images)
        images = resize(
            images,
            *smallest_side_shape(
                shape[1], shape[2], self.smallest_side, self.max_aspect_ratio
            ),
        )
        w = self.geometry.window
        bottom, right = tf.shape(images)[1] - w, tf.shape(images)[2] - w
        offsets = [(bottom // 2, right // 2)]
        if corners:
            offsets += [(0, 0), (0, right), (bottom, 0), (bottom, right)]
        windows = [images[:, y : y + w, x : x + w] for y, x in offsets]
        if corners:
            windows += [tf.reverse(window, [2]) for window in windows]
        batch = tf.ensure_shape(tf.concat(windows, 0), [None, w, w, 3])
        logits = self._coarse(normalize(batch), training=False)["class_logits"]
        probabilities = tf.nn.softmax(logits[:, 0, 0])
        return self._outputs(tf.reduce_mean(tf.split(probabilities, len(windows)), 0))

    def _outputs(self, probabilities):
        top = tf.math.top_k(probabilities, self.top_k)
        outputs = {
            "probabilities": probabilities,
            "top_k_ids": top.indices,
            "top_k_probabilities": top.values,
        }
        outputs["top_k_names"] = tf.gather(self._names, top.indices)
        return outputs

    def _run(self, graph, images):
        images, single = _as_batch(images)
        outputs = graph(images)
        if single:
            return {name: value[0] for name, value in outputs.items()}
        return outputs


def _as_batch(images) -> tuple[tf.Tensor, bool]:
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
    # A NaN would come out as a confident class (docs/deploy.md,
    # "Limits and safety"). Checked on eager calls; traced for an export, the graphs
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


def _size(images):
    """(height, width) of [B, H, W, C]: Python ints where static (a graph for
    one image size then has static shapes throughout, as TFLite needs)."""
    shape = tf.shape(images)
    return tuple(images.shape[i] or shape[i] for i in (1, 2))


def _rgb(images):
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
