"""overfeat export: a SavedModel for TF Serving or a TFLite file, verified."""

from __future__ import annotations

import os

from overfeat_cli import common, flags


def add_parser(commands):
    """The `export` subparser, added to `commands`."""
    parser = commands.add_parser(
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
        **flags.help_format("export"),
    )
    parser.add_argument(
        "--format",
        choices=("saved_model", "tflite"),
        default="saved_model",
        help="saved_model (TF Serving, every task's pipeline) or tflite (the "
        "single-scale dense model, for apps; OUTPUT/NAME_QUANTIZE.tflite)",
    )
    parser.add_argument(
        "--quantize",
        choices=("none", "float16", "dynamic", "int8"),
        default="none",
        help="tflite weights (and, for int8, activations calibrated on 100 "
        "images of --config's training pipeline); default none (float32)",
    )
    parser.add_argument(
        "--stride", choices=("fine", "coarse"), default="fine", help="tflite map stride"
    )
    parser.add_argument(
        "--kind",
        choices=("dense", "pipeline"),
        default="dense",
        help="tflite: dense (one scale, resizable input, apps pick scales) or "
        "pipeline (the whole task for one image size)",
    )
    parser.add_argument(
        "--image-size",
        type=flags.image_size,
        metavar="HxW",
        help="pipeline input size; the shorter side at most the smallest scale, "
        "as the file only enlarges (default: smallest scale, square)",
    )
    parser.add_argument(
        "--max-candidates",
        type=flags.positive_int,
        default=1024,
        help="pipeline: windows that enter the merge, the best first "
        "(fixed-size buffers; default 1024)",
    )
    parser.add_argument(
        "--no-merge",
        action="store_true",
        help="pipeline: stop before the greedy merge (outputs its input; "
        "needed for int8 localizers and detectors)",
    )
    parser.add_argument(
        "--model",
        action="append",
        help="a saved model (.keras) or run folder; repeat it for one model per "
        "task (default: OUTPUT_DIR of --config)",
    )
    parser.add_argument(
        "--config", help="a YAML recipe path or bundled name: run folder and settings"
    )
    parser.add_argument(
        "--output", default="exports", help="base folder (default: exports)"
    )
    parser.add_argument(
        "--name",
        default="overfeat",
        help="model name, TF Serving's (default: overfeat)",
    )
    parser.add_argument(
        "--version",
        type=flags.positive_int,
        help="version folder (default: one more than the highest there)",
    )
    flags.add_scale_flags(parser, "Table 5 scale numbers, e.g. 1,2 (default: all 6)")
    parser.add_argument("--no-flips", action="store_true", help="no mirrored images")
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the check after export"
    )
    parser.add_argument(
        "--no-xla",
        action="store_true",
        help="saved_model: the greedy merge without XLA (8-9x slower merge), "
        "for servers built without XLA's JIT",
    )
    flags.add_overrides(parser)
    return parser


def run(args) -> str:
    from overfeat_tf import serving
    from overfeat_tf.export import saved_model

    config = common.read_config(args)
    common.writable_folder(args.output, "--output")
    if args.format == "tflite":
        return _export_tflite(args, config)
    runners = []
    for path in args.model or [None]:
        model = common.load_model(args, config, path)
        task = model.task
        options = dict(
            scales=common.scales_of(args, model.geometry), flips=not args.no_flips
        )
        if task != "classify":
            options["jit_compile"] = not args.no_xla
        runners.append(serving.runner_for(model, task, config, **options))
    path = saved_model.export_saved_model(
        runners, args.output, model_name=args.name, version=args.version
    )
    tasks = [task for runner in runners for task in runner.tasks]
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
    from overfeat_tf.errors import InvalidValueError
    from overfeat_tf.export import tflite

    if len(args.model or []) > 1:
        raise InvalidValueError("--format tflite exports one --model at a time")
    model = common.load_model(args, config, (args.model or [None])[0])
    if args.kind == "dense":
        if args.scales or args.scale_sizes or args.scale_factors or args.no_flips:
            raise InvalidValueError(
                "--kind dense holds one scale without flips: the app picks its "
                "scales by resizing the input; drop --scales/--no-flips or use "
                "--kind pipeline"
            )
        if args.image_size or args.no_merge:
            raise InvalidValueError(
                "--image-size and --no-merge are for --kind pipeline"
            )
    representative = None
    if args.quantize == "int8":
        if config is None:
            raise InvalidValueError(
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

    from overfeat_tf import serving
    from overfeat_tf.export import saved_model, tflite

    task = model.task
    options = dict(
        scales=common.scales_of(args, model.geometry),
        flips=not args.no_flips,
        stride=args.stride,
    )
    if task != "classify":
        options.update(jit_compile=False, max_candidates=args.max_candidates)
    runner = serving.runner_for(model, task, config, **options)
    settings = runner.settings
    size = args.image_size or (min(settings.scales),) * 2
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
        f"{size[0]}x{size[1]} input, scales {', '.join(map(str, settings.scales))}"
        f"{', flips' if settings.flips else ''}"
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
