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

from typing import Sequence

import tensorflow as tf

from overfeat_tf.data.pipelines import MAX_ASPECT_RATIO
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.inference import _IMAGES
from overfeat_tf.localizer import Localizer
from overfeat_tf.models import BACKGROUND, OverFeat


class Detector(Localizer):
    """A detector: images -> every object found, as boxes, classes, confidences.

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
        scales, stride, flips, smallest_side, merge_threshold, jit_compile,
        max_candidates, merge_score, max_aspect_ratio: as for `Localizer`.
        min_window_score: a window's box enters the merge for each class it
            gives at least this probability (default 0.1).
        score_threshold: merged boxes scoring less are dropped (default 0.5).
        max_detections: M (default 100).
    """

    tasks = ("detect",)

    def __init__(
        self,
        model: OverFeat,
        *,
        scales: Sequence[int] | None = None,
        stride: str = "fine",
        flips: bool = True,
        merge_threshold: float = 0.6,
        min_window_score: float = 0.1,
        score_threshold: float = 0.5,
        max_detections: int = 100,
        smallest_side: int = 256,
        jit_compile: bool = True,
        max_candidates: int | None = None,
        merge_score: str = "sum",
        max_aspect_ratio: float = MAX_ASPECT_RATIO,
    ):
        if getattr(model, "task", None) != "detect":
            raise InvalidValueError(
                "Detector needs a model trained with a background class (its last "
                f"class named {BACKGROUND!r}; `overfeat train --task detect`). "
                f"Received: class_names={getattr(model, 'class_names', None)!r}"
            )
        super().__init__(
            model,
            scales=scales,
            stride=stride,
            flips=flips,
            top_k_classes=model.num_classes - 1,
            merge_threshold=merge_threshold,
            max_predictions=max_detections,
            smallest_side=smallest_side,
            jit_compile=jit_compile,
            max_candidates=max_candidates,
            merge_score=merge_score,
            max_aspect_ratio=max_aspect_ratio,
        )
        self.min_window_score = float(min_window_score)
        self.score_threshold = float(score_threshold)

    @property
    def object_classes(self) -> int:
        """Every class but the background (the last)."""
        return self.model.num_classes - 1

    def __call__(self, images):
        """Multi-scale detection; see the class docstring."""
        return self._run(self.detect_graph, images)

    @tf.function(input_signature=[_IMAGES])
    def detect_graph(self, images):
        """float32 pixels [B, H, W, C] -> detections (the box schema)."""
        return self._named(
            self._merged(images, self.min_window_score, self.score_threshold)
        )
