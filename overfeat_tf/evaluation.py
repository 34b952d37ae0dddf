"""Classification evaluation in the shape of the paper's Table 2.

Each row of the table is a `Protocol`: which scales, which stride, flips or
not, or a window view (one center crop, or the 10-view comparison).
`evaluate_classification` runs every protocol of a list over one data set
with the shared `inference.Classifier` graph and returns top-1 / top-5 error
and speed per protocol; `format_table` prints them as a markdown table.

    model = keras.saving.load_model("runs/shapes_fast/model.keras")
    data = readers.load_classification("overfeat_shapes/classification", "test")
    results = evaluate_classification(model, data.dataset, table2_protocols(model))
    print(format_table(results))
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Literal, Sequence

import keras
import numpy as np
import tensorflow as tf

from overfeat_tf.detector import Detector
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.inference import Classifier, check_sizes, paper_scales
from overfeat_tf.localizer import Localizer
from overfeat_tf.metrics import coco_metrics, localization_error, top_k_error, voc_ap
from overfeat_tf.models import OverFeat
from overfeat_tf.tables import markdown_table


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One test-time protocol (a row of Table 2).

    Attributes:
        name: the row's label.
        scales: shorter sides in pixels (dense protocols).
        stride: `"fine"` or `"coarse"`.
        flips: also run the mirrored image.
        views: `"dense"` (default: the dense pass over `scales`), or a
            window view of the image at its training size: `"center"` (one
            center crop) or `"ten"` (4 corners + center, and flips); window
            views ignore `scales`, `stride` and `flips`. Localization also
            has `"whole"`: the center crop's classes, each with the whole
            image as its box (the baseline a regressor must beat); detection
            `"random"`: random boxes, classes and scores.
    """

    name: str
    scales: tuple[int, ...] = ()
    stride: str = "fine"
    flips: bool = True
    views: Literal["dense", "center", "ten", "whole", "random"] = "dense"


@dataclasses.dataclass(frozen=True)
class Result:
    """A protocol's figures: errors in %, speed in images per second."""

    protocol: Protocol
    top1_error: float
    top5_error: float
    images_per_second: float
    num_images: int


def table2_protocols(
    model: OverFeat, scales: Sequence[int] = (1, 2, 4, 6), flips: bool = True
) -> list[Protocol]:
    """Table 2's rows for `model`: the center crop (the baseline), 1 scale
    coarse and fine, several scales fine (paper numbers `scales`, default 1,
    2, 4, 6), all 6 fine, and 10 views."""
    geometry = model.geometry
    first = paper_scales(geometry, scales[:1])
    several = paper_scales(geometry, scales)
    numbers = ",".join(str(i) for i in scales)
    rows = [
        Protocol("1 center crop", views="center"),
        Protocol(f"1 scale ({first[0]} px), coarse", first, "coarse", flips),
        Protocol(f"1 scale ({first[0]} px), fine", first, "fine", flips),
        Protocol(f"{len(several)} scales ({numbers}), fine", several, "fine", flips),
    ]
    if len(several) < 6:
        rows.append(Protocol("6 scales, fine", paper_scales(geometry), "fine", flips))
    rows.append(Protocol("10 views (4 corners + center, flips)", views="ten"))
    return rows


def evaluate_classification(
    model: OverFeat,
    dataset: tf.data.Dataset,
    protocols: Sequence[Protocol],
    *,
    limit: int | None = None,
    smallest_side: int = 256,
    verbose: bool = True,
) -> list[Result]:
    """Top-1 / top-5 error and images/s of each protocol over a data set.

    Args:
        model: a trained `OverFeat`.
        dataset: unbatched `{"image": uint8 [H, W, 3], "label": int}`
            elements, as the readers give (`readers.load_classification`).
        protocols: the rows to run (`table2_protocols`).
        limit: evaluate only the first `limit` images.
        smallest_side: the window views' resize (the training size).
        verbose: show a progress bar per protocol.

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
    bad = labels[(labels < 0) | (labels >= model.num_classes)]
    if bad.size:
        raise InvalidValueError(
            f"Labels must be in [0, {model.num_classes}) for this model. "
            f"Received label {int(bad[0])}."
        )

    def runner(protocol):
        classifier = Classifier(
            model,
            scales=protocol.scales or None,
            stride=protocol.stride,
            flips=protocol.flips,
            top_k=min(5, model.num_classes),
            smallest_side=smallest_side,
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


def localization_protocols(
    model: OverFeat, scales: Sequence[int] = (1, 2, 4, 6), flips: bool = True
) -> list[Protocol]:
    """The localization ablation: the whole-image box and the center crop
    (baselines), then the first n of Table 5's scales, fine stride, for
    each n in `scales` (the paper's 1, 2, 4 and 6 scales)."""
    rows = [
        Protocol("whole image box (center-crop classes)", views="whole"),
        Protocol("1 center crop", views="center"),
    ]
    for n in scales:
        sizes = paper_scales(model.geometry, range(1, n + 1))
        rows.append(sizes_protocol(sizes, flips))
    return rows


def sizes_protocol(sizes: Sequence[int], flips: bool = True) -> Protocol:
    """The dense pass at fine stride over scales given as shorter sides in
    pixels, e.g. "2 scales (256,294 px), fine"."""
    sizes = tuple(int(size) for size in sizes)
    n = len(sizes)
    label = f"{n} scale{'s' if n > 1 else ''} ({','.join(map(str, sizes))} px), fine"
    return Protocol(label, sizes, "fine", flips)


def evaluate_localization(
    model: OverFeat,
    dataset: tf.data.Dataset,
    protocols: Sequence[Protocol],
    *,
    limit: int | None = None,
    smallest_side: int = 256,
    top_k_classes: int = 5,
    merge_threshold: float = 0.6,
    verbose: bool = True,
) -> list[Result]:
    """Top-1 / top-5 ILSVRC localization error and images/s per protocol.

    Args:
        model: an `OverFeat` with a box regressor.
        dataset: unbatched `{"image", "boxes", "labels"}` elements, as
            `readers.load_detection` gives (boxes xyxy pixels).
        protocols: the rows (`localization_protocols`).
        limit: evaluate only the first `limit` images.
        smallest_side, top_k_classes, merge_threshold: as for `Localizer`.
        verbose: show a progress bar per protocol.

    Returns:
        One `Result` per protocol (errors are localization errors, %).

    Raises:
        ValueError: for an empty data set, or ground truth with x2 < x1.
    """
    examples = _examples(dataset, limit, "image", "labels", "boxes")
    truth = [(labels, boxes) for _, labels, boxes in examples]
    images = [image for image, _, _ in examples]

    def runner(protocol):
        localizer = Localizer(
            model,
            scales=protocol.scales or None,
            stride=protocol.stride,
            flips=protocol.flips,
            top_k_classes=min(top_k_classes, model.num_classes),
            merge_threshold=merge_threshold,
            smallest_side=smallest_side,
        )
        return {
            "dense": localizer,
            "center": localizer.localize_center_crop,
            "whole": lambda image: _whole_image(localizer, image),
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


def format_table(results: Sequence[Result], metric: str = "error") -> str:
    """The results as a markdown table shaped like Table 2 (`metric` names
    the error columns, e.g. "localization error")."""
    header = ["configuration", f"top-1 {metric} (%)", f"top-5 {metric} (%)"]
    return markdown_table(
        [*header, "images/s"],
        (
            [r.protocol.name, f"{r.top1_error:.2f}", f"{r.top5_error:.2f}"]
            + [f"{r.images_per_second:.1f}"]
            for r in results
        ),
    )


@dataclasses.dataclass(frozen=True)
class DetectionResult:
    """A detection protocol's figures: APs in [0, 1], speed in images/s.

    `false_positives_per_empty_image` is the mean number of detections on
    the images without objects (NaN when there are none).
    """

    protocol: Protocol
    voc_ap50: float
    coco_ap: float
    coco_ap50: float
    coco_ap75: float
    false_positives_per_empty_image: float
    images_per_second: float
    num_images: int


def detection_protocols(
    model: OverFeat, scales: Sequence[int] = (1, 2, 4, 6), flips: bool = True
) -> list[Protocol]:
    """A detector that draws random boxes (the floor any detector must
    beat), then the first n of Table 5's scales, fine stride, for each n."""
    return [
        Protocol("random boxes", views="random"),
        *localization_protocols(model, scales, flips)[2:],
    ]


def evaluate_detection(
    model: OverFeat,
    dataset: tf.data.Dataset,
    protocols: Sequence[Protocol],
    *,
    limit: int | None = None,
    merge_threshold: float = 0.6,
    min_window_score: float = 0.1,
    score_threshold: float = 0.5,
    max_detections: int = 100,
    merge_score: str = "sum",
    verbose: bool = True,
) -> list[DetectionResult]:
    """VOC AP50, COCO AP@[.5:.95] / AP50 / AP75, false positives per empty
    image and images/s of each protocol.

    Args:
        model: a detector (`Detector`'s requirements).
        dataset: unbatched `{"image", "boxes", "labels"}` elements, as
            `readers.load_detection` gives.
        protocols: the rows (`detection_protocols`).
        limit: evaluate only the first `limit` images.
        merge_threshold, min_window_score, score_threshold, max_detections,
        merge_score: as for `Detector`.
        verbose: show a progress bar per protocol.

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

    def runner(protocol):
        if protocol.views == "random":
            return _random_detector(classes, max_detections)
        return Detector(
            model,
            scales=protocol.scales,
            stride=protocol.stride,
            flips=protocol.flips,
            merge_threshold=merge_threshold,
            min_window_score=min_window_score,
            score_threshold=score_threshold,
            max_detections=max_detections,
            merge_score=merge_score,
        )

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


def format_detection_table(results: Sequence[DetectionResult]) -> str:
    """The detection results as a markdown table (APs in %)."""
    header = ["configuration", "VOC AP50", "COCO AP", "AP50", "AP75"]
    return markdown_table(
        [*header, "FP per empty image", "images/s"],
        (
            [r.protocol.name]
            + [f"{100 * ap:.2f}" for ap in (r.voc_ap50, r.coco_ap, r.coco_ap50)]
            + [f"{100 * r.coco_ap75:.2f}", f"{r.false_positives_per_empty_image:.2f}"]
            + [f"{r.images_per_second:.1f}"]
            for r in results
        ),
    )


def evaluate_task(
    model: OverFeat,
    config,
    task: str,
    *,
    split: str | None = None,
    scales: Sequence[int] = (1, 2, 4, 6),
    flips: bool = True,
    limit: int | None = None,
    scale_sizes: Sequence[int] | None = None,
) -> list:
    """`task`'s protocols ("classify": Table 2; "localize": the localization
    ablation; "detect": random boxes and the scales) on a split of the
    recipe's data (`config`, an `ExperimentConfig`; default its test split),
    with the recipe's settings. `scale_sizes` (shorter sides in pixels) adds
    one dense row at those scales: Table 5's suit ImageNet's objects, and
    small objects (the built-in detection scenes' 32 px ones) need larger.
    Returns `Result`s or `DetectionResult`s."""
    from overfeat_tf.data import readers

    extra = []
    if scale_sizes:  # checked before the other rows run
        extra = [sizes_protocol(check_sizes(model.geometry, scale_sizes), flips)]

    data = config.data
    split = split or data.test_split
    read = dict(data_dir=data.data_dir, on_bad=data.on_bad)
    if task == "classify":
        dataset = readers.load_classification(data.source, split, **read).dataset
        return evaluate_classification(
            model,
            dataset,
            [*table2_protocols(model, scales, flips), *extra],
            limit=limit,
            smallest_side=data.smallest_side,
        )
    dataset = readers.load_detection(data.source, split, **read).dataset
    if task == "localize":
        return evaluate_localization(
            model,
            dataset,
            [*localization_protocols(model, scales, flips), *extra],
            limit=limit,
            smallest_side=data.smallest_side,
            top_k_classes=config.localize.top_k_classes,
            merge_threshold=config.localize.merge_threshold,
        )
    settings = config.detect
    return evaluate_detection(
        model,
        dataset,
        [*detection_protocols(model, scales, flips), *extra],
        limit=limit,
        merge_threshold=settings.merge_threshold,
        min_window_score=settings.min_window_score,
        score_threshold=settings.score_threshold,
        max_detections=settings.max_detections,
        merge_score=settings.merge_score,
    )
