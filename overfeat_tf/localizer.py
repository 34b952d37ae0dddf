"""Multi-scale localization (section 4.3) as one `tf.function` graph.

`Localizer` extends `Classifier` with the box regressor: for every scale
(and its mirror), the dense pass gives class probabilities and a box at
every cell; the scale's top-k classes (by their maximum over the cells)
each take the box of every cell, scored by that cell's probability of the
class, in the original image's pixels; the boxes of all scales are merged
greedily per class (`merge.greedy_merge`), and the best merged boxes,
scored by the sum of the probabilities they gathered, are the answer.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from overfeat_tf import boxes as box_ops
from overfeat_tf.data.pipelines import (
    MAX_ASPECT_RATIO,
    normalize,
    resize,
    smallest_side_shape,
)
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.inference import _IMAGES, Classifier, _rgb
from overfeat_tf.merge import greedy_merge, greedy_merge_fixed
from overfeat_tf.models import OverFeat

# How a merged box is scored (`Localizer`'s merge_score).
MERGE_SCORES = ("sum", "mean")


class Localizer(Classifier):
    """A classifier with a box regressor: images -> up to 5 (class, score, box).

    `localizer(images)` takes what `Classifier` takes (one image or a batch,
    uint8 or float, gray, RGB or RGBA, any size) and returns a dict:
    `boxes` float32 [B, P, 4] (x1, y1, x2, y2 in the input image's pixels,
    clipped to it), `classes` int32 [B, P], `scores` float32 [B, P] (the
    summed class probabilities of the windows merged into each box),
    `num_detections` int32 [B] and `class_names` string [B, P] ("" pads);
    P = `max_predictions`, best first, padded with class -1, score 0 and
    empty boxes: the box schema `Detector` and the SavedModel share
    (`boxes.keras_cv_detections` adapts it to KerasCV's). The classifier's
    methods stay available.

    Args:
        model: an `OverFeat` with a regressor (`with_regressor`, or trained
            by `overfeat train --task localize`).
        scales, stride, flips, smallest_side, max_aspect_ratio: as for
            `Classifier`.
        top_k_classes: the classes per scale whose boxes are merged (the
            paper's k; at most the number of classes). Default 5.
        merge_threshold: the merge stops when the best pair's match score
            exceeds this (`merge.match_score`, in [0, 2)). Default 0.6.
        max_predictions: P, the boxes returned per image (the ILSVRC
            metric reads 5). Default 5.
        jit_compile: run the merge loop under XLA (default True).
        merge_score: a merged box's confidence: `"sum"` (default, the
            paper's: the sum of the class scores of the windows merged into
            it, which favours boxes that many windows and scales agree on)
            or `"mean"` (their mean: a score that does not grow with the
            number of windows, so that a detector's threshold means the
            same at one scale as at six). Boxes are ranked by it.
        max_candidates: None (default) merges every window's box; a number
            N merges only the N best (by window score) in fixed-size
            buffers (`merge.greedy_merge_fixed`), all classes in one loop:
            static shapes for TFLite, and a bound on the merge's work. The
            result is the same whenever no more than N windows qualify.
    """

    tasks = ("localize", "classify")
    # Every window's box enters the merge (a Detector sets a floor).
    min_window_score = 0.0

    def __init__(
        self,
        model: OverFeat,
        *,
        scales: Sequence[int] | None = None,
        stride: str = "fine",
        flips: bool = True,
        top_k_classes: int = 5,
        merge_threshold: float = 0.6,
        max_predictions: int = 5,
        smallest_side: int = 256,
        jit_compile: bool = True,
        max_candidates: int | None = None,
        merge_score: str = "sum",
        max_aspect_ratio: float = MAX_ASPECT_RATIO,
    ):
        super().__init__(  # checks that `model` is an OverFeat
            model,
            scales=scales,
            stride=stride,
            flips=flips,
            top_k=min(5, getattr(model, "num_classes", 5)),
            smallest_side=smallest_side,
            max_aspect_ratio=max_aspect_ratio,
        )
        if model.regressor is None:
            raise InvalidValueError(
                f"{model.name} has no box regressor: train one with "
                "`overfeat train --task localize`, or add one with "
                "`overfeat_tf.with_regressor`."
            )
        classes = self.object_classes
        if not 1 <= top_k_classes <= classes:
            raise InvalidValueError(
                f"top_k_classes must be in [1, {classes}] (the number of "
                f"classes). Received: top_k_classes={top_k_classes}"
            )
        if max_predictions < 1:
            raise InvalidValueError(
                f"max_predictions must be >= 1. Received: {max_predictions}"
            )
        self.top_k_classes = top_k_classes
        self.merge_threshold = float(merge_threshold)
        self.max_predictions = max_predictions
        self.jit_compile = jit_compile
        if max_candidates is not None and max_candidates < 1:
            raise InvalidValueError(
                f"max_candidates must be >= 1 or None. Received: {max_candidates}"
            )
        self.max_candidates = max_candidates
        if merge_score not in MERGE_SCORES:
            raise InvalidValueError(
                f"merge_score must be one of {MERGE_SCORES}. "
                f"Received: merge_score={merge_score!r}"
            )
        self.merge_score = merge_score

    @property
    def object_classes(self) -> int:
        """Classes whose boxes are sought (the first ones of the model)."""
        return self.model.num_classes

    def __call__(self, images):
        """Multi-scale localization; see the class docstring."""
        return self._run(self.localize_graph, images)

    def localize_center_crop(self, images):
        """The regressor on the one center window of the image resized to
        `smallest_side`: the top `max_predictions` classes of that window,
        each with its box. Same inputs and outputs as calling the localizer."""
        return self._run(self.center_crop_localize_graph, images)

    @tf.function(input_signature=[_IMAGES])
    def localize_graph(self, images):
        """float32 pixels [B, H, W, C] -> predictions (scales, merge, rank)."""
        return self._named(self._merged(images))

    def _merged(self, images, min_window_score=0.0, min_score=None):
        """Every scale's candidate boxes, merged per image and ranked.

        Windows scoring below `min_window_score` are left out before the
        merge, and merged boxes scoring below `min_score` after it.
        """
        candidates = self._candidates_of(images, min_window_score)
        shape = tf.shape(images)
        limits = tf.cast(tf.stack([shape[2], shape[1]] * 2), tf.float32)

        def merge_one(inputs):
            boxes, scores, classes, valid = inputs
            if self.max_candidates is None:
                merged = greedy_merge(
                    *(tf.boolean_mask(x, valid) for x in (boxes, scores, classes)),
                    self.merge_threshold,
                    jit_compile=self.jit_compile,
                )
                count = tf.size(merged["scores"])
            else:
                merged = greedy_merge_fixed(
                    *inputs, self.merge_threshold, jit_compile=self.jit_compile
                )
                count = merged["count"]
            if self.merge_score == "mean":
                merged = _ranked_by_mean(merged)
            # Scores are descending: those >= min_score come first.
            if min_score is not None:
                count = tf.reduce_sum(
                    tf.cast(merged["scores"][:count] >= min_score, tf.int32)
                )
            return self._padded(
                tf.clip_by_value(merged["boxes"], 0.0, limits),
                merged["scores"],
                merged["classes"],
                count,
            )

        return tf.map_fn(
            merge_one, candidates, fn_output_signature=self._padded_signature()
        )

    def candidates_graph(self, images):
        """The merge's input: float32 pixels [B, H, W, C] -> `boxes` [B, K, 4]
        (pixels of the input, unclipped), `scores` [B, K] (window class
        probabilities), `classes` [B, K] and `valid` [B, K] (the windows
        scoring >= `self.min_window_score`); K = `max_candidates`, the best
        windows, in window order (the merge breaks ties by it).
        `merge.greedy_merge_fixed` of an image's rows is the merge of
        `localize_graph`. Traced by the caller (needs `max_candidates`)."""
        if self.max_candidates is None:
            raise InvalidValueError(
                "candidates_graph needs a Localizer with max_candidates"
            )
        boxes, scores, classes, valid = self._candidates_of(
            images, self.min_window_score
        )
        return {"boxes": boxes, "scores": scores, "classes": classes, "valid": valid}

    def _candidates_of(self, images, min_window_score):
        """(boxes, scores, classes, valid) of every scale's windows [B, N],
        or of the `max_candidates` best valid ones."""
        candidates = [self._candidates(s) for s in self._dense_pass(_rgb(images))]
        boxes, scores, classes = (tf.concat(c, 1) for c in zip(*candidates))
        valid = scores >= min_window_score
        if self.max_candidates is None:
            return boxes, scores, classes, valid
        n = boxes.shape[1] or tf.shape(boxes)[1]
        # Scores are probabilities: -1 ranks the invalid last, and unlike
        # -inf it leaves int8 quantization a sane range.
        best = tf.math.top_k(
            tf.where(valid, scores, -1.0), tf.minimum(self.max_candidates, n)
        )
        rows = tf.sort(best.indices)  # window order: the merge breaks ties by it
        return tuple(
            tf.gather(x, rows, axis=1, batch_dims=1)
            for x in (boxes, scores, classes, valid)
        )

    @tf.function(input_signature=[_IMAGES])
    def center_crop_localize_graph(self, images):
        """float32 pixels [B, H, W, C] -> predictions of the center window."""
        images = _rgb(images)
        shape = tf.shape(images)
        size = smallest_side_shape(
            shape[1], shape[2], self.smallest_side, self.max_aspect_ratio
        )
        resized = resize(images, *size)
        w = self.geometry.window
        top, left = (size[0] - w) // 2, (size[1] - w) // 2
        crop = tf.ensure_shape(
            resized[:, top : top + w, left : left + w], [None, w, w, 3]
        )
        outputs = self._coarse(normalize(crop), training=False)
        probabilities = tf.nn.softmax(outputs["class_logits"][:, 0, 0])  # [B, C]
        count = min(self.max_predictions, self.model.num_classes)
        top_k = tf.math.top_k(probabilities, count)
        window = tf.cast(tf.stack([left, top, left + w, top + w]), tf.float32)
        codes = self._class_codes(outputs["boxes"][:, 0, 0], top_k.indices)
        boxes = _ordered(box_ops.decode_windows(codes, window, w))
        boxes *= _to_original(size, (shape[1], shape[2]))
        limits = tf.cast(tf.stack([shape[2], shape[1]] * 2), tf.float32)
        return self._named(
            tf.map_fn(
                lambda x: self._padded(*x),
                (tf.clip_by_value(boxes, 0.0, limits), top_k.values, top_k.indices),
                fn_output_signature=self._padded_signature(),
            )
        )

    def _candidates(self, scaled):
        """One scale's boxes of its top-k classes at every cell and view.

        Returns (boxes [B, N, 4] in original pixels, scores [B, N],
        classes [B, N]), N = k x views x cells.
        """
        probabilities = tf.nn.softmax(scaled.outputs["class_logits"])
        probabilities = probabilities[..., : self.object_classes]  # [VB, h, w, C]
        codes = scaled.outputs["boxes"]
        h, w = tf.shape(codes)[1], tf.shape(codes)[2]
        windows = cell_windows(
            h, w, self.geometry.stride(self.stride), self.geometry.window
        )
        views = []
        for v, (p, c) in enumerate(
            zip(tf.split(probabilities, scaled.views), tf.split(codes, scaled.views))
        ):
            batch = tf.shape(p)[0]
            c = tf.reshape(c, [batch, h, w, -1, 4])  # 1 box or 1 per class
            boxes = box_ops.decode_windows(c, windows[:, :, None], self.geometry.window)
            if v == 1:  # the mirror: x -> width - x
                width = tf.cast(scaled.shape[1], tf.float32)
                boxes *= [-1.0, 1.0, -1.0, 1.0]
                boxes += tf.stack([width, 0.0, width, 0.0])
            boxes = _ordered(boxes)
            views.append(
                (
                    tf.reshape(p, [batch, h * w, -1]),
                    tf.reshape(boxes, [batch, h * w, -1, 4]),
                )
            )
        probabilities = tf.concat([p for p, _ in views], 1)  # [B, V*h*w, C]
        boxes = tf.concat([b for _, b in views], 1)  # [B, V*h*w, 1 or C, 4]
        top = tf.math.top_k(tf.reduce_max(probabilities, 1), self.top_k_classes)
        classes = top.indices  # [B, k]
        scores = tf.gather(probabilities, classes, axis=2, batch_dims=1)  # [B, n, k]
        if self.model.regressor == "per_class":
            boxes = tf.gather(boxes, classes, axis=2, batch_dims=1)
        else:
            boxes = tf.broadcast_to(boxes, tf.concat([tf.shape(scores), [4]], 0))
        boxes = boxes * _to_original(scaled.shape, scaled.original)
        batch = tf.shape(scores)[0]
        classes = tf.broadcast_to(classes[:, None], tf.shape(scores))
        return (
            tf.reshape(boxes, [batch, -1, 4]),
            tf.reshape(scores, [batch, -1]),
            tf.reshape(classes, [batch, -1]),
        )

    def _class_codes(self, codes, classes):
        """Each chosen class's 4 codes: [B, 4 or 4C] x [B, k] -> [B, k, 4]."""
        codes = tf.reshape(codes, [tf.shape(codes)[0], -1, 4])
        if self.model.regressor == "per_class":
            return tf.gather(codes, classes, axis=1, batch_dims=1)
        return tf.broadcast_to(codes, tf.concat([tf.shape(classes), [4]], 0))

    def _padded(self, boxes, scores, classes, count=None):
        """The first `max_predictions` of `count` rows (default all), padded:
        class -1, score 0, empty box. Static shapes: masks, no slicing by
        `count`."""
        p = self.max_predictions
        rows = tf.shape(scores)[0]
        count = tf.minimum(rows if count is None else count, p)
        extra = tf.maximum(p - rows, 0)

        def first(x, fill):
            shape = [p] + x.shape[1:].as_list()
            x = tf.reshape(
                tf.pad(x, [[0, extra]] + [[0, 0]] * (len(shape) - 1))[:p], shape
            )
            keep = tf.reshape(tf.range(p) < count, [p] + [1] * (len(shape) - 1))
            return tf.where(keep, x, fill)

        return {
            "boxes": first(boxes, 0.0),
            "scores": first(scores, 0.0),
            "classes": first(classes, -1),
            "num_detections": count,
        }

    def _padded_signature(self):
        p = self.max_predictions
        return {
            "boxes": tf.TensorSpec([p, 4], tf.float32),
            "scores": tf.TensorSpec([p], tf.float32),
            "classes": tf.TensorSpec([p], tf.int32),
            "num_detections": tf.TensorSpec([], tf.int32),
        }

    def _named(self, outputs):
        names = tf.gather(self._names, tf.maximum(outputs["classes"], 0))
        outputs["class_names"] = tf.where(outputs["classes"] >= 0, names, "")
        return outputs


def cell_windows(height, width, stride: int, window: int):
    """In-graph `Geometry.cell_windows`: the window [h, w, 4] of every cell of
    an (h, w) map at `stride` pixels, for map sizes known only at run time."""
    y = tf.cast(tf.range(height) * stride, tf.float32)
    x = tf.cast(tf.range(width) * stride, tf.float32)
    y1, x1 = tf.meshgrid(y, x, indexing="ij")
    return tf.stack([x1, y1, x1 + window, y1 + window], -1)


def _ordered(boxes):
    """Boxes [..., 4] with x1 <= x2 and y1 <= y2: a regressor may cross its
    edges (and a mirror swaps them); the merge and IoU need them ordered."""
    x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)
    return tf.stack(
        [
            tf.minimum(x1, x2),
            tf.minimum(y1, y2),
            tf.maximum(x1, x2),
            tf.maximum(y1, y2),
        ],
        -1,
    )


def _to_original(scaled, original):
    """Factors [4] (x, y, x, y) from a resized image's pixels back to the
    original's; both sizes are (height, width)."""
    fy = tf.cast(original[0], tf.float32) / tf.cast(scaled[0], tf.float32)
    fx = tf.cast(original[1], tf.float32) / tf.cast(scaled[1], tf.float32)
    return tf.stack([fx, fy, fx, fy])


def _ranked_by_mean(merged):
    """A merge's output scored by the mean of its windows' scores (the sum
    over the count) and ranked by it, descending, ties by rank before.
    Padding rows (count 0, score 0) stay after the merged boxes."""
    scores = merged["scores"] / tf.cast(tf.maximum(merged["counts"], 1), tf.float32)
    order = tf.argsort(-scores, stable=True)
    return {
        **{key: tf.gather(merged[key], order) for key in ("boxes", "classes")},
        "scores": tf.gather(scores, order),
    }
