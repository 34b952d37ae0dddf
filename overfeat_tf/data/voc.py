"""Local Pascal VOC folders as detection `Record`s.

The devkit layout: `VOCdevkit/VOCyyyy` holding `JPEGImages/`,
`Annotations/*.xml` and `ImageSets/Main/<split>.txt`, or a folder holding
exactly one such `VOC*` folder. The image of id `i` is `JPEGImages/<i>.jpg`,
as in the devkit. Boxes stay in VOC's 1-based inclusive pixel values
(`boxes.from_voc` converts them).

Class names, unless a label map is given, are the sorted `<name>` values of
the images of every split file in `ImageSets/Main` (not the per-class lists
`<class>_<split>.txt`), whichever split is read: a validation split that
lacks a class numbers the others as training does. With a label map, an
object of another name makes its record bad. An id listed twice in the split
file is a bad record (the second line); a split file that lists no id is an
error.
"""

from __future__ import annotations

import glob
import os
import xml.etree.ElementTree as ElementTree

from overfeat_tf.data.folders import listdir
from overfeat_tf.data.records import (
    BAD_ANNOTATION,
    DUPLICATE_ID,
    UNKNOWN_CLASS,
    BadRecords,
    Record,
    resolve_split,
)
from overfeat_tf.errors import InvalidValueError


def _is_voc(path):
    return all(
        os.path.isdir(os.path.join(path, d)) for d in ("Annotations", "JPEGImages")
    )


def find_root(root):
    """`root` if it is a VOCyyyy folder, its one VOC* child if any, or None."""
    if _is_voc(root):
        return root
    found = sorted(d for d in glob.glob(os.path.join(root, "VOC*")) if _is_voc(d))
    if len(found) > 1:
        raise InvalidValueError(
            "Expected a VOCyyyy folder or a folder holding exactly one; pass one "
            f"of {found}. Received: source={root!r}"
        )
    return found[0] if found else None


def _number(element, tag):
    text = None if element is None else element.findtext(tag)
    try:
        return float(text)
    except (TypeError, ValueError):
        raise InvalidValueError(
            f"expected a number in <{tag}>, found {text!r}"
        ) from None


def _parse_xml(path):
    """(height, width, [(name, [xmin, ymin, xmax, ymax]), ...]) of one file."""
    root = ElementTree.parse(path).getroot()
    size = root.find("size")
    height, width = _number(size, "height"), _number(size, "width")
    if not (height > 0 and width > 0):
        raise InvalidValueError(f"expected a positive <size>, found {width} x {height}")
    objects = []
    for obj in root.findall("object"):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise InvalidValueError("expected a <name> in every <object>")
        bndbox = obj.find("bndbox")
        coords = [_number(bndbox, k) for k in ("xmin", "ymin", "xmax", "ymax")]
        objects.append((name, coords))
    return height, width, objects


def split_names(main):
    """The splits listed in the folder `main` (`ImageSets/Main`), sorted.

    A file `<class>_<split>.txt` whose `<split>` is itself listed there is
    a per-class list of the devkit (`cat_train.txt`), not a split.
    """
    stems = [f[:-4] for f in listdir(main) if f.endswith(".txt")]
    return sorted(
        stem
        for stem in stems
        if not any(stem.endswith(f"_{other}") for other in stems if other != stem)
    )


def _read_ids(split_file):
    """(line number, id) of each non-empty line of a split file (its first word)."""
    with open(split_file, encoding="utf-8") as f:
        return [(n, line.split()[0]) for n, line in enumerate(f, 1) if line.strip()]


def read_split(root, split, class_names, on_bad):
    """(records, class_names, bad) of `split` in the VOCyyyy folder `root`.

    `class_names` is the label map, or None for the sorted names of every
    split's objects (see the module docstring). Bad records are reported to
    (or counted in) the returned `BadRecords`.
    """
    main = os.path.join(root, "ImageSets", "Main")
    splits = split_names(main)
    stems = [f[:-4] for f in listdir(main) if f.endswith(".txt")]
    split = resolve_split(split, stems, root) or split
    split_file = os.path.join(main, f"{split}.txt")
    if not os.path.isfile(split_file):
        raise InvalidValueError(
            f"Expected a split listed in {main} as <split>.txt, among "
            f"{splits}. Received: split={split!r}"
        )
    ids = _read_ids(split_file)
    if not ids:
        raise InvalidValueError(
            "Expected a split file listing image ids, one a line. Received: "
            f"file={split_file!r}, which lists no id"
        )
    bad = BadRecords(on_bad, f"split {split!r} of {root}")
    known = None if class_names is None else set(class_names)
    parsed = {}  # id: (height, width, objects) or the error reading its XML
    records = []  # the good ids, in order
    for line, image_id in ids:
        if image_id in parsed:  # never read twice, never merged
            bad.report(DUPLICATE_ID, image_id, split_file, line=line)
            continue
        xml_path = os.path.join(root, "Annotations", f"{image_id}.xml")
        parsed[image_id] = _parse_or_error(xml_path)
        if isinstance(parsed[image_id], Exception):
            bad.report(BAD_ANNOTATION, image_id, xml_path, error=str(parsed[image_id]))
            continue
        objects = parsed[image_id][2]
        unknown = [
            name for name, _ in objects if known is not None and name not in known
        ]
        if unknown:
            bad.report(UNKNOWN_CLASS, image_id, xml_path, name=unknown[0])
            continue
        records.append(image_id)
    if class_names is None:
        class_names = _all_names(root, main, splits, parsed)
    index = {name: i for i, name in enumerate(class_names)}
    return (
        [
            Record(
                image_id=image_id,
                path=os.path.join(root, "JPEGImages", f"{image_id}.jpg"),
                height=parsed[image_id][0],
                width=parsed[image_id][1],
                boxes=[coords for _, coords in parsed[image_id][2]],
                labels=[index[name] for name, _ in parsed[image_id][2]],
            )
            for image_id in records
        ],
        class_names,
        bad,
    )


def _parse_or_error(xml_path):
    try:
        return _parse_xml(xml_path)
    except (OSError, ElementTree.ParseError, ValueError) as error:
        return error


def _all_names(root, main, splits, parsed):
    """The sorted object names of every split's images.

    `parsed` holds the XMLs already read ({id: result or error}); the other
    ids' XMLs are read here. An unreadable XML adds no name (it is reported
    when its split is read).
    """
    names = set()
    ids = dict.fromkeys(parsed)
    for split in splits:
        split_file = os.path.join(main, f"{split}.txt")
        ids.update(dict.fromkeys(image_id for _, image_id in _read_ids(split_file)))
    for image_id in ids:
        if image_id not in parsed:
            xml_path = os.path.join(root, "Annotations", f"{image_id}.xml")
            parsed[image_id] = _parse_or_error(xml_path)
        if not isinstance(parsed[image_id], Exception):
            names.update(name for name, _ in parsed[image_id][2])
    return sorted(names)
