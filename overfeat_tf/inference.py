"""Multi-scale dense classification (section 4.2) as one `tf.function` graph.

`Classifier` runs a trained model densely over several scales and their
horizontal flips (`dense_pass.DensePass`), takes each class's spatial
maximum per scale and flip, and averages those vectors: the paper's Table 2
protocol. It also offers the comparison view of Krizhevsky et al. (2012):
4 corners + center and their flips (`ten_views`), and the single center
window of training-time validation (`center_crop`). Evaluation, the CLI and
the exporters all call its one serving graph, `serve`.
"""

from __future__ import annotations

import tensorflow as tf

from overfeat_tf.dense_pass import (
    IMAGES,
    TABLE5_SIZES,
    DensePass,
    InferenceSettings,
    check_sizes,
    paper_scales,
    rgb,
    run,
    scales_from_factors,
    settings_of,
)
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.models import OverFeat

__all__ = [
    "TABLE5_SIZES",
    "Classifier",
    "InferenceSettings",
    "check_sizes",
    "paper_scales",
    "scales_from_factors",
]


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
    separately. `serve` (and `ten_view_graph`, `center_crop_graph`) take
    float32 [B, H, W, C] pixels; `serve` is what the exporters serve.

    Args:
        model: a trained `OverFeat` (any stride; the weights are shared).
        settings: an `InferenceSettings` (default: its defaults); it reads
            scales, stride, flips, top_k, smallest_side, max_aspect_ratio.
        dense_pass: a `DensePass` on `model` to share (another runner's).
        **options: overrides of `settings`' fields, e.g. `scales=(256,)`.
    """

    tasks = ("classify",)

    def __init__(
        self,
        model: OverFeat,
        settings: InferenceSettings | None = None,
        *,
        dense_pass: DensePass | None = None,
        **options,
    ):
        super().__init__(name="overfeat_classifier")
        settings = settings_of(settings, options).for_model(model)
        if not 1 <= settings.top_k <= model.num_classes:
            raise InvalidValueError(
                f"top_k must be in [1, {model.num_classes}] (the number of "
                f"classes). Received: top_k={settings.top_k}"
            )
        self.settings = settings
        self.model = model
        self.dense_pass = dense_pass or DensePass(model, settings)
        self._names = tf.constant(list(model.class_names))

    def __call__(self, images):
        """Multi-scale dense classification; see the class docstring."""
        return run(self.serve, images)

    def ten_views(self, images):
        """The 10-view protocol: 4 corner and 1 center windows, and flips.

        Images are resized so that their shorter side is `smallest_side`;
        the 10 windows' softmax outputs are averaged. Same inputs and
        outputs as calling the classifier.
        """
        return run(self.ten_view_graph, images)

    def center_crop(self, images):
        """One center window of the image resized to `smallest_side`: the
        training-time validation view, the baseline of Table 2."""
        return run(self.center_crop_graph, images)

    @tf.function(input_signature=[IMAGES])
    def serve(self, images):
        """float32 pixels [B, H, W, C] -> outputs (multi-scale dense pass)."""
        maxima = []
        for scaled in self.dense_pass.scales(rgb(images)):
            cell_max = tf.reduce_max(
                tf.nn.softmax(scaled.outputs["class_logits"]), axis=[1, 2]
            )
            maxima.extend(tf.split(cell_max, scaled.views))
        scores = tf.reduce_mean(tf.stack(maxima), 0)
        return self._outputs(scores / tf.reduce_sum(scores, -1, keepdims=True))

    @tf.function(input_signature=[IMAGES])
    def ten_view_graph(self, images):
        """float32 pixels [B, H, W, C] -> outputs (10 windows per image)."""
        return self._windows(images, corners=True)

    @tf.function(input_signature=[IMAGES])
    def center_crop_graph(self, images):
        """float32 pixels [B, H, W, C] -> outputs (the center window)."""
        return self._windows(images, corners=False)

    def _windows(self, images, corners):
        """Softmax averaged over the center window (and corners and flips)."""
        views = self.dense_pass.windows(rgb(images), corners)
        probabilities = tf.nn.softmax(views.outputs["class_logits"][:, 0, 0])
        return self._outputs(tf.reduce_mean(tf.split(probabilities, views.views), 0))

    def _outputs(self, probabilities):
        top = tf.math.top_k(probabilities, self.settings.top_k)
        return {
            "probabilities": probabilities,
            "top_k_ids": top.indices,
            "top_k_probabilities": top.values,
            "top_k_names": tf.gather(self._names, top.indices),
        }
