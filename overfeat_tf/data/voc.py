"""Local Pascal VOC folders as detection `Record`s.

The devkit layout: `VOCdevkit/VOCyyyy` holding `JPEGImages/`,
`Annotations/*.xml` and `ImageSets/Main/<split>.txt`, or a folder holding
exactly one such `VOC*` folder. The image of id `i` is `JPEGImages/<i>.jpg`,
as in the devkit. Boxes stay in VOC's 1-based inclusive pixel values
(`boxes.from_voc` converts them). Class names are the sorted `<name>` values
of the split unless a label map is given; an object of another name makes
its record bad.
"""

from __future__ import annotations

import glob
import os
import xml.etree.ElementTree as ElementTree

from overfeat_tf.data.folders import listdir
from overfeat_tf.data.records import (
    BAD_ANNOTATION,
    UNKNOWN_CLASS,
    BadRecords,
    Record,
    resolve_split,
)


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
        raise ValueError(
            "Expected a VOCyyyy folder or a folder holding exactly one; pass one "
            f"of {found}. Received: source={root!r}"
        )
    return found[0] if found else None


def _number(element, tag):
    text = None if element is None else element.findtext(tag)
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number in <{tag}>, found {text!r}") from None


def _parse_xml(path):
    """(height, width, [(name, [xmin, ymin, xmax, ymax]), ...]) of one file."""
    root = ElementTree.parse(path).getroot()
    size = root.find("size")
    height, width = _number(size, "height"), _number(size, "width")
    if not (height > 0 and width > 0):
        raise ValueError(f"expected a positive <size>, found {width} x {height}")
    objects = []
    for obj in root.findall("object"):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise ValueError("expected a <name> in every <object>")
        bndbox = obj.find("bndbox")
        coords = [_number(bndbox, k) for k in ("xmin", "ymin", "xmax", "ymax")]
        objects.append((name, coords))
    return height, width, objects


def read_split(root, split, class_names, on_bad):
    """(records, class_names, bad) of `split` in the VOCyyyy folder `root`.

    `class_names` is the label map, or None for the sorted names of the
    split. Bad records are reported to (or counted in) the returned
    `BadRecords`.
    """
    main = os.path.join(root, "ImageSets", "Main")
    stems = [f[:-4] for f in listdir(main) if f.endswith(".txt")]
    split = resolve_split(split, stems, root) or split
    split_file = os.path.join(main, f"{split}.txt")
    if not os.path.isfile(split_file):
        raise ValueError(
            f"Expected a split listed in {main} as <split>.txt, among "
            f"{sorted(s for s in stems if '_' not in s)}. Received: split={split!r}"
        )
    with open(split_file, encoding="utf-8") as f:
        ids = [line.split()[0] for line in f if line.strip()]
    bad = BadRecords(on_bad, f"split {split!r} of {root}")
    known = None if class_names is None else set(class_names)
    parsed = []
    for image_id in ids:
        xml_path = os.path.join(root, "Annotations", f"{image_id}.xml")
        try:
            height, width, objects = _parse_xml(xml_path)
        except (OSError, ElementTree.ParseError, ValueError) as error:
            bad.report(BAD_ANNOTATION, image_id, xml_path, error=str(error))
            continue
        unknown = [
            name for name, _ in objects if known is not None and name not in known
        ]
        if unknown:
            bad.report(UNKNOWN_CLASS, image_id, xml_path, name=unknown[0])
            continue
        parsed.append((image_id, height, width, objects))
    if class_names is None:
        class_names = sorted({name for *_, objects in parsed for name, _ in objects})
    index = {name: i for i, name in enumerate(class_names)}
    records = [
        Record(
            image_id=image_id,
            path=os.path.join(root, "JPEGImages", f"{image_id}.jpg"),
            height=height,
            width=width,
            boxes=[coords for _, coords in objects],
            labels=[index[name] for name, _ in objects],
        )
        for image_id, height, width, objects in parsed
    ]
    return records, class_names, bad
