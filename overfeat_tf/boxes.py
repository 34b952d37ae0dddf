"""Boxes inside the package: xyxy in pixels, float32, converted at the edges.

One format everywhere: `[..., 4]` boxes `(x1, y1, x2, y2)` in continuous
pixel coordinates (the image spans [0, width] x [0, height]; a box covering
pixel columns 3..5 is x1=3, x2=6), `x1 <= x2`, `y1 <= y2`. Readers convert
to it from tfds's normalized `yxyx`, COCO's `xywh` and VOC's 1-based pixel
indices; exporters convert back to normalized `yxyx`. Conversions are
`keras.utils.bounding_boxes`. Variable counts are padded with label -1.
"""

from __future__ import annotations

import keras
import tensorflow as tf

FORMAT = "xyxy"
PAD_LABEL = -1


def from_normalized_yxyx(boxes, height, width):
    """tfds `BBoxFeature` boxes [N, 4] (ymin, xmin, ymax, xmax in [0, 1])."""
    return keras.utils.bounding_boxes.convert_format(
        boxes, source="rel_yxyx", target=FORMAT, height=height, width=width
    )


def to_normalized_yxyx(boxes, height, width):
    """Package boxes [N, 4] to normalized (ymin, xmin, ymax, xmax)."""
    return keras.utils.bounding_boxes.convert_format(
        boxes, source=FORMAT, target="rel_yxyx", height=height, width=width
    )


def from_coco_xywh(boxes):
    """COCO boxes [N, 4] (x, y, width, height) in pixels."""
    return keras.utils.bounding_boxes.convert_format(
        boxes, source="xywh", target=FORMAT
    )


def from_voc(boxes):
    """Pascal VOC `bndbox` values [N, 4] (xmin, ymin, xmax, ymax), 1-based.

    VOC names the first and last pixel of the box, counting from 1: the
    box's continuous extent is [xmin - 1, xmax].
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    return boxes - tf.constant([1.0, 1.0, 0.0, 0.0])


def area(boxes):
    """Areas [...] of boxes [..., 4] (0 for inverted boxes)."""
    x1, y1, x2, y2 = tf.unstack(tf.cast(boxes, tf.float32), axis=-1)
    return tf.maximum(x2 - x1, 0.0) * tf.maximum(y2 - y1, 0.0)


def clip_and_mask(boxes, labels, height, width, min_size=1.0):
    """Clip boxes [N, 4] to the image and mask those left too small.

    After a crop, a box can stick out of the image or fall outside it; such
    a box keeps its clipped part if both sides stay >= `min_size` pixels,
    and otherwise gets label -1 (padding) and a zero box.

    Returns:
        (boxes [N, 4] float32, labels [N] int32).
    """
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    boxes = tf.cast(boxes, tf.float32)
    limits = tf.stack([width, height, width, height])
    boxes = tf.clip_by_value(boxes, 0.0, limits)
    valid = (labels >= 0) & (boxes[:, 2] - boxes[:, 0] >= min_size)
    valid &= boxes[:, 3] - boxes[:, 1] >= min_size
    labels = tf.where(valid, tf.cast(labels, tf.int32), PAD_LABEL)
    boxes = tf.where(valid[:, None], boxes, 0.0)
    return boxes, labels


def pad(boxes, labels, max_boxes: int):
    """Pad (or cut) boxes [N, 4] and labels [N] to `max_boxes`, label -1.

    Valid boxes come first, in their order, and padding boxes are zero;
    boxes past `max_boxes` are dropped (raise `max_boxes` to keep them).
    """
    order = tf.argsort(tf.cast(labels < 0, tf.int32), stable=True)
    boxes, labels = tf.gather(boxes, order), tf.gather(labels, order)
    boxes = tf.where(labels[:, None] >= 0, tf.cast(boxes, tf.float32), 0.0)
    n = tf.minimum(tf.shape(labels)[0], max_boxes)
    padding = max_boxes - n
    boxes = tf.pad(boxes[:n], [[0, padding], [0, 0]])
    labels = tf.pad(labels[:n], [[0, padding]], constant_values=PAD_LABEL)
    return tf.ensure_shape(boxes, [max_boxes, 4]), tf.ensure_shape(labels, [max_boxes])


def encode_windows(boxes, windows, window: float):
    """Box regression targets: each edge's offset from its window's, in windows.

    The regressor's parameterisation (section 4.3 asks for "the box edges"):
    for a cell whose window is (wx1, wy1, wx2, wy2), `window` pixels wide,
    a box (x1, y1, x2, y2) is coded as

        ((x1 - wx1) / window, (y1 - wy1) / window,
         (x2 - wx2) / window, (y2 - wy2) / window),

    so 0 is the window itself and the code does not depend on where the
    cell is or at which scale the image is seen. `boxes` and `windows`
    broadcast: [..., 4] pixels of the same image.
    """
    boxes = tf.cast(boxes, tf.float32)
    return (boxes - tf.cast(windows, tf.float32)) / float(window)


def decode_windows(codes, windows, window: float):
    """The inverse of `encode_windows`: codes [..., 4] -> boxes in pixels."""
    return tf.cast(windows, tf.float32) + tf.cast(codes, tf.float32) * float(window)


def intersection(boxes_a, boxes_b):
    """Areas [...] of the overlap of boxes [..., 4] and [..., 4] (broadcast)."""
    boxes_a = tf.cast(boxes_a, tf.float32)
    boxes_b = tf.cast(boxes_b, tf.float32)
    low = tf.maximum(boxes_a[..., :2], boxes_b[..., :2])
    high = tf.minimum(boxes_a[..., 2:], boxes_b[..., 2:])
    sides = tf.maximum(high - low, 0.0)
    return sides[..., 0] * sides[..., 1]


def iou(boxes_a, boxes_b):
    """Intersection over union [...] of boxes [..., 4] and [..., 4] (broadcast);
    0 where both are empty."""
    inside = intersection(boxes_a, boxes_b)
    union = area(boxes_a) + area(boxes_b) - inside
    return tf.math.divide_no_nan(inside, union)


def coverage(windows, boxes):
    """The fraction of each box inside each window: [..., 4] x [..., 4] -> [...].

    Intersection over the box's area (0 for an empty box); the paper's rule
    for which windows learn a box is on this fraction, not on IoU.
    """
    return tf.math.divide_no_nan(intersection(windows, boxes), area(boxes))


def keras_cv_detections(detections: dict) -> dict:
    """The package's box schema (`boxes`, `classes`, `scores`,
    `num_detections`, as `Localizer`, `Detector` and the SavedModel give it)
    as KerasCV's prediction dict, which calls the scores `confidence` (for
    `keras_cv.metrics.BoxCOCO` or `plot_bounding_box_gallery`)."""
    keys = {"boxes": "boxes", "classes": "classes", "confidence": "scores"}
    adapted = {name: detections[key] for name, key in keys.items()}
    adapted["num_detections"] = detections["num_detections"]
    return adapted
