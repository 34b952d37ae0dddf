"""Multi-scale localization (section 4.3) as one `tf.function` graph.

`Localizer` runs a model with a box regressor: the scale's top-k classes
each take the box of every cell, the boxes of all scales are merged
greedily per class (`box_search.BoxSearch`), and the best merged boxes,
scored by the sum of the probabilities they gathered, are the answer. It
keeps a `Classifier` on the same dense pass for the model's classes.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from overfeat_tf import boxes as box_ops
from overfeat_tf.box_search import BoxSearch, ordered, to_original
from overfeat_tf.dense_pass import IMAGES, InferenceSettings, rgb, run, settings_of
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.inference import Classifier
from overfeat_tf.models import OverFeat


class Localizer(tf.Module):
    """A classifier with a box regressor: images -> up to 5 (class, score, box).

    `localizer(images)` takes what `Classifier` takes (one image or a batch,
    uint8 or float, gray, RGB or RGBA, any size) and returns the box schema
    `Detector` and the SavedModel share: `boxes` float32 [B, P, 4] (x1, y1,
    x2, y2 in the input image's pixels, clipped to it), `classes` int32
    [B, P], `scores` float32 [B, P] (the summed class probabilities of the
    windows merged into each box), `num_detections` int32 [B] and
    `class_names` string [B, P] ("" pads); P = `max_detections`, best first,
    padded with class -1, score 0 and empty boxes
    (`boxes.keras_cv_detections` adapts it to KerasCV's). `classifier` is
    a `Classifier` on the same dense pass.

    Args:
        model: an `OverFeat` with a regressor (`with_regressor`, or trained
            by `overfeat train --task localize`).
        settings: an `InferenceSettings`; it reads scales, stride, flips,
            smallest_side, max_aspect_ratio, top_k_classes (at most the
            number of classes), max_detections (default 5, which the ILSVRC
            metric reads), merge_threshold, merge_score, min_window_score
            (default 0: every window's box enters the merge),
            max_candidates and jit_compile.
        max_predictions: the boxes returned per image (`max_detections`).
        **options: overrides of `settings`' fields.
    """

    tasks = ("localize", "classify")

    def __init__(
        self,
        model: OverFeat,
        settings: InferenceSettings | None = None,
        *,
        max_predictions: int | None = None,
        **options,
    ):
        super().__init__(name="overfeat_localizer")
        if max_predictions is not None:
            options["max_detections"] = max_predictions
        settings = settings_of(settings, options).for_model(
            model, max_detections=5, min_window_score=0.0
        )
        if model.regressor is None:
            raise InvalidValueError(
                f"{model.name} has no box regressor: train one with "
                "`overfeat train --task localize`, or add one with "
                "`overfeat_tf.with_regressor`."
            )
        check_box_settings(settings, model.num_classes)
        self.settings = settings
        self.model = model
        self.classifier = Classifier(
            model, dataclasses.replace(settings, top_k=min(5, model.num_classes))
        )
        self.search = BoxSearch(self.classifier.dense_pass, settings, model.num_classes)

    def __call__(self, images):
        """Multi-scale localization; see the class docstring."""
        return run(self.serve, images)

    def localize_center_crop(self, images):
        """The regressor on the one center window of the image resized to
        `smallest_side`: the top `max_detections` classes of that window,
        each with its box. Same inputs and outputs as calling the localizer."""
        return run(self.center_crop_graph, images)

    @tf.function(input_signature=[IMAGES])
    def serve(self, images):
        """float32 pixels [B, H, W, C] -> predictions (scales, merge, rank)."""
        return self.search(images)

    @tf.function(input_signature=[IMAGES])
    def center_crop_graph(self, images):
        """float32 pixels [B, H, W, C] -> predictions of the center window."""
        images = rgb(images)
        shape = tf.shape(images)
        views = self.classifier.dense_pass.windows(images, corners=False)
        probabilities = tf.nn.softmax(views.outputs["class_logits"][:, 0, 0])
        count = min(self.settings.max_detections, self.model.num_classes)
        top_k = tf.math.top_k(probabilities, count)
        codes = self.search.class_codes(views.outputs["boxes"][:, 0, 0], top_k.indices)
        window = self.model.geometry.window
        boxes = ordered(box_ops.decode_windows(codes, views.center, window))
        boxes *= to_original(views.shape, (shape[1], shape[2]))
        limits = tf.cast(tf.stack([shape[2], shape[1]] * 2), tf.float32)
        return self.search.named(
            tf.map_fn(
                lambda x: self.search.padded(*x),
                (tf.clip_by_value(boxes, 0.0, limits), top_k.values, top_k.indices),
                fn_output_signature=self.search.signature(),
            )
        )


def check_box_settings(settings: InferenceSettings, classes: int) -> None:
    """top_k_classes in [1, `classes`] and max_detections >= 1."""
    if not 1 <= settings.top_k_classes <= classes:
        raise InvalidValueError(
            f"top_k_classes must be in [1, {classes}] (the number of "
            f"classes). Received: top_k_classes={settings.top_k_classes}"
        )
    if settings.max_detections < 1:
        raise InvalidValueError(
            f"max_predictions must be >= 1. Received: {settings.max_detections}"
        )
