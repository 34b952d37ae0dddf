"""The merge after a TFLite candidates file, in NumPy alone (copy it into an app).

A pipeline file converted with `merge=False` (`overfeat export --format
tflite --kind pipeline --no-merge`, the form that full int8 needs) stops
before the greedy merge and outputs the merge's input: `boxes` [1, K, 4],
`scores`, `classes` and `valid` [1, K]. `postprocess` finishes the job with
the settings of the JSON file written beside the `.tflite` file, and
returns what the whole pipeline would. This module imports NumPy only,
and reads as the specification for a port to C, Kotlin or Swift:

1. Keep the rows with `valid` (window scored >= `min_window_score`).
2. Match score of two boxes (x1, y1, x2, y2): the DIoU distance
   `1 - IoU + |center_a - center_b|^2 / diagonal^2`, `diagonal` that of
   the smallest box enclosing both; IoU counts as 1 when the union is 0,
   and the center term as 0 when the diagonal is 0.
3. Repeat: take the same-class pair (i, j), i < j, of lowest score (ties:
   lowest i, then lowest j); stop if it exceeds `merge_threshold`. Box i
   becomes the mean of all input boxes merged into it (coordinate sums
   over counts), its score the sum of their scores; j leaves.
4. Order the remaining boxes by score, descending (ties: lower index).
   Drop those below `score_threshold` (detection), clip to the image and
   keep the first `max_detections`.

All arithmetic is float32, as in the graph: the result equals the
in-graph merge's.
"""

from __future__ import annotations

import numpy as np

_F32 = np.float32


def match_score(a, b):
    """DIoU distance of boxes [..., 4] and [..., 4] (broadcast), float32."""
    a = np.asarray(a, _F32)
    b = np.asarray(b, _F32)
    inter = np.maximum(
        np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), _F32(0)
    ) * np.maximum(
        np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), _F32(0)
    )
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = (area_a + area_b) - inter
    dx = (a[..., 0] + a[..., 2]) - (b[..., 0] + b[..., 2])
    dy = (a[..., 1] + a[..., 3]) - (b[..., 1] + b[..., 3])
    enclose_w = np.maximum(a[..., 2], b[..., 2]) - np.minimum(a[..., 0], b[..., 0])
    enclose_h = np.maximum(a[..., 3], b[..., 3]) - np.minimum(a[..., 1], b[..., 1])
    diagonal = _F32(4) * (enclose_w * enclose_w + enclose_h * enclose_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, _F32(1))
        center = np.where(diagonal > 0, (dx * dx + dy * dy) / diagonal, _F32(0))
    return ((_F32(1) - iou) + center).astype(_F32)


def greedy_merge(boxes, scores, classes, threshold):
    """Steps 2-4 without thresholds: (boxes [M, 4], scores [M], classes [M],
    counts [M]) by score, descending. O(N^2) time and memory."""
    boxes = np.asarray(boxes, _F32).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1)
    n = len(boxes)
    sums, current = boxes.copy(), boxes.copy()
    totals = np.asarray(scores, _F32).reshape(-1).copy()
    counts = np.ones(n, np.int64)
    active = np.ones(n, bool)
    index = np.arange(n)

    def row(i):
        allowed = active & (classes == classes[i]) & (index != i)
        return np.where(allowed, match_score(current[i], current), np.inf).astype(_F32)

    matrix = np.stack([row(i) for i in range(n)]) if n else np.zeros((0, 0), _F32)
    row_min = matrix.min(1) if n else np.zeros(0, _F32)
    row_arg = matrix.argmin(1) if n else np.zeros(0, np.int64)
    while n:
        i = int(np.argmin(row_min))
        if not row_min[i] <= _F32(threshold):
            break
        j = int(row_arg[i])
        sums[i] += sums[j]
        counts[i] += counts[j]
        totals[i] += totals[j]
        current[i] = sums[i] / _F32(counts[i])
        active[j] = False
        matrix[j, :] = matrix[:, j] = np.inf
        matrix[i, :] = matrix[:, i] = row(i)
        # Rows whose minimum was at i or j start over; the others may take i.
        redo = np.flatnonzero(active & ((row_arg == i) | (row_arg == j) | (index == i)))
        column = matrix[:, i]
        better = (column < row_min) | ((column == row_min) & (i < row_arg))
        row_min = np.where(better, column, row_min)
        row_arg = np.where(better, i, row_arg)
        row_min[j] = np.inf
        row_min[redo] = matrix[redo].min(1)
        row_arg[redo] = matrix[redo].argmin(1)
    kept = np.flatnonzero(active)
    order = kept[np.argsort(-totals[kept], kind="stable")]
    return (
        sums[order] / counts[order, None].astype(_F32),
        totals[order],
        classes[order],
        counts[order],
    )


def postprocess(candidates: dict, settings: dict) -> dict:
    """A candidates file's outputs (batch of 1) -> the pipeline's outputs.

    Args:
        candidates: `boxes` [1, K, 4], `scores`, `classes`, `valid` [1, K].
        settings: the JSON beside the file: `merge_threshold`,
            `score_threshold` (null for localization), `max_detections`
            and `image_size` [H, W].

    Returns:
        `boxes` [M, 4], `classes` [M], `scores` [M] and `num_detections`,
        M = `max_detections`, padded with class -1, score 0, empty boxes.
    """
    valid = np.asarray(candidates["valid"]).reshape(-1).astype(bool)
    boxes, scores, classes, _ = greedy_merge(
        np.asarray(candidates["boxes"]).reshape(-1, 4)[valid],
        np.asarray(candidates["scores"]).reshape(-1)[valid],
        np.asarray(candidates["classes"]).reshape(-1)[valid],
        settings["merge_threshold"],
    )
    if settings.get("score_threshold") is not None:
        kept = scores >= _F32(settings["score_threshold"])
        boxes, scores, classes = boxes[kept], scores[kept], classes[kept]
    height, width = settings["image_size"]
    boxes = np.clip(boxes, 0, np.array([width, height, width, height], _F32))
    m = int(settings["max_detections"])
    count = min(len(scores), m)
    out = {
        "boxes": np.zeros((m, 4), _F32),
        "classes": np.full(m, -1, np.int32),
        "scores": np.zeros(m, _F32),
        "num_detections": count,
    }
    out["boxes"][:count] = boxes[:count]
    out["classes"][:count] = classes[:count]
    out["scores"][:count] = scores[:count]
    return out
