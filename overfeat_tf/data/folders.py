"""Local folders: images on disk as canonical data.

What the local sources share: images are decoded to RGB uint8 (grayscale
and RGBA become RGB) in a parallel map, once their headers pass
`decoding.decode`'s checks (PNG, JPEG, GIF, BMP or WebP, at most
`MAX_PIXELS`), and an optional verification pass decodes every image
once at construction so that corrupt or oversized files are reported as
bad records (see `records.BadRecords`) instead of failing at iteration
time.

Two builders live here:

- `read_image_folder`: a tfds ImageFolder tree,
  `root/<split>/<class_name>/<image>` (classification);
- `detection_data`: the dataset of a local detection folder (VOC, COCO)
  from its `Record`s. Annotations are parsed once in Python; boxes are
  converted, clipped and filtered in NumPy, and the dataset is then
  `from_tensor_slices` over paths and ragged boxes.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from overfeat_tf.data.decoding import decode
from overfeat_tf.data.records import (
    MISSING_IMAGE,
    UNDECODABLE_IMAGE,
    BadRecords,
    LabeledData,
    resolve_split,
)
from overfeat_tf.errors import InvalidValueError

logger = logging.getLogger(__name__)


def undecodable(names, encoded):
    """The names in `names` whose bytes in `encoded` fail to read or decode.

    One parallel pass: each (name, bytes) maps to its decoded shape, errors
    are dropped by `ignore_errors`, and the names missing from the output are
    the bad ones.
    """
    shapes = encoded.map(
        lambda name, data: (name, tf.shape(decode(data))),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).ignore_errors()
    decoded = {name.decode() for name, _ in shapes.as_numpy_iterator()}
    return [name for name in names if name not in decoded]


def listdir(path):
    """The sorted entries of `path`, or `[]` if it is not a directory."""
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


# === ImageFolder ===


def read_image_folder(root, split, on_bad, shuffle_files, verify_images):
    """A split of the ImageFolder tree `root` as `{"image", "label"}` data."""
    builder = tfds.folder_dataset.ImageFolder(root)
    splits = sorted(builder.info.splits.keys())
    split = resolve_split(split, splits, root) or split
    if split not in splits:
        raise InvalidValueError(
            f"Expected a split folder of the ImageFolder tree {root} "
            f"(<split>/<class_name>/<image>) among {splits}. Received: split={split!r}"
        )
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=shuffle_files,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    bad = []
    if verify_images:
        names = dataset.map(lambda ex: ex["image/filename"]).as_numpy_iterator()
        encoded = dataset.map(lambda ex: (ex["image/filename"], ex["image"]))
        bad = undecodable([name.decode() for name in names], encoded)
    records = BadRecords(on_bad, f"split {split!r} of {root}")
    for name in bad:
        records.report(UNDECODABLE_IMAGE, os.path.relpath(name, root), name)
    total = builder.info.splits[split].num_examples
    records.log(total)
    if bad:
        bad_names = tf.constant(bad)
        dataset = dataset.filter(
            lambda ex: tf.logical_not(
                tf.reduce_any(tf.equal(ex["image/filename"], bad_names))
            )
        )
    dataset = dataset.map(
        lambda ex: {
            "image": decode(ex["image"]),
            "label": tf.cast(ex["label"], tf.int32),
        },
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    class_names = tuple(builder.info.features["label"].names)
    return LabeledData(dataset, class_names, total - len(bad), len(bad))


# === Local detection folders ===


def detection_data(records, class_names, bad, convert, shuffle_files, verify_images):
    """Checks images, clips and drops boxes, then builds the dataset.

    Args:
        records: the `Record`s of the split, in order.
        class_names: the label map.
        bad: the split's `BadRecords`, holding what parsing already skipped.
        convert: the source box format to xyxy pixels, `[M, 4] -> [M, 4]`
            (`boxes.from_voc`, `boxes.from_coco_xywh`).
        shuffle_files, verify_images: as in `readers.load_detection`.
    """
    total = len(records) + sum(bad.counts.values())
    kept = []
    for record in records:
        if os.path.isfile(record.path):
            kept.append(record)
        else:
            bad.report(MISSING_IMAGE, record.image_id, record.path)
    records = kept
    if verify_images and records:
        paths = [record.path for record in records]
        encoded = tf.data.Dataset.from_tensor_slices(paths)
        encoded = encoded.map(lambda path: (path, tf.io.read_file(path)))
        corrupt = set(undecodable(paths, encoded))
        for record in records:
            if record.path in corrupt:
                bad.report(UNDECODABLE_IMAGE, record.image_id, record.path)
        records = [record for record in records if record.path not in corrupt]
    bad.log(total)

    # Convert all boxes at once, clip them to their image, drop degenerate ones.
    counts = np.array([len(record.labels) for record in records], np.int64)
    raw = [box for record in records for box in record.boxes]
    raw = np.array(raw, np.float32).reshape(-1, 4)
    boxes = np.asarray(convert(raw), np.float32)  # [M, 4] xyxy
    labels = np.array([x for record in records for x in record.labels], np.int32)
    sizes = np.array([[r.width, r.height] for r in records], np.float32)
    limits = np.repeat(np.tile(sizes.reshape(-1, 2), 2), counts, axis=0)
    clipped = np.clip(boxes, 0.0, limits)
    valid = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    num_clipped = int(np.sum(np.any(clipped != boxes, axis=1) & valid))
    num_degenerate = int(np.sum(~valid))
    if num_clipped or num_degenerate:
        logger.warning(
            "In %s: clipped %d boxes to their image (they crossed its border); "
            "dropped %d degenerate boxes (zero or negative width or height).",
            bad.where,
            num_clipped,
            num_degenerate,
        )
    image_index = np.repeat(np.arange(len(records)), counts)
    counts = np.bincount(image_index[valid], minlength=len(records))

    dataset = tf.data.Dataset.from_tensor_slices(
        {
            "path": tf.constant([r.path for r in records], tf.string),
            "boxes": tf.RaggedTensor.from_row_lengths(clipped[valid], counts),
            "labels": tf.RaggedTensor.from_row_lengths(labels[valid], counts),
            "image_id": tf.constant([r.image_id for r in records], tf.string),
        }
    )
    if shuffle_files and records:
        dataset = dataset.shuffle(len(records))
    dataset = dataset.map(
        lambda ex: {
            "image": decode(tf.io.read_file(ex["path"])),
            "boxes": tf.ensure_shape(ex["boxes"], [None, 4]),
            "labels": ex["labels"],
            "image_id": ex["image_id"],
        },
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return LabeledData(
        dataset, tuple(class_names), len(records), sum(bad.counts.values())
    )
