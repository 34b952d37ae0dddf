"""Readers: VOC, COCO and ImageFolder folders, tfds names and the built-in data
set give canonical data."""

import json
import logging
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from test_decoding import HUGE

from overfeat_tf.data import builtin, readers, shapes

LOGGER = "overfeat_tf.data"  # the readers' modules log below it

# id: (height, width, [(name, xmin, ymin, xmax, ymax)]), VOC's 1-based values.
VOC_ANNOTATIONS = {
    "000001": (24, 32, [("dog", 1, 1, 32, 24), ("cat", 5, 6, 10, 12)]),
    "000002": (20, 28, [("person", 3, 4, 20, 18)]),
    "000003": (16, 16, []),  # background: no objects
}


def smooth_image(rng, height, width, channels=3):
    """A gradient plus a little noise: survives JPEG within a few levels."""
    y, x = np.mgrid[:height, :width]
    base = (4 * x + 3 * y)[..., None] + 40 * np.arange(channels)
    noise = rng.integers(0, 8, size=(height, width, channels))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_image(path, array, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.squeeze(array)).save(path, **kwargs)


def voc_xml(height, width, objects):
    parts = [f"<size><width>{width}</width><height>{height}</height></size>"]
    for name, *box in objects:
        coords = "".join(
            f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box)
        )
        parts.append(f"<object><name>{name}</name><bndbox>{coords}</bndbox></object>")
    return f"<annotation>{''.join(parts)}</annotation>"


def write_voc(root, rng, annotations=VOC_ANNOTATIONS, split="trainval"):
    """A VOCdevkit/VOC2007 folder: real JPEGs, XML, and one split file.

    Returns {id: image written}; one extra image not in the split is written too.
    """
    voc = os.path.join(root, "VOC2007")
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        os.makedirs(os.path.join(voc, folder), exist_ok=True)
    images = {}
    for image_id, (height, width, objects) in {
        **annotations,
        "000009": (8, 8, [("horse", 1, 1, 8, 8)]),
    }.items():
        images[image_id] = smooth_image(rng, height, width)
        write_image(f"{voc}/JPEGImages/{image_id}.jpg", images[image_id], quality=95)
        with open(f"{voc}/Annotations/{image_id}.xml", "w") as f:
            f.write(voc_xml(height, width, objects))
    with open(f"{voc}/ImageSets/Main/{split}.txt", "w") as f:
        f.write("".join(f"{image_id}\n" for image_id in annotations))
    return images


def by_id(data):
    return {ex["image_id"].decode(): ex for ex in data.dataset.as_numpy_iterator()}


def test_voc_folder_gives_boxes_labels_and_images(tmp_path, rng):
    written = write_voc(tmp_path / "VOCdevkit", rng)
    data = readers.load_detection(str(tmp_path / "VOCdevkit"), "trainval")
    assert data.class_names == ("cat", "dog", "person")
    assert (data.num_examples, data.skipped) == (3, 0)
    examples = by_id(data)
    assert sorted(examples) == sorted(VOC_ANNOTATIONS)
    for image_id, (height, width, objects) in VOC_ANNOTATIONS.items():
        ex = examples[image_id]
        assert ex["image"].dtype == np.uint8
        assert ex["image"].shape == (height, width, 3)
        diff = np.abs(ex["image"].astype(int) - written[image_id].astype(int))
        assert diff.mean() < 4  # JPEG
        # 1-based first/last pixel -> continuous extent [xmin - 1, xmax].
        expected = [[x1 - 1, y1 - 1, x2, y2] for _, x1, y1, x2, y2 in objects]
        np.testing.assert_array_equal(ex["boxes"], np.reshape(expected, (-1, 4)))
        assert ex["boxes"].dtype == np.float32 and ex["labels"].dtype == np.int32
        labels = [data.class_names.index(name) for name, *_ in objects]
        np.testing.assert_array_equal(ex["labels"], labels)


def test_voc_folder_unknown_split_lists_the_splits(tmp_path, rng):
    write_voc(tmp_path, rng)
    with pytest.raises(ValueError, match=r"\['trainval'\].*split='train'"):
        readers.load_detection(str(tmp_path / "VOC2007"), "train")


COCO_LAYOUTS = [  # (annotation file, image folder)
    ("annotations/instances_train.json", "images/train"),
    ("instances_train.json", "train"),
    ("annotations/instances_train.json", "images"),
]


def write_coco(root, images, annotations, layout=COCO_LAYOUTS[0]):
    """`images` {id: (file_name, array)}; categories 7 zebra, 2 ant, 5 moose."""
    annotation_file, image_dir = layout
    entries = []
    for image_id, (file_name, array) in images.items():
        if array is not None:
            write_image(os.path.join(root, image_dir, file_name), array)
        height, width = array.shape[:2] if array is not None else (10, 10)
        entries.append(
            {"id": image_id, "file_name": file_name, "height": height, "width": width}
        )
    data = {
        "images": entries,
        "annotations": [
            {"id": i, "image_id": image_id, "category_id": category, "bbox": bbox}
            for i, (image_id, category, bbox) in enumerate(annotations)
        ],
        "categories": [
            {"id": 7, "name": "zebra"},
            {"id": 2, "name": "ant"},
            {"id": 5, "name": "moose"},
        ],
    }
    path = os.path.join(root, annotation_file)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)


@pytest.mark.parametrize("layout", COCO_LAYOUTS)
def test_coco_folder_gives_boxes_labels_and_rgb_images(tmp_path, rng, layout):
    rgb = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(10, 9), dtype=np.uint8)
    rgba = rng.integers(0, 256, size=(8, 7, 4), dtype=np.uint8)
    images = {10: ("a.png", rgb), 11: ("b.png", gray), 12: ("c.png", rgba)}
    annotations = [
        (10, 7, [1.5, 2.0, 10.25, 5.5]),
        (10, 2, [0, 0, 16, 12]),
        (11, 5, [3, 4, 2, 1]),
    ]  # image 12: no objects
    write_coco(tmp_path, images, annotations, layout)
    data = readers.load_detection(str(tmp_path), "train")
    assert data.class_names == ("ant", "moose", "zebra")  # categories by id
    assert (data.num_examples, data.skipped) == (3, 0)
    examples = by_id(data)
    np.testing.assert_array_equal(examples["10"]["image"], rgb)
    np.testing.assert_array_equal(examples["11"]["image"], np.stack([gray] * 3, -1))
    np.testing.assert_array_equal(examples["12"]["image"], rgba[..., :3])
    np.testing.assert_array_equal(
        examples["10"]["boxes"], [[1.5, 2.0, 11.75, 7.5], [0, 0, 16, 12]]
    )
    np.testing.assert_array_equal(examples["10"]["labels"], [2, 0])
    np.testing.assert_array_equal(examples["11"]["boxes"], [[3, 4, 5, 5]])
    np.testing.assert_array_equal(examples["11"]["labels"], [1])
    assert examples["12"]["boxes"].shape == (0, 4)
    assert examples["12"]["labels"].shape == (0,)


def test_image_folder_gives_labels_and_class_names(tmp_path, rng):
    expected = {}
    for split, name, count in [
        ("train", "cat", 2),
        ("train", "dog", 3),
        ("test", "cat", 1),
    ]:
        for i in range(count):
            shape = (9, 11) if (name, i) == ("dog", 0) else (9, 11, 3)  # one gray
            image = rng.integers(0, 256, size=shape, dtype=np.uint8)
            write_image(str(tmp_path / split / name / f"{i}.png"), image)
            if split == "train":
                rgb = np.broadcast_to(image.reshape(9, 11, -1), (9, 11, 3))
                expected[rgb.tobytes()] = name
    data = readers.load_classification(str(tmp_path), "train")
    assert data.class_names == ("cat", "dog")
    assert (data.num_examples, data.skipped) == (5, 0)
    examples = list(data.dataset.as_numpy_iterator())
    assert len(examples) == 5
    for ex in examples:
        assert ex["image"].shape == (9, 11, 3) and ex["label"].dtype == np.int32
        assert data.class_names[ex["label"]] == expected[ex["image"].tobytes()]
    with pytest.raises(ValueError, match=r"\['test', 'train'\].*split='val'"):
        readers.load_classification(str(tmp_path), "val")


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["val", "valid", "validation"])
def test_validation_split_by_any_common_name(tmp_path, rng, folder):
    # A recipe's "validation" reads a split folder named val or valid.
    for split in ("train", folder):
        image = rng.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
        write_image(str(tmp_path / split / "cat" / "0.png"), image)
    data = readers.load_classification(str(tmp_path), "validation")
    assert data.num_examples == 1
    (example,) = data.dataset.as_numpy_iterator()
    np.testing.assert_array_equal(example["image"], image)
    assert readers.load_classification(str(tmp_path), "val").num_examples == 1


@pytest.mark.slow
def test_split_aliases_of_voc_and_coco(tmp_path, rng):
    write_voc(tmp_path, rng, split="val")
    voc = readers.load_detection(str(tmp_path / "VOC2007"), "validation")
    assert voc.num_examples == len(VOC_ANNOTATIONS)
    image = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    write_coco(
        tmp_path / "coco",
        {1: ("a.png", image)},
        [(1, 7, [2, 3, 10, 8])],
        layout=("annotations/instances_val2017.json", "images/val2017"),
    )
    coco = readers.load_detection(str(tmp_path / "coco"), "validation")
    assert coco.num_examples == 1
    with pytest.raises(ValueError, match=r"\['val2017'\].*split='train'"):
        readers.load_detection(str(tmp_path / "coco"), "train")


def mock_voc_as_dataset(annotations, class_names, rng):
    """A `_as_dataset` for tfds mock_data: VOC examples built as tfds's builder
    builds them (1-based values divided by the size, float32)."""
    examples = []
    for image_id, (height, width, objects) in annotations.items():
        bbox = [
            [y1 / height, x1 / width, y2 / height, x2 / width]
            for _, x1, y1, x2, y2 in objects
        ]
        examples.append(
            {
                "image": rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8),
                "image/filename": f"{image_id}.jpg",
                "objects": {
                    "bbox": np.array(bbox, np.float32).reshape(-1, 4),
                    "label": np.array(
                        [class_names.index(name) for name, *_ in objects], np.int64
                    ),
                },
            }
        )
    signature = {
        "image": tf.TensorSpec([None, None, 3], tf.uint8),
        "image/filename": tf.TensorSpec([], tf.string),
        "objects": {
            "bbox": tf.TensorSpec([None, 4], tf.float32),
            "label": tf.TensorSpec([None], tf.int64),
        },
    }

    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_generator(
            lambda: iter(examples), output_signature=signature
        )

    return as_dataset


@pytest.mark.slow
def test_tfds_voc_and_voc_folder_give_the_same_boxes(tmp_path, rng):
    # At 21 x 27 some value / size * size is not exact in float32 (e.g. 3 / 21).
    grid = [("cat", x, y, x + 2, y + 1) for x in range(1, 26) for y in range(1, 21)]
    annotations = {**VOC_ANNOTATIONS, "000004": (21, 27, grid)}
    assert np.float32(np.float32(3 / 21) * np.float32(21)) != 3
    names = tuple(tfds.builder("voc/2007").info.features["objects"]["label"].names)
    as_dataset = mock_voc_as_dataset(annotations, names, rng)
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        from_tfds = readers.load_detection("voc/2007", "test")
        tfds_examples = by_id(from_tfds)
    assert from_tfds.class_names == names
    write_voc(tmp_path, rng, annotations)
    local = readers.load_detection(
        str(tmp_path / "VOC2007"), "trainval", class_names=names
    )
    local_examples = by_id(local)
    assert sorted(tfds_examples) == sorted(local_examples) == sorted(annotations)
    for image_id, (height, width, objects) in annotations.items():
        a, b = tfds_examples[image_id], local_examples[image_id]
        assert a["image"].shape == b["image"].shape == (height, width, 3)
        np.testing.assert_array_equal(a["boxes"], b["boxes"])
        np.testing.assert_array_equal(a["labels"], b["labels"])
        expected = [[x1 - 1, y1 - 1, x2, y2] for _, x1, y1, x2, y2 in objects]
        np.testing.assert_array_equal(a["boxes"], np.reshape(expected, (-1, 4)))


def test_tfds_classification_gives_rgb_and_int32_labels():
    with tfds.testing.mock_data(num_examples=3):
        data = readers.load_classification("mnist", "train")
        examples = list(data.dataset.as_numpy_iterator())
    assert data.class_names == tuple(str(i) for i in range(10))
    assert len(examples) == 3
    for ex in examples:
        assert ex["image"].shape == (28, 28, 3) and ex["image"].dtype == np.uint8
        np.testing.assert_array_equal(ex["image"][..., 0], ex["image"][..., 2])
        assert ex["label"].dtype == np.int32 and 0 <= ex["label"] < 10


# === The built-in data set ===

TINY = {"num_train": 4, "num_validation": 2, "num_test": 2, "image_size": 96}


def read_builtin(load, task, data_dir):
    """(reader elements, builder elements) of a tiny built-in train split.

    The builder's own elements come in the readers' order (files are not
    shuffled), checked by their images.
    """
    config = builtin.shapes_config(task, **TINY)
    data = load(config, "train", data_dir=data_dir)
    examples = list(data.dataset.as_numpy_iterator())
    ds = tfds.load(
        "overfeat_shapes",
        split="train",
        data_dir=data_dir,
        builder_kwargs={"config": config},
    )
    expected = list(tfds.as_numpy(ds))
    assert data.class_names == shapes.CLASS_NAMES
    assert data.num_examples == len(examples) == len(expected) == 4
    for ex, tfds_ex in zip(examples, expected):
        np.testing.assert_array_equal(ex["image"], tfds_ex["image"])
    return examples, expected


def test_builtin_classification_is_generated_on_first_use(tmp_path):
    examples, expected = read_builtin(
        readers.load_classification, "classification", str(tmp_path)
    )
    for ex, tfds_ex in zip(examples, expected):
        assert ex["label"].dtype == np.int32 and ex["label"] == tfds_ex["label"]


def test_builtin_detection_gives_the_rendered_boxes(tmp_path):
    examples, expected = read_builtin(
        readers.load_detection, "detection", str(tmp_path)
    )
    for ex, tfds_ex in zip(examples, expected):
        index = int(tfds_ex["image_id"].decode().removeprefix("train_"))
        h, w = ex["image"].shape[:2]
        scene = shapes.render(0, "train", index, height=h, width=w, num_objects=(0, 5))
        np.testing.assert_allclose(
            ex["boxes"], np.reshape(scene.boxes, (-1, 4)), atol=1e-3
        )
        np.testing.assert_array_equal(ex["labels"], scene.labels)


@pytest.mark.parametrize(
    "source", ["overfeat_shapes/detection", builtin.shapes_config("detection")]
)
def test_builtin_registered_configs_are_generated_not_refused(
    tmp_path, monkeypatch, source
):
    class Generating(Exception):
        pass

    def download_and_prepare(self, *args, **kwargs):
        raise Generating(self.builder_config.name)  # the full set is too slow

    monkeypatch.setattr(
        builtin.OverfeatShapes, "download_and_prepare", download_and_prepare
    )
    with pytest.raises(Generating, match="^detection$"):
        readers.load_detection(source, "train", data_dir=str(tmp_path))


# === Bad data ===


def bad_voc(tmp_path, rng, case):
    """A VOC folder with one bad record, 000002; returns (source, kwargs, file)."""
    write_voc(tmp_path, rng)
    voc = str(tmp_path / "VOC2007")
    kwargs = {}
    if case == "missing image":
        os.remove(f"{voc}/JPEGImages/000002.jpg")
        return voc, kwargs, "000002.jpg"
    if case == "undecodable image":
        with open(f"{voc}/JPEGImages/000002.jpg", "wb") as f:
            f.write(b"\xff\xd8 not really a JPEG")
        return voc, kwargs, "000002.jpg"
    if case == "unknown class":
        kwargs["class_names"] = ("cat", "dog")
        return voc, kwargs, "000002.xml', name='person"
    if case == "unreadable annotation":
        with open(f"{voc}/Annotations/000002.xml", "w") as f:
            f.write("<annotation><size><width>5</width></size></annotation>")
        return voc, kwargs, "000002.xml"
    raise ValueError(f"unknown bad-data case {case!r}")


def bad_coco(tmp_path, rng, case):
    """A COCO folder with one bad record, image 2; returns (source, kwargs, file)."""
    images = {
        1: ("one.png", smooth_image(rng, 10, 12)),
        2: ("two.png", smooth_image(rng, 10, 12)),
    }
    annotations = [(1, 2, [1, 1, 4, 4]), (2, 5, [2, 2, 3, 3])]
    if case == "missing image":
        images[2] = ("two.png", None)
        expected = "two.png"
    elif case == "unknown class":
        annotations[1] = (2, 99, [2, 2, 3, 3])
        expected = "instances_train.json', image='two.png', category_id=99"
    write_coco(tmp_path, images, annotations)
    if case == "undecodable image":
        with open(tmp_path / "images/train/two.png", "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n truncated")
        expected = "two.png"
    return str(tmp_path), {}, expected


BAD_CASES = [
    (bad_voc, "missing image"),
    (bad_voc, "undecodable image"),
    (bad_voc, "unknown class"),
    (bad_voc, "unreadable annotation"),
    (bad_coco, "missing image"),
    (bad_coco, "undecodable image"),
    (bad_coco, "unknown class"),
]


@pytest.mark.parametrize("make, case", BAD_CASES)
def test_bad_record_raises_naming_the_file(tmp_path, rng, make, case):
    source, kwargs, file = make(tmp_path, rng, case)
    with pytest.raises(ValueError, match=re.escape(file)):
        readers.load_detection(
            source, "trainval" if make is bad_voc else "train", **kwargs
        )


@pytest.mark.parametrize("make, case", BAD_CASES)
def test_bad_record_is_skipped_and_counted(tmp_path, rng, caplog, make, case):
    source, kwargs, _ = make(tmp_path, rng, case)
    split = "trainval" if make is bad_voc else "train"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data = readers.load_detection(source, split, on_bad="skip", **kwargs)
    total = len(VOC_ANNOTATIONS) if make is bad_voc else 2
    assert (data.num_examples, data.skipped) == (total - 1, 1)
    ids = set(by_id(data))
    assert len(ids) == total - 1 and not ids & {"000002", "2"}
    assert f"Skipped 1 of {total} records" in caplog.text
    assert f"1 {case}" in caplog.text


def _folder_with_bad_second_image(tmp_path, rng, caplog, data: bytes):
    """Three images of class cat, the second `data`: an error naming it, or
    skipped and counted. Returns the folder."""
    for i in range(3):
        write_image(str(tmp_path / "train/cat" / f"{i}.png"), smooth_image(rng, 5, 6))
    (tmp_path / "train/cat/1.png").write_bytes(data)
    with pytest.raises(ValueError, match=re.escape("cat/1.png")):
        readers.load_classification(str(tmp_path), "train")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data = readers.load_classification(str(tmp_path), "train", on_bad="skip")
    assert (data.num_examples, data.skipped) == (2, 1)
    assert len(list(data.dataset)) == 2
    assert "Skipped 1 of 3 records" in caplog.text
    return tmp_path


@pytest.mark.slow
def test_image_folder_undecodable_image(tmp_path, rng, caplog):
    _folder_with_bad_second_image(tmp_path, rng, caplog, b"garbage")


@pytest.mark.slow
def test_image_folder_huge_header_is_a_bad_record_never_decoded(tmp_path, rng, caplog):
    """A user's folder is checked as requests are: a few bytes declaring a
    huge image (here a GIF in a .png) are refused by their header."""
    huge = HUGE["gif frame 20000 x 20000 on a 1 x 1 screen"]
    _folder_with_bad_second_image(tmp_path, rng, caplog, huge)
    unverified = readers.load_classification(
        str(tmp_path), "train", verify_images=False
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than"):
        list(unverified.dataset)


@pytest.mark.parametrize("on_bad", ["error", "skip"])
def test_boxes_outside_the_image_are_clipped_and_degenerate_ones_dropped(
    tmp_path, rng, caplog, on_bad
):
    annotations = {
        "000001": (
            20,
            30,
            [
                ("cat", 0, 1, 35, 20),  # crosses the left and right borders
                ("cat", 10, 5, 9, 8),  # zero width
                ("dog", 40, 5, 50, 8),  # entirely right of the image
                ("dog", 2, 3, 4, 5),
            ],
        )
    }
    write_voc(tmp_path, rng, annotations)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data = readers.load_detection(str(tmp_path), "trainval", on_bad=on_bad)
    ex = by_id(data)["000001"]
    np.testing.assert_array_equal(ex["boxes"], [[0, 0, 30, 20], [1, 2, 4, 5]])
    np.testing.assert_array_equal(ex["labels"], [0, 1])
    assert data.skipped == 0
    assert "clipped 1 boxes" in caplog.text
    assert "dropped 2 degenerate boxes" in caplog.text


def test_coco_boxes_are_clipped_and_degenerate_ones_dropped(tmp_path, rng, caplog):
    images = {1: ("one.png", smooth_image(rng, 10, 12))}
    annotations = [(1, 2, [-2, 3, 5, 5]), (1, 5, [3, 3, 0, 4]), (1, 7, [1, 1, 2, 2])]
    write_coco(tmp_path, images, annotations)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    ex = by_id(readers.load_detection(str(tmp_path), "train"))["1"]
    np.testing.assert_array_equal(ex["boxes"], [[0, 3, 3, 8], [1, 1, 3, 3]])
    np.testing.assert_array_equal(ex["labels"], [0, 2])
    assert "clipped 1 boxes" in caplog.text
    assert "dropped 1 degenerate boxes" in caplog.text


# === Sources and arguments ===


def test_unknown_tfds_name():
    with pytest.raises(ValueError, match="tfds.*source='no_such_dataset_xyz'"):
        readers.load_detection("no_such_dataset_xyz", "train")


def test_missing_directory(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="does not exist.*nowhere"):
        readers.load_classification(missing, "train")


def test_unprepared_tfds_data_set_is_never_downloaded(tmp_path):
    with pytest.raises(ValueError, match="tfds build mnist"):
        readers.load_classification("mnist", "train", data_dir=str(tmp_path))
    assert not (tmp_path / "downloads").exists()


def test_argument_checks(tmp_path, rng):
    with pytest.raises(ValueError, match="on_bad='drop'"):
        readers.load_classification("mnist", "train", on_bad="drop")
    write_coco(tmp_path, {1: ("one.png", smooth_image(rng, 4, 4))}, [])
    with pytest.raises(ValueError, match="class_names only for local VOC"):
        readers.load_detection(str(tmp_path), "train", class_names=["ant"])
    with pytest.raises(ValueError, match=r"\['train'\].*split='val'"):
        readers.load_detection(str(tmp_path), "val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="Expected a Pascal VOC folder"):
        readers.load_detection(str(tmp_path / "empty"), "train")


@pytest.mark.slow
def test_shuffled_and_unverified_voc_folder(tmp_path, rng):
    write_voc(tmp_path, rng)
    data = readers.load_detection(str(tmp_path), "trainval", shuffle_files=True)
    assert sorted(by_id(data)) == sorted(VOC_ANNOTATIONS)
    with open(tmp_path / "VOC2007/JPEGImages/000002.jpg", "wb") as f:
        f.write(b"garbage")
    data = readers.load_detection(str(tmp_path), "trainval", verify_images=False)
    assert (data.num_examples, data.skipped) == (3, 0)
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(data.dataset)  # without the pass, corrupt files fail when read


# === Duplicate and ambiguous ids (issue 18, item 5) ===


def edit_coco(root, edit):
    """Applies `edit(data)` to the instances_train.json that write_coco wrote."""
    path = os.path.join(root, COCO_LAYOUTS[0][0])
    with open(path) as f:
        data = json.load(f)
    edit(data)
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def two_coco_images(tmp_path, rng):
    """Images 1 (an ant) and 2 (a moose), files one.png and two.png."""
    images = {
        1: ("one.png", smooth_image(rng, 10, 12)),
        2: ("two.png", smooth_image(rng, 10, 12)),
    }
    write_coco(tmp_path, images, [(1, 2, [1, 1, 4, 4]), (2, 5, [2, 2, 3, 3])])


def test_coco_duplicate_image_id_is_an_error_never_merged(tmp_path, rng, caplog):
    # Image 2 listed again as three.png: its boxes would go to both files.
    write_image(str(tmp_path / "images/train/three.png"), smooth_image(rng, 10, 12))
    two_coco_images(tmp_path, rng)
    path = edit_coco(
        tmp_path,
        lambda data: data["images"].append(
            {"id": 2, "file_name": "three.png", "height": 10, "width": 12}
        ),
    )
    with pytest.raises(ValueError, match=rf"record=2, file='{re.escape(path)}'"):
        readers.load_detection(str(tmp_path), "train")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data = readers.load_detection(str(tmp_path), "train", on_bad="skip")
    assert (data.num_examples, data.skipped) == (1, 2)  # both entries of id 2
    assert set(by_id(data)) == {"1"}
    assert "2 duplicate id" in caplog.text


def test_coco_duplicate_annotation_id_is_an_error(tmp_path, rng):
    two_coco_images(tmp_path, rng)
    path = edit_coco(
        tmp_path, lambda data: data["annotations"][1].update(id=0)
    )  # the ids are 0 and 1
    with pytest.raises(ValueError, match=rf"record=0, file='{re.escape(path)}'"):
        readers.load_detection(str(tmp_path), "train")
    data = readers.load_detection(str(tmp_path), "train", on_bad="skip")
    assert (data.num_examples, data.skipped) == (0, 2)  # both images hold id 0


@pytest.mark.parametrize("on_bad", ["error", "skip"])
def test_coco_duplicate_category_id_is_an_error(tmp_path, rng, on_bad):
    # Categories 2 ant and 2 lion: ant boxes would be labelled lion (or not).
    two_coco_images(tmp_path, rng)
    path = edit_coco(
        tmp_path, lambda data: data["categories"].append({"id": 2, "name": "lion"})
    )
    with pytest.raises(ValueError, match=rf"{re.escape(path)}.*categories.*id=2"):
        readers.load_detection(str(tmp_path), "train", on_bad=on_bad)


NON_INT_IDS = [  # (entry edited, field, (kept, skipped) under on_bad="skip")
    ("images", "id", (1, 2)),  # image 2 and its annotation, now of no image
    ("annotations", "image_id", (2, 1)),  # that annotation: image 2 has no box
    ("annotations", "category_id", (1, 1)),  # image 2
    ("annotations", "id", (1, 1)),  # image 2
    ("categories", "id", None),  # the label map: always an error
]


@pytest.mark.parametrize("entry, field, counts", NON_INT_IDS)
def test_coco_non_int_id_names_the_file_and_field(tmp_path, rng, entry, field, counts):
    two_coco_images(tmp_path, rng)
    path = edit_coco(tmp_path, lambda data: data[entry][1].update({field: [2]}))
    named = re.escape(f"{path}', field='{entry}[1].{field}'")
    with pytest.raises(ValueError, match=named):
        readers.load_detection(str(tmp_path), "train")
    if counts is not None:  # a bad record: skipped and counted
        data = readers.load_detection(str(tmp_path), "train", on_bad="skip")
        assert (data.num_examples, data.skipped) == counts


@pytest.mark.parametrize("outside", ["/etc/hostname", "../../outside.png"])
def test_coco_file_name_outside_the_image_folder_is_refused(tmp_path, rng, outside):
    write_image(str(tmp_path / "outside.png"), smooth_image(rng, 10, 12))
    two_coco_images(tmp_path / "coco", rng)
    path = edit_coco(
        tmp_path / "coco",
        lambda data: data["images"][1].update(file_name=outside),
    )
    match = rf"record=2, file='{re.escape(path)}'.*{re.escape(outside)}"
    with pytest.raises(ValueError, match=match):
        readers.load_detection(str(tmp_path / "coco"), "train")
    data = readers.load_detection(str(tmp_path / "coco"), "train", on_bad="skip")
    assert (data.num_examples, data.skipped) == (1, 1)
    assert set(by_id(data)) == {"1"}


def test_voc_id_listed_twice_in_a_split_file(tmp_path, rng, caplog):
    write_voc(tmp_path, rng)
    split_file = str(tmp_path / "VOC2007/ImageSets/Main/trainval.txt")
    with open(split_file, "a") as f:
        f.write("000002\n")
    match = rf"record='000002', file='{re.escape(split_file)}'"
    with pytest.raises(ValueError, match=match):
        readers.load_detection(str(tmp_path), "trainval")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data = readers.load_detection(str(tmp_path), "trainval", on_bad="skip")
    assert (data.num_examples, data.skipped) == (3, 1)
    assert sorted(by_id(data)) == sorted(VOC_ANNOTATIONS)  # 000002 once
    assert "1 duplicate id" in caplog.text


@pytest.mark.parametrize("on_bad", ["error", "skip"])
def test_voc_empty_split_is_an_error_naming_the_split_file(tmp_path, rng, on_bad):
    write_voc(tmp_path, rng)
    split_file = tmp_path / "VOC2007/ImageSets/Main/val.txt"
    split_file.write_text("\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(split_file))}.*no id"):
        readers.load_detection(str(tmp_path), "val", on_bad=on_bad)


@pytest.mark.slow
def test_voc_class_indices_do_not_depend_on_the_split(tmp_path, rng):
    # val has no cat: its dog and person keep the indices they have in train.
    write_voc(tmp_path, rng, split="train")
    main = tmp_path / "VOC2007/ImageSets/Main"
    (main / "val.txt").write_text("000002\n000003\n")
    (main / "cat_train.txt").write_text("000001  1\n000002 -1\n")  # a class list
    train = readers.load_detection(str(tmp_path), "train")
    val = readers.load_detection(str(tmp_path), "val")
    assert train.class_names == val.class_names == ("cat", "dog", "person")
    person = train.class_names.index("person")
    np.testing.assert_array_equal(by_id(val)["000002"]["labels"], [person])
    np.testing.assert_array_equal(by_id(train)["000002"]["labels"], [person])
