"""overfeat predict: classes or boxes of image files, folders and VOC lists."""

from __future__ import annotations

import os
import sys

from overfeat_cli import common, flags
from overfeat_cli.flags import OVERRIDE


def add_parser(commands):
    """The `predict` subparser, added to `commands`."""
    parser = commands.add_parser(
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
        **flags.help_format("predict"),
    )
    flags.add_model_flags(parser)
    parser.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE|FOLDER|KEY=VALUE",
        help="image files or folders of images, and config overrides (with "
        "--config), e.g. detect.score_threshold=0.3",
    )
    parser.add_argument(
        "--voc-list",
        action="append",
        metavar="FILE",
        help="a VOC split list ROOT/ImageSets/Main/SPLIT.txt (or a class's "
        "CLASS_SPLIT.txt): its image ids, in its order, after the IMAGE "
        "arguments; repeat it for several lists",
    )
    flags.add_scale_flags(
        parser,
        "Table 5 scale numbers, e.g. 1,2,4,6 (default: all 6; quick: 1)",
    )
    parser.add_argument("--stride", choices=("fine", "coarse"), default="fine")
    parser.add_argument("--no-flips", action="store_true", help="no mirrored images")
    parser.add_argument(
        "--batch-size",
        type=flags.positive_int,
        default=8,
        help="images of one size per call of the network (default 8; lower "
        "it if memory runs short)",
    )
    parser.add_argument(
        "--top-k",
        type=flags.positive_int,
        default=5,
        help="classes (or boxes, for localize) per image (default 5)",
    )
    parser.add_argument(
        "--draw", metavar="DIR", help="localize: write PNGs with the boxes here"
    )
    parser.add_argument(
        "--output",
        default="predictions.json",
        help="JSON file to write (default: predictions.json)",
    )
    return parser


def run(args) -> str:
    import json

    from overfeat_tf.errors import InvalidValueError
    from overfeat_tf.serving import runner_for

    # A positional argument is an override when it reads KEY=VALUE and is
    # not a file: "a=b.jpg" stays an image.
    args.overrides = [
        item
        for item in args.images
        if OVERRIDE.match(item) and not os.path.exists(item)
    ]
    images = [item for item in args.images if item not in args.overrides]
    config = common.read_config(args)
    task = args.task or (config.task if config else "classify")
    if not images and not args.voc_list:
        raise InvalidValueError("give at least one image file or folder, or --voc-list")
    files = _image_files(images, args.voc_list or [])
    common.writable_file(args.output, "--output")
    if args.draw:
        common.writable_folder(args.draw, "--draw")
    model = common.load_model(args, config)
    if task in ("localize", "detect"):
        common.require_regressor(model, args)
    options = dict(
        scales=common.scales_of(args, model.geometry),
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
    names = model.class_names
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
    from overfeat_tf.errors import InvalidValueError, MissingFileError

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
    from overfeat_tf.errors import InvalidValueError, MissingFileError

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
    settings = runner.settings
    scales = settings.scales
    return (
        f"protocol: {model.spec.name} network, {len(scales)} "
        f"scale{'s' if len(scales) > 1 else ''} ({', '.join(map(str, scales))}), "
        f"{settings.stride} stride, {'flips' if settings.flips else 'no flips'}, "
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
    from overfeat_tf.errors import InvalidValueError

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

    if args.draw:
        os.makedirs(args.draw, exist_ok=True)
    found = {}
    for path, image, out in _predicted(runner, files, args.batch_size):
        count = int(out["num_detections"])
        classes = out["classes"][:count].tolist()
        scores = out["scores"][:count].tolist()
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
