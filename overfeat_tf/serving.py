"""The inference layer's one seam: which runner serves a model's task, and
each task's serving graph (float32 images in; `classes`, `scores` and, for
boxes, `boxes` and `num_detections` out). Evaluation, `overfeat predict`,
the quickstart, the SavedModel and the TFLite pipeline all take their
runners and graphs from here.
"""

from __future__ import annotations

from overfeat_tf.detector import Detector
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.inference import Classifier
from overfeat_tf.localizer import Localizer
from overfeat_tf.models import OverFeat

# Each task's graph, by its runner's method name; and what it serves (the
# classify graph's top-k ids and probabilities are served as classes and
# scores, so both box tasks and classification share one schema).
GRAPHS = {
    "classify": "dense_graph",
    "localize": "localize_graph",
    "detect": "detect_graph",
}
OUTPUTS = {
    "classify": ("classes", "scores"),
    "localize": ("boxes", "classes", "scores", "num_detections"),
    "detect": ("boxes", "classes", "scores", "num_detections"),
}


def runner_for(model: OverFeat, task: str, config=None, *, top_k: int = 5, **options):
    """The `Classifier`, `Localizer` or `Detector` of `task` on `model`, with
    the recipe's settings (`config.localize` / `config.detect`) when a
    config is given; `options` go to the runner (scales, flips, ...)."""
    if task == "detect":
        settings = config.detect if config else None
        keys = (
            "merge_threshold",
            "min_window_score",
            "score_threshold",
            "merge_score",
        )
        return Detector(
            model,
            max_detections=settings.max_detections if settings else 100,
            **({key: getattr(settings, key) for key in keys} if settings else {}),
            **options,
        )
    if task == "localize":
        settings = config.localize if config else None
        if settings:
            options = dict(
                top_k_classes=min(settings.top_k_classes, model.num_classes),
                merge_threshold=settings.merge_threshold,
                **options,
            )
        return Localizer(model, max_predictions=top_k, **options)
    return Classifier(model, top_k=min(top_k, model.num_classes), **options)


def task_graph(runner, task: str, with_names: bool = True):
    """float32 [B, H, W, 3] -> `task`'s serving outputs: `classes`, `scores`
    (and for boxes `boxes`, `num_detections`), and `class_names` only
    `with_names` (a TFLite file carries no strings)."""
    if task not in runner.tasks:
        raise InvalidValueError(
            f"A {type(runner).__name__} serves {list(runner.tasks)}, not {task!r}."
        )
    keys = OUTPUTS[task] + (("class_names",) if with_names else ())

    def graph(images):
        out = _call(runner, GRAPHS[task], images)
        if task == "classify":
            out = {
                "classes": out["top_k_ids"],
                "scores": out["top_k_probabilities"],
                "class_names": out["top_k_names"],
            }
        return {key: out[key] for key in keys}

    return graph


def _call(runner, graph: str, images):
    """The runner's `graph` on `images`. For one fixed image shape its code
    is traced inline, so that every shape in it is static (TFLite needs
    that); the graph itself would trace for any shape."""
    if images.shape.is_fully_defined():
        return getattr(type(runner), graph).python_function(runner, images)
    return getattr(runner, graph)(images)
