"""Evaluation metrics on NumPy arrays: top-k error and ILSVRC localization error.

Computed after inference, on what the graphs return, so they are plain
NumPy that tests can check by hand.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from overfeat_tf.errors import InvalidValueError


def top_k_error(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Top-k error in %: the label is not among the k highest scores.

    Ties count against the label (a label tied with the k-th score is a
    miss only if k other classes score strictly higher)."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels)
    mine = probabilities[np.arange(len(labels)), labels]
    higher = (probabilities > mine[:, None]).sum(1)
    return float(100.0 * np.mean(higher >= k))


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU [N, M] of xyxy boxes [N, 4] and [M, 4] (0 where the union is 0)."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 4)[:, None]
    b = np.asarray(boxes_b, np.float64).reshape(-1, 4)[None]
    sides = np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2])
    inter = np.prod(np.maximum(sides, 0.0), -1)
    areas = [np.prod(np.maximum(x[..., 2:] - x[..., :2], 0.0), -1) for x in (a, b)]
    union = areas[0] + areas[1] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def localization_error(
    predictions: Sequence[tuple[np.ndarray, np.ndarray]],
    ground_truth: Sequence[tuple[np.ndarray, np.ndarray]],
    k: int = 5,
    min_iou: float = 0.5,
) -> float:
    """ILSVRC localization error in %, with up to k guesses per image.

    An image is right when one of its first k guesses has the class of a
    ground-truth box and IoU >= `min_iou` with a ground-truth box of that
    class (ILSVRC 2013; section 4.3).

    Args:
        predictions: per image, (classes [P], boxes [P, 4]) best first;
            class -1 is padding.
        ground_truth: per image, (labels [K], boxes [K, 4]); label -1 is
            padding.
        k: guesses read per image (1 for top-1, 5 for top-5).
        min_iou: the overlap a right box needs.

    Raises:
        ValueError: for lists of different lengths, none, or ground truth
            with an inverted box (x2 < x1 or y2 < y1).
    """
    if len(predictions) != len(ground_truth) or not predictions:
        raise InvalidValueError(
            "Expected one prediction per ground-truth image, at least one. "
            f"Received: {len(predictions)} predictions, {len(ground_truth)} images"
        )
    misses = 0
    for index, ((classes, boxes), (labels, truth)) in enumerate(
        zip(predictions, ground_truth)
    ):
        labels, truth = np.asarray(labels), _truth_boxes(truth, index)
        classes = np.asarray(classes)[:k]
        overlaps = iou(np.asarray(boxes)[:k], truth)  # [k, K]
        same_class = classes[:, None] == labels[None, :]
        hit = same_class & (labels[None, :] >= 0) & (overlaps >= min_iou)
        misses += not hit.any()
    return 100.0 * misses / len(predictions)


# === Detection: PASCAL VOC AP and the COCO metrics ===

# COCO's IoU thresholds (.5:.05:.95) and recall points (101).
COCO_IOUS = np.linspace(0.5, 0.95, 10)
COCO_RECALLS = np.linspace(0.0, 1.0, 101)


def voc_ap(
    detections: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ground_truth: Sequence[tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = 0.5,
) -> tuple[float, dict[int, float]]:
    """PASCAL VOC mean average precision (all-point interpolation, VOC 2010+).

    Per class, detections of all images in descending score order are
    matched to the ground-truth box of highest IoU in their image: a true
    positive if that IoU >= `iou_threshold` and the box is not taken yet,
    else a false positive. AP is the area under the precision envelope
    (precision made non-increasing), summed where recall changes. Boxes are
    continuous pixels (no VOC "+1").

    Args:
        detections: per image, (boxes [D, 4] xyxy, scores [D], classes [D]).
        ground_truth: per image, (boxes [G, 4] xyxy, labels [G]); label -1
            is padding.

    Returns:
        (mAP over the classes that have ground truth, {class: AP}).
    """
    _check_detection_lists(detections, ground_truth)
    per_class = {}
    for c in _classes_with_truth(ground_truth):
        scores, matched, count = [], [], 0
        for image_scores, overlaps in _class_in_images(detections, ground_truth, c):
            count += overlaps.shape[1]
            taken = np.zeros(overlaps.shape[1], bool)
            for row in overlaps:
                best = int(np.argmax(row)) if len(row) else -1
                hit = best >= 0 and row[best] >= iou_threshold and not taken[best]
                if hit:
                    taken[best] = True
                matched.append(hit)
            scores += list(image_scores)
        order = np.argsort(-np.asarray(scores), kind="stable")
        hits = np.asarray(matched, bool)[order]
        true_positives = np.cumsum(hits)
        recall = true_positives / count
        precision = true_positives / np.arange(1, len(hits) + 1)
        recall = np.concatenate([[0.0], recall, [1.0]])
        precision = np.concatenate([[0.0], precision, [0.0]])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        steps = np.flatnonzero(recall[1:] != recall[:-1])
        per_class[c] = float(
            np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1])
        )
    return float(np.mean(list(per_class.values()))), per_class


def coco_metrics(
    detections: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ground_truth: Sequence[tuple[np.ndarray, np.ndarray]],
    max_detections: int = 100,
) -> dict[str, float]:
    """COCO's box AP@[.5:.95], AP50 and AP75, computed as pycocotools does.

    Per image and class, the `max_detections` best detections are matched
    in score order, each to the unmatched ground-truth box of highest IoU
    at or above the threshold; per class, precision (made non-increasing)
    is read at 101 recall points, 0 beyond the reached recall; AP is the
    mean over the classes with ground truth (and over the 10 IoU
    thresholds for AP@[.5:.95]). All areas, no crowd boxes.

    Args and input: as `voc_ap`.

    Returns:
        {"AP": AP@[.5:.95], "AP50": ..., "AP75": ...} in [0, 1].
    """
    _check_detection_lists(detections, ground_truth)
    classes = _classes_with_truth(ground_truth)
    precision = np.zeros((len(COCO_IOUS), len(classes), len(COCO_RECALLS)))
    for k, c in enumerate(classes):
        scores, matched, count = [], [], 0
        for image_scores, overlaps in _class_in_images(
            detections, ground_truth, c, max_detections
        ):
            count += overlaps.shape[1]
            scores.append(image_scores)
            matched.append(_coco_matches(overlaps))
        scores = np.concatenate(scores)
        order = np.argsort(-scores, kind="mergesort")
        hits = np.concatenate(matched, axis=1)[:, order]  # [thresholds, D]
        true_positives = np.cumsum(hits, axis=1)
        false_positives = np.cumsum(~hits, axis=1)
        for t in range(len(COCO_IOUS)):
            recall = true_positives[t] / count
            ratio = true_positives[t] / (
                true_positives[t] + false_positives[t] + np.spacing(1)
            )
            envelope = np.maximum.accumulate(ratio[::-1])[::-1]
            points = np.searchsorted(recall, COCO_RECALLS, side="left")
            reached = points < len(envelope)
            precision[t, k, reached] = envelope[points[reached]]
    return {
        "AP": float(precision.mean()),
        "AP50": float(precision[0].mean()),
        "AP75": float(precision[5].mean()),
    }


def _class_in_images(detections, ground_truth, c, limit=None):
    """Per image, class `c`'s detection scores, best first (the first `limit`),
    and their IoUs [D, G] with the image's ground-truth boxes of class `c`."""
    for (boxes, scores, classes), (truth, labels) in zip(detections, ground_truth):
        mine = np.asarray(classes) == c
        scores = np.asarray(scores)[mine]
        order = np.argsort(-scores, kind="stable")[:limit]
        truth = np.asarray(truth, np.float64).reshape(-1, 4)[np.asarray(labels) == c]
        yield scores[order], iou(np.asarray(boxes).reshape(-1, 4)[mine][order], truth)


def _coco_matches(overlaps: np.ndarray) -> np.ndarray:
    """[thresholds, D] hits of detections [D] (score order) against ground
    truth [G] by the IoUs [D, G]: each takes the best free box at or above
    the threshold, as pycocotools' evaluateImg."""
    hits = np.zeros((len(COCO_IOUS), len(overlaps)), bool)
    for t, threshold in enumerate(COCO_IOUS):
        taken = np.zeros(overlaps.shape[1], bool)
        for d, row in enumerate(overlaps):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for g in range(len(row)):
                if not taken[g] and row[g] >= best_iou:
                    best, best_iou = g, row[g]
            if best >= 0:
                taken[best] = hits[t, d] = True
    return hits


def _classes_with_truth(ground_truth) -> list[int]:
    labels = np.concatenate(
        [np.asarray(labels).reshape(-1) for _, labels in ground_truth]
    )
    classes = sorted(int(c) for c in np.unique(labels) if c >= 0)
    if not classes:
        raise InvalidValueError(
            "The ground truth has no objects: average precision needs at least one."
        )
    return classes


def _check_detection_lists(detections, ground_truth):
    if len(detections) != len(ground_truth) or not detections:
        raise InvalidValueError(
            "Expected one detection list per ground-truth image, at least one. "
            f"Received: {len(detections)} detection lists, {len(ground_truth)} images"
        )
    for index, (truth, _) in enumerate(ground_truth):
        _truth_boxes(truth, index)


def _truth_boxes(truth, index: int) -> np.ndarray:
    """Image `index`'s ground-truth boxes [K, 4] float64, checked."""
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    if np.any((truth[:, 2] < truth[:, 0]) | (truth[:, 3] < truth[:, 1])):
        raise InvalidValueError(
            f"Ground truth of image {index} has a box with x2 < x1 or y2 < y1 "
            f"(boxes are x1, y1, x2, y2). Received: {truth.tolist()}"
        )
    return truth
