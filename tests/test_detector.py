"""The detector graph against an independent composition, and bad input."""

import numpy as np
import pytest
from helpers import TINY
from test_localization import NAMES, _reference, _with_random_boxes

import overfeat_tf as of
from overfeat_tf.detector import Detector


@pytest.fixture(scope="module")
def detector_model():
    classifier = of.overfeat_fast(len(NAMES), width=TINY, class_names=NAMES)
    return _with_random_boxes(of.with_background(classifier), np.random.default_rng(2))


@pytest.mark.parametrize(
    "scales, flips, floor, least",
    [
        ((256,), False, 0.1, 0.5),
        ((256, 294), True, 0.15, 1.0),
        ((300,), True, 0.0, 0.0),
    ],
)
def test_detector_equals_an_independent_composition(
    detector_model, rng, scales, flips, floor, least
):
    image = rng.integers(0, 256, (250, 310, 3)).astype(np.uint8)
    detector = Detector(
        detector_model,
        scales=scales,
        flips=flips,
        min_window_score=floor,
        score_threshold=least,
        max_detections=20,
        jit_compile=False,
    )
    got = {name: value.numpy() for name, value in detector(image).items()}
    classes = len(NAMES)  # the background (the last class) is never detected
    boxes, scores, labels = _reference(
        detector_model, image, scales, flips, classes, 0.6, 20, classes, floor, least
    )
    n = len(scores)
    assert n > 0 and int(got["num_detections"]) == n
    np.testing.assert_array_equal(got["classes"][:n], labels)
    np.testing.assert_allclose(got["confidence"][:n], scores, rtol=1e-4)
    np.testing.assert_allclose(got["boxes"][:n], boxes, atol=0.05)
    assert (got["classes"][n:] == -1).all() and (got["confidence"][n:] == 0).all()
    assert (got["classes"][:n] < classes).all()
    assert got["boxes"].shape == (20, 4)


def test_detector_needs_a_background_class():
    classifier = of.with_regressor(of.overfeat_fast(6, width=TINY, class_names=NAMES))
    with pytest.raises(ValueError, match="background class"):
        Detector(classifier)
