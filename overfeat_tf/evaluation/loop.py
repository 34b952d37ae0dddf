"""The evaluation loop: every protocol of a list over one data set, with
the task's runner (`Classifier`, `Localizer`, `Detector`), scored as the
paper scores it (top-1 / top-5 error, localization error, AP)."""

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


def evaluate_classification(
    model: OverFeat,
    dataset: tf.data.Dataset,
    protocols: Sequence[Protocol],
    *,
    limit: int | None = None,
    settings: InferenceSettings | None = None,
    verbose: bool = True,
    **options,
) -> list[Result]:
    """Top-1 / top-5 error and images/s of each protocol over a data set.

    Args:
        model: a trained `OverFeat`.
        dataset: unbatched `{"image": uint8 [H, W, 3], "label": int}`
            elements, as the readers give (`readers.load_classification`).
        protocols: the rows to run (`table2_protocols`).
        limit: evaluate only the first `limit` images.
        settings: an `InferenceSettings` (its scales, stride and flips are
            each protocol's); `smallest_side` is the window views' resize
            (the training size).
        verbose: show a progress bar per protocol.
        **options: overrides of `settings`' fields.

    Returns:
        One `Result` per protocol, in order. Speed counts the whole graph
        (resizes, dense passes, aggregation) after a warm-up image, not the
        decoding.

    Raises:
        ValueError: for an empty data set or labels outside the model's
            classes.
    """
    examples = _examples(dataset, limit, "image", "label")
    labels = np.array([int(label) for _, label in examples])
    settings, top_k = settings_of(settings, options), min(5, model.num_classes)
    bad = labels[(labels < 0) | (labels >= model.num_classes)]
    if bad.size:
        raise InvalidValueError(
            f"Labels must be in [0, {model.num_classes}) for this model. "
            f"Received label {int(bad[0])}."
        )

    def runner(protocol):
        classifier = Classifier(
            model, _protocol_settings(settings, protocol), top_k=top_k
        )
        return {
            "dense": classifier,
            "center": classifier.center_crop,
            "ten": classifier.ten_views,
        }[protocol.views]

    results = []
    images = [image for image, _ in examples]
    for protocol, outputs, speed in _run(protocols, runner, images, verbose):
        probabilities = np.stack([out["probabilities"].numpy() for out in outputs])
        results.append(
            Result(
                protocol,
                top_k_error(probabilities, labels, 1),
                top_k_error(probabilities, labels, min(5, model.num_classes)),
                speed,
                len(examples),
            )
        )
    return results


def evaluate_localization(
    model: OverFeat,
    dataset: tf.data.Dataset,
    protocols: Sequence[Protocol],
    *,
    limit: int | None = None,
    settings: InferenceSettings | None = None,
    verbose: bool = True,
    **options,
) -> list[Result]:
    """Top-1 / top-5 ILSVRC localization error and images/s per protocol.

    Args:
        model: an `OverFeat` with a box regressor.
        dataset: unbatched `{"image", "boxes", "labels"}` elements, as
            `readers.load_detection` gives (boxes xyxy pixels).
        protocols: the rows (`localization_protocols`).
        limit: evaluate only the first `limit` images.
        settings: an `InferenceSettings` (its scales, stride and flips are
            each protocol's; `top_k_classes` at most the model's classes).
        verbose: show a progress bar per protocol.
        **options: overrides of `settings`' fields.

    Returns:
        One `Result` per protocol (errors are localization errors, %).

    Raises:
        ValueError: for an empty data set, or ground truth with x2 < x1.
    """
    examples = _examples(dataset, limit, "image", "labels", "boxes")
    truth = [(labels, boxes) for _, labels, boxes in examples]
    images = [image for image, _, _ in examples]
    settings = settings_of(settings, options)
    top_k_classes = min(settings.top_k_classes, model.num_classes)
    settings = dataclasses.replace(settings, top_k_classes=top_k_classes)

    def runner(protocol):
        localizer = Localizer(model, _protocol_settings(settings, protocol))
        return {
            "dense": localizer,
            "center": localizer.localize_center_crop,
            "whole": lambda image: _whole_image(localizer.classifier, image),
        }[protocol.views]

    results = []
    for protocol, outputs, speed in _run(protocols, runner, images, verbose):
        guesses = [(o["classes"].numpy(), o["boxes"].numpy()) for o in outputs]
        results.append(
            Result(
                protocol,
                localization_error(guesses, truth, 1),
                localization_error(guesses, truth, 5),
                speed,
                len(examples),
            )
        )
    return results


def _whole_image(classifier: Classifier, image) -> dict:
    """The center crop's top classes, each boxed by the whole image."""
    out = classifier.center_crop(image)
    height, width = np.shape(image)[:2]
    classes = out["top_k_ids"]
    boxes = np.tile([[0.0, 0.0, width, height]], (len(classes), 1))
    return {"classes": classes, "boxes": tf.constant(boxes, tf.float32)}


def evaluate_detection(
    model: OverFeat,
    dataset: tf.data.Dataset,
    protocols: Sequence[Protocol],
    *,
    limit: int | None = None,
    settings: InferenceSettings | None = None,
    verbose: bool = True,
    **options,
) -> list[DetectionResult]:
    """VOC AP50, COCO AP@[.5:.95] / AP50 / AP75, false positives per empty
    image and images/s of each protocol.

    Args:
        model: a detector (`Detector`'s requirements).
        dataset: unbatched `{"image", "boxes", "labels"}` elements, as
            `readers.load_detection` gives.
        protocols: the rows (`detection_protocols`).
        limit: evaluate only the first `limit` images.
        settings: an `InferenceSettings` (its scales, stride and flips are
            each protocol's), as `Detector` reads it.
        verbose: show a progress bar per protocol.
        **options: overrides of `settings`' fields.

    Raises:
        ValueError: for an empty data set, a data set without objects, or a
            label outside the detector's object classes.
    """
    examples = _examples(dataset, limit, "image", "boxes", "labels")
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
    images = [image for image, _, _ in examples]
    empty = [i for i, (_, labels) in enumerate(truth) if not (labels >= 0).any()]
    settings = settings_of(settings, options)
    max_detections = settings.max_detections or MAX_DETECTIONS

    def runner(protocol):
        if protocol.views == "random":
            return _random_detector(classes, max_detections)
        return Detector(model, _protocol_settings(settings, protocol))

    results = []
    for protocol, outputs, speed in _run(protocols, runner, images, verbose):
        found = []
        for out in outputs:
            n = int(out["num_detections"])
            found.append(
                tuple(
                    np.asarray(out[key])[:n] for key in ("boxes", "scores", "classes")
                )
            )
        coco = coco_metrics(found, truth, max_detections)
        fp = [len(found[i][1]) for i in empty]
        results.append(
            DetectionResult(
                protocol,
                voc_ap(found, truth)[0],
                coco["AP"],
                coco["AP50"],
                coco["AP75"],
                float(np.mean(fp)) if fp else float("nan"),
                speed,
                len(examples),
            )
        )
    return results


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


def _run(protocols, runner, images, verbose):
    """The one evaluation loop: `runner(protocol)` over `images` for each
    protocol, yielding (protocol, outputs, images/s)."""
    for protocol in protocols:
        outputs, speed = _timed(runner(protocol), images, protocol, verbose)
        yield protocol, outputs, speed


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
