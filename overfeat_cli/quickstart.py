"""overfeat quickstart: the main job on the built-in data set."""

from __future__ import annotations

import os

from overfeat_cli import common, flags


def add_parser(commands):
    """The `quickstart` subparser, added to `commands`."""
    parser = commands.add_parser(
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
        **flags.help_format("quickstart"),
    )
    parser.add_argument(
        "--output", default="quickstart", help="output folder (default: quickstart)"
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a few steps per stage (a smoke run of a minute or two; figures "
        "meaningless)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete OUTPUT first and start over"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides for every stage, e.g. data.data_dir=/data/tfds",
    )
    return parser


def run(args) -> str:
    from overfeat_tf import quickstart

    common.writable_folder(args.output, "--output")
    quickstart.run(
        args.output, tiny=args.tiny, fresh=args.fresh, overrides=args.overrides
    )
    with open(os.path.join(args.output, "summary.md")) as f:
        return f.read()
