"""Box formats, clipping and padding."""

import numpy as np

from overfeat_tf import boxes


def test_conversions_round_trip_and_agree_with_hand_values():
    xyxy = np.array([[10.0, 20.0, 50.0, 80.0], [0.0, 0.0, 200.0, 100.0]], np.float32)
    yxyx = boxes.to_normalized_yxyx(xyxy, 100, 200)
    np.testing.assert_allclose(yxyx, [[0.2, 0.05, 0.8, 0.25], [0, 0, 1, 1]], atol=1e-6)
    np.testing.assert_allclose(
        boxes.from_normalized_yxyx(yxyx, 100, 200), xyxy, atol=1e-4
    )
    coco = np.array([[10.0, 20.0, 40.0, 60.0]], np.float32)
    np.testing.assert_allclose(boxes.from_coco_xywh(coco), [[10, 20, 50, 80]])
    # VOC names pixels 1..N: pixels 11..50 span [10, 50].
    np.testing.assert_allclose(boxes.from_voc([[11, 21, 50, 80]]), [[10, 20, 50, 80]])
    np.testing.assert_allclose(boxes.area(xyxy), [2400, 20000])


def test_clip_and_mask():
    b = np.array(
        [
            [-10, 5, 30, 40],
            [90, 90, 150, 150],
            [98, 10, 120, 30],
            [5, 5, 6, 50],
            [1, 1, 9, 9],
        ],
        np.float32,
    )
    labels = np.array([1, 2, 3, 4, -1], np.int32)
    clipped, kept = boxes.clip_and_mask(b, labels, 100, 100, min_size=3)
    np.testing.assert_allclose(clipped[:2], [[0, 5, 30, 40], [90, 90, 100, 100]])
    # 2 px left after clipping, 1 px wide, and padding: all masked.
    np.testing.assert_array_equal(kept, [1, 2, -1, -1, -1])
    np.testing.assert_array_equal(clipped[2:], 0)


def test_pad_puts_valid_boxes_first_in_order():
    b = np.arange(16, dtype=np.float32).reshape(4, 4)
    labels = np.array([-1, 5, -1, 7], np.int32)
    padded, padded_labels = boxes.pad(b, labels, 6)
    np.testing.assert_array_equal(padded_labels, [5, 7, -1, -1, -1, -1])
    np.testing.assert_array_equal(padded[:2], b[[1, 3]])
    np.testing.assert_array_equal(padded[2:], 0)
    cut, cut_labels = boxes.pad(b, labels, 1)
    np.testing.assert_array_equal(cut_labels, [5])
    none, none_labels = boxes.pad(
        np.zeros((0, 4), np.float32), np.zeros(0, np.int32), 3
    )
    np.testing.assert_array_equal(none_labels, [-1, -1, -1])
