"""What each `overfeat` command does.

The flags, the help and the dispatch are in `overfeat_cli` (beside this
package, importable without TensorFlow); `overfeat_cli.main` calls the
function of `COMMANDS` here with the parsed arguments, prints the text it
returns, and turns the errors it raises into one line of stderr.
`main` is also importable from here: `overfeat_tf.cli.main(["predict",
...])` runs a command in-process.
"""

from __future__ import annotations

import os
import sys
import tempfile

from overfeat_cli import OVERRIDE, main
from overfeat_tf.errors import InvalidValueError, MissingFileError

__all__ = ["COMMANDS", "main"]


def _config(args, required: bool = False):
    """The --config recipe with the KEY=VALUE overrides, or None without one."""
    from overfeat_tf.config import load_config

    if args.config is None:
        if required:
            raise InvalidValueError(
                "give --config NAME: the recipe names the data and the run folder"
            )
        if args.overrides:
            raise InvalidValueError(
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
        raise InvalidValueError("give --model PATH or --config NAME (its run folder)")
    try:
        return fold_normalization(load_model(path))
    except FileNotFoundError as error:
        hint = (
            f"train it first: overfeat train --config {args.config}"
            if config is not None and not args.model
            else "pass --model with a .keras file or a run folder"
        )
        raise MissingFileError(f"{error}; {hint}") from None


def _writable_folder(path: str, flag: str) -> None:
    """Fails now, naming the flag, if `path` cannot be a folder we write in
    (under a file, a name too long, no permission), not after minutes of
    data loading and model building."""
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as error:
        raise _cannot_write(flag, path, error) from None


def _cannot_write(flag: str, path: str, error: OSError) -> InvalidValueError:
    return InvalidValueError(
        f"{flag} {path}: cannot write there ({error.strerror or error})"
    )


def _writable_file(path: str, flag: str) -> None:
    """As `_writable_folder`, for a file that the command writes at its end."""
    if os.path.isdir(path):
        raise InvalidValueError(
            f"{flag} {path} is a folder; give a file name, e.g. "
            f"{os.path.join(path, 'results.json')}"
        )
    _writable_folder(os.path.dirname(path) or ".", flag)
    existed = os.path.exists(path)
    try:
        open(path, "a").close()
    except OSError as error:
        raise _cannot_write(flag, path, error) from None
    if not existed:
        os.remove(path)


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
    if args.output:
        _writable_file(args.output, "--output")
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
        scale_sizes=args.scale_sizes,
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
        raise InvalidValueError(
            f"--task {args.task or 'localize'} needs a model with a box regressor; "
            f"{args.model or 'the config run folder'} has none (train one: "
            "overfeat train --task localize --config shapes_fast_localize)"
        )


def _predict(args) -> str:
    import json

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
    if not images and not args.voc_list:
        raise InvalidValueError("give at least one image file or folder, or --voc-list")
    files = _image_files(images, args.voc_list or [])
    _writable_file(args.output, "--output")
    if args.draw:
        _writable_folder(args.draw, "--draw")
    model = _load_model(args, config)
    if task in ("localize", "detect"):
        _require_regressor(model, args)
    options = dict(
        scales=_scales(args, model.geometry),
        stride=args.stride,
        flips=not args.no_flips,
    )
    if task == "classify" and args.top_k > model.num_classes:
        print(
            f"note: --top-k {args.top_k} is more than the model's "
            f"{model.num_classes} classes; listing all {model.num_classes}",
            file=sys.stderr,
        )
        args.top_k = model.num_classes
    runner = runner_for(model, task, config, top_k=args.top_k, **options)
    names = model.class_names or [str(i) for i in range(model.num_classes)]
    print(_protocol(model, runner, args.batch_size), flush=True)
    if task in ("localize", "detect"):
        return _predict_boxes(args, runner, files, names, task)

    predictions = {}
    for path, _, out in _predicted(runner, files, args.batch_size):
        ids = out["top_k_ids"].tolist()
        probs = out["top_k_probabilities"].tolist()
        predictions[path] = [[i, names[i], p] for i, p in zip(ids, probs)]
    predictions = {path: predictions[path] for path in files}  # as listed
    lines = []
    for path, rows in predictions.items():
        lines.append(path)
        lines += [f"  {p:6.1%}  {name} ({i})" for i, name, p in rows]
    with open(args.output, "w") as f:
        json.dump(predictions, f, indent=2)
    lines.append(f"wrote {args.output} ({len(files)} images)")
    return "\n".join(lines)


def _image_files(inputs, voc_lists) -> list[str]:
    """The images to predict, each once, in this order: the files and
    folders of `inputs` as given (a folder's images found recursively, by
    path; other files and hidden ones skipped), then each VOC list's images.

    Raises:
        FileNotFoundError: naming an input, list or listed image that does
            not exist.
        ValueError: if no image is found, or a list is not in a VOC folder.
    """
    from overfeat_tf.data.files import IMAGE_EXTENSIONS

    files = []
    for path in inputs:
        if os.path.isdir(path):
            files += _folder_images(path, IMAGE_EXTENSIONS)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise MissingFileError(f"No such image file or folder: {path}")
    for path in voc_lists:
        files += _voc_list_images(path)
    if not files:
        raise InvalidValueError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) in {[*inputs, *voc_lists]}"
        )
    return list(dict.fromkeys(files))


def _folder_images(root: str, extensions) -> list[str]:
    """The image files under `root`, at any depth (ROOT/CLASS/IMAGE), sorted
    by path (folder by folder); hidden files and folders are skipped."""
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found += [
            os.path.join(folder, name)
            for name in names
            if not name.startswith(".") and name.lower().endswith(extensions)
        ]
    return sorted(found, key=lambda path: os.path.relpath(path, root).split(os.sep))


def _voc_list_images(path: str) -> list[str]:
    """ROOT/JPEGImages/ID.jpg of each id of a VOC split list
    ROOT/ImageSets/Main/SPLIT.txt, in its order (a class's list, "ID 1" or
    "ID -1" per line, gives all its ids)."""
    if not os.path.isfile(path):
        raise MissingFileError(f"No VOC split list at {path}")
    image_sets = os.path.dirname(os.path.dirname(os.path.normpath(path)))
    if os.path.basename(os.path.abspath(image_sets)) != "ImageSets":
        raise InvalidValueError(
            "--voc-list takes a VOC split list ROOT/ImageSets/Main/SPLIT.txt, "
            f"whose ids name ROOT/JPEGImages/ID.jpg. Received: {path}"
        )
    root = os.path.join(image_sets, os.pardir)
    files = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.split():
                continue
            image = os.path.normpath(
                os.path.join(root, "JPEGImages", line.split()[0] + ".jpg")
            )
            if not os.path.isfile(image):
                raise MissingFileError(
                    f"No image {image} for id {line.split()[0]!r} (line {number} "
                    f"of {path})"
                )
            files.append(image)
    return files


def _protocol(model, runner, batch_size: int) -> str:
    """One line: the network, scales, stride, flips and batching of a run."""
    scales = runner.scales
    return (
        f"protocol: {model.spec.name} network, {len(scales)} "
        f"scale{'s' if len(scales) > 1 else ''} ({', '.join(map(str, scales))}), "
        f"{runner.stride} stride, {'flips' if runner.flips else 'no flips'}, "
        f"images batched by size (up to {batch_size} a call)"
    )


def _size_batches(files, batch_size: int):
    """`files` cut into lists of at most `batch_size` images of one size,
    size by size in the order each size first appears. Sizes come from the
    file headers (no pixels decoded); a file whose header does not read is
    a batch of its own (decoding it then raises the error that names it)."""
    from PIL import Image

    groups = {}
    for index, path in enumerate(files):
        try:
            with Image.open(path) as image:
                key = image.size
        except (OSError, ValueError, Image.DecompressionBombError):
            key = ("unread", index)
        groups.setdefault(key, []).append(path)
    for group in groups.values():
        for start in range(0, len(group), batch_size):
            yield group[start : start + batch_size]


def _predicted(runner, files, batch_size: int):
    """(path, pixels, outputs) of each file, where `outputs` are its rows of
    `runner`'s outputs as NumPy arrays: one call of `runner` per batch of
    `_size_batches`, yielded in that order, with a progress bar over the
    images on a terminal (none in output piped to a file)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from overfeat_tf.data.files import read_image

    verbose = int(sys.stdout.isatty())
    progress = keras.utils.Progbar(len(files), unit_name="image", verbose=verbose)
    done = 0
    for batch in _size_batches(files, batch_size):
        images = [read_image(path) for path in batch]
        # Decoded sizes match the headers'; should one not, it runs apart.
        for shape in dict.fromkeys(image.shape for image in images):
            chosen = [i for i, image in enumerate(images) if image.shape == shape]
            try:
                outputs = runner(np.stack([images[i] for i in chosen]))  # [B, ...]
            except tf.errors.InvalidArgumentError as error:  # e.g. the aspect ratio
                lines = error.message.strip().splitlines()
                message = next((x for x in lines if "assertion failed" in x), lines[0])
                names = ", ".join(batch[i] for i in chosen)
                raise InvalidValueError(f"Cannot run on {names}: {message}") from None
            outputs = {name: value.numpy() for name, value in outputs.items()}
            for row, i in enumerate(chosen):
                yield batch[i], images[i], {k: v[row] for k, v in outputs.items()}
        done += len(batch)
        progress.update(done)


def _predict_boxes(args, runner, files, names, task) -> str:
    """Boxes of `files`: localize writes {image: [[class_id, score, x1, y1,
    x2, y2], ...]}, detect writes COCO results ([{image_id, category_id,
    bbox: [x, y, w, h], score}]); both can draw PNGs."""
    import json

    from overfeat_tf.visualize import draw_boxes, save_png

    if task == "detect":
        count_key, score_key = "num_detections", "confidence"
    else:
        count_key, score_key = "num_predictions", "scores"
    if args.draw:
        os.makedirs(args.draw, exist_ok=True)
    found = {}
    for path, image, out in _predicted(runner, files, args.batch_size):
        count = int(out[count_key])
        classes = out["classes"][:count].tolist()
        scores = out[score_key][:count].tolist()
        boxes = out["boxes"][:count].astype(float).round(1).tolist()
        found[path] = classes, scores, boxes
        if args.draw:
            captions = [f"{names[c]} {s:.1f}" for c, s in zip(classes, scores)]
            stem = os.path.splitext(os.path.basename(path))[0]
            save_png(
                draw_boxes(image, boxes, captions),
                os.path.join(args.draw, stem + ".png"),
            )
    predictions, results, lines = {}, [], []
    for path in files:  # as listed
        classes, scores, boxes = found[path]
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
            f"{path} ({len(classes)} {'detections' if task == 'detect' else 'boxes'})"
        )
        lines += [
            f"  {s:8.2f}  {names[c]} ({c})  box {b}"
            for c, s, b in zip(classes, scores, boxes)
        ]
    with open(args.output, "w") as f:
        json.dump(results if task == "detect" else predictions, f, indent=2)
    drawn = f", PNGs in {args.draw}" if args.draw else ""
    lines.append(f"wrote {args.output} ({len(files)} images){drawn}")
    return "\n".join(lines)


def _train(args) -> str:
    from overfeat_tf.config import load_config
    from overfeat_tf.training import train

    overrides = list(args.overrides)
    if args.worker_hosts is not None or args.task_index is not None:
        overrides.append(f"train.strategy={_multi_worker(args)}")
    if args.strategy:
        overrides.append(f"train.strategy={args.strategy}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.task:
        overrides.append(f"task={args.task}")
    config = load_config(args.config, overrides)
    flag = "--output-dir" if args.output_dir else "output_dir"
    _writable_folder(config.output_dir, flag)
    history = train(config)
    if not history.history:
        return (
            f"{config.output_dir} already finished its {config.train.epochs} epochs; "
            f"model: {config.output_dir}/model.keras"
        )
    last = {name: values[-1] for name, values in history.history.items()}
    figures = ", ".join(f"{name} {value:.4g}" for name, value in sorted(last.items()))
    return f"trained {config.output_dir}/model.keras: {figures}"


def _multi_worker(args) -> str:
    """Sets TF_CONFIG from --worker-hosts and --task-index."""
    from overfeat_tf.training.cluster import tf_config_for

    if args.worker_hosts is None or args.task_index is None:
        raise InvalidValueError(
            "--worker-hosts and --task-index go together: the same host list "
            "on every machine, and each machine's own index."
        )
    if args.strategy not in (None, "multi_worker"):
        raise InvalidValueError(
            f"--worker-hosts trains with --strategy multi_worker. Received: "
            f"--strategy {args.strategy}"
        )
    os.environ["TF_CONFIG"] = tf_config_for(args.worker_hosts, args.task_index)
    return "multi_worker"


def _quickstart(args) -> str:
    from overfeat_tf import quickstart

    _writable_folder(args.output, "--output")
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
        raise InvalidValueError(
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
    _writable_folder(args.output, "--output")
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
        raise InvalidValueError("--format tflite exports one --model at a time")
    model = _load_model(args, config, (args.model or [None])[0])
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


COMMANDS = {
    "quickstart": _quickstart,
    "describe": _describe,
    "train": _train,
    "evaluate": _evaluate,
    "predict": _predict,
    "export": _export,
}


if __name__ == "__main__":
    sys.exit(main())
