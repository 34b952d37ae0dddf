"""tfds data sets by name as canonical data.

A source is a tfds name (`"imagenette/320px"`, `"voc/2007"`,
`"coco/2017"`, `"overfeat_shapes/detection"`) or a `builtin.ShapesConfig`
(from `builtin.shapes_config`). Images become RGB uint8 (grayscale and RGBA
too); detection boxes come from tfds's normalized yxyx `objects/bbox` in
the package format of `overfeat_tf.boxes`.

Readers never download: a tfds data set that is not prepared in `data_dir`
raises with the `tfds build` command that prepares it. The exception is the
built-in `overfeat_shapes`, which is generated locally without a download:
it is prepared on first use.

tfds's VOC builder divides the raw 1-based VOC values by the image size
without subtracting 1, so for `voc/*` the boxes get the same 1-based
correction as `boxes.from_voc` (after rounding to 1/100 px, which removes
tfds's float32 rounding): tfds VOC and a local VOC folder give identical
boxes.
"""

from __future__ import annotations

import logging

import tensorflow as tf
import tensorflow_datasets as tfds

from overfeat_tf import boxes as box_lib
from overfeat_tf.data.builtin import OverfeatShapes, ShapesConfig
from overfeat_tf.data.records import LabeledData
from overfeat_tf.errors import InvalidValueError

logger = logging.getLogger(__name__)


def read_classification(source, split, data_dir, shuffle_files):
    """A tfds image classification split as `{"image", "label"}` data."""
    builder, name = _builder(source, data_dir)
    features = builder.info.features
    if not (
        isinstance(_feature(features, "image"), tfds.features.Image)
        and isinstance(_feature(features, "label"), tfds.features.ClassLabel)
    ):
        raise InvalidValueError(
            "Expected a tfds image classification data set with features "
            "'image' (Image) and 'label' (ClassLabel). "
            f"Received: source={name!r} with features {list(features.keys())}"
        )
    dataset = _split(builder, name, split, shuffle_files)
    dataset = dataset.map(
        lambda ex: {
            "image": _to_rgb(ex["image"]),
            "label": tf.cast(ex["label"], tf.int32),
        },
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return LabeledData(
        dataset,
        tuple(features["label"].names),
        _num_examples(builder, split),
    )


def read_detection(source, split, data_dir, shuffle_files):
    """A tfds detection split as `{"image", "boxes", "labels", "image_id"}`."""
    builder, name = _builder(source, data_dir)
    features = builder.info.features
    objects = getattr(_feature(features, "objects"), "feature", None)
    if not (
        isinstance(_feature(features, "image"), tfds.features.Image)
        and _feature(objects, "bbox") is not None
        and isinstance(_feature(objects, "label"), tfds.features.ClassLabel)
    ):
        raise InvalidValueError(
            "Expected a tfds detection data set with features 'image', "
            "'objects/bbox' and 'objects/label' (ClassLabel). "
            f"Received: source={name!r} with features {list(features.keys())}"
        )
    is_voc = builder.name == "voc"
    has_filename = _feature(features, "image/filename") is not None
    has_id = _feature(features, "image/id") is not None
    has_image_id = _feature(features, "image_id") is not None  # overfeat_shapes

    def canonical(index, ex):
        image = _to_rgb(ex["image"])
        size = tf.shape(image)
        bbox = tf.cast(ex["objects"]["bbox"], tf.float32)
        boxes = box_lib.from_normalized_yxyx(bbox, size[0], size[1])
        if is_voc:  # 1-based values divided by the size: undo both
            boxes = box_lib.from_voc(tf.round(boxes * 100.0) / 100.0)
        if has_image_id:
            image_id = ex["image_id"]
        elif has_id:  # as the local COCO reader
            image_id = tf.strings.as_string(ex["image/id"])
        elif has_filename:  # "000005.jpg" -> "000005", as the local VOC reader
            image_id = tf.strings.regex_replace(ex["image/filename"], r"\.[^.]*$", "")
        else:
            image_id = tf.strings.as_string(index)
        return {
            "image": image,
            "boxes": tf.ensure_shape(boxes, [None, 4]),
            "labels": tf.cast(ex["objects"]["label"], tf.int32),
            "image_id": image_id,
        }

    dataset = _split(builder, name, split, shuffle_files).enumerate()
    dataset = dataset.map(canonical, num_parallel_calls=tf.data.AUTOTUNE)
    return LabeledData(
        dataset,
        tuple(objects["label"].names),
        _num_examples(builder, split),
    )


def _builder(source, data_dir):
    """(builder, name) of a tfds name or a `ShapesConfig`.

    The built-in data set is generated here if it is not prepared yet.
    """
    if isinstance(source, ShapesConfig):
        name = f"{OverfeatShapes.name}/{source.name}"
        # tfds refuses a copy of a registered config: pass the registered one.
        registered = OverfeatShapes.builder_configs.get(source.name)
        config = registered if registered == source else source
        kwargs = {"config": config}
        lookup = OverfeatShapes.name
    else:
        name, kwargs, lookup = source, {}, source
    try:
        builder = tfds.builder(lookup, data_dir=data_dir, **kwargs)
    except tfds.core.DatasetNotFoundError:
        raise InvalidValueError(
            "Expected source to be an existing directory or a tfds data set "
            "name (see `tfds.list_builders()`); it is neither. "
            f"Received: source={name!r}"
        ) from None
    except ValueError as error:  # an unknown config or version
        raise InvalidValueError(
            "Expected source to be an existing directory or a tfds data set "
            f"name. Received: source={name!r} ({error})"
        ) from error
    if isinstance(builder, OverfeatShapes) and not builder.is_prepared():
        logger.info("Generating %s in %s.", name, builder.data_dir_root)
        builder.download_and_prepare()  # local generation, no download
    return builder, name


def _split(builder, name, split, shuffle_files):
    """`builder.as_dataset(split)`, never downloading."""
    try:
        return builder.as_dataset(split=split, shuffle_files=shuffle_files)
    except AssertionError as error:  # tfds's "could not find data" check
        hint = f"`tfds build {name} --data_dir={builder.data_dir_root}`"
        if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
            hint += (
                " after placing its files in the manual directory (pass "
                "`--manual_dir`; default <data_dir>/downloads/manual): "
                + " ".join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
            )
        raise InvalidValueError(
            f"Expected the tfds data set {name!r} to be prepared in "
            f"{builder.data_dir_root}; readers never download. Prepare it "
            f"with {hint}. Received: source={name!r}, "
            f"data_dir={builder.data_dir_root!r}"
        ) from error
    except (KeyError, ValueError) as error:
        raise InvalidValueError(
            f"Expected a split of the tfds data set {name!r} among "
            f"{list(builder.info.splits.keys())}. Received: split={split!r} "
            f"({error})"
        ) from error


def _feature(features, key):
    """`features[key]` of a tfds `FeaturesDict`, or None."""
    keys = features.keys() if hasattr(features, "keys") else ()
    return features[key] if key in keys else None


def _num_examples(builder, split):
    try:
        return int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError, TypeError):
        return None


def _to_rgb(image):
    """uint8 [H, W, 3] from an image with 1 to 4 channels (alpha dropped)."""
    image = tf.cast(image, tf.uint8)
    channels = tf.shape(image)[-1]
    image = image[..., : tf.where(channels < 3, 1, 3)]  # gray(+alpha) or RGB(A)
    shape = tf.concat([tf.shape(image)[:2], [3]], axis=0)
    return tf.ensure_shape(tf.broadcast_to(image, shape), [None, None, 3])
