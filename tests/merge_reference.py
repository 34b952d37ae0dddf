"""The greedy merge written the obvious way in NumPy, to test `merge.py`.

Independent of `overfeat_tf`: its own match score, the full N x N score
matrix rebuilt every step and `np.argmin` on it (row-major first minimum).
O(N^3), for tests only. All arithmetic is float32, as in the graph.
"""

import numpy as np


def match_score_reference(a, b):
    """DIoU distance of boxes [..., 4] xyxy (x1 <= x2, y1 <= y2), broadcast."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    inter_w = np.maximum(
        np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0
    )
    inter_h = np.maximum(
        np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0
    )
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        # Two zero-area boxes: no area to compare, IoU 1 (distance decides).
        iou = np.where(union > 0, inter / union, np.float32(1))
        # Center offsets doubled (sums of edges), so the diagonal is doubled too.
        dx = (a[..., 0] + a[..., 2]) - (b[..., 0] + b[..., 2])
        dy = (a[..., 1] + a[..., 3]) - (b[..., 1] + b[..., 3])
        enclose_w = np.maximum(a[..., 2], b[..., 2]) - np.minimum(a[..., 0], b[..., 0])
        enclose_h = np.maximum(a[..., 3], b[..., 3]) - np.minimum(a[..., 1], b[..., 1])
        diagonal = np.float32(4) * (enclose_w * enclose_w + enclose_h * enclose_h)
        distance = np.where(diagonal > 0, (dx * dx + dy * dy) / diagonal, np.float32(0))
    return (np.float32(1) - iou + distance).astype(np.float32)


def greedy_merge_reference(boxes, scores, classes, threshold):
    """Merge the closest same-class pair until its score exceeds `threshold`.

    Returns (boxes [M, 4] float32, scores [M] float32, classes [M] int32,
    counts [M] int32), sorted by score descending, ties by lower index.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    sums = boxes.copy()
    totals = np.asarray(scores, np.float32).copy()
    classes = np.asarray(classes, np.int32)
    counts = np.ones(len(boxes), np.int32)
    active = np.ones(len(boxes), bool)
    threshold = np.float32(threshold)
    while active.sum() > 1:
        current = sums / counts[:, None].astype(np.float32)
        matrix = match_score_reference(current[:, None], current[None, :])
        allowed = active[:, None] & active[None, :] & (classes[:, None] == classes)
        np.fill_diagonal(allowed, False)
        matrix = np.where(allowed, matrix, np.inf)
        i, j = np.unravel_index(np.argmin(matrix), matrix.shape)
        if not (np.isfinite(matrix[i, j]) and matrix[i, j] <= threshold):
            break
        # The lower index keeps the merged box; j leaves.
        sums[i] += sums[j]
        counts[i] += counts[j]
        totals[i] += totals[j]
        active[j] = False
    kept = np.flatnonzero(active)
    order = kept[np.argsort(-totals[kept], kind="stable")]
    merged = sums[order] / counts[order, None].astype(np.float32)
    return merged, totals[order], classes[order], counts[order]
