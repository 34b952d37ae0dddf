"""Boxes from the dense pass, merged: what `Localizer` and `Detector` share.

For every scale (and its mirror) the dense pass gives class probabilities
and a box at every cell; the scale's top-k classes (by their maximum over
the cells) each take the box of every cell, scored by that cell's
probability of the class, in the original image's pixels. Windows scoring
below a floor are left out, the boxes of all scales are merged greedily per
class (`merge.greedy_merge`), ranked, thresholded and padded into the one
box schema: `boxes`, `classes`, `scores`, `num_detections`, `class_names`.
"""

from __future__ import annotations

import tensorflow as tf

from overfeat_tf import boxes as box_ops
from overfeat_tf.dense_pass import DensePass, InferenceSettings, rgb
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.merge import greedy_merge, greedy_merge_fixed


class BoxSearch:
    """The merged boxes of the first `object_classes` classes.

    Args:
        dense_pass: the `DensePass` of the model (with a box regressor).
        settings: checked `InferenceSettings`: scales, stride, flips,
            top_k_classes, max_detections, min_window_score, merge_threshold,
            merge_score, max_candidates, jit_compile.
        object_classes: classes whose boxes are sought (a detector leaves
            out the background, its last).
        min_score: merged boxes scoring less are dropped (None: none are).
    """

    def __init__(
        self,
        dense_pass: DensePass,
        settings: InferenceSettings,
        object_classes: int,
        min_score: float | None = None,
    ):
        self.dense_pass = dense_pass
        self.settings = settings
        self.object_classes = object_classes
        self.min_score = min_score
        self.regressor = dense_pass.model.regressor
        self._names = tf.constant(list(dense_pass.model.class_names))

    def __call__(self, images):
        """float32 pixels [B, H, W, C] -> the box schema, merged and ranked."""
        settings = self.settings
        candidates = self.candidates(images)
        shape = tf.shape(images)
        limits = tf.cast(tf.stack([shape[2], shape[1]] * 2), tf.float32)

        def merge_one(inputs):
            boxes, scores, classes, valid = inputs
            if settings.max_candidates is None:
                merged = greedy_merge(
                    *(tf.boolean_mask(x, valid) for x in (boxes, scores, classes)),
                    settings.merge_threshold,
                    jit_compile=settings.jit_compile,
                )
                count = tf.size(merged["scores"])
            else:
                merged = greedy_merge_fixed(
                    *inputs, settings.merge_threshold, jit_compile=settings.jit_compile
                )
                count = merged["count"]
            if settings.merge_score == "mean":
                merged = _ranked_by_mean(merged)
            # Scores are descending: those >= min_score come first.
            if self.min_score is not None:
                count = tf.reduce_sum(
                    tf.cast(merged["scores"][:count] >= self.min_score, tf.int32)
                )
            return self.padded(
                tf.clip_by_value(merged["boxes"], 0.0, limits),
                merged["scores"],
                merged["classes"],
                count,
            )

        return self.named(
            tf.map_fn(merge_one, candidates, fn_output_signature=self.signature())
        )

    def candidates_graph(self, images):
        """The merge's input: float32 pixels [B, H, W, C] -> `boxes` [B, K, 4]
        (pixels of the input, unclipped), `scores` [B, K] (window class
        probabilities), `classes` [B, K] and `valid` [B, K] (the windows
        scoring >= `min_window_score`); K = `max_candidates`, the best
        windows, in window order (the merge breaks ties by it).
        `merge.greedy_merge_fixed` of an image's rows is the merge of
        `__call__`. Traced by the caller (needs `max_candidates`)."""
        if self.settings.max_candidates is None:
            raise InvalidValueError(
                "candidates_graph needs a runner with max_candidates"
            )
        boxes, scores, classes, valid = self.candidates(images)
        return {"boxes": boxes, "scores": scores, "classes": classes, "valid": valid}

    def candidates(self, images):
        """(boxes, scores, classes, valid) of every scale's windows [B, N],
        or of the `max_candidates` best valid ones."""
        scales = self.dense_pass.scales(rgb(images))
        boxes, scores, classes = (
            tf.concat(c, 1) for c in zip(*(self._scale_candidates(s) for s in scales))
        )
        valid = scores >= self.settings.min_window_score
        if self.settings.max_candidates is None:
            return boxes, scores, classes, valid
        n = boxes.shape[1] or tf.shape(boxes)[1]
        # Scores are probabilities: -1 ranks the invalid last, and unlike
        # -inf it leaves int8 quantization a sane range.
        best = tf.math.top_k(
            tf.where(valid, scores, -1.0),
            tf.minimum(self.settings.max_candidates, n),
        )
        rows = tf.sort(best.indices)  # window order: the merge breaks ties by it
        return tuple(
            tf.gather(x, rows, axis=1, batch_dims=1)
            for x in (boxes, scores, classes, valid)
        )

    def _scale_candidates(self, scaled):
        """One scale's boxes of its top-k classes at every cell and view.

        Returns (boxes [B, N, 4] in original pixels, scores [B, N],
        classes [B, N]), N = k x views x cells.
        """
        geometry = self.dense_pass.geometry
        probabilities = tf.nn.softmax(scaled.outputs["class_logits"])
        probabilities = probabilities[..., : self.object_classes]  # [VB, h, w, C]
        codes = scaled.outputs["boxes"]
        h, w = tf.shape(codes)[1], tf.shape(codes)[2]
        windows = cell_windows(
            h, w, geometry.stride(self.settings.stride), geometry.window
        )
        views = []
        for v, (p, c) in enumerate(
            zip(tf.split(probabilities, scaled.views), tf.split(codes, scaled.views))
        ):
            batch = tf.shape(p)[0]
            c = tf.reshape(c, [batch, h, w, -1, 4])  # 1 box or 1 per class
            boxes = box_ops.decode_windows(c, windows[:, :, None], geometry.window)
            if v == 1:  # the mirror: x -> width - x
                width = tf.cast(scaled.shape[1], tf.float32)
                boxes *= [-1.0, 1.0, -1.0, 1.0]
                boxes += tf.stack([width, 0.0, width, 0.0])
            boxes = ordered(boxes)
            views.append(
                (
                    tf.reshape(p, [batch, h * w, -1]),
                    tf.reshape(boxes, [batch, h * w, -1, 4]),
                )
            )
        probabilities = tf.concat([p for p, _ in views], 1)  # [B, V*h*w, C]
        boxes = tf.concat([b for _, b in views], 1)  # [B, V*h*w, 1 or C, 4]
        top = tf.math.top_k(
            tf.reduce_max(probabilities, 1), self.settings.top_k_classes
        )
        classes = top.indices  # [B, k]
        scores = tf.gather(probabilities, classes, axis=2, batch_dims=1)  # [B, n, k]
        if self.regressor == "per_class":
            boxes = tf.gather(boxes, classes, axis=2, batch_dims=1)
        else:
            boxes = tf.broadcast_to(boxes, tf.concat([tf.shape(scores), [4]], 0))
        boxes = boxes * to_original(scaled.shape, scaled.original)
        batch = tf.shape(scores)[0]
        classes = tf.broadcast_to(classes[:, None], tf.shape(scores))
        return (
            tf.reshape(boxes, [batch, -1, 4]),
            tf.reshape(scores, [batch, -1]),
            tf.reshape(classes, [batch, -1]),
        )

    def class_codes(self, codes, classes):
        """Each chosen class's 4 codes: [B, 4 or 4C] x [B, k] -> [B, k, 4]."""
        codes = tf.reshape(codes, [tf.shape(codes)[0], -1, 4])
        if self.regressor == "per_class":
            return tf.gather(codes, classes, axis=1, batch_dims=1)
        return tf.broadcast_to(codes, tf.concat([tf.shape(classes), [4]], 0))

    def padded(self, boxes, scores, classes, count=None):
        """The first `max_detections` of `count` rows (default all), padded:
        class -1, score 0, empty box. Static shapes: masks, no slicing by
        `count`."""
        p = self.settings.max_detections
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

    def signature(self):
        """The `padded` rows of one image, as `tf.map_fn` specs."""
        p = self.settings.max_detections
        return {
            "boxes": tf.TensorSpec([p, 4], tf.float32),
            "scores": tf.TensorSpec([p], tf.float32),
            "classes": tf.TensorSpec([p], tf.int32),
            "num_detections": tf.TensorSpec([], tf.int32),
        }

    def named(self, outputs):
        """`outputs` with `class_names` ("" where a row pads)."""
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


def ordered(boxes):
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


def to_original(scaled, original):
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
