"""Preprocessing every path shares: training pipelines, the inference
graphs and the TFLite model import it from here, so that a network sees
the same pixels in training, evaluation and serving.

`normalize` (ImageNet's mean and standard deviation), `smallest_side_shape`
(the shape of a scale, with the aspect ratio bounded) and `resize`
(antialiased only when shrinking).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from overfeat_tf.errors import InvalidValueError

# ImageNet's per-channel RGB mean and standard deviation, in pixels.
MEAN_RGB = (123.675, 116.28, 103.53)
STDDEV_RGB = (58.395, 57.12, 57.375)


# The most an image's longer side may exceed its shorter side, by factor
# (`smallest_side_shape`): resizing to a scale then gives at most 10 x
# scale^2 pixels (2.3 megapixels at 482). Longer panoramas are refused.
MAX_ASPECT_RATIO = 10.0


def normalize(images):
    """uint8 or float pixels [..., 3] in [0, 255] -> float32, zero mean, unit std."""
    images = tf.cast(images, tf.float32)
    return (images - MEAN_RGB) / STDDEV_RGB


def smallest_side_shape(height, width, size, max_aspect_ratio=MAX_ASPECT_RATIO):
    """(h, w) with the smaller side `size`, keeping the aspect ratio.

    Python ints in give Python ints out (the same float32 arithmetic), so
    that graphs traced for a fixed image size have static shapes (TFLite).
    Every resize of the pipelines and of the runners takes its shape from
    here, so this is where the aspect ratio is bounded: an image whose
    longer side exceeds `max_aspect_ratio` times its shorter side is
    refused, since its resized size, size x (size x ratio), would grow
    without bound (a 1 x 1600 image at 256 is 256 x 409600).

    Raises:
        ValueError: for Python ints over the bound (at trace time).
        tf.errors.InvalidArgumentError: for tensors over the bound, when
            run (the resize waits for the check).
    """
    message = (
        "The longer side of an image may be at most max_aspect_ratio="
        f"{max_aspect_ratio:g} times the shorter side (each scale sets the shorter "
        "side; set max_aspect_ratio of the Classifier, Localizer or Detector, "
        "default overfeat_tf.preprocessing.MAX_ASPECT_RATIO, to allow more)"
    )
    if all(isinstance(v, (int, np.integer)) for v in (height, width, size)):
        if max(height, width) > max_aspect_ratio * min(height, width):
            raise InvalidValueError(f"{message}. Received: {height} x {width}")
        h, w, side = np.float32(height), np.float32(width), np.float32(size)
        scale = side / min(h, w)
        return max(int(np.round(h * scale)), size), max(int(np.round(w * scale)), size)
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    check = tf.debugging.assert_less_equal(
        tf.cast(tf.maximum(height, width), tf.float64),
        max_aspect_ratio * tf.cast(tf.minimum(height, width), tf.float64),
        message=message,
    )
    with tf.control_dependencies([] if check is None else [check]):  # None: eager
        scale = tf.cast(size, tf.float32) / tf.minimum(height, width)
    new_h = tf.maximum(tf.cast(tf.round(height * scale), tf.int32), size)
    new_w = tf.maximum(tf.cast(tf.round(width * scale), tf.int32), size)
    return new_h, new_w


def resize(image, height, width):
    """Bilinear resize of [H, W, C] or [B, H, W, C]; antialiased only when shrinking.

    Antialiasing changes nothing when enlarging but costs 4x the time, and
    it is the input pipeline's largest cost. With static sizes the choice
    is made here, so that an enlarging graph holds no antialiasing op
    (ScaleAndTranslate, which TFLite lacks).
    """
    static = image.shape[-3:-1]
    if static.is_fully_defined() and all(isinstance(v, int) for v in (height, width)):
        antialias = height * width < static[0] * static[1]
        return tf.image.resize(image, [height, width], antialias=antialias)
    shape = tf.shape(image)
    shrinking = height * width < shape[-3] * shape[-2]
    return tf.cond(
        shrinking,
        lambda: tf.image.resize(image, [height, width], antialias=True),
        lambda: tf.image.resize(image, [height, width]),
    )


def resize_smallest_side(image, size):
    """Resize [H, W, 3] so that min(H, W) == size, keeping the aspect ratio."""
    shape = tf.shape(image)
    return resize(image, *smallest_side_shape(shape[0], shape[1], size))
