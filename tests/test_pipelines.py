"""tf.data pipelines: crops, flips, normalization, and boxes that follow."""

import numpy as np
import pytest
import tensorflow as tf

from overfeat_tf import preprocessing
from overfeat_tf.data import pipelines


def unnormalize(images):
    return np.asarray(images) * preprocessing.STDDEV_RGB + preprocessing.MEAN_RGB


def coordinate_image(height, width):
    """R = column, G = row (mod 256): a crop's pixels say where it came from."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 256, y % 256, (x // 256) * 50 + (y // 256)], -1).astype(
        np.uint8
    )


def classification_ds(images, labels):
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})


def test_train_crops_are_windows_of_the_resized_image_with_flips():
    image = coordinate_image(256, 300)  # smallest side already 256: no resampling
    ds = classification_ds(image[None], np.array([4]))
    batches = pipelines.classification_train(ds, 221, batch_size=8, seed=3)
    images, labels = next(iter(batches))
    assert images.shape == (8, 221, 221, 3) and labels.numpy().tolist() == [4] * 8
    flips = 0
    for crop in np.rint(unnormalize(images)).astype(int):
        if crop[0, 1, 0] < crop[0, 0, 0]:  # columns decrease: mirrored
            crop, flips = crop[:, ::-1], flips + 1
        top, left = crop[0, 0, 1], crop[0, 0, 0]
        np.testing.assert_array_equal(crop, image[top : top + 221, left : left + 221])
    assert 0 < flips < 8


def test_scale_augmentation_crops_windows_of_randomly_resized_images():
    # Each crop (or its mirror) is a window of the image resized to a
    # shorter side within scale_range; the sides vary across crops.
    low, high, window = 72, 90, 64
    image = coordinate_image(100, 125) * np.array([2, 2, 1], np.uint8)
    ds = classification_ds(image[None], np.array([0]))
    batches = pipelines.classification_train(
        ds, window, batch_size=24, scale_range=(low, high), seed=1
    )
    images, _ = next(iter(batches))
    resized = {
        side: np.asarray(preprocessing.resize_smallest_side(tf.constant(image), side))
        for side in range(low - 4, high + 5)
    }
    sides = set()
    for crop in unnormalize(images):
        found = []
        for side, big in resized.items():
            for view in (crop, crop[:, ::-1]):
                near = np.abs(big[..., :2] - view[0, 0, :2]).max(-1) < 0.01
                for top, left in zip(*np.nonzero(near)):
                    patch = big[top : top + window, left : left + window]
                    if patch.shape == view.shape and np.allclose(
                        patch, view, atol=0.01
                    ):
                        found.append(side)
        assert found and all(low <= side <= high for side in found), found
        sides.add(found[0])
    assert len(sides) >= 5
    with pytest.raises(ValueError, match="window <= smallest_side"):
        pipelines.classification_train(ds, 80, batch_size=2, scale_range=(72, 90))


def test_five_crops_per_image():
    # One image, five random windows (each with a random flip) per pass.
    image = coordinate_image(256, 320)
    ds = classification_ds(image[None], np.array([2]))
    batches = pipelines.classification_train(ds, 231, batch_size=10, crops_per_image=5)
    images, labels = next(iter(batches))
    assert labels.numpy().tolist() == [2] * 10
    corners = set()
    for crop in np.rint(unnormalize(images)).astype(int):
        if crop[0, 1, 0] < crop[0, 0, 0]:
            crop = crop[:, ::-1]
        top, left = crop[0, 0, 1], crop[0, 0, 0]
        np.testing.assert_array_equal(crop, image[top : top + 231, left : left + 231])
        corners.add((top, left))
    assert len(corners) >= 5


def test_eval_center_crop_and_whole_image():
    image = coordinate_image(300, 256)
    ds = classification_ds(image[None], np.array([1]))
    ((center, label),) = list(pipelines.classification_eval(ds, 221, batch_size=4))
    top, left = (300 - 221) // 2, (256 - 221) // 2
    expected = image[top : top + 221, left : left + 221]
    np.testing.assert_array_equal(np.rint(unnormalize(center[0])), expected)
    ((whole, _),) = list(pipelines.classification_eval(ds, None, batch_size=1))
    assert whole.shape == (1, 300, 256, 3)
    # Resizing keeps the aspect ratio: 512x600 -> 256x300 (smallest side 256).
    big = np.zeros((1, 600, 512, 3), np.uint8)
    ((resized, _),) = list(
        pipelines.classification_eval(classification_ds(big, [0]), None, batch_size=1)
    )
    assert resized.shape == (1, 300, 256, 3)


COLOURS = np.array(
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]]
)


def object_scene(rng, height, width):
    """Rectangles of distinct pure colours on grey, one per cell of a 2x3
    grid (no occlusion); label = colour index."""
    image = np.full((height, width, 3), 128, np.uint8)
    boxes = []
    cell_h, cell_w = height // 2, width // 3
    for i, colour in enumerate(COLOURS):
        w, h = rng.integers(20, cell_w), rng.integers(20, cell_h)
        x = (i % 3) * cell_w + rng.integers(0, cell_w - w + 1)
        y = (i // 3) * cell_h + rng.integers(0, cell_h - h + 1)
        image[y : y + h, x : x + w] = colour
        boxes.append([x, y, x + w, y + h])
    return image, np.array(boxes, np.float32), np.arange(len(COLOURS), dtype=np.int32)


@pytest.mark.parametrize(
    "scale_range, base_side",
    [((1.0, 1.6), None), ((0.4, 0.7), 260)],  # the second pads: images < crop
)
def test_detection_augmentation_keeps_boxes_on_their_objects(scale_range, base_side):
    rng = np.random.default_rng(1)
    scenes = [object_scene(rng, 260, 330) for _ in range(6)]
    ds = tf.data.Dataset.from_generator(
        lambda: (
            {"image": im, "boxes": b, "labels": lab, "image_id": "x"}
            for im, b, lab in scenes
        ),
        output_signature={
            "image": tf.TensorSpec([None, None, 3], tf.uint8),
            "boxes": tf.TensorSpec([None, 4], tf.float32),
            "labels": tf.TensorSpec([None], tf.int32),
            "image_id": tf.TensorSpec([], tf.string),
        },
    )
    batches = pipelines.detection_train(
        ds,
        200,
        batch_size=6,
        max_boxes=8,
        scale_range=scale_range,
        base_side=base_side,
        seed=5,
    )
    images, targets = next(iter(batches))
    # Shorter sides 104-182 px on a 200 px crop: whole rows or columns of
    # each crop are the canvas, of the mean colour (zero once normalized).
    canvas = np.all(images.numpy() == 0, axis=-1)
    padded = canvas.all(axis=1).any(axis=1) | canvas.all(axis=2).any(axis=1)
    assert padded.all() if base_side else not canvas.any()
    checked = 0
    for image, boxes, labels in zip(
        unnormalize(images), targets["boxes"], targets["labels"]
    ):
        for box, label in zip(boxes.numpy(), labels.numpy()):
            if label < 0:
                continue
            # The object's pixels (its colour) lie inside its box, tightly.
            ink = np.all(np.abs(image - COLOURS[label]) < 40, axis=-1)
            rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
            assert rows.size, f"label {label} has no pixels"
            # Rectangles fill their boxes: the pixels span the box (+-2 px
            # of resampling at the edges).
            np.testing.assert_allclose(
                box, [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], atol=2
            )
            x1, y1, x2, y2 = box
            assert 0 <= x1 < x2 <= 200 and 0 <= y1 < y2 <= 200
            checked += 1
    assert checked >= 10
    # Boxes that left the crop are padding; nothing valid sits outside.
    assert (targets["labels"].numpy() >= 0).sum() == checked


def test_bad_arguments():
    ds = classification_ds(np.zeros((1, 256, 256, 3), np.uint8), [0])
    with pytest.raises(ValueError, match="window <= smallest_side"):
        pipelines.classification_train(ds, 300, batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1|batch_size=0"):
        pipelines.classification_train(ds, 221, batch_size=0)
    with pytest.raises(ValueError, match="use batch_size=1"):
        pipelines.classification_eval(ds, None, batch_size=8)
    for bad in [(1.2, 1.0), (0.0, 1.0)]:
        with pytest.raises(ValueError, match="scale_range"):
            pipelines.detection_train(
                ds, 200, batch_size=2, max_boxes=4, scale_range=bad
            )


def test_static_sizes_resize_like_dynamic_ones_without_a_cond():
    """For a fixed image size (the TFLite pipeline) sizes are Python ints
    and the antialiasing choice is made at trace time: same pixels."""
    for h, w, side in [
        (100, 151, 231),
        (375, 500, 256),
        (231, 231, 231),
        (7, 70, 245),  # at max_aspect_ratio (10)
    ]:
        dynamic = preprocessing.smallest_side_shape(
            tf.constant(h), tf.constant(w), side
        )
        assert preprocessing.smallest_side_shape(h, w, side) == tuple(
            int(v) for v in dynamic
        )
    image = tf.random.uniform([1, 100, 150, 3], 0, 255, seed=1)
    for size, antialiased in [((120, 180), False), ((50, 75), True)]:
        static = tf.function(lambda x: preprocessing.resize(x, *size))
        graph = static.get_concrete_function(tf.TensorSpec([1, 100, 150, 3])).graph
        ops = {op.type for op in graph.get_operations()}
        assert ("ScaleAndTranslate" in ops) == antialiased
        assert not ops & {"If", "StatelessIf"}
        dynamic = tf.function(lambda x: preprocessing.resize(x, *size))
        want = dynamic.get_concrete_function(tf.TensorSpec([1, None, None, 3]))(image)
        np.testing.assert_allclose(static(image), want, atol=1e-4)
