"""Evaluation in the shape of the paper's tables.

`evaluate` runs every protocol of a list (Table 2's rows) over one data
set with the task's runner and returns its figures and speed per protocol
(`evaluate_classification`, `evaluate_localization` and
`evaluate_detection` name its three tasks); `results_table` prints them as
a markdown table, and `evaluate_task` runs a recipe's task.

    model = keras.saving.load_model("runs/shapes_fast/model.keras")
    data = readers.load_classification("overfeat_shapes/classification", "test")
    results = evaluate_classification(model, data.dataset, table2_protocols(model))
    print(format_table(results))
"""

from __future__ import annotations

from typing import Sequence

from overfeat_tf.dense_pass import InferenceSettings, check_sizes
from overfeat_tf.evaluation.loop import (
    evaluate,
    evaluate_classification,
    evaluate_detection,
    evaluate_localization,
)
from overfeat_tf.evaluation.protocols import (
    DetectionResult,
    Protocol,
    Result,
    detection_protocols,
    format_detection_table,
    format_table,
    localization_protocols,
    result_rows,
    results_table,
    sizes_protocol,
    table2_protocols,
)
from overfeat_tf.models import OverFeat
from overfeat_tf.serving import settings_of_config

__all__ = [
    "DetectionResult",
    "Protocol",
    "Result",
    "detection_protocols",
    "evaluate",
    "evaluate_classification",
    "evaluate_detection",
    "evaluate_localization",
    "evaluate_task",
    "format_detection_table",
    "format_table",
    "localization_protocols",
    "result_rows",
    "results_table",
    "sizes_protocol",
    "table2_protocols",
]


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
    settings = InferenceSettings(
        smallest_side=data.smallest_side,
        **settings_of_config(config, task, model),
    )
    if task == "classify":
        dataset = readers.load_classification(data.source, split, **read).dataset
        protocols = table2_protocols(model, scales, flips)
        evaluate = evaluate_classification
    else:
        dataset = readers.load_detection(data.source, split, **read).dataset
        protocols = (
            localization_protocols if task == "localize" else detection_protocols
        )(model, scales, flips)
        evaluate = evaluate_localization if task == "localize" else evaluate_detection
    return evaluate(
        model, dataset, [*protocols, *extra], limit=limit, settings=settings
    )
