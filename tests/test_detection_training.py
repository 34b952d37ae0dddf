"""Detection training: window labels by the documented rule, negative mining."""

import numpy as np
import pytest

import overfeat_tf as of
from overfeat_tf.training.detection import (
    IGNORE,
    DetectionLoss,
    cell_labels,
    select_negatives,
)


def _labels_by_hand(boxes, labels, windows, num_classes, pos, neg, fill):
    """The module docstring's rule, cell by cell, in float64."""
    out = np.full(windows.shape[:2], IGNORE)
    for i in range(windows.shape[0]):
        for j in range(windows.shape[1]):
            wx1, wy1, wx2, wy2 = windows[i, j]
            best, best_held, most = None, -1.0, 0.0
            for box, label in zip(boxes, labels):
                if label < 0:
                    continue
                iw = max(0.0, min(wx2, box[2]) - max(wx1, box[0]))
                ih = max(0.0, min(wy2, box[3]) - max(wy1, box[1]))
                held = iw * ih / ((box[2] - box[0]) * (box[3] - box[1]))
                filled = iw * ih / ((wx2 - wx1) * (wy2 - wy1))
                most = max(most, held)
                if held >= pos and filled >= fill and held > best_held:
                    best, best_held = label, held
            if best is not None:
                out[i, j] = best
            elif most < neg:
                out[i, j] = num_classes
    return out


@pytest.mark.parametrize("seed", range(3))
def test_cell_labels_follow_the_documented_rule(seed):
    rng = np.random.default_rng(seed)
    geometry = of.FAST.geometry
    windows = geometry.cell_windows(551, 615, "coarse")  # 11 x 13 windows
    xy = rng.uniform(0, 250, (6, 2))  # objects in the top left: background elsewhere
    boxes = np.concatenate([xy, xy + rng.uniform(40, 200, (6, 2))], 1)
    labels = rng.integers(0, 10, 6)
    labels[-1] = -1  # padding
    got = cell_labels(boxes, labels, windows, 10).numpy()
    want = _labels_by_hand(boxes, labels, windows, 10, 0.5, 0.2, 0.1)
    np.testing.assert_array_equal(got, want)
    assert {IGNORE, 10} <= set(np.unique(got)) and (got < 10).any()
    empty = cell_labels(np.zeros((0, 4)), np.zeros(0, int), windows, 10).numpy()
    assert (empty == 10).all()  # no objects: every window is background


def test_hard_negatives_are_the_highest_scoring_background_cells(rng):
    labels = rng.choice([IGNORE, 3, 10], size=(2, 4, 5), p=[0.2, 0.2, 0.6])
    losses = rng.random((2, 4, 5)).astype(np.float32)
    chosen = select_negatives(losses, labels, 10, 3).numpy()
    for b in range(2):
        background = np.flatnonzero(labels[b].reshape(-1) == 10)
        top = background[np.argsort(-losses[b].reshape(-1)[background])[:3]]
        assert set(np.flatnonzero(chosen[b].reshape(-1))) == set(top)
    few = select_negatives(losses, np.where(labels == 10, 3, labels), 10, 3).numpy()
    assert not few.any()  # no background cells: none chosen


def test_detection_loss_counts_positives_and_the_chosen_negatives(rng):
    labels = np.array([[[2, 10, 10], [IGNORE, 10, 0]]])  # [1, 2, 3]
    logits = rng.normal(size=(1, 2, 3, 11)).astype(np.float32)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    cells = -np.take_along_axis(log_softmax, np.maximum(labels, 0)[..., None], -1)[
        ..., 0
    ]
    background = np.flatnonzero(labels.reshape(-1) == 10)
    hardest = background[np.argsort(-cells.reshape(-1)[background])[:2]]
    counted = list(np.flatnonzero(np.isin(labels.reshape(-1), [0, 2]))) + list(hardest)
    want = cells.reshape(-1)[counted].mean()
    got = DetectionLoss(negatives_per_image=2, mining="hard")(labels, logits)
    assert float(got) == pytest.approx(want, rel=1e-5)
    everything = DetectionLoss(negatives_per_image=10, mining="random")(labels, logits)
    counted = np.flatnonzero(labels.reshape(-1) >= 0)
    assert float(everything) == pytest.approx(
        cells.reshape(-1)[counted].mean(), rel=1e-5
    )
    with pytest.raises(ValueError, match="mining"):
        DetectionLoss(mining="bootstrap")
    with pytest.raises(ValueError, match="negative_overlap"):
        cell_labels(np.zeros((0, 4)), [], np.zeros((1, 1, 4)), 3, negative_overlap=0.6)
