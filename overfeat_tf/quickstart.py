"""`overfeat quickstart`: classify, localize and detect end to end on the built-in data.

The recipes `shapes_fast`, `shapes_fast_localize` and `shapes_fast_detect`,
shortened to fit 15 minutes on 2 CPU cores, run one after the other into one
folder:

    quickstart/
      classify/ localize/ detect/     the training runs: checkpoints,
                                      TensorBoard logs, history.csv, model.keras
      evaluation/{task}.json          each task's figures on the test split
      export/saved_model/overfeat/1/  SavedModel: localize, classify, detect
      export/overfeat_pipeline_int8.tflite (+ .json)
                                      the classifier's whole pipeline, int8
      pictures/*.png                  test scenes: predicted (red) and true
                                      (green) boxes
      curves.png                      the training curves
      summary.md, summary.json        every figure

Each stage is skipped when its output exists, so a second run reuses what
is there (and an interrupted training resumes); `fresh=True` starts over.
`tiny=True` runs a few steps per stage (tests, smoke runs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import Callable

from overfeat_tf.report import read_history

TASKS = ("classify", "localize", "detect")
RECIPES = {
    "classify": "shapes_fast",
    "localize": "shapes_fast_localize",
    "detect": "shapes_fast_detect",
}


@dataclasses.dataclass(frozen=True)
class Mode:
    """How much a quickstart does."""

    # Config overrides of every task, then of each task.
    overrides: tuple[str, ...]
    task_overrides: dict
    # Test images per evaluation, Table 5 scale numbers of the evaluations
    # and exports, pictures per box task, built-in scenes to verify the
    # TFLite file on.
    eval_limit: int
    scales: tuple[int, ...]
    pictures: int
    verify_images: int
    # Seconds each stage takes on 2 cores, for the time-left estimate.
    estimates: dict


FULL = Mode(
    overrides=("train.histogram_freq=0",),
    task_overrides={
        "classify": ("train.epochs=7",),
        "localize": ("train.epochs=4",),
        "detect": ("train.epochs=1",),
    },
    eval_limit=100,
    scales=(1, 2),
    pictures=4,
    verify_images=20,
    # Measured on 2 cores, one run alone with the data sets generated, plus
    # an estimate of generating them on the training stages (classification
    # 35 s measured; localization 15 s and detection 70 s estimated).
    estimates={
        "train classify": 252,
        "train localize": 68,
        "train detect": 277,
        "evaluate classify": 34,
        "evaluate localize": 18,
        "evaluate detect": 17,
        "export": 36,
        "report": 5,
    },
)
TINY = Mode(
    overrides=(
        "model.width=0.125",
        "train.epochs=1",
        "train.steps_per_epoch=2",
        "train.validation_steps=1",
        "train.batch_size=4",
        "train.lr_decay_epochs=[]",
        "train.histogram_freq=0",
        "train.image_summaries=0",
    ),
    task_overrides={},
    eval_limit=2,
    scales=(1,),
    pictures=1,
    verify_images=3,
    estimates={},
)


def configs(output_dir: str, mode: Mode, overrides=()) -> dict:
    """Each task's `ExperimentConfig`: its recipe with the mode's overrides,
    then `overrides` ("key=value", every task), its run in
    `output_dir/<task>`, the box tasks on its classifier."""
    from overfeat_tf.config import load_config

    classifier = os.path.join(output_dir, "classify")
    result = {}
    for task in TASKS:
        task_overrides = [
            *mode.overrides,
            *mode.task_overrides.get(task, ()),
            *overrides,
            f"output_dir={os.path.join(output_dir, task)}",
        ]
        if task != "classify":
            task_overrides.append(f"{task}.backbone={classifier}")
        result[task] = load_config(RECIPES[task], task_overrides)
    return result


def run(
    output_dir: str = "quickstart",
    *,
    tiny: bool = False,
    fresh: bool = False,
    overrides=(),
    log: Callable[[str], None] = print,
) -> dict:
    """Run (or finish) the quickstart in `output_dir`; return the summary.

    Args:
        tiny: a few steps per stage instead of the CPU-sized recipes.
        fresh: delete `output_dir` first (the generated data set stays
            cached by tensorflow-datasets).
        overrides: "key=value" config overrides for every task (e.g.
            `data.data_dir=/data/tfds`).
        log: where progress lines go.
    """
    if fresh and os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    mode = TINY if tiny else FULL
    tasks = configs(output_dir, mode, overrides)
    stages = Stages(output_dir, mode, tasks)
    steps = [
        ("train classify", lambda: stages.train("classify")),
        ("train localize", lambda: stages.train("localize")),
        ("train detect", lambda: stages.train("detect")),
        ("evaluate classify", lambda: stages.evaluate("classify")),
        ("evaluate localize", lambda: stages.evaluate("localize")),
        ("evaluate detect", lambda: stages.evaluate("detect")),
        ("export", stages.export),
        ("report", stages.report),
    ]
    progress = _Progress([name for name, _ in steps], mode.estimates, log)
    # What each stage took when it last ran: a rerun that reuses it keeps it.
    ran, reused = stages.summary.setdefault("stage_seconds", {}), []
    for name, step in steps:
        progress.start(name)
        was_reused = step()
        took = progress.finish(name, reused=was_reused)
        if was_reused:
            reused.append(name)
        else:
            ran[name] = round(took, 1)
    stages.summary["wall_seconds"] = round(progress.elapsed(), 1)
    stages.summary["reused_stages"] = reused
    stages.write_summary()
    took = _duration(progress.elapsed())
    log(f"quickstart finished in {took}: {output_dir}/summary.md")
    return stages.summary


class Stages:
    """The quickstart's stages over one output folder. Each returns True
    when it reused what was there instead of running."""

    def __init__(self, output_dir: str, mode: Mode, tasks: dict):
        self.output_dir = output_dir
        self.mode = mode
        self.tasks = tasks
        self.summary = _read_json(self._path("summary.json")) or {}
        self.summary.setdefault("tiny", mode is TINY)

    def _path(self, *parts) -> str:
        return os.path.join(self.output_dir, *parts)

    def _model(self, task):
        """The trained model of `task`, for inference (normalization folded)."""
        from overfeat_tf.derived import fold_normalization
        from overfeat_tf.saving import load_model

        return fold_normalization(load_model(self.tasks[task].output_dir))

    def train(self, task: str):
        from overfeat_tf.training import train

        config = self.tasks[task]
        reused = os.path.exists(os.path.join(config.output_dir, "model.keras"))
        if not reused:
            train(config)  # resumes from the run's checkpoints
        history = read_history(os.path.join(config.output_dir, "history.csv"))
        self.summary.setdefault("training", {})[task] = {
            "epochs": len(history.get("epoch", [])),
            **{name: values[-1] for name, values in history.items() if name != "epoch"},
        }
        return reused

    def evaluate(self, task: str):
        path = self._path("evaluation", f"{task}.json")
        rows = _read_json(path)
        reused = rows is not None
        if rows is None:
            rows = self._evaluate(task)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                json.dump(rows, f, indent=2)
        self.summary.setdefault("evaluation", {})[task] = rows
        return reused

    def _evaluate(self, task: str) -> list[dict]:
        from overfeat_tf.evaluation import evaluate_task, result_rows

        results = evaluate_task(
            self._model(task),
            self.tasks[task],
            task,
            scales=self.mode.scales,
            limit=self.mode.eval_limit,
        )
        # No figure (no empty image to count false positives on): null.
        return result_rows(results)

    def _runners(self):
        """The localizer and detector as the exports serve them."""
        from overfeat_tf.inference import paper_scales
        from overfeat_tf.serving import runner_for

        runners = {}
        for task in ("localize", "detect"):
            model = self._model(task)
            options = dict(scales=paper_scales(model.geometry, self.mode.scales))
            runners[task] = runner_for(model, task, self.tasks[task], **options)
        return runners

    def export(self):
        from overfeat_tf.export import saved_model, tflite
        from overfeat_tf.inference import Classifier, paper_scales

        base = self._path("export", "saved_model")
        stem = self._path("export", "overfeat_pipeline_int8")
        reused = os.path.isdir(os.path.join(base, "overfeat", "1")) and os.path.exists(
            f"{stem}.json"
        )
        if not reused:
            shutil.rmtree(self._path("export"), ignore_errors=True)
            runners = self._runners()
            path = saved_model.export_saved_model(
                [runners["localize"], runners["detect"]], base, version=1
            )
            agreement = saved_model.verify_saved_model(
                path, list(runners.values()), saved_model.sample_images()
            )
            model = self._model("classify")
            scales = paper_scales(model.geometry, self.mode.scales)
            classifier = Classifier(model, scales=scales)
            size = (min(classifier.settings.scales),) * 2
            representative = tflite.representative_images(
                self.tasks["classify"], 8 if self.mode is TINY else 100
            )
            content = tflite.convert_pipeline(
                classifier, size, "int8", representative=representative
            )
            with open(f"{stem}.tflite", "wb") as f:
                f.write(content)
            settings = tflite.pipeline_settings(classifier, size)
            settings["verification"] = tflite.verify_pipeline(
                content,
                classifier,
                saved_model.sample_images(self.mode.verify_images),
                size,
            )
            settings["saved_model"] = {"path": path, "verification": agreement}
            with open(f"{stem}.json", "w") as f:
                json.dump(settings, f, indent=2)
        settings = _read_json(f"{stem}.json")
        self.summary["export"] = {
            "saved_model": settings["saved_model"],
            "tflite": {
                "path": f"{stem}.tflite",
                "mib": round(os.path.getsize(f"{stem}.tflite") / 2**20, 2),
                "verification": settings["verification"],
            },
        }
        return reused

    def report(self):
        from overfeat_tf import report

        pictures = report.pictures(
            self._runners(), self.tasks, self._path("pictures"), self.mode.pictures
        )
        self.summary["pictures"] = pictures
        histories = {
            task: os.path.join(config.output_dir, "history.csv")
            for task, config in self.tasks.items()
        }
        report.training_curves(histories, self._path("curves.png"))
        return False

    def write_summary(self):
        from overfeat_tf import report

        with open(self._path("summary.json"), "w") as f:
            json.dump(self.summary, f, indent=2)
        with open(self._path("summary.md"), "w") as f:
            f.write(report.summary_markdown(self.summary, self.output_dir))


class _Progress:
    """Stage lines with the time left: the estimates, scaled by how fast
    the finished stages went against theirs."""

    def __init__(self, names, estimates: dict, log, clock=time.perf_counter):
        self.names = names
        self.estimates = estimates
        self.log = log
        self.clock = clock
        self.begin = clock()
        self.spent = 0.0  # seconds on the stages that had estimates and ran
        self.estimated = 0.0  # their estimates
        self.remaining = list(names)

    def elapsed(self) -> float:
        return self.clock() - self.begin

    def start(self, name: str):
        self.stage_start = self.clock()
        left = sum(self.estimates.get(n, 0) for n in self.remaining)
        speed = self.spent / self.estimated if self.estimated else 1.0
        eta = f", about {_duration(left * speed)} left" if left else ""
        index = f"[{self.names.index(name) + 1}/{len(self.names)}]"
        self.log(f"{index} {name} ({_duration(self.elapsed())} in{eta})")

    def finish(self, name: str, reused: bool) -> float:
        """Logs a reused stage; returns the seconds the stage took."""
        took = self.clock() - self.stage_start
        self.remaining.remove(name)
        if reused:
            self.log(f"      {name}: reused what {name.split()[-1]} had written")
        elif name in self.estimates:
            self.spent += took
            self.estimated += self.estimates[name]
        return took


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


def _read_json(path: str):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
