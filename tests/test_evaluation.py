"""Table 2 evaluation: errors equal those of the classifier's own outputs."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY

import overfeat_tf as of
from overfeat_tf.evaluation import (
    Protocol,
    evaluate_classification,
    format_table,
    table2_protocols,
)
from overfeat_tf.inference import Classifier
from overfeat_tf.metrics import top_k_error


@pytest.fixture(scope="module")
def model():
    return of.overfeat_fast(num_classes=6, width=TINY)


def _dataset(rng, count):
    images = [
        rng.integers(0, 256, (240, 260 + 10 * i, 3), np.uint8) for i in range(count)
    ]
    labels = rng.integers(0, 6, count)

    def gen():
        for image, label in zip(images, labels):
            yield {"image": image, "label": label}

    spec = {
        "image": tf.TensorSpec([None, None, 3], tf.uint8),
        "label": tf.TensorSpec([], tf.int64),
    }
    return tf.data.Dataset.from_generator(gen, output_signature=spec), images, labels


def test_top_k_error_counts_rank_by_hand():
    scores = np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    labels = np.array([2, 0, 1])
    # ranks of the label: 1 (one higher), 0, 1 (0.6 higher; a tie is no miss)
    assert top_k_error(scores, labels, 1) == pytest.approx(100 * 2 / 3)
    assert top_k_error(scores, labels, 2) == 0.0


def test_table2_rows(model):
    rows = table2_protocols(model)
    assert [r.name for r in rows] == [
        "1 center crop",
        "1 scale (256 px), coarse",
        "1 scale (256 px), fine",
        "4 scales (1,2,4,6), fine",
        "6 scales, fine",
        "10 views (4 corners + center, flips)",
    ]
    assert rows[3].scales == (256, 294, 407, 482)
    assert rows[0].views == "center" and rows[1].stride == "coarse"
    assert rows[5].views == "ten"


def test_errors_are_those_of_the_classifier_outputs(model, rng):
    dataset, images, labels = _dataset(rng, 5)
    protocols = [
        Protocol("coarse 256", (256,), "coarse"),
        Protocol("fine 2 scales", (231, 300), "fine", flips=False),
        Protocol("10 views", views="ten"),
        Protocol("center", views="center"),
    ]
    results = evaluate_classification(model, dataset, protocols, verbose=False)
    for protocol, result in zip(protocols, results):
        classifier = Classifier(
            model,
            scales=protocol.scales or None,
            stride=protocol.stride,
            flips=protocol.flips,
        )
        run = {
            "dense": classifier,
            "center": classifier.center_crop,
            "ten": classifier.ten_views,
        }[protocol.views]
        probs = np.stack([run(image)["probabilities"] for image in images])
        ranks = (probs > probs[np.arange(5), labels][:, None]).sum(1)
        assert result.top1_error == pytest.approx(100 * np.mean(ranks >= 1))
        assert result.top5_error == pytest.approx(100 * np.mean(ranks >= 5))
        assert result.num_images == 5 and result.images_per_second > 0
    table = format_table(results).splitlines()
    assert len(table) == 2 + len(protocols)
    assert table[2].startswith(f"| coarse 256 | {results[0].top1_error:.2f} |")


def test_bad_data(model, rng):
    dataset, _, _ = _dataset(rng, 2)
    with pytest.raises(ValueError, match="no images"):
        evaluate_classification(model, dataset.take(0), [Protocol("x", (231,))])
    bad = dataset.map(lambda e: {"image": e["image"], "label": e["label"] + 6})
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 6\)"):
        evaluate_classification(model, bad, [Protocol("x", (231,))], verbose=False)
