"""The inference layer's one seam: which runner serves a model's task, and
each task's serving graph (float32 images in; `classes`, `scores` and, for
boxes, `boxes` and `num_detections` out). Evaluation, `overfeat predict`,
the quickstart, the SavedModel and the TFLite pipeline all take their
runners and graphs from here.
"""

from __future__ import annotations

from overfeat_tf.dense_pass import InferenceSettings
from overfeat_tf.detector import Detector
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.inference import Classifier
from overfeat_tf.localizer import Localizer
from overfeat_tf.models import OverFeat

# What each task serves: the classify graph's top-k ids and probabilities
# are served as classes and scores, so classification and both box tasks
# share one schema.
OUTPUTS = {
    "classify": ("classes", "scores"),
    "localize": ("boxes", "classes", "scores", "num_detections"),
    "detect": ("boxes", "classes", "scores", "num_detections"),
}


def runner_for(model: OverFeat, task: str, config=None, *, top_k: int = 5, **options):
    """The `Classifier`, `Localizer` or `Detector` of `task` on `model`, with
    the recipe's settings (`config.localize` / `config.detect`) when a
    config is given; `options` override `InferenceSettings` fields (scales,
    flips, ...). `top_k`: the classes of a classifier, the boxes of a
    localizer."""
    settings = InferenceSettings(**settings_of_config(config, task, model))
    if task == "detect":
        return Detector(model, settings, **options)
    if task == "localize":
        return Localizer(model, settings, max_predictions=top_k, **options)
    return Classifier(model, settings, top_k=min(top_k, model.num_classes), **options)


def settings_of_config(config, task: str, model: OverFeat) -> dict:
    """The `InferenceSettings` fields a recipe sets for `task` (none without
    a config)."""
    if config is None or task == "classify":
        return {}
    if task == "localize":
        return {
            "top_k_classes": min(config.localize.top_k_classes, model.num_classes),
            "merge_threshold": config.localize.merge_threshold,
        }
    keys = (
        "merge_threshold",
        "min_window_score",
        "score_threshold",
        "merge_score",
        "max_detections",
    )
    return {key: getattr(config.detect, key) for key in keys}


def task_graph(runner, task: str, with_names: bool = True):
    """float32 [B, H, W, 3] -> `task`'s serving outputs: `classes`, `scores`
    (and for boxes `boxes`, `num_detections`), and `class_names` only
    `with_names` (a TFLite file carries no strings)."""
    if task not in runner.tasks:
        raise InvalidValueError(
            f"A {type(runner).__name__} serves {list(runner.tasks)}, not {task!r}."
        )
    keys = OUTPUTS[task] + (("class_names",) if with_names else ())
    # A localizer serves classify with the classifier it keeps.
    server = runner if runner.tasks[0] == task else runner.classifier

    def graph(images):
        out = _call(server, images)
        if task == "classify":
            out = {
                "classes": out["top_k_ids"],
                "scores": out["top_k_probabilities"],
                "class_names": out["top_k_names"],
            }
        return {key: out[key] for key in keys}

    return graph


def _call(runner, images):
    """The runner's `serve` on `images`. For one fixed image shape its code
    is traced inline, so that every shape in it is static (TFLite needs
    that); the graph itself would trace for any shape."""
    if images.shape.is_fully_defined():
        return type(runner).serve.python_function(runner, images)
    return runner.serve(images)
