"""The tests' independent oracles, in NumPy: what the package computes,
written the obvious way, each used by several tests.

- the classifier as matrix products on pooled features (`classify_cell`,
  `classify_map`) and pooling by hand (`max_pool`);
- the multi-scale classification and localization passes composed from
  `of.dense` maps (`classify_reference`, `localize_reference`);
- the greedy merge with its own match score, the full N x N score matrix
  rebuilt every step and `np.argmin` on it (row-major first minimum):
  O(N^3), float32 as in the graph (`greedy_merge_reference`).
"""

import keras
import numpy as np
import tensorflow as tf

import overfeat_tf as of
from overfeat_tf.preprocessing import MEAN_RGB, STDDEV_RGB


def layer_output(model, name, images):
    """The activation of one layer of `model`, as float64 NumPy."""
    probe = keras.Model(model.input, model.activation(name))
    return np.asarray(probe(images), np.float64)


def max_pool(x, k, offset=(0, 0)):
    """Non-overlapping k x k max pooling of [h, w, c] from (dy, dx)."""
    x = x[offset[0] :, offset[1] :]
    h, w = x.shape[0] // k, x.shape[1] // k
    return x[: h * k, : w * k].reshape(h, k, w, k, -1).max(axis=(1, 3))


def fc_weights(model):
    """The classifier's (kernel, bias) pairs as float64, first layer first."""
    return [
        [np.asarray(v, np.float64) for v in model.get_layer(name).get_weights()]
        for name in model.spec.fc_names
    ]


def classify_cell(features, top, left, weights, dilation=1):
    """The classifier as plain matrix products on one cell's crop.

    `features` [h, w, c] are pooled features; the cell reads K x K of them
    from (top, left), every `dilation`-th one.
    """
    (kernel, bias), *rest = weights
    k = kernel.shape[0]
    rows = top + dilation * np.arange(k)
    cols = left + dilation * np.arange(k)
    crop = features[np.ix_(rows, cols)]  # [K, K, c]
    x = crop.reshape(-1) @ kernel.reshape(-1, kernel.shape[-1]) + bias
    for kernel, bias in rest:
        x = np.maximum(x, 0) @ kernel.reshape(-1, kernel.shape[-1]) + bias
    return x


def classify_map(features, weights, dilation=1):
    """`classify_cell` at every position of a pooled feature map."""
    k = weights[0][0].shape[0]
    extent = dilation * (k - 1) + 1
    h, w = features.shape[0] - extent + 1, features.shape[1] - extent + 1
    return np.array(
        [
            [classify_cell(features, i, j, weights, dilation) for j in range(w)]
            for i in range(h)
        ]
    )


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def resized(image, size):
    """`image` [H, W, 3] with its shorter side `size`, by hand."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    shape = [max(round(h * scale), size), max(round(w * scale), size)]
    shrink = shape[0] * shape[1] < h * w
    return tf.image.resize(image.astype(np.float32), shape, antialias=shrink).numpy()


def standardized(pixels):
    return (pixels - np.array(MEAN_RGB)) / np.array(STDDEV_RGB)


def classify_reference(model, image, scales, stride="fine", flips=True):
    """Per-scale dense maps from `of.dense`, spatial max, mean over views."""
    net = of.dense(model, stride)
    maxima = []
    for size in scales:
        x = standardized(resized(image, size)).astype(np.float32)
        for view in [x, x[:, ::-1]] if flips else [x]:
            logits = np.asarray(net(view[None])["class_logits"])[0]
            maxima.append(softmax(logits.astype(np.float64)).max(axis=(0, 1)))
    scores = np.mean(maxima, 0)
    return scores / scores.sum()


def localize_reference(
    model,
    image,
    scales,
    flips,
    k,
    threshold,
    count,
    classes=None,
    floor=0.0,
    least=None,
    score="sum",
):
    """Per-scale dense maps, top-k classes, decoded boxes, NumPy merge.

    `classes` keeps the first classes' probabilities (a detector drops its
    background); windows under `floor` and merged boxes under `least` go;
    `score="mean"` scores and ranks merged boxes by their windows' mean.
    """
    geometry = model.geometry
    net = of.dense(model, "fine")
    height, width = image.shape[:2]
    boxes, scores, labels = [], [], []
    for size in scales:
        x = resized(image, size)
        sh, sw = x.shape[:2]
        views = [x, x[:, ::-1]] if flips else [x]
        probs, view_boxes = [], []
        for v, view in enumerate(views):
            out = net(standardized(view)[None].astype(np.float32))
            p = softmax(np.asarray(out["class_logits"])[0])[..., :classes]
            windows = geometry.cell_windows(sh, sw, "fine")
            b = windows + np.asarray(out["boxes"])[0] * geometry.window
            if v == 1:
                b = np.stack([sw - b[..., 2], b[..., 1], sw - b[..., 0], b[..., 3]], -1)
            b = np.concatenate(
                [
                    np.minimum(b[..., :2], b[..., 2:]),
                    np.maximum(b[..., :2], b[..., 2:]),
                ],
                -1,
            )
            probs.append(p.reshape(-1, p.shape[-1]))
            view_boxes.append(b.reshape(-1, 4) * np.tile([width / sw, height / sh], 2))
        p, b = np.concatenate(probs), np.concatenate(view_boxes)
        for c in np.argsort(-p.max(0), kind="stable")[:k]:
            boxes.append(b)
            scores.append(p[:, c])
            labels.append(np.full(len(b), c))
    scores, boxes = np.concatenate(scores), np.concatenate(boxes)
    keep = scores >= floor
    merged = greedy_merge_reference(
        boxes[keep].astype(np.float32),
        scores[keep].astype(np.float32),
        np.concatenate(labels)[keep],
        threshold,
    )
    if score == "mean":
        means = merged[1] / merged[3]
        order = np.argsort(-means, kind="stable")
        merged = (merged[0][order], means[order], merged[2][order])
    kept = merged[1] >= (least if least is not None else -np.inf)
    limits = [width, height, width, height]
    return (
        np.clip(merged[0][kept][:count], 0, limits),
        merged[1][kept][:count],
        merged[2][kept][:count],
    )


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
