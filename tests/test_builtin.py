"""The built-in data set: tfds loading, determinism, tight boxes, hardness."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from overfeat_tf.data import builtin, shapes

SMALL = {"num_train": 6, "num_validation": 3, "num_test": 3, "image_size": 96}


def load(tmp_path, task="detection", split="train", **kwargs):
    config = builtin.shapes_config(task, **{**SMALL, **kwargs})
    ds = tfds.load(
        "overfeat_shapes",
        split=split,
        data_dir=str(tmp_path),
        builder_kwargs={"config": config},
    )
    return list(tfds.as_numpy(ds))


def test_loads_through_tfds_and_regenerates_identically(tmp_path):
    first = load(tmp_path / "a")
    again = load(tmp_path / "b")
    other = load(tmp_path / "c", seed=1)
    assert len(first) == 6
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["objects"]["bbox"], b["objects"]["bbox"])
    assert not all(np.array_equal(a["image"], c["image"]) for a, c in zip(first, other))
    counts = [len(e["objects"]["label"]) for e in first]
    assert all(0 <= c <= builtin.MAX_OBJECTS for c in counts)
    for example in first:
        assert min(example["image"].shape[:2]) == 96
        assert max(example["image"].shape[:2]) <= 96 * 1.25


def test_splits_are_disjoint_streams(tmp_path):
    train = load(tmp_path, task="classification", split="train")
    test = load(tmp_path, task="classification", split="test")
    for a in train:
        for b in test:
            assert a["image"].shape != b["image"].shape or not np.array_equal(
                a["image"], b["image"]
            )
    assert {"label", "objects", "image", "image_id"} <= set(train[0])


def test_tfds_boxes_are_the_rendered_boxes(tmp_path):
    (example,) = load(tmp_path, task="localization", num_train=1)
    h, w = example["image"].shape[:2]
    scene = shapes.render(
        0, "train", 0, height=h, width=w, **builtin.SCENES["localization"]
    )
    ymin, xmin, ymax, xmax = example["objects"]["bbox"][0]
    np.testing.assert_allclose(
        [xmin * w, ymin * h, xmax * w, ymax * h], scene.boxes[0], atol=1e-3
    )
    assert example["label"] == scene.labels[0] == example["objects"]["label"][0]

    # JPEG keeps the low frequencies of the rendered pixels (noise aside).
    def blur(image):
        h, w = (image.shape[0] // 4) * 4, (image.shape[1] // 4) * 4
        return image[:h, :w].reshape(h // 4, 4, w // 4, 4, 3).mean((1, 3))

    assert np.abs(blur(example["image"].astype(float)) - blur(scene.image)).mean() < 6


@pytest.mark.parametrize("index", range(6))
def test_boxes_are_tight_around_object_pixels(index):
    # A flat background and no clutter: the object's pixels are exactly the
    # pixels that differ from the background.
    scene = shapes.render(
        3, "validation", index, height=120, width=150, clutter=False, textured=False
    )
    background = np.full(3, 128, np.uint8)
    ink = np.any(np.abs(scene.image.astype(int) - background) > 1, axis=-1)
    ink &= scene.masks[0]  # (a flat texture could match the grey by chance)
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    np.testing.assert_array_equal(
        scene.boxes[0], [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
    )


def test_multi_object_scenes_keep_objects_half_visible():
    for index in range(10):
        scene = shapes.render(
            0, "train", index, height=128, width=128, num_objects=(2, 5)
        )
        for i, mask in enumerate(scene.masks):
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            box = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
            np.testing.assert_array_equal(scene.boxes[i], box)
            side = (box[2] - box[0] + box[3] - box[1]) / 2
            assert 128 / 8 * 0.5 <= side <= 128 * 3 / 4 * 1.2
            later = (
                np.any(scene.masks[i + 1 :], axis=0) if i + 1 < len(scene.masks) else 0
            )
            visible = (mask & ~np.asarray(later, bool)).sum() / mask.sum()
            assert visible >= shapes.MIN_VISIBLE


def test_colour_and_size_alone_do_not_give_the_class():
    # A nearest-centroid classifier on each object's mean colour, colour
    # spread and box size stays near chance (10 classes).
    def features(split, count):
        x, y = [], []
        for i in range(count):
            scene = shapes.render(0, split, i, height=80, width=80)
            pixels = scene.image[scene.masks[0]].astype(float)
            box = scene.boxes[0]
            size = np.sqrt((box[2] - box[0]) * (box[3] - box[1]))
            x.append([*pixels.mean(0), *pixels.std(0), size])
            y.append(scene.labels[0])
        return np.array(x), np.array(y)

    x, y = features("train", 400)
    x_val, y_val = features("validation", 200)
    mean, std = x.mean(0), x.std(0)
    centroids = np.stack([((x[y == c] - mean) / std).mean(0) for c in range(10)])
    distance = ((((x_val - mean) / std)[:, None] - centroids) ** 2).sum(-1)
    accuracy = (distance.argmin(1) == y_val).mean()
    assert accuracy < 0.25


def test_bad_configs():
    with pytest.raises(ValueError, match="task must be one of"):
        builtin.shapes_config("segmentation")
    with pytest.raises(ValueError, match="image_size must be >= 64"):
        builtin.shapes_config("detection", image_size=32)
    with pytest.raises(ValueError, match="num_train must be >= 0"):
        builtin.shapes_config("detection", num_train=-1)
    with pytest.raises(ValueError, match="split must be one of"):
        shapes.render(0, "dev", 0)
    assert builtin.shapes_config("detection").name == "detection"
    assert builtin.shapes_config("detection", seed=3).name == "detection-seed=3"


def test_object_size_sets_the_object_diameter():
    for index in range(8):
        scene = shapes.render(
            0, "train", index, height=200, width=240, object_size=(0.5, 0.5)
        )
        box = scene.boxes[0]
        longest = max(box[2] - box[0], box[3] - box[1])
        # Every class spans 0.8 to 1.0 of its diameter; aspect up to 1.15.
        assert 0.5 * 200 * 0.8 / 1.15 <= longest <= 0.5 * 200 * 1.15 + 1
    with pytest.raises(ValueError, match="object_size"):
        shapes.render(0, "train", 0, object_size=(0.5, 1.2))


def test_classification_objects_are_prominent(tmp_path):
    # Classification objects span >= 1/3 of the shorter side (ImageNet-like);
    # detection objects go down to 1/8.
    def longest_sides(task):
        sides = []
        for example in load(tmp_path / task, task=task, num_train=12):
            bbox = example["objects"]["bbox"]  # normalized yxyx
            h, w = example["image"].shape[:2]
            sides += list(
                np.maximum((bbox[:, 2] - bbox[:, 0]) * h, (bbox[:, 3] - bbox[:, 1]) * w)
                / min(h, w)
            )
        return np.array(sides)

    assert longest_sides("classification").min() >= 0.8 / 1.15 / 3
    assert longest_sides("detection").min() < 0.8 / 1.15 / 3


def _contrast_with_surroundings(scene):
    """Smallest per-channel gap (0-255) between the object's mean colour and
    the mean of the background pixels in a band around its box."""
    mask = scene.masks[0]
    x1, y1, x2, y2 = scene.boxes[0].astype(int)
    band = np.zeros_like(mask)
    band[max(y1 - 12, 0) : y2 + 12, max(x1 - 12, 0) : x2 + 12] = True
    band &= ~mask
    image = scene.image.astype(float)
    return np.abs(image[mask].mean(0) - image[band].mean(0)).min()


def test_objects_stand_out_unless_textured_objects():
    # Version 1.2.0 paints each object in a colour whose every channel lies
    # across 0.5 from the background under it; 1.1.0's textures (kept as
    # textured_objects=True) often match the background.
    kwargs = {"height": 128, "width": 128, **builtin.SCENES["classification"]}
    flat, textured = [], []
    for index in range(40):
        scene = shapes.render(0, "train", index, **kwargs)
        flat.append(_contrast_with_surroundings(scene))
        scene = shapes.render(0, "train", index, textured_objects=True, **kwargs)
        textured.append(_contrast_with_surroundings(scene))
    assert np.mean(np.array(flat) > 30) >= 0.9, flat
    assert np.mean(np.array(textured) > 30) <= 0.6, textured


def test_textured_objects_config_reaches_the_generated_images(tmp_path):
    # The ShapesConfig field names its own cache and renders 1.1.0's look.
    config = builtin.shapes_config("classification", textured_objects=True)
    assert "textured_objects=True" in config.name
    default = load(tmp_path / "a", task="classification")
    textured = load(tmp_path / "b", task="classification", textured_objects=True)
    for a, b in zip(default, textured):
        assert a["label"] == b["label"]  # the same scenes, painted otherwise
    gaps = [
        np.abs(a["image"].astype(int) - b["image"]).max()
        for a, b in zip(default, textured)
    ]
    assert min(gaps) > 60, gaps
