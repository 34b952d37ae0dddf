"""The `overfeat` command line: its flags, help and dispatch.

The console script `overfeat` runs `main` here. This module imports only
the standard library, so `overfeat --help` and usage errors answer at once;
each command's work (`overfeat_tf.cli`) imports TensorFlow when it runs. It
sits beside the package, not in it, because importing any module of
`overfeat_tf` runs `overfeat_tf/__init__.py`, which imports Keras (its model
classes must be registered before `keras.saving.load_model` reads a file).

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
        files, folders (searched recursively) and VOC split lists, printed
        and written as JSON (and, for boxes, drawn into PNGs).
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
import math
import os
import re
import sys
import tempfile

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
  overfeat train --config shapes_fast --output-dir /nfs/runs/a \\
      --worker-hosts 10.0.0.1:12345,10.0.0.2:12345 --task-index 0
  overfeat evaluate --config shapes_fast --split test --scales 1,2,4,6
  overfeat predict --task classify --model runs/shapes_fast/model.keras cat.jpg photos/
  overfeat predict --model runs/shapes_fast --scales 1 --no-flips photos/
  overfeat train --task localize --config shapes_fast_localize
  overfeat evaluate --task localize --config shapes_fast_localize
  overfeat predict --task localize --model runs/shapes_fast_localize --draw out/ a.jpg
  overfeat predict --task detect --model runs/shapes_fast_detect --scales 1,2 \\
      --voc-list VOC2007/ImageSets/Main/val.txt
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
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text}")
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
        if not values or not all(0 < v < math.inf for v in values):
            raise argparse.ArgumentTypeError(
                f"numbers must be positive and finite; got {text!r}"
            )
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


def _add_overrides(parser):
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides"
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


def build_parser() -> argparse.ArgumentParser:
    """The `overfeat` parser, one subparser per command (no TensorFlow)."""
    parser = _Parser(
        prog="overfeat",
        description=(
            "OverFeat (Sermanet et al., ICLR 2014) for Keras 3 / TensorFlow. "
            "Exit status: 0 done; 2 a bad flag, config key, file or input, "
            "explained on one line of stderr; 1 an unexpected failure (traceback). "
            "TensorFlow's start-up notices are hidden; TF_CPP_MIN_LOG_LEVEL=0 "
            "shows them."
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
        "--worker-hosts",
        metavar="HOST:PORT,...",
        help="the machines of a multi-worker run, the chief first, the same "
        "list on each (builds TF_CONFIG; implies --strategy multi_worker)",
    )
    train.add_argument(
        "--task-index",
        type=int,
        metavar="I",
        help="this machine's place in --worker-hosts (0: the chief, which "
        "writes the run's files)",
    )
    train.add_argument(
        "--output-dir", "--output", help="run folder (overrides output_dir)"
    )
    _add_overrides(train)

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
        "--scale-sizes",
        type=_number_list(int),
        metavar="PX,...",
        help="also one dense row (fine stride) at these shorter sides in pixels, "
        "each >= the window, e.g. 256,384,576,864 for objects smaller than "
        "Table 5's scales suit",
    )
    _add_overrides(evaluate)

    predict = commands.add_parser(
        "predict",
        help="top-5 classes (or boxes) of images, folders or VOC lists, as JSON",
        description=(
            "Classify images with the multi-scale dense pass and print each "
            "image's top classes, after one line naming the protocol. Inputs: "
            "image files; folders, searched recursively (class folders "
            "ROOT/CLASS/IMAGE work as they are), their images in path order, "
            "other files and hidden ones skipped; and with --voc-list, the "
            "ids of a VOC split list, read as ROOT/JPEGImages/ID.jpg. A file "
            "that cannot be decoded is an error naming it. The results keep "
            "that order; images of one size run through the network together "
            "(--batch-size at a time). The default protocol is the paper's "
            "most accurate and slowest: all six Table 5 scales, fine stride, "
            "flips; for a quick first try add --scales 1 --no-flips (one "
            "scale, no mirror: about 25x less work). "
            "JSON output: {image: [[class_id, name, probability], ...]}. "
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
        nargs="*",
        metavar="IMAGE|FOLDER|KEY=VALUE",
        help="image files or folders of images, and config overrides (with "
        "--config), e.g. detect.score_threshold=0.3",
    )
    predict.add_argument(
        "--voc-list",
        action="append",
        metavar="FILE",
        help="a VOC split list ROOT/ImageSets/Main/SPLIT.txt (or a class's "
        "CLASS_SPLIT.txt): its image ids, in its order, after the IMAGE "
        "arguments; repeat it for several lists",
    )
    _add_scale_flags(
        predict,
        "Table 5 scale numbers, e.g. 1,2,4,6 (default: all 6; quick: 1)",
    )
    predict.add_argument("--stride", choices=("fine", "coarse"), default="fine")
    predict.add_argument("--no-flips", action="store_true", help="no mirrored images")
    predict.add_argument(
        "--batch-size",
        type=_positive_int,
        default=8,
        help="images of one size per call of the network (default 8; lower "
        "it if memory runs short)",
    )
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
    _add_overrides(export)
    for command in commands.choices.values():
        command.set_defaults(command_parser=command)
    return parser


# TensorFlow's notices at start-up: written to stderr before its logging is
# configured (so TF_CPP_MIN_LOG_LEVEL does not reach them), or, for cuInit,
# as an error on every machine without a GPU.
_START_UP_NOTICES = re.compile(
    "|".join(
        [
            r"All log messages before absl::InitializeLog\(\) is called",
            r"oneDNN custom operations are on",
            r"Could not find cuda drivers on your machine",
            r"cpu_feature_guard\.cc",
            r"To enable the following instructions: ",
            r"failed call to cuInit",
        ]
    )
)


def _start_tensorflow():
    """Import TensorFlow and find its devices, with its start-up notices
    filtered out of stderr (every other line it writes is kept).

    TF_CPP_MIN_LOG_LEVEL defaults to 2 (TensorFlow's own warnings off);
    a user's setting is kept, and 0 also keeps the notices.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        return
    # The notices come from C++ code, so fd 2 itself goes to a file meanwhile.
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # where cuInit fails
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(True)
            sys.stderr.write(
                "".join(line for line in lines if not _START_UP_NOTICES.search(line))
            )


def main(argv: list[str] | None = None) -> int:
    """Run `overfeat ARGV`; returns the exit status (see `overfeat --help`)."""
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _start_tensorflow()
    from overfeat_tf import cli

    if not sys.stdout.isatty():  # a log file: no tfds progress bars in it
        import tensorflow_datasets as tfds

        tfds.disable_progress_bar()

    from overfeat_tf.errors import OverfeatError

    try:
        print(cli.COMMANDS[args.command](args))
    except (OverfeatError, OSError) as error:
        if isinstance(error, OSError) and not (
            isinstance(error, OverfeatError) or error.filename
        ):
            raise  # not about a file the user named: a bug, with its traceback
        print(f"overfeat {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
