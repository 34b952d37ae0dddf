"""overfeat evaluate: the paper's protocols on a data split, as a table."""

from __future__ import annotations

from overfeat_cli import common, flags


def add_parser(commands):
    """The `evaluate` subparser, added to `commands`."""
    parser = commands.add_parser(
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
        **flags.help_format("evaluate"),
    )
    flags.add_model_flags(parser)
    parser.add_argument("--split", help="data split (default: data.test_split)")
    parser.add_argument(
        "--limit", type=flags.positive_int, help="evaluate the first N images only"
    )
    parser.add_argument(
        "--no-flips", action="store_true", help="dense rows without mirrored images"
    )
    parser.add_argument("--output", help="also write the results as JSON here")
    parser.add_argument(
        "--scales",
        type=flags.number_list(int),
        default=(1, 2, 4, 6),
        metavar="I,J,...",
        help="Table 5 scale numbers of the several-scales row (default 1,2,4,6); "
        "with --task localize, the numbers of scales of each row",
    )
    parser.add_argument(
        "--scale-sizes",
        type=flags.number_list(int),
        metavar="PX,...",
        help="also one dense row (fine stride) at these shorter sides in pixels, "
        "each >= the window, e.g. 256,384,576,864 for objects smaller than "
        "Table 5's scales suit",
    )
    flags.add_overrides(parser)
    return parser


def run(args) -> str:
    import json

    from overfeat_tf import evaluation

    config = common.read_config(args, required=True)
    task = args.task or config.task
    if args.output:
        common.writable_file(args.output, "--output")
    model = common.load_model(args, config)
    split = args.split or config.data.test_split
    if task == "localize":
        common.require_regressor(model, args)
    results = evaluation.evaluate_task(
        model,
        config,
        task,
        split=split,
        scales=args.scales,
        flips=not args.no_flips,
        limit=args.limit,
        scale_sizes=args.scale_sizes,
    )
    rows = evaluation.result_rows(results)
    table = evaluation.results_table(task, rows)
    where = f"{config.data.source}:{split}"
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"task": task, "data": where, "results": rows}, f, indent=2)
    return f"{where}, {results[0].num_images} images\n{table}"
