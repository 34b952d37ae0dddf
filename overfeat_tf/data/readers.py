"""Readers: data on disk or in tfds as one canonical, unbatched `tf.data.Dataset`.

Every source (a tfds name or the built-in data set's `ShapesConfig`, an
ImageFolder tree, a Pascal VOC folder, a COCO folder) becomes the same
elements, so nothing downstream sees a source format:

- classification: `{"image": uint8 [H, W, 3], "label": int32 []}`;
- detection (and localization): `{"image": uint8 [H, W, 3], "boxes": float32
  [N, 4], "labels": int32 [N], "image_id": string []}`, boxes in the package
  format of `overfeat_tf.boxes` (xyxy continuous pixels). `N` may be 0: an
  image without objects is background data.

This module is the public API and picks the source; each source lives in
its own module: `tfds_sources` (tfds names, the built-in data set),
`folders` (ImageFolder, and the decoding and dataset building shared by
local folders), `voc` and `coco` (local detection layouts), with
`LabeledData` and the bad-record policy in `records`. Bad data is reported,
never dropped silently: see `load_detection`.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

from overfeat_tf import boxes as box_lib
from overfeat_tf.data import coco, folders, tfds_sources, voc
from overfeat_tf.data.builtin import ShapesConfig
from overfeat_tf.data.records import (
    BAD_ANNOTATION,
    DUPLICATE_ID,
    MISSING_IMAGE,
    ON_BAD,
    UNDECODABLE_IMAGE,
    UNKNOWN_CLASS,
    LabeledData,
)
from overfeat_tf.errors import InvalidTypeError, InvalidValueError

__all__ = [
    "BAD_ANNOTATION",
    "DUPLICATE_ID",
    "MISSING_IMAGE",
    "ON_BAD",
    "UNDECODABLE_IMAGE",
    "UNKNOWN_CLASS",
    "LabeledData",
    "load_classification",
    "load_detection",
]

_TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[\w.\-]+)?(:[\d.*]+)?$")


def load_classification(
    source: str | ShapesConfig,
    split: str,
    *,
    data_dir: str | None = None,
    on_bad: str = "error",
    shuffle_files: bool = False,
    verify_images: bool = True,
) -> LabeledData:
    """Reads an image classification split as `{"image", "label"}` elements.

    Training and evaluation then see one format whatever the source; images
    are decoded to RGB uint8 at their stored size (resizing and cropping
    belong to the pipelines).

    Args:
        source: a tfds image classification name (`"imagenette/320px"`,
            `"imagenet2012"`: features `image` and a `ClassLabel` `label`),
            or a local directory in tfds ImageFolder layout,
            `source/<split>/<class_name>/<image>.{jpg,jpeg,png}` (class names
            are the sorted folder names). The built-in data set is
            `"overfeat_shapes/classification"` or a `ShapesConfig` from
            `builtin.shapes_config`.
        split: split name (tfds slicing such as `"train[:10%]"` works for
            tfds names).
        data_dir: tfds data directory (default: tfds's). Ignored for local
            directories.
        on_bad: `"error"` (default) raises on an undecodable local image;
            `"skip"` skips it and logs a count.
        shuffle_files: shuffle the file order (tfds: the shard order; local
            trees: all files, again each epoch, before decoding).
        verify_images: for local directories, decode every image once at
            construction to find corrupt files (one decode of every image:
            turn it off for large trusted sets, corrupt files then fail at
            iteration time).

    Returns:
        A `LabeledData`.

    Raises:
        ValueError: if the source is neither an existing directory nor a
            prepared tfds data set, the split is unknown, or (under
            `on_bad="error"`) an image is corrupt. Readers never download: an
            unprepared tfds data set raises with the command to prepare it,
            except the built-in `overfeat_shapes`, which is generated
            locally (no download) on first use.

    Example:

    >>> data = load_classification("imagenette/320px", "validation")
    >>> data.class_names[:2], data.dataset.element_spec["image"].shape
    """
    _check_on_bad(on_bad)
    root = _local_root(source)
    if root is not None:
        return folders.read_image_folder(
            root, split, on_bad, shuffle_files, verify_images
        )
    return tfds_sources.read_classification(source, split, data_dir, shuffle_files)


def load_detection(
    source: str | ShapesConfig,
    split: str,
    *,
    data_dir: str | None = None,
    on_bad: str = "error",
    shuffle_files: bool = False,
    verify_images: bool = True,
    class_names: Sequence[str] | None = None,
) -> LabeledData:
    """Reads a detection split as `{"image", "boxes", "labels", "image_id"}`.

    Sources:

    - a tfds name with features `image`, `objects/bbox` (normalized yxyx)
      and `objects/label` (ClassLabel): `"voc/2007"`, `"voc/2012"`,
      `"coco/2017"`, ... tfds's VOC builder divides the raw 1-based VOC
      values by the image size without subtracting 1, so for `voc/*` the
      boxes get the same 1-based correction as `boxes.from_voc` (after
      rounding to 1/100 px, which removes tfds's float32 rounding): tfds VOC
      and a local VOC folder give identical boxes.
    - the built-in data set: `"overfeat_shapes/detection"` (or
      `/localization`), or a `ShapesConfig` from `builtin.shapes_config`;
      generated locally (no download) in `data_dir` on first use.
    - a local Pascal VOC folder: `VOCdevkit/VOCyyyy` (holding `JPEGImages/`,
      `Annotations/*.xml`, `ImageSets/Main/<split>.txt`) or a folder holding
      exactly one such `VOC*` folder. The image of id `i` is
      `JPEGImages/<i>.jpg`, as in the devkit. Class names are the sorted
      `<name>` values of the images of every split file in
      `ImageSets/Main` (not the per-class lists `<class>_<split>.txt`),
      whichever split is read, so that a validation split lacking a class
      numbers the others as the training split does; or `class_names` when
      given (the model's label map).
    - a local COCO folder: `annotations/instances_<split>.json` (or
      `instances_<split>.json` at the top). `file_name` is resolved in the
      first existing folder among `<split>/`, `images/<split>/`, `images/`
      (an absolute `file_name` or one with a `..` part is a bad record).
      Class names are the categories sorted by id; labels are re-indexed
      `0..C-1` in that order. Ids are ints; two categories with one id, or
      one without an int id, raise whatever `on_bad` says.

    `image_id` is the VOC id (`"000005"`) or the COCO id (`"397133"`), from
    tfds too (its `image/id`, else its `image/filename` less the extension,
    else the element's index).

    Bad local data is reported, never dropped silently. A missing image
    file, an undecodable image (found by a parallel decode pass, see
    `verify_images`), an unreadable annotation, an unknown class (a COCO
    `category_id` not in `categories`; a VOC name not in `class_names`) or a
    duplicate id (a COCO image or annotation id used twice: every image
    involved is bad; a VOC id listed twice: its second line) raises under
    `on_bad="error"`, naming the file and the id; under `on_bad="skip"`
    the record is skipped, counted in `LabeledData.skipped`, and one
    warning gives the counts per reason. In both modes, a box crossing the
    image border (by the annotated image size) is clipped to the image, a
    box left with zero or negative width or height is dropped, and one
    warning gives both counts. tfds sources are read as stored.

    Args:
        source: a tfds name, a `ShapesConfig` or a local directory (see
            above).
        split: split name.
        data_dir: tfds data directory (default: tfds's). Ignored for local
            directories.
        on_bad: `"error"` (default) or `"skip"`.
        shuffle_files: shuffle the file order (tfds: the shard order; local
            folders: all records, again each epoch, before decoding).
        verify_images: for local folders, decode every image once at
            construction to find corrupt files (one decode of every image:
            turn it off for large trusted sets, corrupt files then fail at
            iteration time).
        class_names: for local VOC folders only, the label map; objects of
            other names make their record bad.

    Returns:
        A `LabeledData`.

    Raises:
        ValueError: if the source is neither a VOC or COCO folder nor a
            prepared tfds detection data set (`overfeat_shapes` is prepared
            on first use), the split is unknown,
            `class_names` is given for another source, a VOC split file
            lists no id, a COCO category is malformed or shares its id, or
            (under `on_bad="error"`) a record is bad.

    Example:

    >>> data = load_detection("path/to/VOCdevkit/VOC2007", "trainval")
    >>> example = next(iter(data.dataset))
    >>> example["boxes"].shape  # [N, 4] xyxy pixels
    >>> shapes = load_detection(shapes_config("detection", num_train=6), "train")
    """
    _check_on_bad(on_bad)
    root = _local_root(source)
    voc_root = None if root is None else voc.find_root(root)
    if class_names is not None and voc_root is None:
        raise InvalidValueError(
            "Expected class_names only for local VOC folders (tfds data sets and "
            f"COCO folders carry their label map). Received: source={source!r}, "
            f"class_names={class_names!r}"
        )
    if root is None:
        return tfds_sources.read_detection(source, split, data_dir, shuffle_files)
    if voc_root is not None:
        if class_names is not None:
            class_names = _check_class_names(class_names)
        records, names, bad = voc.read_split(voc_root, split, class_names, on_bad)
        convert = box_lib.from_voc
    elif coco.annotation_files(root):
        records, names, bad = coco.read_split(root, split, on_bad)
        convert = box_lib.from_coco_xywh
    else:
        raise InvalidValueError(
            "Expected a Pascal VOC folder (JPEGImages/, Annotations/, "
            "ImageSets/Main/, or one VOC* folder holding them) or a COCO folder "
            f"(annotations/instances_<split>.json). Received: source={source!r}"
        )
    return folders.detection_data(
        records, names, bad, convert, shuffle_files, verify_images
    )


# === Sources and arguments ===


def _check_on_bad(on_bad):
    if on_bad not in ON_BAD:
        raise InvalidValueError(
            f"Expected on_bad in {ON_BAD}. Received: on_bad={on_bad!r}"
        )


def _local_root(source):
    """The absolute directory `source` names, or None for a tfds source."""
    if isinstance(source, ShapesConfig):
        return None
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidTypeError(
            "Expected source to be a directory path, a tfds name (str) or a "
            "ShapesConfig. "
            f"Received: source={source!r} of type {type(source).__name__}"
        )
    path = os.path.expanduser(os.fspath(source))
    if os.path.isdir(path):
        return os.path.abspath(path)
    if os.path.exists(path):
        raise InvalidValueError(
            f"Expected source to be a directory, not a file. Received: source={path!r}"
        )
    if not _TFDS_NAME.match(path):
        raise InvalidValueError(
            "Expected source to be an existing directory or a tfds name; this "
            f"directory does not exist. Received: source={path!r}"
        )
    return None


def _check_class_names(class_names):
    if isinstance(class_names, str) or not all(
        isinstance(name, str) for name in class_names
    ):
        raise InvalidTypeError(
            "Expected class_names to be a sequence of str. "
            f"Received: class_names={class_names!r}"
        )
    class_names = tuple(class_names)
    if not class_names or len(set(class_names)) != len(class_names):
        raise InvalidValueError(
            "Expected class_names to be non-empty and without duplicates. "
            f"Received: class_names={class_names!r}"
        )
    return class_names
