"""The rows of the paper's tables: test-time protocols, their results, and
the results as markdown tables.

Each row is a `Protocol`: which scales, which stride, flips or not, or a
window view (one center crop, or the 10-view comparison); Table 2's rows
(`table2_protocols`), the localization ablation's and detection's.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Sequence

from overfeat_tf.inference import paper_scales
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


def detection_protocols(
    model: OverFeat, scales: Sequence[int] = (1, 2, 4, 6), flips: bool = True
) -> list[Protocol]:
    """A detector that draws random boxes (the floor any detector must
    beat), then the first n of Table 5's scales, fine stride, for each n."""
    return [
        Protocol("random boxes", views="random"),
        *localization_protocols(model, scales, flips)[2:],
    ]


def _error_columns(metric: str) -> list[tuple[str, str, float]]:
    return [
        ("top1_error", f"top-1 {metric} (%)", 1),
        ("top5_error", f"top-5 {metric} (%)", 1),
    ]


# Each task's figures in a table: (result field, column header, factor).
COLUMNS = {
    "classify": _error_columns("error"),
    "localize": _error_columns("localization error"),
    "detect": [
        ("voc_ap50", "VOC AP50 (%)", 100),
        ("coco_ap", "COCO AP (%)", 100),
        ("coco_ap50", "AP50 (%)", 100),
        ("coco_ap75", "AP75 (%)", 100),
        ("false_positives_per_empty_image", "FP per empty image", 1),
    ],
}


def result_rows(results: Sequence[Result | DetectionResult]) -> list[dict]:
    """Results as JSON-ready rows: the protocol's name as `configuration`,
    then every figure (a figure that could not be measured, NaN, as None)."""
    rows = []
    for result in results:
        row = dataclasses.asdict(result)
        row = {"configuration": row.pop("protocol")["name"], **row}
        rows.append(
            {key: None if value != value else value for key, value in row.items()}
        )
    return rows


def results_table(task: str, rows: Sequence[dict]) -> str:
    """`result_rows` (or the same rows read back from JSON) of `task` as a
    markdown table: its figures (`COLUMNS`) and images/s."""
    return _table(COLUMNS[task], rows)


def format_table(results: Sequence[Result], metric: str = "error") -> str:
    """The results as a markdown table shaped like Table 2 (`metric` names
    the error columns, e.g. "localization error")."""
    return _table(_error_columns(metric), result_rows(results))


def format_detection_table(results: Sequence[DetectionResult]) -> str:
    """The detection results as a markdown table (APs in %)."""
    return results_table("detect", result_rows(results))


def _table(columns, rows) -> str:
    return markdown_table(
        ["configuration", *(header for _, header, _ in columns), "images/s"],
        (
            [row["configuration"]]
            + [
                "n/a" if row[key] is None else f"{row[key] * factor:.2f}"
                for key, _, factor in columns
            ]
            + [f"{row['images_per_second']:.1f}"]
            for row in rows
        ),
    )
