"""Local COCO folders as detection `Record`s.

The layout: `annotations/instances_<split>.json` (or `instances_<split>.json`
at the top). An image's `file_name` is resolved in the first existing
folder among `<split>/`, `images/<split>/`, `images/`. Boxes stay in COCO's
`[x, y, width, height]` pixels (`boxes.from_coco_xywh` converts them).
Class names are the categories sorted by id; labels are re-indexed `0..C-1`
in that order. An annotation of an unknown image, or of a `category_id` not
in `categories`, makes its record bad.
"""

from __future__ import annotations

import collections
import json
import os

from overfeat_tf.data.folders import listdir
from overfeat_tf.data.records import (
    BAD_ANNOTATION,
    UNKNOWN_CLASS,
    BadRecords,
    Record,
    resolve_split,
)


def annotation_files(root):
    """{split: path} of `annotations/instances_<split>.json` (first) or top-level."""
    files = {}
    for folder in (root, os.path.join(root, "annotations")):
        for name in listdir(folder):
            if name.startswith("instances_") and name.endswith(".json"):
                files[name[len("instances_") : -len(".json")]] = os.path.join(
                    folder, name
                )
    return files


def read_split(root, split, on_bad):
    """(records, class_names, bad) of `split` in the COCO folder `root`.

    Bad records are reported to (or counted in) the returned `BadRecords`.
    """
    files = annotation_files(root)
    split = resolve_split(split, files, root) or split
    if split not in files:
        raise ValueError(
            f"Expected a split with an annotation file instances_<split>.json in "
            f"{root}/annotations (or {root}), among {sorted(files)}. "
            f"Received: split={split!r}"
        )
    path = files[split]
    image_dirs = [
        os.path.join(root, *d) for d in ([split], ["images", split], ["images"])
    ]
    image_dir = next((d for d in image_dirs if os.path.isdir(d)), None)
    if image_dir is None:
        raise ValueError(
            f"Expected the images of split {split!r} in one of {image_dirs}; none "
            f"exists. Received: source={root!r}"
        )
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        categories = sorted(data["categories"], key=lambda c: c["id"])
        class_names = [str(c["name"]) for c in categories]
        index = {c["id"]: i for i, c in enumerate(categories)}
        images, annotations = list(data["images"]), list(data.get("annotations", []))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            "Expected a COCO instances file with 'images' and 'categories' (each "
            f"with 'id' and 'name'). Received: file={path!r} ({error!r})"
        ) from error

    bad = BadRecords(on_bad, f"split {split!r} of {root}")
    image_ids = {image.get("id") for image in images if isinstance(image, dict)}
    by_image = collections.defaultdict(list)
    for ann in annotations:
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        if image_id not in image_ids:
            record = f"annotation {ann.get('id') if isinstance(ann, dict) else ann}"
            bad.report(BAD_ANNOTATION, record, path, image_id=image_id)
            continue
        by_image[image_id].append(ann)

    records = []
    for image in images:
        try:
            image_id, file_name = image["id"], str(image["file_name"])
            height, width = float(image["height"]), float(image["width"])
            if not (height > 0 and width > 0):
                raise ValueError(f"image size {width} x {height}")
            anns = by_image[image_id]
            coords = [[float(v) for v in ann["bbox"]] for ann in anns]
            if any(len(c) != 4 for c in coords):
                raise ValueError("a bbox without 4 numbers")
        except (KeyError, TypeError, ValueError) as error:
            record = image.get("id") if isinstance(image, dict) else image
            bad.report(BAD_ANNOTATION, record, path, error=repr(error))
            continue
        unknown = [
            a.get("category_id") for a in anns if a.get("category_id") not in index
        ]
        if unknown:
            bad.report(
                UNKNOWN_CLASS, image_id, path, image=file_name, category_id=unknown[0]
            )
            continue
        records.append(
            Record(
                image_id=str(image_id),
                path=os.path.join(image_dir, file_name),
                height=height,
                width=width,
                boxes=coords,
                labels=[index[ann["category_id"]] for ann in anns],
            )
        )
    return records, class_names, bad
