"""Evaluation metrics on NumPy arrays: top-k error and ILSVRC localization error.

Computed after inference, on what the graphs return, so they are plain
NumPy that tests can check by hand.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


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
        raise ValueError(
            "Expected one prediction per ground-truth image, at least one. "
            f"Received: {len(predictions)} predictions, {len(ground_truth)} images"
        )
    misses = 0
    for index, ((classes, boxes), (labels, truth)) in enumerate(
        zip(predictions, ground_truth)
    ):
        labels, truth = np.asarray(labels), np.asarray(truth, np.float64).reshape(-1, 4)
        if np.any((truth[:, 2] < truth[:, 0]) | (truth[:, 3] < truth[:, 1])):
            raise ValueError(
                f"Ground truth of image {index} has a box with x2 < x1 or y2 < y1 "
                f"(boxes are x1, y1, x2, y2). Received: {truth.tolist()}"
            )
        classes = np.asarray(classes)[:k]
        overlaps = iou(np.asarray(boxes)[:k], truth)  # [k, K]
        same_class = classes[:, None] == labels[None, :]
        hit = same_class & (labels[None, :] >= 0) & (overlaps >= min_iou)
        misses += not hit.any()
    return 100.0 * misses / len(predictions)
