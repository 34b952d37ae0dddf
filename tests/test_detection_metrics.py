"""Detection metrics: VOC AP by hand, COCO metrics equal to pycocotools."""

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from overfeat_tf.metrics import coco_metrics, voc_ap


def _scene(rng, images=12, classes=4, max_objects=6):
    """Random ground truth: per image (boxes [G, 4] xyxy, labels [G])."""
    truth = []
    for _ in range(images):
        n = rng.integers(0, max_objects + 1)
        xy = rng.uniform(0, 300, (n, 2))
        wh = rng.uniform(10, 150, (n, 2))
        truth.append((np.concatenate([xy, xy + wh], 1), rng.integers(0, classes, n)))
    return truth


def _perturbed(rng, truth, classes=4, jitter=0.15, extra=3, drop=0.2):
    """Detections: jittered truth (some dropped, some relabelled) plus false
    positives, with random scores."""
    detections = []
    for boxes, labels in truth:
        keep = rng.random(len(boxes)) > drop
        size = (boxes[:, 2:] - boxes[:, :2])[keep]
        shift = rng.normal(0, jitter, (keep.sum(), 4)) * np.tile(size, 2)
        found = boxes[keep] + shift
        found = np.concatenate(
            [
                np.minimum(found[:, :2], found[:, 2:]),
                np.maximum(found[:, :2], found[:, 2:]),
            ],
            1,
        )
        found_labels = labels[keep].copy()
        relabel = rng.random(len(found_labels)) < 0.1
        found_labels[relabel] = rng.integers(0, classes, relabel.sum())
        n = rng.integers(0, extra + 1)
        xy = rng.uniform(0, 300, (n, 2))
        false = np.concatenate([xy, xy + rng.uniform(10, 150, (n, 2))], 1)
        all_boxes = np.concatenate([found, false])
        all_labels = np.concatenate([found_labels, rng.integers(0, classes, n)])
        detections.append((all_boxes, rng.random(len(all_boxes)), all_labels))
    return detections


def _pycocotools(detections, truth):
    """AP@[.5:.95], AP50, AP75 from pycocotools on the same boxes."""
    images, annotations, results = [], [], []
    for image_id, ((boxes, labels), (dets, scores, classes)) in enumerate(
        zip(truth, detections)
    ):
        images.append({"id": image_id, "width": 500, "height": 500})
        for box, label in zip(boxes, labels):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for box, score, label in zip(dets, scores, classes):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "score": float(score),
                }
            )
    categories = [{"id": c} for c in range(10)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats[:3]


@pytest.mark.parametrize("seed", range(4))
def test_coco_metrics_equal_pycocotools(seed):
    rng = np.random.default_rng(seed)
    truth = _scene(rng)
    detections = _perturbed(rng, truth)
    ours = coco_metrics(detections, truth)
    want = _pycocotools(detections, truth)
    np.testing.assert_allclose(
        [ours["AP"], ours["AP50"], ours["AP75"]], want, atol=1e-6
    )
    assert 0 < ours["AP"] < ours["AP50"] < 1
    # VOC's all-point AP50 and COCO's 101-point AP50 are two readings of one
    # curve: close, not equal.
    assert voc_ap(detections, truth)[0] == pytest.approx(want[1], abs=0.03)


def test_perfect_detections_score_one():
    truth = _scene(np.random.default_rng(7))
    perfect = [(boxes, np.ones(len(boxes)), labels) for boxes, labels in truth]
    assert voc_ap(perfect, truth)[0] == pytest.approx(1.0)
    assert coco_metrics(perfect, truth) == pytest.approx(
        {"AP": 1.0, "AP50": 1.0, "AP75": 1.0}
    )


def test_voc_ap_by_hand():
    # One class, 2 objects; detections by score: hit, miss, duplicate of the
    # first object (a false positive), hit.
    truth = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 0]))]
    boxes = np.array(
        [[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 9], [20, 20, 30, 31]]
    )
    detections = [(boxes, np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 0, 0, 0]))]
    # Precision 1, 1/2, 1/3, 1/2 at recall 1/2, 1/2, 1/2, 1: the envelope
    # gives 1 over the first half of recall and 1/2 over the second.
    mean, per_class = voc_ap(detections, truth)
    assert per_class == {0: pytest.approx(0.75)} and mean == pytest.approx(0.75)


def test_bad_detection_input():
    with pytest.raises(ValueError, match="no objects"):
        voc_ap([(np.zeros((1, 4)), [1.0], [0])], [(np.zeros((0, 4)), np.zeros(0))])
    with pytest.raises(ValueError, match="x2 < x1"):
        coco_metrics([(np.zeros((0, 4)), [], [])], [(np.array([[5, 0, 1, 1]]), [0])])
    with pytest.raises(ValueError, match="one detection list per ground-truth image"):
        coco_metrics([], [])


def _dense(per_image, width):
    """Per-image rows -> one batch padded with -1, the KerasCV convention."""
    out = np.full((len(per_image), width, *np.shape(per_image[0])[1:]), -1.0)
    for i, rows in enumerate(per_image):
        out[i, : len(rows)] = rows
    return out.astype(np.float32)


@pytest.mark.parametrize("seed", range(3))
def test_coco_metrics_agree_with_keras_cv(seed):
    import keras_cv  # imported here: it is slow to import and only this test needs it

    rng = np.random.default_rng(seed)
    truth = _scene(rng)
    # KerasCV evaluates only the images that have detections (it sets
    # COCOeval's imgIds from them), so here every image has one at least.
    detections = [
        (b, s, c) if len(b) else (np.array([[0.0, 0, 50, 50]]), [0.5], [0])
        for b, s, c in _perturbed(rng, truth)
    ]
    width = max(len(b) for b, _ in truth + [(d[0], None) for d in detections])
    metric = keras_cv.metrics.BoxCOCOMetrics(
        bounding_box_format="xyxy", evaluate_freq=1
    )
    metric.update_state(
        {
            "boxes": _dense([b.reshape(-1, 4) for b, _ in truth], width),
            "classes": _dense([labels for _, labels in truth], width),
        },
        {
            "boxes": _dense([b.reshape(-1, 4) for b, _, _ in detections], width),
            "classes": _dense([c for _, _, c in detections], width),
            "confidence": _dense([s for _, s, _ in detections], width),
        },
    )
    theirs = {k: float(v) for k, v in metric.result(force=True).items()}
    ours = coco_metrics(detections, truth)
    np.testing.assert_allclose(
        [ours["AP"], ours["AP50"], ours["AP75"]],
        [theirs["MaP"], theirs["MaP@[IoU=50]"], theirs["MaP@[IoU=75]"]],
        atol=0.005,
    )
