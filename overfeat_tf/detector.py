"""Multi-scale detection (section 4.4) as one `tf.function` graph.

`Detector` runs a detector (a network trained with a background class and
a box regressor, `overfeat train --task detect`) like the localizer, but
for every object class instead of the top k: each window's box counts for
each class it scores at least `min_window_score` for (background excluded),
boxes merge per class (`merge.greedy_merge`), and merged boxes whose
summed score reaches `score_threshold` are the detections, best first, up
to `max_detections`.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from overfeat_tf.box_search import BoxSearch
from overfeat_tf.dense_pass import (
    IMAGES,
    DensePass,
    InferenceSettings,
    run,
    settings_of,
)
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.localizer import check_box_settings
from overfeat_tf.models import BACKGROUND, OverFeat

# Detections returned per image unless the settings say otherwise.
MAX_DETECTIONS = 100


class Detector(tf.Module):
    """A detector: images -> every object found, as boxes, classes, scores.

    `detector(images)` takes what `Classifier` takes and returns the box
    schema of `Localizer` and the SavedModel, padded to `max_detections`:
    `boxes` float32 [B, M, 4] (x1, y1, x2, y2 in the input image's pixels),
    `classes` int32 [B, M] (-1 for padding), `scores` float32 [B, M] (the
    summed class probabilities of the windows merged into each box; 0 for
    padding), `num_detections` int32 [B] and `class_names` string [B, M].
    `boxes.keras_cv_detections` turns it into KerasCV's dict.

    Args:
        model: an `OverFeat` whose last class is `"background"` and which
            has a box regressor (`with_background`, trained with
            `overfeat train --task detect`).
        settings: an `InferenceSettings`; it reads scales, stride, flips,
            max_aspect_ratio, merge_threshold, merge_score, max_candidates,
            jit_compile, min_window_score (default 0.1: a window's box
            enters the merge for each class it gives at least this
            probability), score_threshold (merged boxes scoring less are
            dropped) and max_detections (M, default 100). Every object
            class is searched (`top_k_classes` is not read).
        **options: overrides of `settings`' fields.
    """

    tasks = ("detect",)

    def __init__(
        self,
        model: OverFeat,
        settings: InferenceSettings | None = None,
        **options,
    ):
        super().__init__(name="overfeat_detector")
        if getattr(model, "task", None) != "detect":
            raise InvalidValueError(
                "Detector needs a model trained with a background class (its last "
                f"class named {BACKGROUND!r}; `overfeat train --task detect`). "
                f"Received: class_names={getattr(model, 'class_names', None)!r}"
            )
        classes = model.num_classes - 1
        settings = settings_of(settings, options).for_model(
            model, max_detections=MAX_DETECTIONS, min_window_score=0.1
        )
        settings = dataclasses.replace(settings, top_k_classes=classes)
        check_box_settings(settings, classes)
        self.settings = settings
        self.model = model
        self.search = BoxSearch(
            DensePass(model, settings), settings, classes, settings.score_threshold
        )

    def __call__(self, images):
        """Multi-scale detection; see the class docstring."""
        return run(self.serve, images)

    @tf.function(input_signature=[IMAGES])
    def serve(self, images):
        """float32 pixels [B, H, W, C] -> detections (the box schema)."""
        return self.search(images)
