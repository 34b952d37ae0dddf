"""The greedy merge (section 4.3) and its match score."""

import numpy as np
import pytest
import tensorflow as tf
from reference import greedy_merge_reference, match_score_reference

from overfeat_tf.merge import greedy_merge, match_score

KEYS = ("boxes", "scores", "classes", "counts")


def make_boxes(rng, n, num_classes):
    """Jittered boxes around a few objects plus some random ones, like a
    localizer's output: (boxes [n, 4] xyxy, scores [n], classes [n])."""
    objects = rng.integers(1, 5)
    centers = rng.uniform(60, 340, (objects, 2))
    sizes = rng.uniform(30, 200, (objects, 2))
    which = rng.integers(0, objects, n)
    center = centers[which] + rng.normal(0, 0.1, (n, 2)) * sizes[which]
    size = sizes[which] * rng.uniform(0.8, 1.2, (n, 2))
    boxes = np.concatenate([center - size / 2, center + size / 2], axis=1)
    loose = rng.random(n) < 0.15
    corners = np.sort(rng.uniform(0, 400, (n, 2, 2)), axis=1)
    boxes[loose] = corners[loose].reshape(-1, 4)  # (x1, y1), (x2, y2)
    scores = rng.uniform(0, 1, n)
    classes = rng.integers(0, num_classes, n)
    return boxes.astype(np.float32), scores.astype(np.float32), classes


def merged(*args, **kwargs):
    result = greedy_merge(*args, **kwargs)
    return [result[key].numpy() for key in KEYS]


def assert_same_merge(actual, expected):
    boxes, scores, classes, counts = actual
    assert len(boxes) == len(expected[0])
    np.testing.assert_array_equal(classes, expected[2])
    np.testing.assert_array_equal(counts, expected[3])
    np.testing.assert_allclose(boxes, expected[0], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(scores, expected[1], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(
    "seed, n, num_classes", [(0, 2, 1), (1, 40, 2), (2, 150, 3), (3, 300, 4)]
)
def test_merge_equals_the_numpy_reference(seed, n, num_classes):
    boxes, scores, classes = make_boxes(np.random.default_rng(seed), n, num_classes)
    for threshold in (0.3, 0.6, 1.2):
        expected = greedy_merge_reference(boxes, scores, classes, threshold)
        assert expected[3].sum() == n
        for jit_compile in (True, False):
            actual = merged(boxes, scores, classes, threshold, jit_compile=jit_compile)
            assert_same_merge(actual, expected)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_no_box_and_one_box(jit_compile):
    none = merged(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 1.0)
    assert [a.shape for a in none] == [(0, 4), (0,), (0,), (0,)]
    one = merged([[1, 2, 3, 4]], [0.5], [7], 1.0, jit_compile=jit_compile)
    assert_same_merge(one, ([[1, 2, 3, 4]], [0.5], [7], [1]))


@pytest.mark.parametrize("jit_compile", [True, False])
def test_identical_boxes_merge_into_one_at_threshold_zero(jit_compile):
    boxes = np.tile([[10.0, 20.0, 30.0, 60.0]], (5, 1))
    scores = [0.1, 0.2, 0.3, 0.4, 0.5]
    result = merged(boxes, scores, [2] * 5, 0.0, jit_compile=jit_compile)
    assert_same_merge(result, (boxes[:1], [1.5], [2], [5]))


@pytest.mark.parametrize("jit_compile", [True, False])
def test_low_threshold_merges_nothing(jit_compile):
    boxes, scores, classes = make_boxes(np.random.default_rng(4), 30, 2)
    scores[[3, 17]] = scores[9]  # ties keep the input order
    result = merged(boxes, scores, classes, -1.0, jit_compile=jit_compile)
    order = np.argsort(-scores, kind="stable")
    assert_same_merge(result, (boxes[order], scores[order], classes[order], [1] * 30))


@pytest.mark.parametrize("jit_compile", [True, False])
def test_high_threshold_merges_each_class_into_one_box(jit_compile):
    boxes, scores, classes = make_boxes(np.random.default_rng(5), 60, 3)
    result = merged(boxes, scores, classes, 2.0, jit_compile=jit_compile)
    means = [boxes[classes == c].mean(axis=0) for c in range(3)]
    sums = [scores[classes == c].sum() for c in range(3)]
    counts = [np.sum(classes == c) for c in range(3)]
    order = np.argsort(sums)[::-1]
    assert_same_merge(
        result,
        (np.array(means)[order], np.array(sums)[order], order, np.array(counts)[order]),
    )


def test_match_score_hand_values():
    a = np.array([0.0, 0.0, 10.0, 10.0])
    np.testing.assert_array_equal(match_score(a, a), 0.0)
    # Disjoint: IoU 0; centers (1, 1) and (5, 1), 16 apart squared; the
    # enclosing box [0, 0, 6, 2] has a squared diagonal of 40.
    np.testing.assert_allclose(match_score([0, 0, 2, 2], [4, 0, 6, 2]), 1.4)
    # Nested, same center: 1 - 36 / 100. Far: 1 + 20^2 / (30^2 + 10^2).
    nested = match_score(a, [2.0, 2.0, 8.0, 8.0])
    far = match_score(a, [20.0, 0.0, 30.0, 10.0])
    np.testing.assert_allclose([nested, far], [0.64, 1.4], rtol=1e-6)
    assert nested < far
    # Zero-area boxes: the same point scores 0, two points 1 (IoU counts
    # as 1, and the points are the corners of their enclosing box).
    point = [3.0, 4.0, 3.0, 4.0]
    np.testing.assert_array_equal(match_score(point, point), 0.0)
    np.testing.assert_allclose(match_score(point, [0, 0, 0, 0]), 1.0)


def test_match_score_is_symmetric_scale_invariant_and_matches_reference():
    a, _, _ = make_boxes(np.random.default_rng(6), 200, 1)
    b = np.roll(a, 1, axis=0)
    scores = match_score(a, b).numpy()
    np.testing.assert_array_equal(scores, match_score(b, a))
    np.testing.assert_allclose(match_score(3 * a, 3 * b), scores, rtol=1e-5)
    np.testing.assert_allclose(scores, match_score_reference(a, b), rtol=1e-5)
    assert np.all((scores >= 0) & (scores < 2))
    matrix = match_score(a[:, None], a[None]).numpy()  # broadcasts
    assert matrix.shape == (200, 200)
    np.testing.assert_array_equal(matrix, matrix.T)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_merge_in_a_graph_with_unknown_n(jit_compile):
    boxes, scores, classes = make_boxes(np.random.default_rng(7), 90, 2)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 4], tf.float32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ]
    )
    def merge(boxes, scores, classes):
        return greedy_merge(boxes, scores, classes, 0.6, jit_compile=jit_compile)

    in_graph = merge(boxes, scores, classes)
    eager = greedy_merge(boxes, scores, classes, 0.6, jit_compile=jit_compile)
    for key in KEYS:
        np.testing.assert_array_equal(in_graph[key], eager[key])
    smaller = merge(boxes[:20], scores[:20], classes[:20])
    assert smaller["counts"].numpy().sum() == 20


@pytest.mark.parametrize(
    "boxes, scores, classes, threshold",
    [
        (np.zeros((3, 3)), np.zeros(3), np.zeros(3), 0.5),  # not 4 coordinates
        (np.zeros(4), np.zeros(1), np.zeros(1), 0.5),  # not [N, 4]
        (np.zeros((3, 4)), np.zeros((3, 1)), np.zeros(3), 0.5),  # scores [N, 1]
        (np.zeros((3, 4)), np.zeros(2), np.zeros(3), 0.5),  # lengths differ
        (np.zeros((3, 4)), np.zeros(3), np.zeros(3), [0.5, 0.6]),  # threshold
    ],
)
def test_bad_shapes_raise(boxes, scores, classes, threshold):
    with pytest.raises(ValueError, match="Received"):
        greedy_merge(boxes, scores, classes, threshold)
