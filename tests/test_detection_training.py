"""Detection training: window labels by the documented rule, negative mining."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY

import overfeat_tf as of
from overfeat_tf.config import load_config
from overfeat_tf.data import shapes
from overfeat_tf.training import prepare, train
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
            best, best_filled, most = None, -1.0, 0.0
            for box, label in zip(boxes, labels):
                if label < 0:
                    continue
                iw = max(0.0, min(wx2, box[2]) - max(wx1, box[0]))
                ih = max(0.0, min(wy2, box[3]) - max(wy1, box[1]))
                held = iw * ih / ((box[2] - box[0]) * (box[3] - box[1]))
                filled = iw * ih / ((wx2 - wx1) * (wy2 - wy1))
                most = max(most, held)
                if held >= pos and filled >= fill and filled > best_filled:
                    best, best_filled = label, filled
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


def test_a_detector_starts_from_the_classifier(rng):
    classifier = of.overfeat_fast(6, width=TINY, class_names=list("abcdef"))
    detector = of.with_background(classifier)
    assert detector.class_names == (*"abcdef", "background")
    assert detector.regressor == "single"
    images = rng.normal(size=(1, 263, 295, 3)).astype(np.float32)
    want = classifier(images)["class_logits"].numpy()
    got = detector(images)["class_logits"].numpy()
    np.testing.assert_allclose(got[..., :6], want, rtol=1e-5, atol=1e-6)
    assert (got[..., 6] == 0).all()  # the background row starts at zero
    # A detector with its own dropout: same weights, so same inference.
    dropped = of.with_background(classifier, dropout=0.3)
    assert dropped.dropout == 0.3 and detector.dropout == classifier.dropout
    np.testing.assert_allclose(
        dropped(images)["class_logits"].numpy(), got, rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_detection_training_runs_from_a_classifier(detection_data_dir, tmp_path):
    classifier = of.overfeat_fast(10, width=TINY, class_names=shapes.CLASS_NAMES)
    classifier.save(tmp_path / "classifier.keras")
    overrides = [
        "task=detect",
        "data.source=overfeat_shapes/detection",
        f"data.data_dir={detection_data_dir}",
        f"detect.backbone={tmp_path / 'classifier.keras'}",
        f"output_dir={tmp_path / 'run'}",
        "train.histogram_freq=0",
        "train.epochs=1",
        "train.steps_per_epoch=2",
        "train.validation_steps=1",
        "train.image_summaries=2",
    ]
    history = train(load_config("tiny", overrides)).history
    assert np.isfinite(history["class_logits_loss"]).all()
    assert np.isfinite(history["boxes_loss"]).all()
    tags = set()
    for event_file in (tmp_path / "run" / "tensorboard").rglob("events.out.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    assert {"detections/0", "detections/1", "epoch_class_logits_loss"} <= tags
    detector = of.load_model(tmp_path / "run")
    assert detector.num_classes == 11 and detector.class_names[-1] == "background"
    conv1 = detector.get_layer("conv1").get_weights()[0]
    assert not np.array_equal(conv1, classifier.get_layer("conv1").get_weights()[0])
    renamed = of.overfeat_fast(10, width=TINY, class_names=[f"c{i}" for i in range(10)])
    renamed.save(tmp_path / "renamed.keras")
    with pytest.raises(ValueError, match="was trained on the classes"):
        prepare(
            load_config(
                "tiny", [*overrides, f"detect.backbone={tmp_path / 'renamed.keras'}"]
            )
        )
