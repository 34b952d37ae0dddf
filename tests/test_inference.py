"""The multi-scale classification graph against independent compositions."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY
from reference import classify_reference, softmax, standardized

import overfeat_tf as of
from overfeat_tf import preprocessing
from overfeat_tf.inference import (
    TABLE5_SIZES,
    Classifier,
    InferenceSettings,
    paper_scales,
    scales_from_factors,
)

NAMES = [f"class{i}" for i in range(7)]


@pytest.fixture(scope="module")
def model():
    return of.overfeat_fast(num_classes=7, width=TINY, class_names=NAMES)


def _images(rng, *shape):
    return rng.integers(0, 256, shape, dtype=np.uint8)


def test_paper_scales_are_table5_for_the_accurate_model():
    accurate = of.overfeat_accurate(num_classes=3, width=TINY).geometry
    fast = of.overfeat_fast(num_classes=3, width=TINY).geometry
    assert paper_scales(accurate) == TABLE5_SIZES == (245, 281, 317, 389, 425, 461)
    assert paper_scales(accurate, [1, 2, 4, 6]) == (245, 281, 389, 461)
    # The same multiples of the 231 px window.
    assert paper_scales(fast) == (256, 294, 331, 407, 444, 482)
    assert scales_from_factors(fast, [1.0, 1.5]) == (231, 346)
    with pytest.raises(ValueError, match="from 1 to 6"):
        paper_scales(accurate, [0, 7])
    with pytest.raises(ValueError, match="at least the window"):
        scales_from_factors(fast, [0.5])


def test_graph_equals_the_composition_of_dense_maps(model, rng):
    image = _images(rng, 240, 300, 3)
    scales = (231, 280, 330)
    for stride in ("fine", "coarse"):
        classifier = Classifier(model, scales=scales, stride=stride)
        got = classifier(image)
        want = classify_reference(model, image, scales, stride)
        np.testing.assert_allclose(got["probabilities"], want, rtol=2e-4, atol=1e-6)
        order = np.argsort(-want, kind="stable")[:5]
        np.testing.assert_array_equal(got["top_k_ids"], order)
        np.testing.assert_allclose(got["top_k_probabilities"], want[order], rtol=2e-4)
        assert [n.decode() for n in got["top_k_names"].numpy()] == [
            NAMES[i] for i in order
        ]


def test_default_scales_without_flips(model, rng):
    image = _images(rng, 256, 256, 3)
    got = Classifier(model, flips=False)(image)["probabilities"]
    want = classify_reference(model, image, paper_scales(model.geometry), flips=False)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)


def test_one_window_gives_the_plain_softmax(model, rng):
    image = _images(rng, 231, 231, 3)
    got = Classifier(model, scales=[231], stride="coarse", flips=False)(image)
    logits = model(standardized(image.astype(np.float32))[None])["class_logits"]
    # rtol 1e-4: oneDNN splits float32 sums differently under load.
    np.testing.assert_allclose(
        got["probabilities"], softmax(np.asarray(logits)[0, 0, 0]), rtol=1e-4
    )


def test_batch_equals_one_at_a_time_in_any_order(model, rng):
    images = _images(rng, 4, 250, 270, 3)
    classifier = Classifier(model, scales=(231, 300))
    batch = classifier(images)["probabilities"].numpy()
    single = np.stack([classifier(image)["probabilities"] for image in images])
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-7)
    order = [2, 0, 3, 1]
    shuffled = classifier(images[order])["probabilities"].numpy()
    np.testing.assert_allclose(shuffled, batch[order], rtol=1e-5, atol=1e-7)


def test_an_image_and_its_mirror_score_the_same_with_flips(model, rng):
    image = _images(rng, 240, 290, 3)
    classifier = Classifier(model, scales=(231, 290))
    np.testing.assert_allclose(
        classifier(image)["probabilities"],
        classifier(image[:, ::-1])["probabilities"],
        rtol=1e-4,
        atol=1e-6,
    )
    no_flips = Classifier(model, scales=(231, 290), flips=False)
    assert not np.allclose(
        no_flips(image)["probabilities"],
        no_flips(image[:, ::-1])["probabilities"],
        rtol=1e-3,
    )


def test_ten_views_equal_the_average_of_the_ten_windows(model, rng):
    image = _images(rng, 256, 300, 3)
    got = Classifier(model).ten_views(image)["probabilities"]
    x = standardized(image.astype(np.float32))  # already 256 px short
    w = model.geometry.window
    tops, lefts = (0, 0, 25, 25, 12), (0, 69, 0, 69, 34)
    crops = [x[t : t + w, left : left + w] for t, left in zip(tops, lefts)]
    crops += [c[:, ::-1] for c in crops]
    logits = np.asarray(model(np.stack(crops).astype(np.float32))["class_logits"])
    want = softmax(logits[:, 0, 0].astype(np.float64)).mean(0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_center_crop_is_the_center_window(model, rng):
    image = _images(rng, 300, 256, 3)
    got = Classifier(model).center_crop(image)["probabilities"]
    x = standardized(image[34:265, 12:243].astype(np.float32))
    logits = np.asarray(model(x[None])["class_logits"])[0, 0, 0]
    np.testing.assert_allclose(got, softmax(logits.astype(np.float64)), rtol=1e-4)


def test_small_large_gray_and_rgba_images(model, rng):
    classifier = Classifier(model, scales=(231, 260), top_k=3)
    small = _images(rng, 60, 90, 3)  # enlarged to each scale
    np.testing.assert_allclose(
        classifier(small)["probabilities"],
        classify_reference(model, small, (231, 260)),
        rtol=2e-4,
        atol=1e-6,
    )
    large = np.broadcast_to(
        _images(rng, 30, 40, 3).repeat(100, 0).repeat(100, 1), (3000, 4000, 3)
    )
    out = classifier(np.ascontiguousarray(large))
    assert out["top_k_ids"].shape == (3,)
    assert np.isclose(float(tf.reduce_sum(out["probabilities"])), 1.0)
    gray = _images(rng, 240, 250, 1)
    np.testing.assert_allclose(
        classifier(gray)["probabilities"],
        classifier(gray.repeat(3, -1))["probabilities"],
        rtol=1e-6,
    )
    rgba = _images(rng, 240, 250, 4)
    np.testing.assert_allclose(
        classifier(rgba)["probabilities"],
        classifier(rgba[..., :3])["probabilities"],
        rtol=1e-6,
    )
    # float pixels in [0, 255] are the same as uint8
    np.testing.assert_allclose(
        classifier(rgba[..., :3].astype(np.float32))["probabilities"],
        classifier(rgba[..., :3])["probabilities"],
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ("cat.jpg", TypeError, "decode image files first"),
        ([["a", "b"]], TypeError, "decode image files first"),
        (np.zeros((5, 5), np.uint8), ValueError, r"shape=\(5, 5\)"),
        (np.zeros((40, 40, 5), np.uint8), ValueError, r"shape=\(40, 40, 5\)"),
        (np.zeros((0, 40, 40, 3), np.uint8), ValueError, "Empty"),
        (np.zeros((40, 40, 3), bool), TypeError, "dtype=bool"),
    ],
)
def test_non_images_get_clear_errors(model, bad, error, match):
    with pytest.raises(error, match=match):
        Classifier(model, scales=(231,))(bad)


def test_settings_and_keywords_build_the_same_runner(model, rng):
    image = _images(rng, 240, 260, 3)
    settings = InferenceSettings(scales=(231, 260), flips=False, top_k=3)
    by_record = Classifier(model, settings)
    by_keywords = Classifier(model, scales=[231, 260], flips=False, top_k=3)
    assert by_record.settings == by_keywords.settings
    np.testing.assert_array_equal(
        by_record(image)["probabilities"], by_keywords(image)["probabilities"]
    )
    # Keywords override the record's fields; no scales means Table 5's six.
    assert Classifier(model, settings, flips=True).settings.flips
    assert Classifier(model).settings.scales == paper_scales(model.geometry)
    with pytest.raises(TypeError, match="bogus"):
        Classifier(model, bogus=1)


def test_bad_settings(model):
    with pytest.raises(ValueError, match="top_k must be in"):
        Classifier(model, top_k=8)
    with pytest.raises(ValueError, match="at least the window"):
        Classifier(model, scales=(100,))
    with pytest.raises(ValueError, match="smallest_side"):
        Classifier(model, smallest_side=200)
    with pytest.raises(ValueError, match="stride"):
        Classifier(model, stride="medium")
    with pytest.raises(TypeError, match="OverFeat"):
        Classifier("model.keras")


def test_extreme_aspect_ratios_are_refused_naming_the_limit(model):
    """A 1 x 1600 image would be resized to 231 x 369600 (issue 18): every
    resize refuses an aspect ratio over max_aspect_ratio, before resizing."""
    with pytest.raises(ValueError, match="max_aspect_ratio must be"):
        Classifier(model, max_aspect_ratio=0.5)
    with pytest.raises(ValueError, match="max_aspect_ratio=12"):
        preprocessing.smallest_side_shape(1, 13, 231, 12)  # fixed sizes: at trace time
    classifier = Classifier(model, scales=(231,), flips=False)
    for shape in [(1, 1600, 3), (1600, 1, 3), (2, 21, 3)]:
        for run in (classifier, classifier.ten_views, classifier.center_crop):
            with pytest.raises(
                tf.errors.InvalidArgumentError, match="max_aspect_ratio=10 "
            ):
                run(np.zeros(shape, np.uint8))
    assert classifier(np.zeros((2, 20, 3), np.uint8))["top_k_ids"].shape == (5,)
    wider = Classifier(model, scales=(231,), flips=False, max_aspect_ratio=12)
    assert wider(np.zeros((2, 21, 3), np.uint8))["top_k_ids"].shape == (5,)


def test_non_finite_pixels_are_refused(model):
    # Before: an all-NaN image came out as a confident class.
    classifier = Classifier(model, scales=(231,), flips=False)
    for value in (np.nan, np.inf):
        image = np.full((240, 240, 3), 100.0, np.float32)
        image[7, 9, 1] = value
        for run in (classifier, classifier.ten_views, classifier.center_crop):
            with pytest.raises(ValueError, match="finite pixel"):
                run(image)
