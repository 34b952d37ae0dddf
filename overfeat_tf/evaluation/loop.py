"""The evaluation loop: every protocol of a list over one data set, with
the task's runner (`Classifier`, `Localizer`, `Detector`), scored as the
paper scores it (top-1 / top-5 error, localization error, AP).

`evaluate` is the one loop; each task brings what differs (`_TASKS`): the
keys it reads, the checks on the labels, its runner per protocol and the
figures it makes of the outputs.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from overfeat_tf.dense_pass import InferenceSettings, settings_of
from overfeat_tf.detector import MAX_DETECTIONS, Detector
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.evaluation.protocols import DetectionResult, Protocol, Result
from overfeat_tf.inference import Classifier
from overfeat_tf.localizer import Localizer
from overfeat_tf.metrics import coco_metrics, localization_error, top_k_error, voc_ap
from overfeat_tf.models import OverFeat


def evaluate(
    task: str,
    model: OverFeat,
    dataset: tf.data.Dataset,
    protocols: Sequence[Protocol],
    *,
    limit: int | None = None,
    settings: InferenceSettings | None = None,
    verbose: bool = True,
    **options,
) -> list:
    """Each protocol's figures and images/s over one data set.

    Args:
        task: `"classify"` (top-1 / top-5 error, `Result`), `"localize"`
            (top-1 / top-5 ILSVRC localization error, `Result`) or
            `"detect"` (VOC AP50, COCO AP@[.5:.95] / AP50 / AP75 and false
            positives per empty image, `DetectionResult`).
        model: a trained `OverFeat` for the task (a box regressor to
            localize, a background class to detect).
        dataset: unbatched elements as the readers give them:
            `{"image", "label"}` to classify (`readers.load_classification`),
            `{"image", "boxes", "labels"}` (xyxy pixels) for the box tasks
            (`readers.load_detection`).
        protocols: the rows (`table2_protocols`, `localization_protocols`,
            `detection_protocols`).
        limit: evaluate only the first `limit` images.
        settings: an `InferenceSettings`; each protocol sets its scales,
            stride and flips (`smallest_side` is the window views' resize).
        verbose: show a progress bar per protocol.
        **options: overrides of `settings`' fields.

    Returns:
        One result per protocol, in order. Speed counts the whole graph
        (resizes, dense passes, aggregation, merge) after a warm-up image,
        not the decoding.

    Raises:
        ValueError: for an empty data set, labels outside the model's
            classes (a detector's object classes), or a detection set
            without objects.
    """
    keys = ("image", "label") if task == "classify" else ("image", "boxes", "labels")
    examples = _examples(dataset, limit, *keys)
    runner, figures = _TASKS[task](model, examples, settings_of(settings, options))
    images = [example[0] for example in examples]
    results = []
    for protocol in protocols:
        outputs, speed = _timed(runner(protocol), images, protocol, verbose)
        results.append(figures(protocol, outputs, speed))
    return results


def evaluate_classification(model, dataset, protocols, **kwargs) -> list[Result]:
    """`evaluate` with `"classify"`: Table 2's top-1 / top-5 errors."""
    return evaluate("classify", model, dataset, protocols, **kwargs)


def evaluate_localization(model, dataset, protocols, **kwargs) -> list[Result]:
    """`evaluate` with `"localize"`: ILSVRC localization errors."""
    return evaluate("localize", model, dataset, protocols, **kwargs)


def evaluate_detection(model, dataset, protocols, **kwargs) -> list[DetectionResult]:
    """`evaluate` with `"detect"`: VOC and COCO APs, false positives."""
    return evaluate("detect", model, dataset, protocols, **kwargs)


def _classification(model, examples, settings):
    labels = np.array([int(label) for _, label in examples])
    bad = labels[(labels < 0) | (labels >= model.num_classes)]
    if bad.size:
        raise InvalidValueError(
            f"Labels must be in [0, {model.num_classes}) for this model. "
            f"Received label {int(bad[0])}."
        )
    top_k = min(5, model.num_classes)

    def runner(protocol):
        classifier = Classifier(
            model, _protocol_settings(settings, protocol), top_k=top_k
        )
        return {
            "dense": classifier,
            "center": classifier.center_crop,
            "ten": classifier.ten_views,
        }[protocol.views]

    def figures(protocol, outputs, speed):
        probabilities = np.stack([out["probabilities"].numpy() for out in outputs])
        errors = (top_k_error(probabilities, labels, k) for k in (1, top_k))
        return Result(protocol, *errors, speed, len(labels))

    return runner, figures


def _localization(model, examples, settings):
    truth = [(labels, boxes) for _, boxes, labels in examples]
    top_k_classes = min(settings.top_k_classes, model.num_classes)
    settings = dataclasses.replace(settings, top_k_classes=top_k_classes)

    def runner(protocol):
        localizer = Localizer(model, _protocol_settings(settings, protocol))
        return {
            "dense": localizer,
            "center": localizer.localize_center_crop,
            "whole": lambda image: _whole_image(localizer.classifier, image),
        }[protocol.views]

    def figures(protocol, outputs, speed):
        guesses = [(o["classes"].numpy(), o["boxes"].numpy()) for o in outputs]
        errors = (localization_error(guesses, truth, k) for k in (1, 5))
        return Result(protocol, *errors, speed, len(truth))

    return runner, figures


def _detection(model, examples, settings):
    classes = model.num_classes - 1
    for index, (_, _, labels) in enumerate(examples):
        bad = labels[labels >= classes]
        if bad.size:
            raise InvalidValueError(
                f"Labels must be in [0, {classes}) (the detector's object classes, "
                f"{model.class_names[:-1]}). Received label {int(bad[0])} in "
                f"image {index} of the data set."
            )
    truth = [(boxes, labels) for _, boxes, labels in examples]
    empty = [i for i, (_, labels) in enumerate(truth) if not (labels >= 0).any()]
    max_detections = settings.max_detections or MAX_DETECTIONS

    def runner(protocol):
        if protocol.views == "random":
            return _random_detector(classes, max_detections)
        return Detector(model, _protocol_settings(settings, protocol))

    def figures(protocol, outputs, speed):
        found = []
        for out in outputs:
            n = int(out["num_detections"])
            keys = ("boxes", "scores", "classes")
            found.append(tuple(np.asarray(out[key])[:n] for key in keys))
        coco = coco_metrics(found, truth, max_detections)
        fp = [len(found[i][1]) for i in empty]
        return DetectionResult(
            protocol,
            voc_ap(found, truth)[0],
            coco["AP"],
            coco["AP50"],
            coco["AP75"],
            float(np.mean(fp)) if fp else float("nan"),
            speed,
            len(truth),
        )

    return runner, figures


_TASKS = {
    "classify": _classification,
    "localize": _localization,
    "detect": _detection,
}


def _whole_image(classifier: Classifier, image) -> dict:
    """The center crop's top classes, each boxed by the whole image."""
    out = classifier.center_crop(image)
    height, width = np.shape(image)[:2]
    classes = out["top_k_ids"]
    boxes = np.tile([[0.0, 0.0, width, height]], (len(classes), 1))
    return {"classes": classes, "boxes": tf.constant(boxes, tf.float32)}


def _random_detector(classes: int, count: int, seed: int = 0):
    """Detections of `count` random boxes, classes and scores per image."""
    rng = np.random.default_rng(seed)

    def run(image):
        height, width = np.shape(image)[:2]
        corners = rng.uniform(0, 1, (count, 2, 2)) * [width, height]
        boxes = np.concatenate([corners.min(1), corners.max(1)], 1)
        return {
            "boxes": boxes,
            "scores": rng.random(count),
            "classes": rng.integers(0, classes, count),
            "num_detections": count,
        }

    return run


def _protocol_settings(settings: InferenceSettings, protocol: Protocol):
    """`settings` with `protocol`'s scales, stride and flips."""
    return dataclasses.replace(
        settings,
        scales=protocol.scales or None,
        stride=protocol.stride,
        flips=protocol.flips,
    )


def _examples(dataset, limit: int | None, *keys: str) -> list[tuple]:
    """The first `limit` elements of `dataset` as tuples of `keys` (the
    image as a tensor, the rest as NumPy); an empty data set is an error."""
    if limit is not None:
        dataset = dataset.take(limit)
    examples = [
        tuple(e[key] if key == "image" else e[key].numpy() for key in keys)
        for e in dataset
    ]
    if not examples:
        raise InvalidValueError("The evaluation data set has no images.")
    return examples


def _timed(run, images, protocol, verbose):
    """`run` on every image: the outputs and images/s (after a warm-up
    call that traces the graph, so tracing is not timed)."""
    run(images[0])
    # A bar on a terminal, one line per protocol in a log file.
    progress = keras.utils.Progbar(
        len(images), verbose=(1 if sys.stdout.isatty() else 2) if verbose else 0
    )
    if verbose:
        print(protocol.name)
    outputs, start = [], time.perf_counter()
    for i, image in enumerate(images):
        outputs.append(run(image))
        progress.update(i + 1)
    return outputs, len(images) / (time.perf_counter() - start)
