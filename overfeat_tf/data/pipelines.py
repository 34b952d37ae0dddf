"""tf.data pipelines: the paper's training and evaluation preprocessing.

All TF ops, parallel and prefetched. Inputs are the readers' canonical
elements (`readers.py`); outputs are `(images, targets)` batches ready for
`model.fit`, images normalized by `preprocessing.normalize` (the one
normalization that training, evaluation and inference share).

Classification follows section 3.1: resize so the smallest side is 256,
random window crops (221 accurate / 231 fast) and horizontal flips.
Localization and detection use Keras's box-aware layers (`RandomFlip`,
`RandomCrop`) and `keras.utils.bounding_boxes` for the boxes.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from overfeat_tf import boxes as box_ops
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.preprocessing import (
    MEAN_RGB,
    normalize,
    resize,
    resize_smallest_side,
    smallest_side_shape,
)

AUTOTUNE = tf.data.AUTOTUNE


def _deterministic(ds):
    """Element order independent of thread timing: runs replay exactly."""
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)


def _shuffled_forever(ds, buffer_size, seed):
    """Repeats, then shuffles the endless stream with one fixed seed.

    One shuffle over the repeated stream (not a reshuffle per pass) gives
    every pass a new order while the whole stream depends on `seed` alone,
    whether it is iterated eagerly, in a `tf.function` or per replica.
    """
    return ds.repeat().shuffle(buffer_size, seed=seed, reshuffle_each_iteration=False)


def _with_seeds(ds, seed):
    """Pairs each element with its own stateless seed [2]: (seed, index).

    Every crop and flip is then a function of (seed, position) alone, so a
    training loop that seeds each epoch can replay any epoch exactly.
    """
    seed = tf.cast(seed, tf.int64)
    return ds.enumerate().map(lambda i, x: (x, tf.stack([seed, i])))


def classification_train(
    ds: tf.data.Dataset,
    window: int,
    *,
    batch_size: int,
    smallest_side: int = 256,
    scale_range: tuple[int, int] | None = None,
    crops_per_image: int = 1,
    shuffle_buffer: int = 1024,
    seed: int = 0,
) -> tf.data.Dataset:
    """Random window crops and flips of images resized to `smallest_side`.

    Args:
        ds: canonical classification elements {"image", "label"}.
        window: the model's window (`model.geometry.window`).
        batch_size: global batch size; the last partial batch is dropped.
        smallest_side: images are resized so their smaller side is this.
        scale_range: scale augmentation: (low, high) pixels, each image
            resized to a random smaller side in [low, high] instead of
            `smallest_side`, so the network sees objects at the sizes that
            the larger test scales show them at. None (default): the
            paper's fixed `smallest_side`.
        crops_per_image: random crops (each with a random flip) per image;
            the paper's 5 (section 3.1) by option.
        shuffle_buffer: elements in the shuffle buffer.
        seed: seeds the shuffle, the crops and the flips.

    Returns:
        Batches (images float32 [B, window, window, 3], labels int32 [B]),
        repeated forever.
    """
    low, high = scale_range or (smallest_side, smallest_side)
    _check_sizes(window, low, crops_per_image, batch_size)
    if high < low:
        raise InvalidValueError(
            f"scale_range must be (low, high) with low <= high. Received: {scale_range}"
        )

    def crops(example, seed_pair):
        side = smallest_side
        if scale_range is not None:
            side_seed = tf.random.experimental.stateless_fold_in(seed_pair, -1)
            side = tf.random.stateless_uniform([], side_seed, low, high + 1, tf.int32)
        image = resize_smallest_side(example["image"], side)
        images = []
        for i in range(crops_per_image):
            crop_seed = tf.random.experimental.stateless_fold_in(seed_pair, i)
            crop = tf.image.stateless_random_crop(image, [window, window, 3], crop_seed)
            flip_seed = tf.random.experimental.stateless_fold_in(crop_seed, 1)
            images.append(tf.image.stateless_random_flip_left_right(crop, flip_seed))
        labels = tf.fill([crops_per_image], tf.cast(example["label"], tf.int32))
        return normalize(tf.stack(images)), labels

    ds = _with_seeds(_shuffled_forever(ds, shuffle_buffer, seed), seed)
    ds = ds.map(crops, num_parallel_calls=AUTOTUNE).unbatch()
    if crops_per_image > 1:  # spread an image's crops over several batches
        ds = ds.shuffle(
            4 * crops_per_image * batch_size, seed=seed, reshuffle_each_iteration=False
        )
    ds = ds.batch(batch_size, drop_remainder=True)
    return _deterministic(ds.prefetch(AUTOTUNE))


def classification_eval(
    ds: tf.data.Dataset,
    window: int | None,
    *,
    batch_size: int,
    smallest_side: int = 256,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """The center `window` crop of images resized to `smallest_side`.

    With `window=None` the whole resized image is kept (for dense
    evaluation), and `batch_size` must be 1 since sizes differ.
    `drop_remainder=True` drops a last partial batch (validation under
    several replicas, which cannot take an empty share of one).

    Returns:
        Batches (images float32 [B, h, w, 3], labels int32 [B]), one pass.
    """
    if window is None and batch_size != 1:
        raise InvalidValueError(
            "Whole images (window=None) differ in size: use batch_size=1. "
            f"Received: batch_size={batch_size}"
        )
    _check_sizes(window or smallest_side, smallest_side, 1, batch_size)

    def preprocess(example):
        image = resize_smallest_side(example["image"], smallest_side)
        if window is not None:
            shape = tf.shape(image)
            top, left = (shape[0] - window) // 2, (shape[1] - window) // 2
            image = image[top : top + window, left : left + window]
            image = tf.ensure_shape(image, [window, window, 3])
        return normalize(image), tf.cast(example["label"], tf.int32)

    ds = ds.map(preprocess, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return _deterministic(ds.prefetch(AUTOTUNE))


def resize_with_boxes(image, boxes, size):
    """Resize [H, W, 3] to smallest side `size` and its boxes [N, 4] with it."""
    shape = tf.shape(image)
    new_h, new_w = smallest_side_shape(shape[0], shape[1], size)
    relative = keras.utils.bounding_boxes.convert_format(
        boxes, source=box_ops.FORMAT, target="rel_xyxy", height=shape[0], width=shape[1]
    )
    boxes = keras.utils.bounding_boxes.convert_format(
        relative, source="rel_xyxy", target=box_ops.FORMAT, height=new_h, width=new_w
    )
    return resize(image, new_h, new_w), boxes


def detection_train(
    ds: tf.data.Dataset,
    image_size: int,
    *,
    batch_size: int,
    max_boxes: int,
    scale_range: tuple[float, float] = (1.0, 1.5),
    base_side: int | None = None,
    min_box_size: float = 4.0,
    shuffle_buffer: int = 512,
    seed: int = 0,
) -> tf.data.Dataset:
    """Box-aware random rescaling, flips and square crops, boxes padded.

    Each image is resized so that its smaller side is a random factor in
    `scale_range` times `base_side` (default `image_size`), flipped at
    random, and cropped at random to `image_size` x `image_size`; boxes
    follow, are clipped to the crop, and those left thinner than
    `min_box_size` pixels are dropped (label -1). An image smaller than the
    crop is first placed at a random offset on a canvas of the mean colour
    (zero once normalized), so that objects can be trained at the scale
    the network sees them at test time in crops of many windows.

    Returns:
        Batches (images float32 [B, S, S, 3], {"boxes": float32 [B, K, 4]
        xyxy pixels, "labels": int32 [B, K], -1 = padding}), forever.
    """
    low, high = scale_range
    if not 0 < low <= high:
        raise InvalidValueError(
            f"scale_range must satisfy 0 < low <= high. Received: {scale_range}"
        )
    base_side = image_size if base_side is None else base_side
    _check_sizes(image_size, image_size, 1, batch_size)
    flip = keras.layers.RandomFlip(
        "horizontal", bounding_box_format=box_ops.FORMAT, seed=seed
    )

    def augment(example, seed_pair):
        scale = tf.random.stateless_uniform([], seed_pair, low, high)
        size = tf.cast(tf.round(scale * base_side), tf.int32)
        image, boxes = resize_with_boxes(
            tf.cast(example["image"], tf.float32), example["boxes"], size
        )
        data = {
            "images": image,
            "bounding_boxes": {"boxes": boxes, "labels": example["labels"]},
        }
        data = flip(data, training=True)
        image, boxes = data["images"], data["bounding_boxes"]["boxes"]
        image, boxes = _pad_to_fit(
            image,
            boxes,
            image_size,
            tf.random.experimental.stateless_fold_in(seed_pair, 3),
        )
        # A random square crop (keras's RandomCrop needs static sizes).
        shape = tf.shape(image)
        top = tf.random.stateless_uniform(
            [],
            tf.random.experimental.stateless_fold_in(seed_pair, 1),
            0,
            shape[0] - image_size + 1,
            tf.int32,
        )
        left = tf.random.stateless_uniform(
            [],
            tf.random.experimental.stateless_fold_in(seed_pair, 2),
            0,
            shape[1] - image_size + 1,
            tf.int32,
        )
        image = tf.image.crop_to_bounding_box(image, top, left, image_size, image_size)
        boxes = keras.utils.bounding_boxes.crop(
            boxes,
            tf.cast(top, tf.float32),
            tf.cast(left, tf.float32),
            image_size,
            image_size,
            bounding_box_format=box_ops.FORMAT,
        )
        boxes, labels = box_ops.clip_and_mask(
            boxes, example["labels"], image_size, image_size, min_box_size
        )
        boxes, labels = box_ops.pad(boxes, labels, max_boxes)
        image = tf.ensure_shape(image, [image_size, image_size, 3])
        return normalize(image), {"boxes": boxes, "labels": labels}

    ds = _with_seeds(_shuffled_forever(ds, shuffle_buffer, seed), seed)
    ds = ds.map(augment, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=True)
    return _deterministic(ds.prefetch(AUTOTUNE))


def _pad_to_fit(image, boxes, size, seed_pair):
    """Pad pixels [h, w, 3] with the mean colour, at a random offset, to at
    least `size` x `size`; images that fit already pass untouched."""
    shape = tf.shape(image)
    room = tf.maximum(size - shape[:2], 0)
    top, left = tf.unstack(
        tf.cast(
            tf.random.stateless_uniform([2], seed_pair) * tf.cast(room + 1, tf.float32),
            tf.int32,
        )
    )
    paddings = [[top, room[0] - top], [left, room[1] - left]]

    def padded():
        return tf.pad(image - MEAN_RGB, [*paddings, [0, 0]]) + MEAN_RGB

    image = tf.cond(tf.reduce_any(room > 0), padded, lambda: image)
    shift = tf.cast(tf.stack([left, top, left, top]), boxes.dtype)
    return image, boxes + shift


def _check_sizes(window, smallest_side, crops_per_image, batch_size):
    if window > smallest_side:
        raise InvalidValueError(
            "The crop must fit in the resized image: window <= smallest_side. "
            f"Received: window={window}, smallest_side={smallest_side}"
        )
    if crops_per_image < 1 or batch_size < 1:
        raise InvalidValueError(
            "crops_per_image and batch_size must be >= 1. Received: "
            f"crops_per_image={crops_per_image}, batch_size={batch_size}"
        )
