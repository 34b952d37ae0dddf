"""The detector graph against an independent composition, and bad input."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY, with_random_boxes
from PIL import Image
from reference import localize_reference
from test_localization import NAMES

import overfeat_tf as of
from overfeat_tf import cli
from overfeat_tf.boxes import keras_cv_detections
from overfeat_tf.detector import Detector
from overfeat_tf.evaluation import (
    detection_protocols,
    evaluate_detection,
    format_detection_table,
)
from overfeat_tf.metrics import coco_metrics, voc_ap


@pytest.fixture(scope="module")
def detector_model():
    # Seeded: the weights must not depend on which tests ran before.
    keras.utils.set_random_seed(3)
    classifier = of.overfeat_fast(len(NAMES), width=TINY, class_names=NAMES)
    return with_random_boxes(of.with_background(classifier), np.random.default_rng(2))


@pytest.mark.parametrize(
    "scales, flips, floor, least, score",
    [
        ((256,), False, 0.1, 0.5, "sum"),
        ((256, 294), True, 0.15, 1.0, "sum"),
        ((300,), True, 0.0, 0.0, "sum"),
        ((256, 294), True, 0.15, 0.2, "mean"),
    ],
)
def test_detector_equals_an_independent_composition(
    detector_model, rng, scales, flips, floor, least, score
):
    image = rng.integers(0, 256, (250, 310, 3)).astype(np.uint8)
    detector = Detector(
        detector_model,
        scales=scales,
        flips=flips,
        min_window_score=floor,
        score_threshold=least,
        max_detections=20,
        jit_compile=False,
        merge_score=score,
    )
    got = {name: value.numpy() for name, value in detector(image).items()}
    classes = len(NAMES)  # the background (the last class) is never detected
    boxes, scores, labels = localize_reference(
        detector_model,
        image,
        scales,
        flips,
        classes,
        0.6,
        20,
        classes,
        floor,
        least,
        score,
    )
    n = len(scores)
    assert n > 0 and int(got["num_detections"]) == n
    np.testing.assert_array_equal(got["classes"][:n], labels)
    np.testing.assert_allclose(got["scores"][:n], scores, rtol=1e-4)
    np.testing.assert_allclose(got["boxes"][:n], boxes, atol=0.05)
    assert (got["classes"][n:] == -1).all() and (got["scores"][n:] == 0).all()
    assert (got["classes"][:n] < classes).all()
    assert got["boxes"].shape == (20, 4)


def test_detector_needs_a_background_class():
    classifier = of.with_regressor(of.overfeat_fast(6, width=TINY, class_names=NAMES))
    with pytest.raises(ValueError, match="background class"):
        Detector(classifier)


def _scenes(rng, count=3):
    """Detection elements: images with 0-2 boxes of the 6 classes."""
    scenes = []
    for i in range(count):
        n = i % 3
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(60, 140, (n, 2))], 1)
        scenes.append(
            {
                "image": rng.integers(0, 256, (240, 270, 3)).astype(np.uint8),
                "boxes": boxes.astype(np.float32),
                "labels": rng.integers(0, len(NAMES), n).astype(np.int32),
            }
        )
    return scenes


def _dataset(scenes):
    return tf.data.Dataset.from_generator(
        lambda: iter(scenes),
        output_signature={
            "image": tf.TensorSpec([None, None, 3], tf.uint8),
            "boxes": tf.TensorSpec([None, 4], tf.float32),
            "labels": tf.TensorSpec([None], tf.int32),
        },
    )


@pytest.mark.parametrize("merge_score", ["sum", "mean"])
def test_evaluation_equals_the_metrics_of_the_detector_outputs(
    detector_model, rng, merge_score
):
    scenes = _scenes(rng)
    protocols = detection_protocols(detector_model, scales=(1,), flips=False)
    assert [p.name for p in protocols][0] == "random boxes"
    options = dict(
        min_window_score=0.1,
        score_threshold=0.3,
        max_detections=30,
        merge_score=merge_score,
    )
    results = evaluate_detection(
        detector_model, _dataset(scenes), protocols, verbose=False, **options
    )
    detector = Detector(detector_model, scales=(256,), flips=False, **options)
    found = []
    for scene in scenes:
        out = detector(scene["image"])
        n = int(out["num_detections"])
        found.append(tuple(out[k].numpy()[:n] for k in ("boxes", "scores", "classes")))
    truth = [(s["boxes"], s["labels"]) for s in scenes]
    dense = results[1]
    assert dense.coco_ap == pytest.approx(coco_metrics(found, truth, 30)["AP"])
    assert dense.voc_ap50 == pytest.approx(voc_ap(found, truth)[0])
    assert dense.false_positives_per_empty_image == len(found[0][1])  # image 0 is empty
    for r in results:
        assert 0 <= r.coco_ap <= r.coco_ap50 <= 1 and r.num_images == 3
    assert "| random boxes |" in format_detection_table(results)


def test_detector_outputs_plug_into_keras_cv_metrics(detector_model, rng):
    import keras_cv  # imported here: it is slow to import and only this test needs it

    scenes = _scenes(rng, count=4)
    for scene in scenes:  # objects in every image, some in the detector's reach
        scene["boxes"] = np.concatenate([scene["boxes"], [[20, 20, 200, 220]]])
        scene["labels"] = np.append(scene["labels"], 1).astype(np.int32)
    detector = Detector(
        detector_model,
        scales=(256,),
        flips=False,
        score_threshold=0.0,
        max_detections=30,
    )
    out = detector(np.stack([s["image"] for s in scenes]))
    # KerasCV skips images without detections; none here.
    assert (out["num_detections"].numpy() > 0).all()
    width = max(len(s["labels"]) for s in scenes)
    truth = {
        "boxes": np.zeros((len(scenes), width, 4), np.float32),
        "classes": np.full((len(scenes), width), -1.0, np.float32),
    }
    for i, s in enumerate(scenes):
        truth["boxes"][i, : len(s["labels"])] = s["boxes"]
        truth["classes"][i, : len(s["labels"])] = s["labels"]
    metric = keras_cv.metrics.BoxCOCOMetrics(
        bounding_box_format="xyxy", evaluate_freq=1
    )
    # KerasCV's metric reads its own dict: the adapter's.
    adapted = keras_cv_detections(out)
    assert set(adapted) == {"boxes", "classes", "confidence", "num_detections"}
    np.testing.assert_array_equal(adapted["confidence"], out["scores"])
    metric.update_state(
        truth, {k: adapted[k] for k in ("boxes", "classes", "confidence")}
    )
    theirs = metric.result(force=True)
    found = [
        tuple(out[k].numpy()[i, :n] for k in ("boxes", "scores", "classes"))
        for i, n in enumerate(out["num_detections"].numpy())
    ]
    ours = coco_metrics(found, [(s["boxes"], s["labels"]) for s in scenes], 30)
    assert ours["AP50"] > 0
    np.testing.assert_allclose(
        [ours["AP"], ours["AP50"], ours["AP75"]],
        [float(theirs[k]) for k in ("MaP", "MaP@[IoU=50]", "MaP@[IoU=75]")],
        atol=0.005,
    )


def test_evaluation_bad_data(detector_model, rng):
    scenes = _scenes(rng)
    protocols = detection_protocols(detector_model, scales=(1,), flips=False)[:1]
    outside = [dict(s, labels=np.full_like(s["labels"], 6)) for s in scenes]
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 6\).* in image 1 "):
        evaluate_detection(detector_model, _dataset(outside), protocols, verbose=False)
    empty = [
        dict(s, boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int32))
        for s in scenes
    ]
    with pytest.raises(ValueError, match="no objects"):
        evaluate_detection(detector_model, _dataset(empty), protocols, verbose=False)


def test_thousands_of_objects_are_evaluated(detector_model, rng):
    """An image with 3,000 objects: every box counts, nothing breaks."""
    xy = rng.uniform(0, 200, (3000, 2))
    crowded = {
        "image": rng.integers(0, 256, (240, 270, 3)).astype(np.uint8),
        "boxes": np.concatenate([xy, xy + 20], 1).astype(np.float32),
        "labels": rng.integers(0, len(NAMES), 3000).astype(np.int32),
    }
    protocols = detection_protocols(detector_model, scales=(1,), flips=False)
    (random, dense) = evaluate_detection(
        detector_model, _dataset([crowded]), protocols, verbose=False
    )
    assert 0 <= dense.coco_ap < 0.05 and np.isnan(dense.false_positives_per_empty_image)


@pytest.mark.slow
def test_cli_predict_detect_writes_coco_results(detector_model, tmp_path, rng, capsys):
    detector_model.save(tmp_path / "detector.keras")
    pixels = rng.integers(0, 256, (240, 280, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "17.png")
    output = tmp_path / "results.json"
    args = ["predict", "--task", "detect", "--model", str(tmp_path / "detector.keras")]
    args += [str(tmp_path / "17.png"), "--scales", "1", "--output", str(output)]
    assert cli.main([*args, "--draw", str(tmp_path / "drawn")]) == 0
    results = json.loads(output.read_text())
    want = Detector(detector_model, scales=(256,))(pixels)
    n = int(want["num_detections"])
    assert len(results) == n and all(r["image_id"] == 17 for r in results)
    assert [r["category_id"] for r in results] == want["classes"].numpy()[:n].tolist()
    boxes = want["boxes"].numpy()[:n]
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    np.testing.assert_allclose([r["bbox"] for r in results], xywh, atol=0.11)
    np.testing.assert_allclose(
        [r["score"] for r in results], want["scores"][:n], rtol=1e-4
    )
    assert (tmp_path / "drawn" / "17.png").is_file()
