"""Flags shared by the `overfeat` commands: value types, groups, help format.

Standard library only, so that `overfeat --help` answers without TensorFlow.
"""

from __future__ import annotations

import argparse
import math
import re

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


class Parser(argparse.ArgumentParser):
    """Usage errors on one line of stderr, with where to look, exit status 2;
    flags spelt out in full, so that adding one never breaks a command line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def image_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH in pixels, e.g. 461x569; got {text!r}"
        ) from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive; got {text!r}")
    return height, width


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {text}")
    return value


def number_list(kind):
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


def add_scale_flags(parser, scales_help):
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--scales", type=number_list(int), metavar="I,J,...", help=scales_help
    )
    group.add_argument(
        "--scale-sizes",
        type=number_list(int),
        metavar="PX,...",
        help="scales as shorter sides in pixels (each >= the window)",
    )
    group.add_argument(
        "--scale-factors",
        type=number_list(float),
        metavar="F,...",
        help="scales as multiples of the window (e.g. 1,1.25,1.5)",
    )


def add_overrides(parser):
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides"
    )


def add_model_flags(parser):
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


def help_format(command: str | None = None) -> dict:
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
