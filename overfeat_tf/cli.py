"""The `overfeat` command.

Subcommands:
    quickstart: train, evaluate and export all three tasks on the built-in
        data set into one folder, with a summary, pictures and curves.
    describe: a network's layer table with each layer's output size at an
        input size, its parameters and multiply-adds, and the geometry.
    train: train a classifier, or a box regressor on one (`--task
        localize`), from a recipe in configs/ (resumes a run that was
        interrupted when run again with the same output folder).
    evaluate: the paper's Table 2 protocols, or the localization ablation
        (`--task localize`), on a data set split.
    predict: the top-5 classes, or boxes (localize, detect), of image
        files, printed and written as JSON (and, for boxes, drawn into PNGs).
    export: a SavedModel for TF Serving, or a TFLite file (the dense
        model or the whole pipeline), checked against the pipeline.

Example:
    overfeat describe --network accurate --image-size 461x569 --stride fine
    overfeat train --config shapes_accurate train.epochs=3
    overfeat evaluate --config shapes_fast
    overfeat predict --model runs/shapes_fast photos/
"""

from __future__ import annotations

import argparse
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXAMPLES = """examples:
  overfeat quickstart
  overfeat quickstart --tiny --output /tmp/qs
  overfeat describe --network fast
  overfeat describe --network accurate --image-size 461x569 --stride fine
  overfeat describe --network accurate --width 0.125 --num-classes 10
  overfeat describe --model runs/shapes_fast --image-size 256x320
  overfeat train --config shapes_accurate
  overfeat train --config configs/paper_fast.yaml --strategy mirrored train.epochs=2
  overfeat train --config shapes_fast --output-dir runs/try1 model.width=0.5
  overfeat evaluate --config shapes_fast --split test --scales 1,2,4,6
  overfeat predict --task classify --model runs/shapes_fast/model.keras cat.jpg photos/
  overfeat train --task localize --config shapes_fast_localize
  overfeat evaluate --task localize --config shapes_fast_localize
  overfeat predict --task localize --model runs/shapes_fast_localize --draw out/ a.jpg
  overfeat train --config shapes_fast_detect detect.mining=random
  overfeat evaluate --task detect --config shapes_fast_detect --scales 1,2
  overfeat export --model runs/shapes_fast_localize --model runs/shapes_fast_detect
  overfeat export --format tflite --quantize int8 --config shapes_fast
  overfeat export --format tflite --kind pipeline --config shapes_fast --scales 1,2
  overfeat export --format tflite --kind pipeline --quantize int8 --no-merge \\
      --config shapes_fast_detect
"""

TASKS = ("classify", "localize", "detect")
OVERRIDE = re.compile(r"^[A-Za-z_]\w*(\.\w+)*=")


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line of stderr, with where to look, exit status 2;
    flags spelt out in full, so that adding one never breaks a command line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _image_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH in pixels, e.g. 461x569; got {text!r}"
        ) from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive; got {text!r}")
    return height, width


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {text}")
    return value


def _number_list(kind):
    def parse(text: str):
        try:
            values = tuple(kind(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated numbers, e.g. 1,2,4,6; got {text!r}"
            ) from None
        if not values or min(values) <= 0:
            raise argparse.ArgumentTypeError(f"numbers must be positive; got {text!r}")
        return values

    return parse


def _add_scale_flags(parser, scales_help):
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--scales", type=_number_list(int), metavar="I,J,...", help=scales_help
    )
    group.add_argument(
        "--scale-sizes",
        type=_number_list(int),
        metavar="PX,...",
        help="scales as shorter sides in pixels (each >= the window)",
    )
    group.add_argument(
        "--scale-factors",
        type=_number_list(float),
        metavar="F,...",
        help="scales as multiples of the window (e.g. 1,1.25,1.5)",
    )


def _add_model_flags(parser):
    parser.add_argument(
        "--model",
        help="a saved model (.keras) or a run folder holding model.keras "
        "(default: OUTPUT_DIR/model.keras of --config)",
    )
    parser.add_argument(
        "--config", help="a YAML recipe path or bundled name: its run folder and data"
    )
    parser.add_argument(
        "--task",
        choices=TASKS,
        help="classify, localize (needs a model with a box regressor) or "
        "detect (a detector); default: the config's task, else classify",
    )


def _help_format(command: str | None = None) -> dict:
    """Parser keywords: line breaks kept, and the examples of `command`
    (every example for the top-level parser)."""
    lines, keep = ["examples:"], False
    for line in EXAMPLES.splitlines()[1:]:
        if not line.startswith("      "):  # a continuation keeps the last choice
            keep = command is None or line.split()[1] == command
        if keep:
            lines.append(line)
    return {
        "epilog": "\n".join(lines) + "\n",
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="overfeat",
        description=(
            "OverFeat (Sermanet et al., ICLR 2014) for Keras 3 / TensorFlow. "
            "Exit status: 0 done; 2 a bad flag, config key, file or input, "
            "explained on one line of stderr; 1 an unexpected failure (traceback)."
        ),
        **_help_format(),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    quickstart = commands.add_parser(
        "quickstart",
        help="train, evaluate and export all three tasks on the built-in data",
        description=(
            "The main job on the built-in data set, CPU-sized (about 15 minutes "
            "on 2 cores): train the classifier, then the localizer and the "
            "detector on it; evaluate each on the test split (Table 2 rows, "
            "localization error, mAP); export the SavedModel and an int8 TFLite "
            "file; write OUTPUT/summary.md and summary.json, PNGs of test "
            "scenes with predicted and true boxes, curves.png and TensorBoard "
            "logs. Run it again to reuse what is finished (an interrupted "
            "training resumes); --fresh starts over."
        ),
        **_help_format("quickstart"),
    )
    quickstart.add_argument(
        "--output", default="quickstart", help="output folder (default: quickstart)"
    )
    quickstart.add_argument(
        "--tiny",
        action="store_true",
        help="a few steps per stage (a smoke run of a minute or two; figures "
        "meaningless)",
    )
    quickstart.add_argument(
        "--fresh", action="store_true", help="delete OUTPUT first and start over"
    )
    quickstart.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides for every stage, e.g. data.data_dir=/data/tfds",
    )
    describe = commands.add_parser(
        "describe",
        help="print a network's layer table, sizes, parameters and multiply-adds",
        description=(
            "Print the paper's layer table for a network with each layer's "
            "output size at an input size (default: the window), its "
            "parameters and multiply-adds, and the derived geometry."
        ),
        **_help_format("describe"),
    )
    describe.add_argument("--network", choices=("fast", "accurate"), default="accurate")
    describe.add_argument(
        "--image-size", type=_image_size, metavar="HxW", help="input size in pixels"
    )
    describe.add_argument("--stride", choices=("coarse", "fine"), default="coarse")
    describe.add_argument("--width", type=_positive_float, default=1.0)
    describe.add_argument("--num-classes", type=_positive_int, default=1000)
    describe.add_argument(
        "--model",
        help="a saved model (.keras) or run folder: its network, width and "
        "classes instead of --network, --width and --num-classes",
    )

    train = commands.add_parser(
        "train",
        help="train from a recipe (config file or bundled name), resuming if stopped",
        description=(
            "Train the classifier of a recipe with model.fit, or with --task "
            "localize the box regressor on its frozen features. Checkpoints go to "
            "OUTPUT_DIR/checkpoints every epoch; running the same command again "
            "resumes from the last one. TensorBoard logs: OUTPUT_DIR/tensorboard."
        ),
        **_help_format("train"),
    )
    train.add_argument(
        "--config",
        required=True,
        help="a YAML recipe path, or a bundled recipe name (e.g. shapes_accurate)",
    )
    train.add_argument(
        "--task",
        choices=TASKS,
        help="classify (the network), localize (a box regressor on the "
        "classifier of localize.backbone) or detect (a detector, from "
        "detect.backbone if set); default: the config's task",
    )
    train.add_argument(
        "--strategy",
        choices=("default", "one_device", "mirrored", "multi_worker", "tpu"),
        help="tf.distribute strategy (overrides train.strategy)",
    )
    train.add_argument(
        "--output-dir", "--output", help="run folder (overrides output_dir)"
    )
    train.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides"
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="top-1/top-5 error of the Table 2 protocols on a data split",
        description=(
            "Evaluate a trained classifier with the paper's Table 2 protocols "
            "(1 scale coarse, 1 scale fine, several scales fine, 6 scales fine, "
            "10 views) on the config's data, and print the table. With --task "
            "localize: top-1/top-5 ILSVRC localization error of the whole-image "
            "box, the center crop, and 1, 2, 4 and 6 scales (--scales). With "
            "--task detect: VOC AP50, COCO AP/AP50/AP75 and false positives per "
            "empty image of random boxes and of 1, 2, 4 and 6 scales."
        ),
        **_help_format("evaluate"),
    )
    _add_model_flags(evaluate)
    evaluate.add_argument("--split", help="data split (default: data.test_split)")
    evaluate.add_argument(
        "--limit", type=_positive_int, help="evaluate the first N images only"
    )
    evaluate.add_argument(
        "--no-flips", action="store_true", help="dense rows without mirrored images"
    )
    evaluate.add_argument("--output", help="also write the results as JSON here")
    evaluate.add_argument(
        "--scales",
        type=_number_list(int),
        default=(1, 2, 4, 6),
        metavar="I,J,...",
        help="Table 5 scale numbers of the several-scales row (default 1,2,4,6); "
        "with --task localize, the numbers of scales of each row",
    )
    evaluate.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides"
    )

    predict = commands.add_parser(
        "predict",
        help="top-5 classes (or boxes) of image files or folders, saved as JSON",
        description=(
            "Classify images with the multi-scale dense pass (default: all six "
            "Table 5 scales, fine stride, flips) and print each image's top "
            "classes. JSON output: {image: [[class_id, name, probability], ...]}. "
            "With --task localize: the merged boxes, JSON {image: [[class_id, "
            "score, x1, y1, x2, y2], ...]} in image pixels; with --task detect: "
            "COCO results JSON [{image_id, category_id, bbox: [x, y, w, h], "
            "score}]; with --draw DIR a PNG per image with the boxes drawn."
        ),
        **_help_format("predict"),
    )
    _add_model_flags(predict)
    predict.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE|KEY=VALUE",
        help="image files or folders of images, and config overrides (with "
        "--config), e.g. detect.score_threshold=0.3",
    )
    _add_scale_flags(predict, "Table 5 scale numbers, e.g. 1,2,4,6 (default: all 6)")
    predict.add_argument("--stride", choices=("fine", "coarse"), default="fine")
    predict.add_argument("--no-flips", action="store_true", help="no mirrored images")
    predict.add_argument(
        "--top-k",
        type=_positive_int,
        default=5,
        help="classes (or boxes, for localize) per image (default 5)",
    )
    predict.add_argument(
        "--draw", metavar="DIR", help="localize: write PNGs with the boxes here"
    )
    predict.add_argument(
        "--output",
        default="predictions.json",
        help="JSON file to write (default: predictions.json)",
    )
    export = commands.add_parser(
        "export",
        help="write a SavedModel for TF Serving, then check it against the pipeline",
        description=(
            "Export trained models as one SavedModel in TF Serving's layout "
            "OUTPUT/NAME/VERSION/: a classifier serves classify, a model with a "
            "box regressor classify and localize, a detector detect; each from "
            "encoded image bytes (TASK) or uint8 images (TASK_images), with "
            "serving_default the first model's task. Scales, flips and the "
            "merge settings are the recipe's (--config) or the defaults. The "
            "export is then loaded as TF Serving would and compared with the "
            "in-process pipeline on built-in test scenes (--no-verify skips it). "
            "With --format tflite, builtin ops only, float or quantized "
            "(--quantize), then checked on LiteRT against the in-process model: "
            "--kind dense (default) writes one model's single-scale dense pass "
            "(resizable input) as OUTPUT/NAME_QUANTIZE.tflite; --kind pipeline "
            "its whole task (scales, flips, dense pass, merge) for one image "
            "size as OUTPUT/NAME_pipeline_QUANTIZE.tflite, with a JSON of its "
            "settings and labels beside it. Full int8 pipelines of localizers "
            "and detectors need --no-merge: the file then ends before the "
            "greedy merge, which overfeat_tf/export/postprocess.py (NumPy) "
            "finishes."
        ),
        **_help_format("export"),
    )
    export.add_argument(
        "--format",
        choices=("saved_model", "tflite"),
        default="saved_model",
        help="saved_model (TF Serving, every task's pipeline) or tflite (the "
        "single-scale dense model, for apps; OUTPUT/NAME_QUANTIZE.tflite)",
    )
    export.add_argument(
        "--quantize",
        choices=("none", "float16", "dynamic", "int8"),
        default="none",
        help="tflite weights (and, for int8, activations calibrated on 100 "
        "images of --config's training pipeline); default none (float32)",
    )
    export.add_argument(
        "--stride", choices=("fine", "coarse"), default="fine", help="tflite map stride"
    )
    export.add_argument(
        "--kind",
        choices=("dense", "pipeline"),
        default="dense",
        help="tflite: dense (one scale, resizable input, apps pick scales) or "
        "pipeline (the whole task for one image size)",
    )
    export.add_argument(
        "--image-size",
        type=_image_size,
        metavar="HxW",
        help="pipeline input size; the shorter side at most the smallest scale, "
        "as the file only enlarges (default: smallest scale, square)",
    )
    export.add_argument(
        "--max-candidates",
        type=_positive_int,
        default=1024,
        help="pipeline: windows that enter the merge, the best first "
        "(fixed-size buffers; default 1024)",
    )
    export.add_argument(
        "--no-merge",
        action="store_true",
        help="pipeline: stop before the greedy merge (outputs its input; "
        "needed for int8 localizers and detectors)",
    )
    export.add_argument(
        "--model",
        action="append",
        help="a saved model (.keras) or run folder; repeat it for one model per "
        "task (default: OUTPUT_DIR of --config)",
    )
    export.add_argument(
        "--config", help="a YAML recipe path or bundled name: run folder and settings"
    )
    export.add_argument(
        "--output", default="exports", help="base folder (default: exports)"
    )
    export.add_argument(
        "--name",
        default="overfeat",
        help="model name, TF Serving's (default: overfeat)",
    )
    export.add_argument(
        "--version",
        type=_positive_int,
        help="version folder (default: one more than the highest there)",
    )
    _add_scale_flags(export, "Table 5 scale numbers, e.g. 1,2 (default: all 6)")
    export.add_argument("--no-flips", action="store_true", help="no mirrored images")
    export.add_argument(
        "--no-verify", action="store_true", help="skip the check after export"
    )
    export.add_argument(
        "--no-xla",
        action="store_true",
        help="saved_model: the greedy merge without XLA (8-9x slower merge), "
        "for servers built without XLA's JIT",
    )
    export.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides"
    )
    for command in commands.choices.values():
        command.set_defaults(command_parser=command)
    return parser


def _config(args, required: bool = False):
    """The --config recipe with the KEY=VALUE overrides, or None without one."""
    from overfeat_tf.config import load_config

    if args.config is None:
        if required:
            raise ValueError(
                "give --config NAME: the recipe names the data and the run folder"
            )
        if args.overrides:
            raise ValueError(
                f"KEY=VALUE overrides need --config; got {' '.join(args.overrides)}"
            )
        return None
    return load_config(args.config, args.overrides)


def _load_model(args, config, path=None):
    """The model at `path`, else of --model, else the run folder of --config,
    its normalization layers folded into its convolutions (every command
    here runs inference: same outputs, fewer ops, plain convs to export)."""
    from overfeat_tf.models import fold_normalization, load_model

    path = path or args.model or (config.output_dir if config else None)
    if path is None:
        raise ValueError("give --model PATH or --config NAME (its run folder)")
    try:
        return fold_normalization(load_model(path))
    except FileNotFoundError as error:
        hint = (
            f"train it first: overfeat train --config {args.config}"
            if config is not None and not args.model
            else "pass --model with a .keras file or a run folder"
        )
        raise FileNotFoundError(f"{error}; {hint}") from None


def _scales(args, geometry):
    from overfeat_tf import inference

    if args.scales:
        return inference.paper_scales(geometry, args.scales)
    if args.scale_factors:
        return inference.scales_from_factors(geometry, args.scale_factors)
    return args.scale_sizes  # None: the default six


def _evaluate(args) -> str:
    import dataclasses
    import json

    from overfeat_tf import evaluation

    config = _config(args, required=True)
    task = args.task or config.task
    model = _load_model(args, config)
    split = args.split or config.data.test_split
    if task == "localize":
        _require_regressor(model, args)
    results = evaluation.evaluate_task(
        model,
        config,
        task,
        split=split,
        scales=args.scales,
        flips=not args.no_flips,
        limit=args.limit,
    )
    if task == "detect":
        table = evaluation.format_detection_table(results)
    else:
        metric = "localization error" if task == "localize" else "error"
        table = evaluation.format_table(results, metric)
    where = f"{config.data.source}:{split}"
    if args.output:
        rows = [
            {"configuration": r.protocol.name, **dataclasses.asdict(r)} for r in results
        ]
        for row in rows:
            del row["protocol"]
        with open(args.output, "w") as f:
            json.dump({"task": task, "data": where, "results": rows}, f, indent=2)
    return f"{where}, {results[0].num_images} images\n{table}"


def _require_regressor(model, args):
    if model.regressor is None:
        raise ValueError(
            f"--task {args.task or 'localize'} needs a model with a box regressor; "
            f"{args.model or 'the config run folder'} has none (train one: "
            "overfeat train --task localize --config shapes_fast_localize)"
        )


def _predict(args) -> str:
    import json

    from overfeat_tf.data.files import image_files
    from overfeat_tf.evaluation import runner_for

    # A positional argument is an override when it reads KEY=VALUE and is
    # not a file: "a=b.jpg" stays an image.
    args.overrides = [
        item
        for item in args.images
        if OVERRIDE.match(item) and not os.path.exists(item)
    ]
    images = [item for item in args.images if item not in args.overrides]
    config = _config(args)
    task = args.task or (config.task if config else "classify")
    if not images:
        raise ValueError("give at least one image file or folder")
    files = image_files(images)
    model = _load_model(args, config)
    options = dict(
        scales=_scales(args, model.geometry),
        stride=args.stride,
        flips=not args.no_flips,
    )
    names = model.class_names or [str(i) for i in range(model.num_classes)]
    if task in ("localize", "detect"):
        return _predict_boxes(args, config, model, files, options, names, task)

    classifier = runner_for(model, task, config, top_k=args.top_k, **options)
    predictions, lines = {}, []
    for path, image in _each_image(files):
        out = classifier(image)
        ids = out["top_k_ids"].numpy().tolist()
        probs = out["top_k_probabilities"].numpy().tolist()
        predictions[path] = [[i, names[i], p] for i, p in zip(ids, probs)]
        lines.append(path)
        lines += [f"  {p:6.1%}  {names[i]} ({i})" for i, p in zip(ids, probs)]
    with open(args.output, "w") as f:
        json.dump(predictions, f, indent=2)
    lines.append(f"wrote {args.output} ({len(files)} images)")
    return "\n".join(lines)


def _each_image(files):
    """(path, pixels) of each file, with a progress bar over them on a
    terminal (none in output piped to a file)."""
    import keras

    from overfeat_tf.data.files import read_image

    verbose = int(sys.stdout.isatty())
    progress = keras.utils.Progbar(len(files), unit_name="image", verbose=verbose)
    for i, path in enumerate(files):
        yield path, read_image(path)
        progress.update(i + 1)


def _predict_boxes(args, config, model, files, options, names, task) -> str:
    """Boxes of `files`: localize writes {image: [[class_id, score, x1, y1,
    x2, y2], ...]}, detect writes COCO results ([{image_id, category_id,
    bbox: [x, y, w, h], score}]); both can draw PNGs."""
    import json

    from overfeat_tf.evaluation import runner_for
    from overfeat_tf.visualize import draw_boxes, save_png

    _require_regressor(model, args)
    predictor = runner_for(model, task, config, top_k=args.top_k, **options)
    if task == "detect":
        count_key, score_key = "num_detections", "confidence"
    else:
        count_key, score_key = "num_predictions", "scores"
    if args.draw:
        os.makedirs(args.draw, exist_ok=True)
    predictions, results, lines = {}, [], []
    for path, image in _each_image(files):
        out = predictor(image)
        count = int(out[count_key])
        classes = out["classes"].numpy()[:count].tolist()
        scores = out[score_key].numpy()[:count].tolist()
        boxes = out["boxes"].numpy()[:count].astype(float).round(1).tolist()
        predictions[path] = [[c, s, *b] for c, s, b in zip(classes, scores, boxes)]
        stem = os.path.splitext(os.path.basename(path))[0]
        results += [
            {
                "image_id": int(stem) if stem.isdigit() else path,
                "category_id": c,
                "category_name": names[c],
                "bbox": [b[0], b[1], round(b[2] - b[0], 1), round(b[3] - b[1], 1)],
                "score": s,
            }
            for c, s, b in zip(classes, scores, boxes)
        ]
        lines.append(
            f"{path} ({count} {'detections' if task == 'detect' else 'boxes'})"
        )
        lines += [
            f"  {s:8.2f}  {names[c]} ({c})  box {b}"
            for c, s, b in zip(classes, scores, boxes)
        ]
        if args.draw:
            captions = [f"{names[c]} {s:.1f}" for c, s in zip(classes, scores)]
            save_png(
                draw_boxes(image, boxes, captions),
                os.path.join(args.draw, stem + ".png"),
            )
    with open(args.output, "w") as f:
        json.dump(results if task == "detect" else predictions, f, indent=2)
    drawn = f", PNGs in {args.draw}" if args.draw else ""
    lines.append(f"wrote {args.output} ({len(files)} images){drawn}")
    return "\n".join(lines)


def _train(args) -> str:
    from overfeat_tf.config import load_config
    from overfeat_tf.training import train

    overrides = list(args.overrides)
    if args.strategy:
        overrides.append(f"train.strategy={args.strategy}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.task:
        overrides.append(f"task={args.task}")
    config = load_config(args.config, overrides)
    history = train(config)
    if not history.history:
        return (
            f"{config.output_dir} already finished its {config.train.epochs} epochs; "
            f"model: {config.output_dir}/model.keras"
        )
    last = {name: values[-1] for name, values in history.history.items()}
    figures = ", ".join(f"{name} {value:.4g}" for name, value in sorted(last.items()))
    return f"trained {config.output_dir}/model.keras: {figures}"


def _quickstart(args) -> str:
    from overfeat_tf import quickstart

    quickstart.run(
        args.output, tiny=args.tiny, fresh=args.fresh, overrides=args.overrides
    )
    with open(os.path.join(args.output, "summary.md")) as f:
        return f.read()


def _describe(args) -> str:
    import keras

    import overfeat_tf as of

    if args.model:
        saved = _load_model(args, None)
        args.network, args.width = saved.spec.name, saved.width
        args.num_classes = saved.num_classes
    builder = of.overfeat_fast if args.network == "fast" else of.overfeat_accurate
    model = builder(args.num_classes, width=args.width, stride=args.stride)
    spec, g = model.spec, model.geometry
    height, width = args.image_size or (g.window, g.window)
    if min(height, width) < g.min_input_size:
        raise ValueError(
            f"--image-size must be at least {g.min_input_size}x{g.min_input_size} "
            f"for the {args.network} model. Received: {height}x{width}"
        )
    shapes = g.layer_shapes(height, width, args.stride)
    table = "Table 1" if spec.name == "fast" else "Table 3"
    lines = [
        f"OverFeat {spec.name} ({table}), width {args.width:g}, "
        f"{args.num_classes} classes, {args.stride} stride",
        f"window {g.window} px, coarse stride {g.coarse_stride} px, "
        f"fine stride {g.fine_stride} px",
        "",
        f"{'layer':<8}{'kind':<16}{'maps':>6}{'filter':>8}{'stride':>8}"
        f"{'params':>14}  output at {height}x{width}",
    ]
    for layer in model.layers[1:-1]:
        name = layer.name
        if name.startswith("dropout"):
            continue
        conv = getattr(layer, "conv", layer)
        if isinstance(conv, keras.layers.Conv2D):
            k = conv.kernel_size[0]
            kind = "conv" if name.startswith("conv") else "full (conv)"
            if getattr(layer, "dilation", 1) > 1:
                kind = f"full (dil. {layer.dilation})"
            row = (kind, conv.filters, f"{k}x{k}", conv.strides[0], conv.count_params())
        else:
            kind = f"max {layer.pool_size[0]}/{layer.strides[0]}"
            row = (kind, "", "", layer.strides[0], 0)
        h, w = shapes[name]
        lines.append(
            f"{name:<8}{row[0]:<16}{row[1]!s:>6}{row[2]:>8}{row[3]:>8}"
            f"{row[4]:>14,}  {h}x{w}"
        )
    macs = of.multiply_adds(
        spec,
        height,
        width,
        num_classes=args.num_classes,
        width_multiplier=args.width,
        stride=args.stride,
    )
    cells = shapes[spec.fc_names[-1]]
    lines += [
        "",
        f"parameters {model.count_params():,}; multiply-adds {macs / 1e9:.2f} G; "
        f"class map {cells[0]}x{cells[1]} = {cells[0] * cells[1]} windows",
    ]
    return "\n".join(lines)


def _export(args) -> str:
    from overfeat_tf.evaluation import runner_for
    from overfeat_tf.export import saved_model

    config = _config(args)
    if args.format == "tflite":
        return _export_tflite(args, config)
    runners = []
    for path in args.model or [None]:
        model = _load_model(args, config, path)
        task = saved_model.task_of(model)
        options = dict(scales=_scales(args, model.geometry), flips=not args.no_flips)
        if task != "classify":
            options["jit_compile"] = not args.no_xla
        runners.append(runner_for(model, task, config, **options))
    path = saved_model.export_saved_model(
        runners, args.output, model_name=args.name, version=args.version
    )
    tasks = [task for runner in runners for task in saved_model.tasks_of(runner)]
    lines = [
        f"wrote {path}: signatures {', '.join(tasks)} (+ _images), serving_default"
    ]
    if not args.no_verify:
        rows = saved_model.verify_saved_model(
            path, runners, saved_model.sample_images()
        )
        lines += ["", saved_model.format_agreement(rows)]
    return "\n".join(lines)


def _export_tflite(args, config) -> str:
    from overfeat_tf.export import tflite

    if len(args.model or []) > 1:
        raise ValueError("--format tflite exports one --model at a time")
    model = _load_model(args, config, (args.model or [None])[0])
    if args.kind == "dense":
        if args.scales or args.scale_sizes or args.scale_factors or args.no_flips:
            raise ValueError(
                "--kind dense holds one scale without flips: the app picks its "
                "scales by resizing the input; drop --scales/--no-flips or use "
                "--kind pipeline"
            )
        if args.image_size or args.no_merge:
            raise ValueError("--image-size and --no-merge are for --kind pipeline")
    representative = None
    if args.quantize == "int8":
        if config is None:
            raise ValueError(
                "--quantize int8 calibrates on the training pipeline: give --config"
            )
        representative = tflite.representative_images(config)
    os.makedirs(args.output, exist_ok=True)
    if args.kind == "pipeline":
        return _export_tflite_pipeline(args, config, model, representative)
    content = tflite.convert(
        model, args.quantize, representative=representative, stride=args.stride
    )
    path = os.path.join(args.output, f"{args.name}_{args.quantize}.tflite")
    with open(path, "wb") as f:
        f.write(content)
    lines = [f"wrote {path} ({len(content) / 2**20:.1f} MiB, {args.stride} stride)"]
    if not args.no_verify:
        from overfeat_tf.export.saved_model import sample_images

        row = tflite.verify_tflite(content, model, sample_images(), args.stride)
        boxes = row["max_box_relative_diff"]
        lines.append(
            f"LiteRT vs Keras on {row['images']} built-in scenes: top-1 agreement "
            f"{row['top1_agreement']:.0%}, largest probability difference "
            f"{row['max_relative_diff']:.2g} (relative)"
            + ("" if boxes is None else f", box codes {boxes:.2g}")
        )
    return "\n".join(lines)


def _export_tflite_pipeline(args, config, model, representative) -> str:
    import json

    from overfeat_tf.evaluation import runner_for
    from overfeat_tf.export import saved_model, tflite

    task = saved_model.task_of(model)
    options = dict(
        scales=_scales(args, model.geometry),
        flips=not args.no_flips,
        stride=args.stride,
    )
    if task != "classify":
        options.update(jit_compile=False, max_candidates=args.max_candidates)
    runner = runner_for(model, task, config, **options)
    size = args.image_size or (min(runner.scales),) * 2
    merge = not args.no_merge
    content = tflite.convert_pipeline(
        runner, size, args.quantize, representative=representative, merge=merge
    )
    stem = os.path.join(args.output, f"{args.name}_pipeline_{args.quantize}")
    with open(f"{stem}.tflite", "wb") as f:
        f.write(content)
    with open(f"{stem}.json", "w", encoding="utf-8") as f:
        json.dump(tflite.pipeline_settings(runner, size, merge), f, indent=2)
    lines = [
        f"wrote {stem}.tflite ({len(content) / 2**20:.1f} MiB; {task}, "
        f"{size[0]}x{size[1]} input, scales {', '.join(map(str, runner.scales))}"
        f"{', flips' if runner.flips else ''}"
        f"{'' if merge else ', ends before the merge'}) and {stem}.json"
    ]
    if not args.no_verify:
        row = tflite.verify_pipeline(
            content, runner, saved_model.sample_images(), size, merge
        )
        line = (
            f"LiteRT vs the in-process pipeline on {row['images']} built-in scenes: "
            f"top-1 agreement {row['top1_agreement']:.0%}, largest score "
            f"difference {row['max_relative_diff']:.2g} (relative)"
        )
        if "boxes" in row:
            iou = "n/a" if row["mean_iou"] is None else f"{row['mean_iou']:.3f}"
            line += (
                f", boxes matched {row['matched']:.0%} of {row['boxes']}, "
                f"mean IoU {iou}"
            )
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args, unknown = _parser().parse_known_args(argv)
    if unknown:
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    command = {
        "quickstart": _quickstart,
        "describe": _describe,
        "train": _train,
        "evaluate": _evaluate,
        "predict": _predict,
        "export": _export,
    }[args.command]
    try:
        print(command(args))
    except (
        ValueError,
        TypeError,
        FileNotFoundError,
        FileExistsError,
        FloatingPointError,
        NotImplementedError,
    ) as error:
        print(f"overfeat {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
