"""Local COCO folders as detection `Record`s.

The layout: `annotations/instances_<split>.json` (or `instances_<split>.json`
at the top). An image's `file_name` is resolved in the first existing
folder among `<split>/`, `images/<split>/`, `images/`. Boxes stay in COCO's
`[x, y, width, height]` pixels (`boxes.from_coco_xywh` converts them).
Class names are the categories sorted by id; labels are re-indexed `0..C-1`
in that order.

Ids are ints and never merged. A bad record (reported, or counted under
`on_bad="skip"`): an image whose `id` is not an int or is shared with
another image (every image of that id is bad: its boxes cannot be told
apart), an image holding an annotation whose `id` or `category_id` is not
an int, whose `id` another annotation has, or whose `category_id` is not in
`categories`; an annotation whose `image_id` is no image's; a `file_name`
that is absolute or climbs out of the image folder (`..`). The label map is
not a record: a category without an int `id` and a `name`, or two with one
`id`, raise whatever `on_bad` says.
"""

from __future__ import annotations

import collections
import json
import ntpath
import os
import posixpath
import re

from overfeat_tf.data.folders import listdir
from overfeat_tf.data.records import (
    BAD_ANNOTATION,
    DUPLICATE_ID,
    UNKNOWN_CLASS,
    BadRecords,
    Record,
    resolve_split,
)
from overfeat_tf.errors import InvalidTypeError, InvalidValueError


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
        raise InvalidValueError(
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
        raise InvalidValueError(
            f"Expected the images of split {split!r} in one of {image_dirs}; none "
            f"exists. Received: source={root!r}"
        )
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        images, annotations = data["images"], data.get("annotations", [])
        if not (isinstance(images, list) and isinstance(annotations, list)):
            raise InvalidTypeError("'images' and 'annotations' must be lists")
        categories = data["categories"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidValueError(
            "Expected a COCO instances file with 'images' and 'categories' (each "
            f"with 'id' and 'name'). Received: file={path!r} ({error!r})"
        ) from error
    class_names, index = _label_map(categories, path)

    bad = BadRecords(on_bad, f"split {split!r} of {root}")
    entries = []  # (position, image) of the images with an int id
    for k, image in enumerate(images):
        if not isinstance(image, dict):
            bad.report(BAD_ANNOTATION, f"images[{k}]", path, error="not an object")
        elif not _is_id(image.get("id")):
            bad.report(BAD_ANNOTATION, image.get("id"), path, field=f"images[{k}].id")
        else:
            entries.append((k, image))
    image_ids = collections.Counter(image["id"] for _, image in entries)
    by_image, problems = _by_image(annotations, image_ids, bad, path)

    records = []
    for k, image in entries:
        record = image["id"]
        if image_ids[record] > 1:
            bad.report(DUPLICATE_ID, record, path, field=f"images[{k}].id")
            continue
        if record in problems:
            reason, ann_record, details = problems[record]
            bad.report(reason, ann_record, path, **details)
            continue
        try:
            image_id, file_name = image["id"], str(image["file_name"])
            height, width = float(image["height"]), float(image["width"])
            if not (height > 0 and width > 0):
                raise InvalidValueError(f"image size {width} x {height}")
            anns = by_image[image_id]
            coords = [[float(v) for v in ann["bbox"]] for ann in anns]
            if any(len(c) != 4 for c in coords):
                raise InvalidValueError("a bbox without 4 numbers")
        except (KeyError, TypeError, ValueError) as error:
            bad.report(BAD_ANNOTATION, record, path, error=repr(error))
            continue
        if _leaves_folder(file_name):
            bad.report(
                BAD_ANNOTATION,
                image_id,
                path,
                field=f"images[{k}].file_name",
                file_name=file_name,
                error="expected a path inside the image folder",
            )
            continue
        unknown = [a["category_id"] for a in anns if a["category_id"] not in index]
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


def _by_image(annotations, image_ids, bad, path):
    """({image id: [annotation]}, {image id: its first annotation problem}).

    An annotation of no image is reported to `bad` here; a problem of an
    image's annotation, (reason, record, details), makes the image bad.
    """
    annotation_ids = collections.Counter(
        ann.get("id")
        for ann in annotations
        if isinstance(ann, dict) and _is_id(ann.get("id"))
    )
    by_image = collections.defaultdict(list)
    problems = {}  # image id: (reason, record, details) of its first bad annotation
    for k, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            bad.report(BAD_ANNOTATION, f"annotations[{k}]", path, error="not an object")
            continue
        ann_id, image_id = ann.get("id"), ann.get("image_id")
        if not _is_id(image_id):
            field = f"annotations[{k}].image_id"
            bad.report(BAD_ANNOTATION, ann_id, path, field=field, image_id=image_id)
            continue
        if image_id not in image_ids:
            bad.report(BAD_ANNOTATION, f"annotation {ann_id}", path, image_id=image_id)
            continue
        by_image[image_id].append(ann)
        for field, problem in (
            ("id", ann_id is not None and not _is_id(ann_id)),
            ("category_id", not _is_id(ann.get("category_id"))),
        ):
            if problem:
                details = {"field": f"annotations[{k}].{field}"}
                details[field] = ann.get(field)
                problems.setdefault(image_id, (BAD_ANNOTATION, ann_id, details))
        if _is_id(ann_id) and annotation_ids[ann_id] > 1:
            details = {"field": f"annotations[{k}].id", "image_id": image_id}
            problems.setdefault(image_id, (DUPLICATE_ID, ann_id, details))
    return by_image, problems


def _is_id(value):
    """COCO ids are ints (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _leaves_folder(file_name):
    """Whether `file_name` is absolute (POSIX or Windows) or has a `..` part."""
    return (
        posixpath.isabs(file_name)
        or ntpath.isabs(file_name)
        or bool(ntpath.splitdrive(file_name)[0])
        or ".." in re.split(r"[\\/]", file_name)
    )


def _label_map(categories, path):
    """(class names, {category id: label}) of `categories`, sorted by id.

    The label map is not a record that could be skipped: every problem
    raises, naming the file and the field.
    """

    def fail(field, received):
        raise InvalidValueError(
            "Expected 'categories' to be a list of {'id': int, 'name': str} with "
            "distinct ids (whatever on_bad says: the label map cannot skip an "
            f"entry). Received: file={path!r}, field={field!r}, {received}"
        )

    if not isinstance(categories, list):
        fail("categories", f"categories={categories!r}")
    first = {}  # id: index of its first entry
    for k, category in enumerate(categories):
        if not isinstance(category, dict) or "name" not in category:
            fail(f"categories[{k}]", f"category={category!r}")
        category_id = category.get("id")
        if not _is_id(category_id):
            fail(f"categories[{k}].id", f"id={category_id!r}")
        if category_id in first:
            fail(
                f"categories[{k}].id",
                f"id={category_id} (also the id of categories[{first[category_id]}])",
            )
        first[category_id] = k
    ordered = sorted(categories, key=lambda c: c["id"])
    class_names = [str(c["name"]) for c in ordered]
    return class_names, {c["id"]: i for i, c in enumerate(ordered)}
